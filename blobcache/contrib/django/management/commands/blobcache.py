"""``manage.py blobcache COMMAND``: the standalone command line, on a ``settings.BLOBCACHE`` alias.

Every argument goes to the click commands of `blobcache.cli` unchanged (Django's
own option parser never sees them), so the commands, options, output and exit
codes are those of ``blobcache`` and ``flask blobcache``: ``-v`` is blobcache's,
``--url``, ``--root`` and ``--cache ALIAS`` go before or after the command name.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any, ClassVar, TextIO

import click
from django.core.management.base import BaseCommand, CommandError, CommandParser

from blobcache import BlobCache
from blobcache import cli as standalone
from blobcache.contrib.django._settings import DEFAULT_ALIAS, open_alias

PROGRAM = "python manage.py blobcache"
# Django's options that ManagementUtility has already applied before it ran us.
_DJANGO_OPTIONS_WITH_VALUE = ("--settings", "--pythonpath")


class BlobCacheCommandFailed(CommandError):
    """The command exited non-zero; its error line was already printed on stderr.

    ``call_command`` raises it (``returncode`` is the exit code); on the command
    line the process exits with that code and prints nothing more.
    """


class _ClickArguments(CommandParser):
    """Hands every argument to click: the blobcache commands parse their own."""

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:
        parsed: argparse.Namespace = super().parse_args([], namespace)  # Django's defaults
        parsed.args = list(args or ())
        return parsed


class Command(BaseCommand):
    """The ``blobcache`` management command: ``blobcache``'s commands on an alias."""

    help = "Maintain the blobcache of a settings.BLOBCACHE alias (the 'blobcache' commands)."
    requires_system_checks: ClassVar[list[str]] = []

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        """Django's parser, made to pass everything through to click."""
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.__class__ = _ClickArguments
        return parser

    def print_help(self, prog_name: str, subcommand: str) -> None:
        """``manage.py help blobcache``: click's help, which lists the commands."""
        _run(["--help"], self.stdout._out, self.stderr._out)

    def run_from_argv(self, argv: list[str]) -> None:
        """``manage.py blobcache ...``: run click and exit with its code, printing nothing more."""
        self._called_from_command_line = True
        code = _run(_without_django_options(argv[2:]), sys.stdout, sys.stderr)
        sys.exit(code)

    def handle(self, *args: str, **options: Any) -> None:
        """``call_command("blobcache", "verify", "--json")``: the same, into its streams.

        Raises:
            BlobCacheCommandFailed: the command exited non-zero (``returncode``).
        """
        # The wrappers' own streams: OutputWrapper would add line endings of its own.
        code = _run(list(args), self.stdout._out, self.stderr._out)
        if code:
            raise BlobCacheCommandFailed(
                f"blobcache {' '.join(args)} exited with status {code}", returncode=code
            )


def _open(alias: str | None, root: str | None, **overrides: Any) -> BlobCache:
    return open_alias(alias or DEFAULT_ALIAS, root=root, **overrides)


def _group() -> standalone.HostedGroup:
    return standalone.HostedGroup(
        program=PROGRAM,
        open_cache=_open,
        url_default="settings.BLOBCACHE[ALIAS]['URL']",
        cache_help="The settings.BLOBCACHE alias to use (default: default).",
        help="Maintain the blobcache of a settings.BLOBCACHE alias: the same commands as "
        "'blobcache'.",
    )


def _run(args: list[str], stdout: TextIO, stderr: TextIO) -> int:
    """Run the click group on ``args`` with ``stdout``/``stderr``; return its exit code."""
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = _group().main(args, prog_name=PROGRAM, standalone_mode=False)
        except click.ClickException as exc:
            exc.show()
            return exc.exit_code
        except click.Abort:
            click.echo("Aborted!", err=True)
            return 1
    return code if isinstance(code, int) else 0


def _without_django_options(args: list[str]) -> list[str]:
    """``args`` less ``--settings``/``--pythonpath``, which Django has applied already."""
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in _DJANGO_OPTIONS_WITH_VALUE:
            skip = True
        elif not arg.startswith(tuple(f"{option}=" for option in _DJANGO_OPTIONS_WITH_VALUE)):
            kept.append(arg)
    return kept
