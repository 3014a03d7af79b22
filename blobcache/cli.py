"""The ``blobcache`` command line: parse, call `blobcache.maintenance` or `BlobCache`, render.

Results go to stdout (``--json``/``--jsonl`` for machines), logs and progress
to stderr. ``--url``, ``--root`` and ``-v`` go before or after the command
name. Exit codes: `EXIT_OK` 0; `EXIT_FINDINGS` 1, inconsistencies found (also
`EXIT_MISS`: a digest or path not in the cache); `EXIT_USAGE` 2, a usage or
configuration error, or a store that does not exist; `EXIT_UNAVAILABLE` 3, the
backend is unreachable; `EXIT_FAILED` 4, any other failure (a file system
error, an item past the size limit).

Only ``create-table``, ``put``, ``index`` and ``import`` create a store that
does not exist yet; the others refuse it, so a mistyped URL is an error rather
than an empty cache.

The click group is `cli`; a host application mounts the same commands on its
own caches with `HostedGroup` (``flask blobcache``, ``manage.py blobcache``).

.. versionadded:: 0.1
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import sys
import traceback
from collections.abc import Callable, Iterable
from typing import IO, Any, TypeVar, cast

import click

from blobcache import maintenance
from blobcache._cache import BlobCache
from blobcache._errors import (
    BlobCacheError,
    CacheMiss,
    ConfigurationError,
    InvalidDigest,
    InvalidPath,
    StoreUnavailable,
    TableNotFound,
)

__all__ = [
    "EXIT_FAILED",
    "EXIT_FINDINGS",
    "EXIT_MISS",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "HostedGroup",
    "cli",
    "main",
]

# Keys in click.Context.meta that a HostedGroup fills in.
_OPEN_CACHE = "blobcache.open_cache"
_URL_DEFAULT = "blobcache.url_default"
_CACHE_HELP = "blobcache.cache_help"
_PROGRAM = "blobcache.program"

#: Exit code: done, nothing found wrong.
EXIT_OK = 0
#: Exit code: inconsistencies found (verify, a dry-run prune, bad import lines...).
EXIT_FINDINGS = 1
#: Exit code: the digest or path asked for is not in the cache (get, paths, has).
EXIT_MISS = EXIT_FINDINGS
#: Exit code: a usage or configuration error, or a store that does not exist.
EXIT_USAGE = 2
#: Exit code: the backend could not be reached (after retries).
EXIT_UNAVAILABLE = 3
#: Exit code: any other failure (a file system error, an item past the size limit).
EXIT_FAILED = 4

_USAGE_ERRORS = (ConfigurationError, InvalidDigest, InvalidPath, TableNotFound)
_INVOCATION = "blobcache.invocation"
_HANDLER_FLAG = "_blobcache_cli"
_DEFAULT_URL_HELP = "$BLOBCACHE_URL, else the per-user SQLite file"
# WARNING events whose content the command's report prints on stdout anyway: shown
# only with -v, so a finding is not printed twice.
_REPORTED_EVENTS = frozenset({"inconsistency_found", "digest_mismatch", "import_line_rejected"})

Command = TypeVar("Command", bound=Callable[..., Any])


@dataclasses.dataclass
class _Invocation:
    """What this run of the command line was told: the cache to open, how loud to be."""

    url: str | None = None
    root: str | None = None
    #: The host's cache name (``--cache``: a Flask bind, a Django alias).
    cache: str | None = None
    verbose: int = 0


def _invocation(ctx: click.Context) -> _Invocation:
    found = ctx.meta.get(_INVOCATION)
    if found is None:
        found = ctx.meta[_INVOCATION] = _Invocation()
    return cast(_Invocation, found)


def _open_cache(ctx: click.Context, *, may_create: bool = False, **options: Any) -> BlobCache:
    """The cache ``--url``/``--root`` name (the command's over the group's), else the host's.

    Only commands that write (``may_create``) may create a store that does not exist;
    the others refuse it (``must_exist``), so a mistyped URL is an error, not an empty
    cache.
    """
    invocation = _invocation(ctx)
    if not may_create:
        options.setdefault("must_exist", True)
    hook = ctx.meta.get(_OPEN_CACHE)
    if invocation.url is None and hook is not None:
        cache = cast(BlobCache, hook(invocation.cache, invocation.root, **options))
    else:
        cache = BlobCache.from_url(invocation.url, root=invocation.root, **options)
    ctx.call_on_close(cache.close)
    return cache


def _program(ctx: click.Context) -> str:
    """How the user ran us: ``blobcache``, ``flask blobcache``, ``python manage.py blobcache``."""
    return str(ctx.meta.get(_PROGRAM) or "blobcache")


def _for_program(ctx: click.Context, text: str) -> str:
    """``text`` with its ``'blobcache ...'`` hints spelt the way the user runs the commands."""
    program = _program(ctx)
    return text if program == "blobcache" else text.replace("'blobcache ", f"'{program} ")


class _ReportedFilter(logging.Filter):
    """Drops the WARNING events a command's report already prints (unless -v)."""

    def filter(self, record: logging.LogRecord) -> bool:
        event = record.msg.get("event") if isinstance(record.msg, dict) else None
        return event not in _REPORTED_EVENTS


