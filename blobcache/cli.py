"""The ``blobcache`` command line: parse, call `blobcache.maintenance` or `BlobCache`, render.

Results go to stdout (``--json``/``--jsonl`` for machines), logs and progress
to stderr. Exit codes: 0 ok, 1 inconsistencies found (or a miss), 2 usage or
configuration error, 3 backend unavailable, 4 any other failure (a file
system error, an item past the size limit).

The click group is `cli`; a host application can mount it (``flask
blobcache ...``) and supply its own cache by putting a callable
``open_cache(root) -> BlobCache`` in ``ctx.meta[OPEN_CACHE]`` before the
commands run; ``--url`` on the command line still wins.

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

#: Key in ``click.Context.meta`` of a callable ``open_cache(root) -> BlobCache``.
OPEN_CACHE = "blobcache.open_cache"
EXIT_OK, EXIT_FOUND, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_FAILED = 0, 1, 2, 3, 4
_USAGE_ERRORS = (ConfigurationError, InvalidDigest, InvalidPath, TableNotFound)
_SETTINGS = "blobcache.settings"
_HANDLER_FLAG = "_blobcache_cli"

Command = TypeVar("Command", bound=Callable[..., Any])


@dataclasses.dataclass
class _Settings:
    url: str | None = None
    root: str | None = None
    verbose: int = 0


def _settings(ctx: click.Context) -> _Settings:
    settings = ctx.meta.get(_SETTINGS)
    if settings is None:
        settings = ctx.meta[_SETTINGS] = _Settings()
    return cast(_Settings, settings)


def _open_cache(ctx: click.Context, **options: Any) -> BlobCache:
    """The cache the options name: command-level ``--url``/``--root``, then the group's."""
    settings = _settings(ctx)
    params = ctx.params
    url = params.get("url") or settings.url
    root = params.get("root") or settings.root
    hook = ctx.meta.get(OPEN_CACHE)
    if url is None and hook is not None:
        cache = cast(BlobCache, hook(root, **options))
    else:
        cache = BlobCache.from_url(url, root=root, **options)
    ctx.call_on_close(cache.close)
    return cache


def _configure_logging(verbose: int) -> None:
    """Send ``blobcache.*`` logs to stderr: warnings, ``-v`` info, ``-vv`` debug."""
    logger = logging.getLogger("blobcache")
    for handler in list(logger.handlers):
        if getattr(handler, _HANDLER_FLAG, False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _HANDLER_FLAG, True)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
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
        return EXIT_FOUND
    return EXIT_FAILED


def _handled(command: Command) -> Command:
    """Turn blobcache and filesystem errors into one line on stderr and an exit code."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        try:
            return command(*args, **kwargs)
        except (BlobCacheError, OSError, ValueError) as error:
            if _settings(ctx).verbose:
                traceback.print_exc(file=sys.stderr)
            click.echo(f"blobcache: error: {error}", err=True)
            ctx.exit(_exit_code(error))

    return cast(Command, run)


def _cache_options(command: Command) -> Command:
    """``--url`` and ``--root`` on a command; they override the group's."""
    command = click.option(
        "--root",
        type=click.Path(file_okay=False),
        help="Store paths relative to this directory (relative-path mode).",
    )(command)
    return click.option(
        "--url",
        metavar="URL",
        help="sqlite:///FILE, dynamodb:///TABLE?region=... or redis://HOST:PORT/DB; "
        "default $BLOBCACHE_URL, else the per-user SQLite file.",
    )(command)


def _segments_option(command: Command) -> Command:
    return click.option(
        "--segments",
        type=click.IntRange(min=1),
        default=None,
        help="DynamoDB parallel Scan segments (default: the scan_segments option, 1).",
    )(command)


def _json_option(command: Command) -> Command:
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(
        command
    )


