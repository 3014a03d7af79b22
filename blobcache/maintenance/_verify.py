"""Checking the cache against the invariants and against the files on disk."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from blobcache._backends.base import StoredItem
from blobcache._cache import BlobCache
from blobcache._errors import InvalidPath
from blobcache._validate import PathMapper
from blobcache.maintenance._fs import EMPTY_DIGESTS, inside, lstat_at, parent_dir
from blobcache.maintenance._stored import log, mapper_of, stored_items

FindingKind = Literal[
    "empty_item",
    "legacy_item",
    "missing_original",
    "missing_path",
    "original_not_in_paths",
    "placeholder_original",
]
_ADVICE: dict[str, str] = {
    "empty_item": "an item with no path; remove it from the table",
    "legacy_item": "in the seed's legacy layout; run 'blobcache migrate'",
    "missing_original": "has paths but no original; the next delete or put repairs it",
    "missing_path": "no file at this path; 'blobcache prune --yes' forgets it",
    "original_not_in_paths": "the original is not among the paths (zot leaves this)",
    "placeholder_original": "the original is a zero-byte placeholder while content exists",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One inconsistency `verify` found.

    .. versionadded:: 0.1
    """

    kind: FindingKind
    digest: str
    #: The path concerned (as callers see it), where the finding is about one path.
    path: str | None
    #: What is wrong and what to do about it.
    detail: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What `verify` checked and found.

    .. versionadded:: 0.1
    """

    items: int
    paths: int
    #: Paths not checked on disk, being relative without a root, outside the root,
    #: behind a symlinked or unreadable directory, or stored in a form the
    #: cache cannot give back (absolute in relative-path mode).
    unchecked: int
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        """Whether nothing was found."""
        return not self.findings


def verify(
    cache: BlobCache,
    *,
    root: str | os.PathLike[str] | None = None,
    segments: int | None = None,
) -> VerifyReport:
    """Check every item against the invariants and every path against the disk.

    Reads only. Reports items that break the invariants (which another
    writer, such as zot, can leave), legacy items, paths with no file behind
    them, and originals that are zero-byte placeholders while another path
    holds the content. Only absolute paths inside ``root`` are looked up on
    disk, with ``lstat`` (a symlink counts as present and is never followed);
    every directory on the way is opened without following symlinks, as
    `dedupe` does, and a path that cannot be reached so (a symlinked
    directory, a loop, permission denied) is counted as unchecked, never as
    missing. So is a stored path the cache cannot give back as it is stored,
    such as an absolute one in relative-path mode.

    Args:
        cache: the cache to check.
        root: the storage root; defaults to the cache's root. Without either,
            every absolute path is looked up.
        segments: parallel Scan segments (DynamoDB); defaults to ``scan_segments``.

    Returns:
        A `VerifyReport`; ``report.ok`` is true when nothing was found.

    .. versionadded:: 0.1
    """
    items = paths = unchecked = 0
    findings: list[Finding] = []
    scope = scope_of(cache, root)
    mapper = mapper_of(cache)
    for item in stored_items(cache, segments):
        items += 1
        paths += len(item.paths | item.legacy_paths)
        for finding in _invariant_findings(item, mapper):
            findings.append(finding)
        checked = _disk_findings(item, mapper, scope)
        for finding in checked.findings:
            findings.append(finding)
        unchecked += checked.unchecked
    for finding in findings:
        log.warning(
            "inconsistency_found", kind=finding.kind, digest=finding.digest, path=finding.path
        )
    return VerifyReport(items, paths, unchecked, tuple(findings))


def scope_of(cache: BlobCache, root: str | os.PathLike[str] | None) -> str | None:
    """The tree whose files may be looked at: ``root`` if given, else the cache's root."""
    return cache.root if root is None else os.path.abspath(os.fspath(root))


def _finding(kind: FindingKind, digest: str, path: str | None) -> Finding:
    return Finding(kind, digest, path, _ADVICE[kind])


def _invariant_findings(item: StoredItem, mapper: PathMapper) -> Iterator[Finding]:
    if item.legacy_paths:
        yield _finding("legacy_item", item.digest, None)
    if not item.paths and not item.legacy_paths and item.original is None:
        yield _finding("empty_item", item.digest, None)
    elif item.paths and item.original is None:
        yield _finding("missing_original", item.digest, None)
    elif item.original is not None and item.original not in item.paths and not item.legacy_paths:
        yield _finding("original_not_in_paths", item.digest, mapper.to_public(item.original))


@dataclass(frozen=True, slots=True)
class _DiskCheck:
    findings: tuple[Finding, ...]
    unchecked: int


def look_up(path: str, scope: str | None) -> tuple[bool, os.stat_result | None]:
    """``(checked, lstat)`` of ``path``; ``lstat`` is ``None`` when no file is there.

    Unchecked: a path outside ``scope`` (or relative without one), one with a
    ``..`` component, and one whose directories cannot be walked without
    following a symlink, or at all (a loop, permission denied...): what is
    not seen is never called missing. Walked as `dedupe` walks, through
    `parent_dir`, from ``scope`` (or ``/``).
    """
    top = os.sep if scope is None else scope
    target = inside(top, path)
    if target is None or os.pardir in path.split(os.sep):
        return False, None
    try:
        with parent_dir(top, target) as (directory, name):
            return True, lstat_at(directory, name)
    except FileNotFoundError:
        return True, None
    except OSError:
        return False, None


def _round_trips(mapper: PathMapper, stored: str, path: str) -> bool:
    """Whether ``path`` names ``stored`` again through the public API.

    Not so for an absolute stored path in relative-path mode (a table written
    without a root, or by zot) or one the API would refuse; `prune` could
    not remove such a path, and looking it up would check another file.
    """
    try:
        return mapper.to_stored(path) == stored
    except InvalidPath:
        return False


def _disk_findings(item: StoredItem, mapper: PathMapper, scope: str | None) -> _DiskCheck:
    unchecked = 0
    findings: list[Finding] = []
    sizes: dict[str, int] = {}
    every = item.paths | ({item.original} if item.original else set())
    for stored in sorted(every):
        path = mapper.to_public(stored)
        checked, status = False, None
        if _round_trips(mapper, stored, path):
            checked, status = look_up(path, scope)
        if not checked:
            unchecked += 1
        elif status is None:
            findings.append(_finding("missing_path", item.digest, path))
        else:
            sizes[stored] = status.st_size
    original = item.original
    if (
        original is not None
        and sizes.get(original) == 0
        and item.digest not in EMPTY_DIGESTS
        and any(size > 0 for size in sizes.values())
    ):
        findings.append(_finding("placeholder_original", item.digest, mapper.to_public(original)))
    return _DiskCheck(tuple(findings), unchecked)