def _configure_logging(verbose: int) -> None:
    """Send ``blobcache.*`` logs to stderr: warnings, ``-v`` info, ``-vv`` debug."""
    logger = logging.getLogger("blobcache")
    for handler in list(logger.handlers):
        if getattr(handler, _HANDLER_FLAG, False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _HANDLER_FLAG, True)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    if not verbose:
        handler.addFilter(_ReportedFilter())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)


def _exit_code(error: BaseException) -> int:
    if isinstance(error, StoreUnavailable):
        return EXIT_UNAVAILABLE
    if isinstance(error, _USAGE_ERRORS) or (
        isinstance(error, ValueError) and not isinstance(error, BlobCacheError)
    ):
        return EXIT_USAGE
    if isinstance(error, CacheMiss):
        return EXIT_MISS
    return EXIT_FAILED


def _handled(command: Command) -> Command:
    """Turn blobcache and filesystem errors into one line on stderr and an exit code."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        try:
            return command(*args, **kwargs)
        except (BlobCacheError, OSError, ValueError) as error:
            if _invocation(ctx).verbose:
                traceback.print_exc(file=sys.stderr)
            click.echo(f"blobcache: error: {_for_program(ctx, str(error))}", err=True)
            ctx.exit(_exit_code(error))

    return cast(Command, run)


class _UrlOption(click.Option):
    """``--url``, whose help says what the host (Flask, Django) makes it default to."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        default = ctx.meta.get(_URL_DEFAULT, _DEFAULT_URL_HELP)
        self.help = (
            "sqlite:///FILE, dynamodb:///TABLE?region=... or redis://HOST:PORT/DB; "
            f"default: {default}."
        )
        return super().get_help_record(ctx)


class _CacheOption(click.Option):
    """``--cache NAME``: shown and accepted only where a host has named caches."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        if _CACHE_HELP not in ctx.meta:
            return None
        self.help = str(ctx.meta[_CACHE_HELP])
        return super().get_help_record(ctx)


def _remember(field: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    """A callback that records an option in the invocation; later (inner) values win."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        invocation = _invocation(ctx)
        if field == "verbose":
            if value:
                invocation.verbose += value
                _configure_logging(invocation.verbose)
        elif value is not None:
            if field == "cache" and _OPEN_CACHE not in ctx.meta:
                raise click.UsageError(
                    "--cache names a cache of a Flask app or Django project; "
                    "the blobcache command takes --url",
                    ctx,
                )
            setattr(invocation, field, value)

    return callback


