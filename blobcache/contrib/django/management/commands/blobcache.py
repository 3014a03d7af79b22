"""``manage.py blobcache COMMAND``: the standalone command line, on a ``settings.BLOBCACHE`` alias.

Each subcommand's argparse options are built from the click command of
`blobcache.cli`, so both spell every option the same way; the click command
then runs with the alias's cache (``--url`` still wins).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
from typing import Any

import click
from django.core.management.base import BaseCommand, CommandError, CommandParser

from blobcache import BlobCache
from blobcache import cli as standalone
from blobcache.contrib.django._settings import DEFAULT_ALIAS, open_alias

#: The maintenance commands wrapped here; single-digest commands stay on the standalone CLI.
SUBCOMMANDS = ("create-table", "index", "verify", "prune", "stats", "export", "import", "migrate")


class Command(BaseCommand):
    """The ``blobcache`` management command; each subcommand wraps one maintenance function."""

    help = "Maintain the blobcache of a settings.BLOBCACHE alias (the 'blobcache' commands)."

    def add_arguments(self, parser: CommandParser) -> None:
        """Add ``--cache`` and one subparser per click command, with the click options."""
        parser.add_argument(
            "--cache",
            default=DEFAULT_ALIAS,
            metavar="ALIAS",
            help="The settings.BLOBCACHE alias to use (default: default).",
        )
        subparsers = parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")
        for name in SUBCOMMANDS:
            command = standalone.cli.commands[name]
            sub = subparsers.add_parser(name, help=command.get_short_help_str(limit=80))
            for param in command.params:
                _add_param(sub, param)

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the click command with the alias's cache; exit with its exit code."""
        name: str = options["subcommand"]
        command = standalone.cli.commands[name]
        argv = [name, *_to_click_args(command, options)]
        parent = click.Context(click.Group("manage.py"), info_name="manage.py")
        parent.meta[standalone.OPEN_CACHE] = functools.partial(_open, options["cache"])
        # click writes to sys.stdout/sys.stderr; Django's call_command(stdout=...,
        # stderr=...) hands the command its own streams, so point click at those.
        try:
            with (
                contextlib.redirect_stdout(self.stdout),
                contextlib.redirect_stderr(self.stderr),
                parent,
                standalone.cli.make_context("blobcache", argv, parent=parent) as ctx,
            ):
                standalone.cli.invoke(ctx)
        except click.exceptions.Exit as done:
            if done.exit_code:
                raise CommandError(
                    f"blobcache {name} exited with status {done.exit_code}",
                    returncode=done.exit_code,
                ) from None
        except click.ClickException as exc:
            raise CommandError(exc.format_message(), returncode=exc.exit_code) from exc


def _open(alias: str, root: str | None, **overrides: Any) -> BlobCache:
    return open_alias(alias, root=root, **overrides)


def _add_param(parser: argparse.ArgumentParser, param: click.Parameter) -> None:
    """One click parameter as the argparse argument that accepts the same spelling."""
    assert param.name is not None
    if isinstance(param, click.Argument):
        parser.add_argument(
            param.name,
            metavar=param.metavar or param.name.upper(),
            nargs=None if param.required else "?",
        )
        return
    assert isinstance(param, click.Option)
    if param.is_flag:
        parser.add_argument(*param.opts, dest=param.name, action="store_true", help=param.help)
        return
    choices = list(param.type.choices) if isinstance(param.type, click.Choice) else None
    parser.add_argument(
        *param.opts,
        dest=param.name,
        default=None,
        choices=choices,
        metavar=None if choices else (param.metavar or param.name.upper()),
        help=param.help,
    )


def _to_click_args(command: click.Command, options: dict[str, Any]) -> list[str]:
    """The click argv that says what the parsed argparse ``options`` say."""
    argv: list[str] = []
    for param in command.params:
        value = options.get(param.name or "")
        if value is None or value is False:
            continue
        if isinstance(param, click.Argument):
            argv.append(str(value))
        elif isinstance(param, click.Option) and param.is_flag:
            argv.append(param.opts[0])
        else:
            argv.extend([param.opts[-1], str(value)])
    return argv
