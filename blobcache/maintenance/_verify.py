"""Checking the cache against the invariants and against the files on disk."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, Protocol

from blobcache._backends.base import StoredItem
from blobcache._cache import BlobCache
from blobcache._errors import InvalidPath
from blobcache._validate import PathMapper
from blobcache.maintenance._fs import EMPTY_DIGESTS, inside, lstat_at, parent_dir
from blobcache.maintenance._location import (
    LocalDirectory,
    S3Location,
    StorageLocation,
    parse_location,
)
from blobcache.maintenance._pool import bounded_map
from blobcache.maintenance._s3 import Bucket
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

    @property
    def placeholder_originals(self) -> tuple[Finding, ...]:
        """The originals that are zero-byte placeholders, on S3 pulls of empty blobs.

        .. versionadded:: 0.1
        """
        return tuple(finding for finding in self.findings if finding.kind == "placeholder_original")


def verify(
    cache: BlobCache,
    *,
    root: str | os.PathLike[str] | StorageLocation | None = None,
    segments: int | None = None,
    workers: int = 8,
) -> VerifyReport:
    """Check every item against the invariants and every path against the storage.

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

    With an ``s3://`` location, each path is its object key under the
    location (see `S3Location`), checked with HeadObject, items on
    ``workers`` threads with a bounded window, so memory stays flat however
    large the table. There a zero-byte original is always reported as
    ``placeholder_original``: zot serves the original, so every pull of the
    digest gets an empty blob. A path that maps to no key under the
    location (relative, with ``..``, or not given back as stored) is
    unchecked and never requested.

    Args:
        cache: the cache to check.
        root: the storage location (a directory, an ``s3://`` URL or a parsed
            `S3Location`); defaults to the cache's root. Without either,
            every absolute path is looked up on the local disk.
        segments: parallel Scan segments (DynamoDB); defaults to ``scan_segments``.
        workers: items checked concurrently on S3 (local checks run in order).

    Raises:
        ConfigurationError: a malformed location, a missing bucket, or S3 refused the
            credentials.
        StoreUnavailable: S3 or the cache's store could not be reached.

    Returns:
        A `VerifyReport`; ``report.ok`` is true when nothing was found.

    .. versionadded:: 0.1
    """
    items = paths = unchecked = 0
    findings: list[Finding] = []
    mapper = mapper_of(cache)
    with probe_of(cache, root, workers) as probe:

        def check(item: StoredItem) -> tuple[StoredItem, _DiskCheck]:
            return item, _disk_findings(item, mapper, probe)

        for item, checked in bounded_map(check, stored_items(cache, segments), probe.workers):
            items += 1
            paths += len(item.paths | item.legacy_paths)
            findings.extend(_invariant_findings(item, mapper))
            findings.extend(checked.findings)
            unchecked += checked.unchecked
    for finding in findings:
        log.warning(
            "inconsistency_found", kind=finding.kind, digest=finding.digest, path=finding.path
        )
    return VerifyReport(items, paths, unchecked, tuple(findings))


def scope_of(cache: BlobCache, root: str | os.PathLike[str] | StorageLocation | None) -> str | None:
    """The tree whose files may be looked at: ``root`` if given, else the cache's root."""
    if root is None:
        return cache.root
    location = parse_location(root)
    if not isinstance(location, LocalDirectory):
        raise TypeError(f"{location} is not a local directory")
    return location.path


class Probe(Protocol):
    """How verify and prune look at the storage: ``(checked, size or None if absent)``."""

    #: Threads worth spending on lookups.
    workers: int
    #: Whether a zero-byte original is broken even with no content elsewhere (S3).
    placeholders_point: bool

    def look(self, path: str) -> tuple[bool, int | None]: ...


class _LocalProbe:
    workers = 1
    placeholders_point = False

    def __init__(self, scope: str | None) -> None:
        self.scope = scope

    def look(self, path: str) -> tuple[bool, int | None]:
        checked, status = look_up(path, self.scope)
        return checked, None if status is None else status.st_size


class _S3Probe:
    placeholders_point = True

    def __init__(self, bucket: Bucket, workers: int) -> None:
        self.bucket = bucket
        self.workers = workers

    def look(self, path: str) -> tuple[bool, int | None]:
        key = self.bucket.location.key_of(path)
        if key is None:
            return False, None
        found = self.bucket.head(key)
        return True, None if found is None else found.size


@contextmanager
def probe_of(
    cache: BlobCache, root: str | os.PathLike[str] | StorageLocation | None, workers: int
) -> Iterator[Probe]:
    """The `Probe` for ``root`` (default: the cache's root, else the local disk)."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers!r}")
    location = None if root is None else parse_location(root)
    if not isinstance(location, S3Location):
        yield _LocalProbe(scope_of(cache, location))
        return
    bucket = Bucket(location, workers=workers)
    try:
        bucket.check()
        yield _S3Probe(bucket, workers)
    finally:
        bucket.close()


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


def _disk_findings(item: StoredItem, mapper: PathMapper, probe: Probe) -> _DiskCheck:
    unchecked = 0
    findings: list[Finding] = []
    sizes: dict[str, int] = {}
    every = item.paths | ({item.original} if item.original else set())
    for stored in sorted(every):
        path = mapper.to_public(stored)
        checked, size = False, None
        if _round_trips(mapper, stored, path):
            checked, size = probe.look(path)
        if not checked:
            unchecked += 1
        elif size is None:
            findings.append(_finding("missing_path", item.digest, path))
        else:
            sizes[stored] = size
    original = item.original
    if original is None or sizes.get(original) != 0 or item.digest in EMPTY_DIGESTS:
        return _DiskCheck(tuple(findings), unchecked)
    content = sorted(stored for stored, size in sizes.items() if size > 0)
    if content:
        findings.append(
            Finding(
                "placeholder_original",
                item.digest,
                mapper.to_public(original),
                _ADVICE["placeholder_original"]
                + (
                    f"; {mapper.to_public(content[0])} holds it: 'blobcache restore' copies it back"
                    if probe.placeholders_point
                    else ""
                ),
            )
        )
    elif probe.placeholders_point:
        findings.append(
            Finding(
                "placeholder_original",
                item.digest,
                mapper.to_public(original),
                "the original is a zero-byte placeholder and no recorded path holds the "
                "content: every pull of this digest fails or gets an empty blob; push the "
                "blob again",
            )
        )
    return _DiskCheck(tuple(findings), unchecked)
