"""Export and import of the cache as JSON Lines, streamed in constant memory."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

from blobcache._cache import BlobCache
from blobcache._errors import InvalidDigest, InvalidPath
from blobcache._validate import parse_digest
from blobcache.maintenance._store import log, mapper_of

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
    """An import line that was rejected, and why; nothing from it was written.

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


def import_jsonl(cache: BlobCache, lines: Iterable[str]) -> ImportReport:
    """Record every entry of a JSON Lines export; importing twice changes nothing.

    Each line is validated whole before anything from it is written: a bad
    line is reported with its 1-based number and skipped, and the import
    goes on. The original is recorded first, so it becomes the original of a
    digest the cache does not know yet; a digest the cache knows keeps its
    original. Blank lines are ignored. Streams in constant memory.

    Args:
        cache: the cache to fill.
        lines: lines of text, such as an open file.

    Returns:
        An `ImportReport`; ``bad_line_count`` is non-zero when lines were rejected.

    .. versionadded:: 0.1
    """
    mapper = mapper_of(cache)
    total = imported = bad_count = 0
    bad: list[BadLine] = []
    for number, line in enumerate(lines, start=1):
        total = number
        if not line.strip():
            continue
        try:
            digest, ordered = _parse_line(line)
            for path in ordered:
                mapper.to_stored(path)
        except (ValueError, InvalidDigest, InvalidPath) as exc:
            bad_count += 1
            if len(bad) < MAX_REPORTED_LINES:
                bad.append(BadLine(number, str(exc)))
            log.warning("import_line_rejected", line=number, error=str(exc))
            continue
        for path in ordered:
            cache.put(digest, path)
        imported += 1
    return ImportReport(total, imported, tuple(bad), bad_count)


def _parse_line(line: str) -> tuple[str, list[str]]:
    """The digest and its paths, original first; `ValueError` says what is wrong."""
    try:
        record: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} at column {exc.colno}") from None
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