def _common_options(command: Command) -> Command:
    """``--url``, ``--root``, ``-v`` (and a host's ``--cache``): before or after the command.

    They are recorded in the invocation, not passed to the command: a command opens
    its cache with `_open_cache`.
    """
    options = (
        click.option(
            "--url", metavar="URL", cls=_UrlOption, expose_value=False, callback=_remember("url")
        ),
        click.option(
            "--cache",
            metavar="NAME",
            cls=_CacheOption,
            expose_value=False,
            callback=_remember("cache"),
        ),
        click.option(
            "--root",
            type=click.Path(file_okay=False),
            expose_value=False,
            callback=_remember("root"),
            help="Store paths relative to this directory (relative-path mode).",
        ),
        click.option(
            "-v",
            "--verbose",
            count=True,
            expose_value=False,
            callback=_remember("verbose"),
            help="More logging on stderr (-vv: debug); tracebacks on errors.",
        ),
    )
    for option in reversed(options):
        command = option(command)
    return command


def _output_options(*, json_: bool = True, jsonl: bool = False) -> Callable[[Command], Command]:
    """``--json`` (one document) and ``--jsonl`` (one object per line), the same everywhere."""

    def decorate(command: Command) -> Command:
        if jsonl:
            command = click.option(
                "--jsonl", "as_jsonl", is_flag=True, help="Print one JSON object per line."
            )(command)
        if json_:
            command = click.option(
                "--json", "as_json", is_flag=True, help="Print the result as one JSON document."
            )(command)
        return command

    return decorate


def _segments_option(command: Command) -> Command:
    return click.option(
        "--segments",
        type=click.IntRange(min=1),
        default=None,
        help="DynamoDB parallel Scan segments (default: the scan_segments option, 1).",
    )(command)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)
        }
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, frozenset | set):
        return sorted(_plain(item) for item in value)
    return value


def _text(value: str) -> str:
    """A stored string for a line of text output: control characters (newlines, escape
    sequences, line separators) and backslashes escaped, so a hostile path stays on its
    line and cannot forge another."""
    return "".join(
        "\\\\"
        if char == "\\"
        else char
        if char.isprintable() or char == " "
        else char.encode("unicode_escape").decode("ascii")
        for char in value
    )


def _echo_json(value: Any, **extra: Any) -> None:
    document = _plain(value)
    if isinstance(document, dict):
        document.update(extra)
    click.echo(json.dumps(document, ensure_ascii=False, sort_keys=True))


def _echo_skipped(skipped: Iterable[Any]) -> None:
    """On stderr, each path a command passed over and why."""
    for item in skipped:
        detail = f": {item.detail}" if item.detail else ""
        click.echo(f"skipped ({item.reason}): {_text(item.path)}{_text(detail)}", err=True)


def _echo_lines(records: Iterable[Any]) -> None:
    for record in records:
        click.echo(json.dumps(_plain(record), ensure_ascii=False, sort_keys=True))


def _count(number: int, singular: str, plural: str | None = None) -> str:
    """``1 digest``, ``2 digests``, ``0 entries``: a number with its noun agreeing."""
    noun = singular if number == 1 else (plural or singular + "s")
    return f"{number} {noun}"


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


