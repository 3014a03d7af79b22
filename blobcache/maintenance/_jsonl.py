"""Export and import of the cache as JSON Lines, streamed in constant memory."""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, Any

from blobcache._cache import BlobCache
from blobcache._errors import InvalidDigest, InvalidPath, ItemTooLarge
from blobcache._validate import parse_digest
from blobcache.maintenance._stored import backend_of, log, mapper_of

#: Bad lines an `ImportReport` keeps; later ones are only counted.
MAX_REPORTED_LINES = 100


@dataclass(frozen=True, slots=True)
class ExportReport:
    """How many entries `export_jsonl` wrote.

    .. versionadded:: 0.1
    """

    entries: int


@dataclass(frozen=True, slots=True)
class BadLine:
    """An import line that was rejected, and why.

    Nothing from a bad line is written: a line whose item fills up partway
    (`ItemTooLarge`, DynamoDB's 400 KB limit) has the paths it added taken
    back.

    .. versionadded:: 0.1
    """

    line: int
    error: str


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What `import_jsonl` read and recorded.

    .. versionadded:: 0.1
    """

    lines: int
    imported: int
    #: The first bad lines (up to 100), with their line numbers.
    bad_lines: tuple[BadLine, ...]
    #: Every bad line, counted.
    bad_line_count: int


def export_jsonl(cache: BlobCache, stream: IO[str]) -> ExportReport:
    """Write every entry to ``stream`` as one JSON object per line.

    Each line is ``{"digest": ..., "original": ..., "paths": [...]}`` with
    the paths sorted and the original among them, as callers see them
    (absolute in relative-path mode). Streams in constant memory.

    Args:
        cache: the cache to export.
        stream: a text stream to write to.

    Returns:
        An `ExportReport`.

    .. versionadded:: 0.1
    """
    count = 0
    for entry in cache.entries():
        record = {"digest": entry.digest, "original": entry.original, "paths": sorted(entry.paths)}
        stream.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        count += 1
    return ExportReport(count)


def import_jsonl(cache: BlobCache, lines: Iterable[str | bytes]) -> ImportReport:
    """Record every entry of a JSON Lines export; importing twice changes nothing.

    Each line is validated whole before anything from it is written: a bad
    line (not UTF-8, not JSON, nested too deeply, an invalid digest or
    path) is reported with its 1-based number and skipped, and the import
    goes on. The original is recorded first, so it becomes the original of a
    digest the cache does not know yet; a digest the cache knows keeps its
    original. A line whose item would pass DynamoDB's 400 KB limit is
    reported too, and the paths it had added are deleted again, so it leaves
    nothing behind either. Blank lines are ignored. Streams in constant memory.

    Good lines are written with `BlobCache.put_many`, about
    ``Options.batch_size`` paths at a time; lines of several paths have the
    paths their digest already had read with them in bulk first, so a line
    that fills its item up can take back exactly what it added.

    Args:
        cache: the cache to fill.
        lines: lines of text, or of UTF-8 bytes (such as a file opened in
            binary mode, so that one undecodable line is one bad line).

    Returns:
        An `ImportReport`; ``bad_line_count`` is non-zero when lines were rejected.

    .. versionadded:: 0.1
    """
    mapper = mapper_of(cache)
    total = imported = bad_count = 0
    bad: list[BadLine] = []

    def reject(number: int, error: Exception) -> None:
        nonlocal bad_count
        bad_count += 1
        bisect.insort(bad, BadLine(number, str(error)), key=lambda line: line.line)
        del bad[MAX_REPORTED_LINES:]
        log.warning("import_line_rejected", line=number, error=str(error))

    batch: list[_Line] = []
    pending = 0
    for number, line in enumerate(lines, start=1):
        total = number
        if not line.strip():
            continue
        try:
            digest, ordered = _parse_line(line)
            stored = [mapper.to_stored(path) for path in ordered]
        except (ValueError, InvalidDigest, InvalidPath) as exc:
            reject(number, exc)
            continue
        batch.append(_Line(number, digest, ordered, stored))
        pending += len(ordered)
        if pending >= cache.options.batch_size:
            imported += _put_lines(cache, batch, reject)
            batch, pending = [], 0
    imported += _put_lines(cache, batch, reject)
    return ImportReport(total, imported, tuple(bad), bad_count)


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    digest: str
    #: The caller's paths, original first; ``stored`` holds the same in stored form.
    paths: list[str]
    stored: list[str]


def _put_lines(
    cache: BlobCache, lines: list[_Line], reject: Callable[[int, Exception], None]
) -> int:
    """Put every path of ``lines`` in bulk; return how many lines went in whole.

    If an item fills up, the lines are put again one by one from the state
    read before (puts are idempotent), and each line that fills its item up
    has the paths it added deleted again.
    """
    if not lines:
        return 0
    # Only a line of several paths can fill up halfway, so only such lines pay a read.
    several = [line.digest for line in lines if len(line.paths) > 1]
    before = {
        digest: set(item.paths) for digest, item in backend_of(cache).get_many(several).items()
    }
    try:
        cache.put_many((line.digest, path) for line in lines for path in line.paths)
        return len(lines)
    except ItemTooLarge:
        pass
    imported = 0
    for line in lines:
        known = before.setdefault(line.digest, set())
        try:
            _put_all_or_none(cache, line, known)
        except ItemTooLarge as exc:
            reject(line.number, exc)
            continue
        known.update(line.stored)
        imported += 1
    return imported


def _put_all_or_none(cache: BlobCache, line: _Line, before: set[str]) -> None:
    """Put every path of one line; if the item fills up, delete again those it added."""
    added: list[str] = []
    try:
        for path, stored_path in zip(line.paths, line.stored, strict=True):
            cache.put(line.digest, path)
            if stored_path not in before:
                added.append(path)
    except ItemTooLarge:
        cache.delete_many((line.digest, path) for path in reversed(added))
        raise


def _parse_line(line: str | bytes) -> tuple[str, list[str]]:
    """The digest and its paths, original first; `ValueError` says what is wrong."""
    try:
        text = line.decode("utf-8") if isinstance(line, bytes) else line
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8: byte {exc.start + 1} of the line") from None
    try:
        record: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if not isinstance(record, dict):
        raise ValueError("expected a JSON object with digest, original and paths")
    unknown = sorted(set(record) - {"digest", "original", "paths"})
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}")
    digest = parse_digest(record.get("digest"))
    paths = record.get("paths")
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
        raise ValueError("paths must be a non-empty list of strings")
    original = record.get("original", paths[0])
    if not isinstance(original, str) or original not in paths:
        raise ValueError("original must be one of the paths")
    return digest, [original, *sorted(set(paths) - {original})]
