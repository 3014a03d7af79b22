"""Rebuilding the cache from a storage tree in zot's layout or OCI image layouts."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from blobcache._cache import BlobCache
from blobcache._errors import InvalidDigest, InvalidPath
from blobcache._validate import parse_digest
from blobcache.maintenance._fs import EMPTY_DIGESTS, hash_file, inside
from blobcache.maintenance._location import S3Location, StorageLocation, parse_location
from blobcache.maintenance._pool import bounded_map
from blobcache.maintenance._stored import log

#: Called as ``progress(done, total)`` while digests are recorded.
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class DigestMismatch:
    """A blob whose content does not hash to the digest in its name; it was not recorded.

    .. versionadded:: 0.1
    """

    path: str
    expected: str
    actual: str


@dataclass(frozen=True, slots=True)
class IndexReport:
    """What `blobcache.maintenance.index` found under a storage root and recorded.

    .. versionadded:: 0.1
    """

    root: str
    #: Blob files found (content and placeholders).
    blobs: int
    #: Distinct digests among them.
    digests: int
    #: Blob files beyond the first of each digest.
    duplicates: int
    #: Zero-byte placeholders (never made an original where content exists).
    placeholders: int
    #: Digests found only as placeholders, with no content anywhere under the root.
    without_content: int
    #: Bytes that replacing duplicate copies by hard links would free.
    reclaimable_bytes: int
    #: Paths recorded in the cache.
    recorded: int
    #: Files under ``blobs/`` skipped: not a regular file, or a name that is no digest.
    skipped: int
    #: Blobs whose content did not match their name (only with ``verify_digests``).
    mismatches: tuple[DigestMismatch, ...] = ()


@dataclass(frozen=True, slots=True)
class _Blob:
    path: str
    size: int
    inode: tuple[int, int]


def index(
    cache: BlobCache,
    root: str | os.PathLike[str] | StorageLocation,
    *,
    verify_digests: bool = False,
    workers: int = 8,
    progress: Progress | None = None,
) -> IndexReport:
    """Record every blob under ``root`` (a directory or S3); re-running it changes nothing.

    Blobs are files at ``<dir>/blobs/<algorithm>/<encoded>``: zot's layout
    (``ROOT/<repository>/blobs/...``) and OCI image layouts alike. For each
    digest the first file in sorted path order that holds content becomes the
    original; zero-byte placeholders are recorded after it, so they never
    become the original while content exists. Symbolic links are neither
    followed nor recorded. Paths are recorded by `BlobCache.put_many`, in
    batches of ``Options.batch_size`` pairs; with ``verify_digests``, files are
    hashed on ``workers`` threads.

    With an ``s3://BUCKET[/ROOTDIRECTORY]`` location, the objects under the
    root directory are listed page by page into a temporary on-disk table,
    so memory stays flat however large the bucket; each object
    ``<...>/blobs/<algorithm>/<encoded>`` is recorded at its cache path (see
    `S3Location`), a zero-byte object as a placeholder (the empty blob is
    content of size 0), and ``verify_digests`` streams each object with
    content through the hash.

    Args:
        cache: the cache to fill.
        root: the storage root to walk: a directory, an ``s3://`` URL or a
            parsed location.
        verify_digests: hash every file with content and leave out (and
            report) those whose content does not match their name.
        workers: threads recording digests concurrently.
        progress: called as ``progress(done, total)`` after each digest.

    Returns:
        An `IndexReport`.

    Raises:
        InvalidPath: ``root`` is not a directory, or lies outside the cache's root.
        ConfigurationError: a malformed location, a missing bucket, or S3
            refused the credentials.
        BlobCacheError: the store failed; digests recorded so far stay recorded.

    .. versionadded:: 0.1
    """
    location = parse_location(root)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers!r}")
    if isinstance(location, S3Location):
        from blobcache.maintenance._s3_index import index_s3

        return index_s3(cache, location, verify_digests, workers, progress)
    top = location.path
    if not os.path.isdir(top):
        raise InvalidPath(top, "not a directory; give the storage root of a registry")
    if cache.root is not None and top != cache.root and inside(cache.root, top) is None:
        raise InvalidPath(top, f"not inside the cache's root {cache.root!r}")
    found: dict[str, list[_Blob]] = {}
    skipped = 0
    for digest, blob in _walk(top):
        if blob is None:
            skipped += 1
        else:
            found.setdefault(digest, []).append(blob)
    log.info("index_started", root=top, digests=len(found))

    def prepare(group: tuple[str, list[_Blob]]) -> tuple[str, list[str], list[DigestMismatch]]:
        digest, blobs = group
        content = [blob for blob in blobs if blob.size or digest in EMPTY_DIGESTS]
        placeholders = [blob for blob in blobs if blob not in content]
        mismatches = []
        if verify_digests:
            algorithm = digest.partition(":")[0]
            for blob in list(content):
                actual = hash_file(blob.path, algorithm)
                if actual is not None and actual != digest:
                    content.remove(blob)
                    mismatches.append(DigestMismatch(blob.path, digest, actual))
                    log.warning("digest_mismatch", digest=digest, path=blob.path, actual=actual)
        return digest, [blob.path for blob in (*content, *placeholders)], mismatches

    mismatches: list[DigestMismatch] = []

    def groups() -> Iterator[tuple[str, list[str]]]:
        # Hashing is what pays for threads; without it there is nothing to spread.
        threads = workers if verify_digests else 1
        for digest, paths, wrong in bounded_map(prepare, found.items(), threads):
            mismatches.extend(wrong)
            yield digest, paths

    recorded = record_groups(cache, groups(), progress, len(found))

    blobs = [blob for group in found.values() for blob in group]
    report = IndexReport(
        root=top,
        blobs=len(blobs),
        digests=len(found),
        duplicates=len(blobs) - len(found),
        placeholders=sum(
            1 for digest, group in found.items() for blob in group if _placeholder(digest, blob)
        ),
        without_content=sum(
            1
            for digest, group in found.items()
            if all(_placeholder(digest, blob) for blob in group)
        ),
        reclaimable_bytes=sum(_reclaimable(group) for group in found.values()),
        recorded=recorded,
        skipped=skipped,
        mismatches=tuple(sorted(mismatches, key=lambda mismatch: mismatch.path)),
    )
    log.info(
        "index_finished",
        root=top,
        blobs=report.blobs,
        digests=report.digests,
        recorded=report.recorded,
        mismatches=len(report.mismatches),
    )
    return report


def record_groups(
    cache: BlobCache,
    groups: Iterable[tuple[str, list[str]]],
    progress: Progress | None,
    total: int,
) -> int:
    """Record each digest's paths, in order, by `BlobCache.put_many` batches; count them.

    A batch holds whole digests and at least ``Options.batch_size`` pairs (one
    transaction on SQLite, concurrent requests on DynamoDB); ``progress`` is
    called after each.
    """
    batch: list[tuple[str, str]] = []
    recorded = done = reported = 0
    for digest, paths in groups:
        batch.extend((digest, path) for path in paths)
        done += 1
        if len(batch) >= cache.options.batch_size:
            cache.put_many(batch)
            recorded, batch = recorded + len(batch), []
            if progress is not None:
                progress(done, total)
                reported = done
    if batch:
        cache.put_many(batch)
        recorded += len(batch)
    if progress is not None and done > reported:
        progress(done, total)
    return recorded


def _walk(top: str) -> Iterator[tuple[str, _Blob | None]]:
    """Yield ``(digest, blob)`` for each blob file in sorted order; ``None`` for skipped ones."""
    for directory, subdirectories, files in os.walk(top, followlinks=False):
        subdirectories.sort()
        if os.path.basename(os.path.dirname(directory)) != "blobs":
            continue
        algorithm = os.path.basename(directory)
        for name in sorted(files):
            path = os.path.join(directory, name)
            try:
                digest = parse_digest(f"{algorithm}:{name}")
                status = os.lstat(path)
            except (InvalidDigest, OSError):
                yield "", None
                continue
            if not stat.S_ISREG(status.st_mode):
                yield digest, None
                continue
            yield digest, _Blob(path, status.st_size, (status.st_dev, status.st_ino))


def _placeholder(digest: str, blob: _Blob) -> bool:
    return blob.size == 0 and digest not in EMPTY_DIGESTS


def _reclaimable(group: list[_Blob]) -> int:
    """Bytes freed if every copy shared the first copy's inode."""
    sizes = {blob.inode: blob.size for blob in group if blob.size}
    return sum(sizes.values()) - max(sizes.values(), default=0)
