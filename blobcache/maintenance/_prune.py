"""Forgetting cached paths that no longer have a file behind them."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from blobcache._cache import BlobCache
from blobcache.maintenance._location import S3Location, StorageLocation, parse_location
from blobcache.maintenance._pool import bounded_map
from blobcache.maintenance._stored import log
from blobcache.maintenance._verify import look_up, probe_of, scope_of, verify

Item = TypeVar("Item")


@dataclass(frozen=True, slots=True)
class StalePath:
    """A cached path with no file behind it.

    .. versionadded:: 0.1
    """

    digest: str
    path: str


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What `prune` removed, or would remove in a dry run.

    .. versionadded:: 0.1
    """

    #: Whether the cache was changed (``False`` for a dry run, which changes nothing).
    applied: bool
    #: The stale paths removed (or that would be removed).
    stale: tuple[StalePath, ...]
    #: Stale paths found again on disk (or no longer checkable) between the
    #: check and the delete, so kept.
    reappeared: int = 0


def prune(
    cache: BlobCache,
    *,
    root: str | os.PathLike[str] | StorageLocation | None = None,
    apply: bool = False,
    segments: int | None = None,
    workers: int = 8,
) -> PruneReport:
    """Forget the paths `verify` reports as missing. A dry run unless ``apply``.

    It never deletes, moves or opens a file (nor writes or deletes an S3
    object: it only sends HeadObject there): it only removes cache entries,
    through `BlobCache.delete_many` in batches of ``Options.batch_size``, so
    a removed original is replaced as usual.
    Paths that are relative (without a root) or outside ``root`` are never
    looked at, so never removed; nor is any path `verify` counts as
    unchecked. Each path is looked up again just before its delete, so a
    file that reappeared meanwhile keeps its entry, and the report lists
    only the paths that were still recorded when deleted (another writer
    may have removed one meanwhile).

    On S3, forgetting a missing original promotes the smallest remaining
    path, which may be a placeholder; `verify` then reports it and `restore`
    copies the content back into it.

    Args:
        cache: the cache to prune.
        root: the storage location (a directory or ``s3://...``); defaults to
            the cache's root.
        apply: remove the stale paths; without it nothing changes.
        segments: parallel Scan segments (DynamoDB).
        workers: concurrent HeadObject requests on S3.

    Returns:
        A `PruneReport`.

    .. versionadded:: 0.1
    """
    location = None if root is None else parse_location(root)
    report = verify(cache, root=location, segments=segments, workers=workers)
    stale = tuple(
        StalePath(finding.digest, finding.path)
        for finding in report.findings
        if finding.kind == "missing_path" and finding.path is not None
    )
    if not apply:
        return PruneReport(applied=False, stale=stale)
    removed, reappeared = [], 0
    with probe_of(cache, location, workers) as probe:
        if isinstance(location, S3Location):
            look = probe.look
        else:
            scope = scope_of(cache, location)

            def look(path: str) -> tuple[bool, int | None]:
                checked, status = look_up(path, scope)
                return checked, None if status is None else status.st_size

        def still_gone(entry: StalePath) -> tuple[StalePath, bool]:
            checked, size = look(entry.path)
            return entry, checked and size is None

        def recorded(entry: StalePath) -> tuple[StalePath, bool]:
            return entry, cache.has(entry.digest, entry.path)

        checked = bounded_map(still_gone, stale, probe.workers)
        for chunk in _chunks(checked, cache.options.batch_size):
            gone = [entry for entry, still in chunk if still]
            reappeared += len(chunk) - len(gone)
            present = [
                entry
                for entry, known in bounded_map(recorded, gone, cache.options.workers)
                if known
            ]
            cache.delete_many([(entry.digest, entry.path) for entry in present])
            for entry in present:
                removed.append(entry)
                log.info("stale_path_pruned", digest=entry.digest, path=entry.path)
    return PruneReport(applied=True, stale=tuple(removed), reappeared=reappeared)


def _chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