def _jsonl_option(command: Command) -> Command:
    return click.option(
        "--jsonl", "as_jsonl", is_flag=True, help="Print one JSON object per line."
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


def _echo_lines(records: Iterable[Any]) -> None:
    for record in records:
        click.echo(json.dumps(_plain(record), ensure_ascii=False, sort_keys=True))


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


# -- the group ------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--url",
    metavar="URL",
    help="sqlite:///FILE, dynamodb:///TABLE?region=... or redis://HOST:PORT/DB; "
    "default $BLOBCACHE_URL, else the per-user SQLite file.",
)
@click.option(
    "--root",
    type=click.Path(file_okay=False),
    help="Store paths relative to this directory (relative-path mode).",
)
@click.option("-v", "--verbose", count=True, help="More logging on stderr; tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, url: str | None, root: str | None, verbose: int) -> None:
    """Maintain a blobcache: the dedupe map from blob digests to storage paths.

    \f
    .. versionadded:: 0.1
    """
    settings = _settings(ctx)
    settings.url, settings.root, settings.verbose = url, root, verbose
    _configure_logging(verbose)


def main() -> None:
    """Run the ``blobcache`` command (the console script and ``python -m blobcache``).

    .. versionadded:: 0.1
    """
    cli(prog_name="blobcache")


# -- single digests -------------------------------------------------------------------------


@cli.command("create-table")
@_cache_options
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
    url: str | None,
    root: str | None,
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
    cache = _open_cache(ctx, **{key: value for key, value in options.items() if value is not None})
    cache.create_table()
    click.echo(f"table ready: {cache!r}")


@cli.command()
@_cache_options
@click.argument("digest")
@click.argument("path")
@click.pass_context
@_handled
def put(ctx: click.Context, url: str | None, root: str | None, digest: str, path: str) -> None:
    """Record PATH for DIGEST; the first path recorded becomes the original."""
    _open_cache(ctx).put(digest, path)


@cli.command()
@_cache_options
@click.argument("digest")
@click.pass_context
@_handled
def get(ctx: click.Context, url: str | None, root: str | None, digest: str) -> None:
    """Print the original path of DIGEST (exit 1 if it has no entry)."""
    click.echo(_open_cache(ctx).get(digest))


@cli.command()
@_cache_options
@click.argument("digest")
@_json_option
@click.pass_context
@_handled
def paths(
    ctx: click.Context, url: str | None, root: str | None, digest: str, as_json: bool
) -> None:
    """Print every path of DIGEST, the original first (exit 1 if it has no entry)."""
    found = _open_cache(ctx).get_all(digest)
    if as_json:
        click.echo(json.dumps({"digest": digest, "original": found[0], "paths": found}))
    else:
        click.echo("\n".join(found))


@cli.command()
@_cache_options
@click.argument("digest")
@click.argument("path")
@click.pass_context
@_handled
def has(ctx: click.Context, url: str | None, root: str | None, digest: str, path: str) -> None:
    """Exit 0 if PATH is recorded for DIGEST, else 1."""
    found = _open_cache(ctx).has(digest, path)
    click.echo("yes" if found else "no")
    ctx.exit(EXIT_OK if found else EXIT_FOUND)


@cli.command()
@_cache_options
@click.argument("digest")
@click.argument("path")
@click.pass_context
@_handled
def delete(ctx: click.Context, url: str | None, root: str | None, digest: str, path: str) -> None:
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
@_cache_options
@_storage_argument
@click.option("--verify-digests", is_flag=True, help="Hash every blob; report mismatches.")
@_workers_option
@_json_option
@click.pass_context
@_handled
def index(
    ctx: click.Context,
    url: str | None,
    root: str | None,
    storage_root: str,
    verify_digests: bool,
    workers: int,
    as_json: bool,
) -> None:
    """Rebuild the cache from the blobs under LOCATION (zot's layout, OCI layouts).

    LOCATION is a directory or s3://BUCKET[/ROOTDIRECTORY][?region=R&endpoint_url=URL].
    """
    cache = _open_cache(ctx)
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
            f"{report.blobs} blobs, {report.digests} digests, {report.duplicates} duplicate "
            f"copies ({report.placeholders} zero-byte placeholders); dedupe would reclaim "
            f"{_size(report.reclaimable_bytes)}; {report.recorded} paths recorded"
        )
        for mismatch in report.mismatches:
            click.echo(
                f"mismatch: {mismatch.path} holds {mismatch.actual}, not {mismatch.expected}"
            )
    if report.mismatches:
        ctx.exit(EXIT_FOUND)