# -- the group ------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@_common_options
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Maintain a blobcache: the dedupe map from blob digests to storage paths.

    --url, --root and -v go before or after the command name.

    \f
    .. versionadded:: 0.1
    """
    _configure_logging(_invocation(ctx).verbose)


class HostedGroup(click.Group):
    """The commands of `cli`, run against a host application's caches.

    ``flask blobcache`` and ``manage.py blobcache`` are each one of these: the very
    same commands and options, with ``--cache NAME`` choosing one of the host's
    caches, ``--url`` still winning over it, and help and hints that name the
    host's program and settings.

    Args:
        program: how users run it (``"flask blobcache"``), for hints and help.
        open_cache: ``open_cache(name, root, **options) -> BlobCache``: the host's
            cache called ``name`` (``None``: its default one).
        url_default: what ``--url`` defaults to, in the host's words.
        cache_help: the help of ``--cache``.
        help: the group's help text.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        *,
        program: str,
        open_cache: Callable[..., BlobCache],
        url_default: str,
        cache_help: str,
        help: str,
        callback: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(
            "blobcache",
            commands=cli.commands,
            params=cli.params,
            callback=callback or cli.callback,
            help=help,
            context_settings=cli.context_settings,
        )
        self._host = {
            _PROGRAM: program,
            _OPEN_CACHE: open_cache,
            _URL_DEFAULT: url_default,
            _CACHE_HELP: cache_help,
        }

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Tell the commands about the host before any option (or ``--help``) is read."""
        ctx.meta.update(self._host)
        return super().parse_args(ctx, args)


def main() -> None:
    """Run the ``blobcache`` command (the console script and ``python -m blobcache``).

    .. versionadded:: 0.1
    """
    cli(prog_name="blobcache")


# -- single digests -------------------------------------------------------------------------


@cli.command("create-table")
@_common_options
@click.option(
    "--billing-mode",
    type=click.Choice(["PAY_PER_REQUEST", "PROVISIONED"], case_sensitive=False),
    default=None,
    help="DynamoDB billing mode of a new table (default PAY_PER_REQUEST).",
)
@click.option("--read-capacity", type=click.IntRange(min=1), help="With PROVISIONED.")
@click.option("--write-capacity", type=click.IntRange(min=1), help="With PROVISIONED.")
@click.option(
    "--wait",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="How long to wait for a new table to become ACTIVE (default 60).",
)
@click.pass_context
@_handled
def create_table(
    ctx: click.Context,
    billing_mode: str | None,
    read_capacity: int | None,
    write_capacity: int | None,
    wait: float | None,
) -> None:
    """Create the table (DynamoDB) or schema (SQLite) unless it exists."""
    options: dict[str, Any] = {
        "billing_mode": billing_mode.upper() if billing_mode else None,
        "read_capacity": read_capacity,
        "write_capacity": write_capacity,
        "table_wait_timeout": wait,
    }
    cache = _open_cache(
        ctx, may_create=True, **{key: value for key, value in options.items() if value is not None}
    )
    cache.create_table()
    click.echo(f"table ready: {cache!r}")


@cli.command()
@_common_options
@click.argument("digest")
@click.argument("path")
@click.pass_context
@_handled
def put(ctx: click.Context, digest: str, path: str) -> None:
    """Record PATH for DIGEST; the first path recorded becomes the original."""
    _open_cache(ctx, may_create=True).put(digest, path)


@cli.command()
@_common_options
@click.argument("digest")
@click.pass_context
@_handled
def get(ctx: click.Context, digest: str) -> None:
    """Print the original path of DIGEST (exit 1 if it has no entry)."""
    click.echo(_text(_open_cache(ctx).get(digest)))


@cli.command()
@_common_options
@click.argument("digest")
@_output_options()
@click.pass_context
@_handled
def paths(ctx: click.Context, digest: str, as_json: bool) -> None:
    """Print every path of DIGEST, the original first (exit 1 if it has no entry)."""
    found = _open_cache(ctx).get_all(digest)
    if as_json:
        click.echo(json.dumps({"digest": digest, "original": found[0], "paths": found}))
    else:
        click.echo("\n".join(map(_text, found)))


@cli.command()
@_common_options
@click.argument("digest")
@click.argument("path")
@click.pass_context
@_handled
def has(ctx: click.Context, digest: str, path: str) -> None:
    """Exit 0 if PATH is recorded for DIGEST, else 1."""
    found = _open_cache(ctx).has(digest, path)
    click.echo("yes" if found else "no")
    ctx.exit(EXIT_OK if found else EXIT_MISS)


@cli.command()
@_common_options
@click.argument("digest")
@click.argument("path")
@click.pass_context
@_handled
def delete(ctx: click.Context, digest: str, path: str) -> None:
    """Forget PATH of DIGEST; an unknown digest or path is a no-op."""
    _open_cache(ctx).delete(digest, path)


# -- maintenance ----------------------------------------------------------------------------


def _storage_argument(command: Command) -> Command:
    """``LOCATION``: a storage directory or ``s3://BUCKET[/ROOTDIRECTORY][?region=...]``."""
    return click.argument("storage_root", metavar="LOCATION")(command)


