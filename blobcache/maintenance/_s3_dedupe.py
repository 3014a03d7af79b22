"""zot's dedupe on S3 and its way back: copies to zero-byte placeholders, and content back in."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from blobcache._cache import BlobCache, BlobEntry
from blobcache._errors import ConfigurationError
from blobcache.maintenance._dedupe import DedupeReport, Link, Skipped
from blobcache.maintenance._fs import EMPTY_DIGESTS
from blobcache.maintenance._location import S3Location, StorageLocation, parse_location
from blobcache.maintenance._pool import bounded_map
from blobcache.maintenance._s3 import MAX_COPY_BYTES, Bucket, S3Object
from blobcache.maintenance._stored import log


@dataclass(frozen=True, slots=True)
class Restored:
    """A placeholder filled (or to be filled) with its digest's content by `restore`.

    .. versionadded:: 0.1
    """

    digest: str
    path: str
    #: The path whose object the content was copied from.
    source: str
    size: int


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """What `restore` copied, or would copy in a dry run.

    .. versionadded:: 0.1
    """

    #: False for a dry run, which writes no object.
    applied: bool
    restored: tuple[Restored, ...]
    #: Bytes written into placeholders (or that would be).
    restored_bytes: int
    skipped: tuple[Skipped, ...]


class _Entry:
    """One cache entry's objects, looked up on demand."""

    def __init__(self, bucket: Bucket, entry: BlobEntry, verify_digests: bool) -> None:
        self.bucket = bucket
        self.entry = entry
        self.verify_digests = verify_digests
        self.algorithm = entry.digest.partition(":")[0]

    def key(self, path: str) -> str | None:
        return self.bucket.location.key_of(path)

    def content(self, path: str) -> S3Object | None:
        """The object at ``path`` if it holds this digest's content (by size, or by hash)."""
        key = self.key(path)
        found = None if key is None else self.bucket.head(key)
        if found is None or found.size == 0:
            return None
        if self.verify_digests and self.bucket.digest(found, self.algorithm) != self.entry.digest:
            return None
        return found

    def hashable(self) -> bool:
        return not self.verify_digests or self.algorithm in hashlib.algorithms_available


def dedupe_s3(
    cache: BlobCache, location: S3Location, apply: bool, verify_digests: bool, workers: int
) -> DedupeReport:
    """`dedupe` on S3 (see there)."""
    links: list[Link] = []
    skipped: list[Skipped] = []
    already = 0
    bucket = Bucket(location, workers=workers)
    try:
        bucket.check()

        def one(entry: BlobEntry) -> list[Link | Skipped | None]:
            return list(_dedupe_entry(_Entry(bucket, entry, verify_digests), apply))

        for outcomes in bounded_map(one, cache.entries(), workers):
            for outcome in outcomes:
                if outcome is None:
                    already += 1
                elif isinstance(outcome, Skipped):
                    skipped.append(outcome)
                else:
                    links.append(outcome)
    finally:
        bucket.close()
    reclaimed = sum(link.size for link in links)
    if apply:
        log.info(
            "dedupe_finished", root=str(location), replaced=len(links), reclaimed_bytes=reclaimed
        )
    return DedupeReport(apply, tuple(links), reclaimed, already, tuple(skipped))


def _dedupe_entry(entry: _Entry, apply: bool) -> Iterator[Link | Skipped | None]:
    digest, original_path = entry.entry.digest, entry.entry.original
    copies = sorted(entry.entry.paths - {original_path})
    # The empty blob is content of size 0: nothing to reclaim, and no placeholder to make.
    if not copies or digest in EMPTY_DIGESTS:
        return
    if not entry.hashable():
        for path in copies:
            yield Skipped(digest, path, "error", f"cannot hash {entry.algorithm} digests here")
        return
    original = entry.content(original_path)
    for path in copies:
        if original is None:
            yield Skipped(digest, path, "original_unusable")
            continue
        key = entry.key(path)
        if key is None:
            yield Skipped(digest, path, "outside_root")
            continue
        copy = entry.bucket.head(key)
        if copy is None:
            yield Skipped(digest, path, "missing")
            continue
        if copy.size == 0:
            yield None
            continue
        if copy.size != original.size:
            yield Skipped(digest, path, "content_differs")
            continue
        if entry.verify_digests:
            actual = entry.bucket.digest(copy, entry.algorithm)
            if actual is None:
                yield Skipped(digest, path, "copy_changed")
                continue
            if actual != digest:
                yield Skipped(digest, path, "content_differs")
                continue
        if apply:
            # Re-checked right before the write: the content's one copy must still be there.
            if entry.bucket.head(original.key, original.etag) is None:
                original = None
                yield Skipped(digest, path, "original_changed")
                continue
            if entry.bucket.head(copy.key, copy.etag) is None:
                yield Skipped(digest, path, "copy_changed")
                continue
            outcome = entry.bucket.put_placeholder(copy)
            if outcome != "done":
                yield Skipped(digest, path, "missing" if outcome == "missing" else "copy_changed")
                continue
            log.info(
                "copy_replaced_by_placeholder", digest=digest, path=path, original=original_path
            )
        yield Link(digest, path, original_path, copy.size)