@cli.command()
@_cache_options
@_storage_option
@_workers_option
@_segments_option
@_json_option
@_jsonl_option
@click.pass_context
@_handled
def verify(
    ctx: click.Context,
    url: str | None,
    root: str | None,
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
            click.echo(f"{finding.kind}: {_text(finding.digest)}{where}: {_text(finding.detail)}")
        click.echo(
            f"{report.items} items, {report.paths} paths, {len(report.findings)} findings"
            + (f", {report.unchecked} paths not checked on disk" if report.unchecked else "")
        )
    if not report.ok:
        ctx.exit(EXIT_FOUND)


@cli.command()
@_cache_options
@_storage_option
@click.option("--yes", is_flag=True, help="Apply; without it, only show what would go.")
@_workers_option
@_segments_option
@_json_option
@_jsonl_option
@click.pass_context
@_handled
def prune(
    ctx: click.Context,
    url: str | None,
    root: str | None,
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
        click.echo(f"{len(report.stale)} stale paths {verb}" + ("" if yes else " (dry run)"))
    if report.stale and not yes:
        ctx.exit(EXIT_FOUND)


@cli.command()
@_cache_options
@_storage_argument
@click.option("--yes", is_flag=True, help="Link for real; without it, only show what would be.")
@click.option("--verify-digests", is_flag=True, help="S3: hash original and copy before replacing.")
@_workers_option
@_json_option
@_jsonl_option
@click.pass_context
@_handled
def dedupe(
    ctx: click.Context,
    url: str | None,
    root: str | None,
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
        already = "already placeholders" if on_s3 else "already linked"
        for link in report.links:
            click.echo(f"{verb}: {_text(link.path)} -> {_text(link.original)}")
        for skipped in report.skipped:
            detail = f": {skipped.detail}" if skipped.detail else ""
            click.echo(
                f"skipped ({skipped.reason}): {_text(skipped.path)}{_text(detail)}", err=True
            )
        click.echo(
            f"{len(report.links)} copies {verb}, {_size(report.reclaimed_bytes)} "
            f"{'reclaimed' if yes else 'to reclaim'}, {report.already_linked} {already}, "
            f"{len(report.skipped)} skipped" + ("" if yes else " (dry run)")
        )


@cli.command()
@_cache_options
@_storage_argument
@click.option("--yes", is_flag=True, help="Copy for real; without it, only show what would be.")
@click.option("--verify-digests", is_flag=True, help="Hash each source before copying from it.")
@_workers_option
@_json_option
@_jsonl_option
@click.pass_context
@_handled
def restore(
    ctx: click.Context,
    url: str | None,
    root: str | None,
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
        for skipped in report.skipped:
            detail = f": {skipped.detail}" if skipped.detail else ""
            click.echo(
                f"skipped ({skipped.reason}): {_text(skipped.path)}{_text(detail)}", err=True
            )
        click.echo(
            f"{len(report.restored)} placeholders {verb}, {_size(report.restored_bytes)} "
            f"{'copied' if yes else 'to copy'}, {len(report.skipped)} skipped"
            + ("" if yes else " (dry run)")
        )


@cli.command()
@_cache_options
@click.option("--top", type=click.IntRange(min=0), default=5, show_default=True)
@_segments_option
@_json_option
@click.pass_context
@_handled
def stats(
    ctx: click.Context,
    url: str | None,
    root: str | None,
    top: int,
    segments: int | None,
    as_json: bool,
) -> None:
    """Count digests and paths, copies per digest, and the largest items."""
    report = maintenance.stats(_open_cache(ctx), top=top, segments=segments)
    if as_json:
        _echo_json(report)
        return
    click.echo(f"{report.digests} digests, {report.paths} paths")
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
            paths = f"{item.paths} path" + ("s" if item.paths != 1 else "")
            headroom = item.headroom_bytes
            click.echo(
                f"  {item.digest} {paths}, {_size(item.bytes)}"
                + ("" if headroom is None else f", headroom {_size(headroom)}")
            )


@cli.command()
@_cache_options
@click.option(
    "-o", "--output", type=click.File("w", encoding="utf-8"), default="-", show_default=True
)
@click.pass_context
@_handled
def export(ctx: click.Context, url: str | None, root: str | None, output: IO[str]) -> None:
    """Write every entry as JSON Lines (to stdout by default)."""
    report = maintenance.export_jsonl(_open_cache(ctx), output)
    click.echo(f"exported {report.entries} entries", err=True)


@cli.command("import")
@_cache_options
@click.argument("source", type=click.File("rb"), default="-")
@_json_option
@click.pass_context
@_handled
def import_(
    ctx: click.Context, url: str | None, root: str | None, source: IO[bytes], as_json: bool
) -> None:
    """Record the entries of a JSON Lines file (stdin by default); exit 1 on bad lines."""
    cache = _open_cache(ctx)
    cache.create_table()
    report = maintenance.import_jsonl(cache, source)
    if as_json:
        _echo_json(report)
    else:
        for bad in report.bad_lines:
            click.echo(f"line {bad.line}: {bad.error}", err=True)
        click.echo(
            f"{report.imported} entries imported from {report.lines} lines, "
            f"{report.bad_line_count} bad lines"
        )
    if report.bad_line_count:
        ctx.exit(EXIT_FOUND)


@cli.command()
@_cache_options
@_segments_option
@_json_option
@click.pass_context
@_handled
def migrate(
    ctx: click.Context, url: str | None, root: str | None, segments: int | None, as_json: bool
) -> None:
    """Convert legacy items (BlobPath set, no original) to the current layout, in place."""
    report = maintenance.migrate(_open_cache(ctx), segments=segments)
    if as_json:
        _echo_json(report)
    else:
        click.echo(f"{report.migrated} of {report.items} items migrated")
    if report.raced:
        click.echo(f"{report.raced} items changed meanwhile; run migrate again", err=True)
        ctx.exit(EXIT_FOUND)