def _storage_option(command: Command) -> Command:
    return click.option(
        "--storage",
        metavar="LOCATION",
        help="Check paths against this directory or s3://BUCKET[/ROOTDIRECTORY][?region=...] "
        "(default: the cache's --root, else the local disk).",
    )(command)


def _workers_option(command: Command) -> Command:
    return click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=8,
        show_default=True,
        help="Concurrent requests (S3) or threads.",
    )(command)


def _loud_placeholder_originals(report: maintenance.VerifyReport) -> None:
    """On stderr, apart: originals that are placeholders break every pull of their digest."""
    broken = report.placeholder_originals
    if broken:
        click.echo(
            f"BROKEN PULLS: {len(broken)} original(s) are zero-byte placeholders; every "
            "repository holding these digests serves an empty or missing blob:",
            err=True,
        )
        for finding in broken:
            where = f" {_text(finding.path)}" if finding.path else ""
            click.echo(f"  {_text(finding.digest)}{where}: {_text(finding.detail)}", err=True)


@cli.command()
@_common_options
@_storage_argument
@click.option("--verify-digests", is_flag=True, help="Hash every blob; report mismatches.")
@_workers_option
@_output_options()
@click.pass_context
@_handled
def index(
    ctx: click.Context, storage_root: str, verify_digests: bool, workers: int, as_json: bool
) -> None:
    """Rebuild the cache from the blobs under LOCATION (zot's layout, OCI layouts).

    LOCATION is a directory or s3://BUCKET[/ROOTDIRECTORY][?region=R&endpoint_url=URL].
    """
    cache = _open_cache(ctx, may_create=True)
    cache.create_table()
    bar: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label="indexing", file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        report = maintenance.index(
            cache, storage_root, verify_digests=verify_digests, workers=workers, progress=progress
        )
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if as_json:
        _echo_json(report)
    else:
        click.echo(
            f"{_count(report.blobs, 'blob')}, {_count(report.digests, 'digest')}, "
            f"{_count(report.duplicates, 'duplicate copy', 'duplicate copies')} "
            f"({_count(report.placeholders, 'zero-byte placeholder')}); dedupe would reclaim "
            f"{_size(report.reclaimable_bytes)}; {_count(report.recorded, 'path')} recorded"
        )
        for mismatch in report.mismatches:
            click.echo(
                f"mismatch: {mismatch.path} holds {mismatch.actual}, not {mismatch.expected}"
            )
    if report.mismatches:
        ctx.exit(EXIT_FINDINGS)


@cli.command()
@_common_options
@_storage_option
@_workers_option
@_segments_option
@_output_options(jsonl=True)
@click.pass_context
@_handled
def verify(
    ctx: click.Context,
    storage: str | None,
    workers: int,
    segments: int | None,
    as_json: bool,
    as_jsonl: bool,
) -> None:
    """Report stale paths, placeholder originals and broken items (exit 1 if any)."""
    report = maintenance.verify(_open_cache(ctx), root=storage, segments=segments, workers=workers)
    _loud_placeholder_originals(report)
    if as_json:
        _echo_json(report, ok=report.ok)
    elif as_jsonl:
        _echo_lines(report.findings)
    else:
        for finding in report.findings:
            where = f" {_text(finding.path)}" if finding.path else ""
            detail = _text(_for_program(ctx, finding.detail))
            click.echo(f"{finding.kind}: {_text(finding.digest)}{where}: {detail}")
        click.echo(
            f"{_count(report.items, 'item')}, {_count(report.paths, 'path')}, "
            f"{_count(len(report.findings), 'finding')}"
            + (
                f", {_count(report.unchecked, 'path')} not checked on disk"
                if report.unchecked
                else ""
            )
        )
    if not report.ok:
        ctx.exit(EXIT_FINDINGS)


