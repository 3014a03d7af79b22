"""Rebuilding the cache from a storage tree in zot's layout or OCI image layouts."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from blobcache._cache import BlobCache
from blobcache._errors import InvalidDigest, InvalidPath
from blobcache._validate import parse_digest
from blobcache.maintenance._fs import hash_file, inside
from blobcache.maintenance._location import S3Location, StorageLocation, parse_location
from blobcache.maintenance._spool import (
    BlobSpool,
    Progress,
    SpooledBlob,
    record_spooled,
    verify_spooled,
)
from blobcache.maintenance._stored import log


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
    spool = BlobSpool()
    try:
        skipped = 0
        for sequence, (digest, blob) in enumerate(_walk(top)):
            if blob is None:
                skipped += 1
                continue
            device, inode = blob.inode
            # The walk's order decides which copy with content becomes the original.
            spool.add(
                SpooledBlob(digest, blob.path, blob.size, f"{device}:{inode}", f"{sequence:016d}")
            )
        log.info("index_started", root=top, digests=spool.digests())
        mismatches = (
            [
                DigestMismatch(blob.path, blob.digest, actual)
                for blob, actual in verify_spooled(spool, _hash, workers)
            ]
            if verify_digests
            else []
        )
        counts = record_spooled(cache, spool, progress, one_copy_per_tag=True)
    finally:
        spool.close()
    report = IndexReport(
        root=top,
        skipped=skipped,
        mismatches=tuple(sorted(mismatches, key=lambda mismatch: mismatch.path)),
        **counts,
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


def _hash(blob: SpooledBlob) -> str | None:
    return hash_file(blob.path, blob.digest.partition(":")[0])