def restore(
    cache: BlobCache,
    root: str | os.PathLike[str] | StorageLocation,
    *,
    apply: bool = False,
    verify_digests: bool = False,
    workers: int = 8,
) -> RestoreReport:
    """Copy each digest's content into its zero-byte placeholders on S3: zot's dedupe=false.

    The way back from `dedupe` (or from a remote cache): for every cached
    digest, each path whose object is a zero-byte placeholder gets the
    content by a server-side CopyObject, from the original if it holds
    content, else from the first other path (in sorted order) that does;
    so a placeholder original is repaired too. Content is judged by size,
    or with ``verify_digests`` by reading and hashing the source. Each copy
    is made only if the placeholder is still the object checked (re-checked
    with HeadObject ``If-Match`` right before) and the source is unchanged
    (``x-amz-copy-source-if-match``). A dry run unless ``apply``. Nothing
    outside the location is read or written; the empty blob is content and
    left alone; objects past 5 GiB (one CopyObject's limit) are skipped.

    Args:
        cache: the cache that says which paths share a digest.
        root: an ``s3://BUCKET[/ROOTDIRECTORY]`` location (string or `S3Location`).
        apply: copy for real; without it no object changes.
        verify_digests: hash each source before copying from it.
        workers: digests handled concurrently.

    Returns:
        A `RestoreReport`.

    Raises:
        ConfigurationError: a local directory (hard links need no restoring), a
            malformed location, a missing bucket, or S3 refused the credentials.

    .. versionadded:: 0.1
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers!r}")
    location = parse_location(root)
    if not isinstance(location, S3Location):
        raise ConfigurationError(
            f"restore works on s3:// locations; {location} is a local directory, where "
            "dedupe makes hard links, which need no restoring"
        )
    restored: list[Restored] = []
    skipped: list[Skipped] = []
    bucket = Bucket(location, workers=workers)
    try:
        bucket.check()

        def one(entry: BlobEntry) -> list[Restored | Skipped]:
            return list(_restore_entry(_Entry(bucket, entry, verify_digests), apply))

        for outcomes in bounded_map(one, cache.entries(), workers):
            for outcome in outcomes:
                if isinstance(outcome, Skipped):
                    skipped.append(outcome)
                else:
                    restored.append(outcome)
    finally:
        bucket.close()
    total = sum(item.size for item in restored)
    if apply:
        log.info("restore_finished", root=str(location), restored=len(restored), bytes=total)
    return RestoreReport(apply, tuple(restored), total, tuple(skipped))


def _restore_entry(entry: _Entry, apply: bool) -> Iterator[Restored | Skipped]:
    digest = entry.entry.digest
    if digest in EMPTY_DIGESTS:
        return
    ordered = [entry.entry.original, *sorted(entry.entry.paths - {entry.entry.original})]
    placeholders: list[tuple[str, S3Object]] = []
    for path in ordered:
        key = entry.key(path)
        if key is None:
            yield Skipped(digest, path, "outside_root")
            continue
        found = entry.bucket.head(key)
        if found is None:
            yield Skipped(digest, path, "missing")
        elif found.size == 0:
            placeholders.append((path, found))
    if not placeholders:
        return
    if not entry.hashable():
        for path, _ in placeholders:
            yield Skipped(digest, path, "error", f"cannot hash {entry.algorithm} digests here")
        return
    source_path, source = None, None
    for path in ordered:
        if all(path != placeholder for placeholder, _ in placeholders):
            source = entry.content(path)
            if source is not None:
                source_path = path
                break
    for path, target in placeholders:
        if source is None or source_path is None:
            yield Skipped(digest, path, "original_unusable")
            continue
        if source.size > MAX_COPY_BYTES:
            yield Skipped(digest, path, "error", "larger than 5 GiB, past one CopyObject")
            continue
        if apply:
            # Re-checked right before the copy: still this placeholder, and the source unchanged.
            now = entry.bucket.head(target.key, target.etag)
            if now is None or now.size != 0:
                yield Skipped(digest, path, "copy_changed")
                continue
            if entry.bucket.head(source.key, source.etag) is None:
                source = None
                yield Skipped(digest, path, "original_changed")
                continue
            outcome = entry.bucket.copy(source, target)
            if outcome != "done":
                yield Skipped(digest, path, "original_changed")
                continue
            log.info("placeholder_restored", digest=digest, path=path, source=source_path)
        yield Restored(digest, path, source_path, source.size)