@cli.command()
@_common_options
@_storage_option
@click.option("--yes", is_flag=True, help="Apply; without it, only show what would go.")
@_workers_option
@_segments_option
@_output_options(jsonl=True)
@click.pass_context
@_handled
def prune(
    ctx: click.Context,
    storage: str | None,
    yes: bool,
    workers: int,
    segments: int | None,
    as_json: bool,
    as_jsonl: bool,
) -> None:
    """Forget cached paths with no file behind them; never deletes a file. Dry run by default."""
    report = maintenance.prune(
        _open_cache(ctx), root=storage, apply=yes, segments=segments, workers=workers
    )
    if as_json:
        _echo_json(report)
    elif as_jsonl:
        _echo_lines(report.stale)
    else:
        verb = "removed" if yes else "would remove"
        for stale in report.stale:
            click.echo(f"{verb}: {_text(stale.digest)} {_text(stale.path)}")
        stale_paths = _count(len(report.stale), "stale path")
        click.echo(
            f"{stale_paths} removed"
            if yes
            else f"{stale_paths} would be removed (dry run; --yes removes them)"
        )
    if report.stale and not yes:
        ctx.exit(EXIT_FINDINGS)


@cli.command()
@_common_options
@_storage_argument
@click.option("--yes", is_flag=True, help="Link for real; without it, only show what would be.")
@click.option("--verify-digests", is_flag=True, help="S3: hash original and copy before replacing.")
@_workers_option
@_output_options(jsonl=True)
@click.pass_context
@_handled
def dedupe(
    ctx: click.Context,
    storage_root: str,
    yes: bool,
    verify_digests: bool,
    workers: int,
    as_json: bool,
    as_jsonl: bool,
) -> None:
    """Replace duplicate copies under LOCATION by hard links (on S3: zero-byte placeholders).

    Dry run by default.
    """
    report = maintenance.dedupe(
        _open_cache(ctx),
        storage_root,
        apply=yes,
        verify_digests=verify_digests,
        workers=workers,
    )
    if as_json:
        _echo_json(report)
    elif as_jsonl:
        _echo_lines(report.links)
    else:
        on_s3 = isinstance(maintenance.parse_location(storage_root), maintenance.S3Location)
        verb = (
            ("replaced" if yes else "would replace") if on_s3 else "linked" if yes else "would link"
        )
        done = "replaced by placeholders" if on_s3 else "linked"
        already = "already placeholders" if on_s3 else "already linked"
        for link in report.links:
            click.echo(f"{verb}: {_text(link.path)} -> {_text(link.original)}")
        _echo_skipped(report.skipped)
        copies = _count(len(report.links), "copy", "copies")
        click.echo(
            (f"{copies} {done}" if yes else f"{copies} would be {done}")
            + f", {_size(report.reclaimed_bytes)} {'reclaimed' if yes else 'to reclaim'}, "
            f"{report.already_linked} {already}, {len(report.skipped)} skipped"
            + ("" if yes else " (dry run)")
        )


@cli.command()
@_common_options
@_storage_argument
@click.option("--yes", is_flag=True, help="Copy for real; without it, only show what would be.")
@click.option("--verify-digests", is_flag=True, help="Hash each source before copying from it.")
@_workers_option
@_output_options(jsonl=True)
@click.pass_context
@_handled
def restore(
    ctx: click.Context,
    storage_root: str,
    yes: bool,
    verify_digests: bool,
    workers: int,
    as_json: bool,
    as_jsonl: bool,
) -> None:
    """Copy each digest's content into its zero-byte placeholders on S3 (undo dedupe).

    LOCATION is s3://BUCKET[/ROOTDIRECTORY][?region=R&endpoint_url=URL]. Dry run by default.
    """
    report = maintenance.restore(
        _open_cache(ctx),
        storage_root,
        apply=yes,
        verify_digests=verify_digests,
        workers=workers,
    )
    if as_json:
        _echo_json(report)
    elif as_jsonl:
        _echo_lines(report.restored)
    else:
        verb = "restored" if yes else "would restore"
        for item in report.restored:
            click.echo(f"{verb}: {_text(item.path)} <- {_text(item.source)}")
        _echo_skipped(report.skipped)
        click.echo(
            f"{_count(len(report.restored), 'placeholder')} {verb}, {_size(report.restored_bytes)} "
            f"{'copied' if yes else 'to copy'}, {len(report.skipped)} skipped"
            + ("" if yes else " (dry run)")
        )


