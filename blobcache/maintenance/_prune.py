"""Forgetting cached paths that no longer have a file behind them."""

from __future__ import annotations

import os
from dataclasses import dataclass

from blobcache._cache import BlobCache
from blobcache.maintenance._stored import log
from blobcache.maintenance._verify import look_up, scope_of, verify


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
    root: str | os.PathLike[str] | None = None,
    apply: bool = False,
    segments: int | None = None,
) -> PruneReport:
    """Forget the paths `verify` reports as missing on disk. A dry run unless ``apply``.

    It never deletes, moves or opens a file: it only removes cache entries,
    through `BlobCache.delete`, so a removed original is replaced as usual.
    Paths that are relative (without a root) or outside ``root`` are never
    looked at, so never removed; nor is any path `verify` counts as
    unchecked. Each path is looked up again just before its delete, so a
    file that reappeared meanwhile keeps its entry, and the report lists
    only the paths that were still recorded when deleted (another writer
    may have removed one meanwhile).

    Args:
        cache: the cache to prune.
        root: the storage root; defaults to the cache's root.
        apply: remove the stale paths; without it nothing changes.
        segments: parallel Scan segments (DynamoDB).

    Returns:
        A `PruneReport`.

    .. versionadded:: 0.1
    """
    report = verify(cache, root=root, segments=segments)
    stale = tuple(
        StalePath(finding.digest, finding.path)
        for finding in report.findings
        if finding.kind == "missing_path" and finding.path is not None
    )
    if not apply:
        return PruneReport(applied=False, stale=stale)
    scope = scope_of(cache, root)
    removed, reappeared = [], 0
    for entry in stale:
        checked, status = look_up(entry.path, scope)
        if not checked or status is not None:
            reappeared += 1
            continue
        if not cache.has(entry.digest, entry.path):
            continue
        cache.delete(entry.digest, entry.path)
        removed.append(entry)
        log.info("stale_path_pruned", digest=entry.digest, path=entry.path)
    return PruneReport(applied=True, stale=tuple(removed), reappeared=reappeared)