@cli.command()
@_common_options
@click.option("--top", type=click.IntRange(min=0), default=5, show_default=True)
@_segments_option
@_output_options()
@click.pass_context
@_handled
def stats(ctx: click.Context, top: int, segments: int | None, as_json: bool) -> None:
    """Count digests and paths, copies per digest, and the largest items."""
    report = maintenance.stats(_open_cache(ctx), top=top, segments=segments)
    if as_json:
        _echo_json(report)
        return
    click.echo(f"{_count(report.digests, 'digest')}, {_count(report.paths, 'path')}")
    click.echo("copies per digest:")
    widest = max((count for _, count in report.histogram), default=0)
    for copies, count in report.histogram:
        bar = "#" * max(1, round(40 * count / widest))
        click.echo(f"  {copies:>5} {count:>8} {bar}")
    if report.largest:
        limit = report.limit_bytes
        click.echo(
            "largest items" + ("" if limit is None else f" (DynamoDB limit {_size(limit)})") + ":"
        )
        for item in report.largest:
            headroom = item.headroom_bytes
            click.echo(
                f"  {item.digest} {_count(item.paths, 'path')}, {_size(item.bytes)}"
                + ("" if headroom is None else f", headroom {_size(headroom)}")
            )


@cli.command()
@_common_options
@click.option(
    "-o", "--output", type=click.File("w", encoding="utf-8"), default="-", show_default=True
)
@click.pass_context
@_handled
def export(ctx: click.Context, output: IO[str]) -> None:
    """Write every entry as JSON Lines (to stdout by default)."""
    report = maintenance.export_jsonl(_open_cache(ctx), output)
    click.echo(f"exported {_count(report.entries, 'entry', 'entries')}", err=True)


@cli.command("import")
@_common_options
@click.argument("source", type=click.File("rb"), default="-")
@_output_options()
@click.pass_context
@_handled
def import_(ctx: click.Context, source: IO[bytes], as_json: bool) -> None:
    """Record the entries of a JSON Lines file (stdin by default); exit 1 on bad lines."""
    cache = _open_cache(ctx, may_create=True)
    cache.create_table()
    report = maintenance.import_jsonl(cache, source)
    if as_json:
        _echo_json(report)
    else:
        for bad in report.bad_lines:
            click.echo(f"line {bad.line}: {bad.error}", err=True)
        click.echo(
            f"{_count(report.imported, 'entry', 'entries')} imported from "
            f"{_count(report.lines, 'line')}, {_count(report.bad_line_count, 'bad line')}"
        )
    if report.bad_line_count:
        ctx.exit(EXIT_FINDINGS)


@cli.command()
@_common_options
@_segments_option
@_output_options()
@click.pass_context
@_handled
def migrate(ctx: click.Context, segments: int | None, as_json: bool) -> None:
    """Convert legacy items (BlobPath set, no original) to the current layout, in place."""
    report = maintenance.migrate(_open_cache(ctx), segments=segments)
    if as_json:
        _echo_json(report)
    else:
        click.echo(f"{report.migrated} of {_count(report.items, 'item')} migrated")
    if report.raced:
        click.echo(
            f"{_count(report.raced, 'item')} changed meanwhile; run "
            f"'{_program(ctx)} migrate' again",
            err=True,
        )
        ctx.exit(EXIT_FINDINGS)
