"""Rebuilding the cache from the objects of an S3 location, in flat memory."""

from __future__ import annotations

from blobcache._cache import BlobCache
from blobcache._errors import InvalidDigest
from blobcache._validate import parse_digest
from blobcache.maintenance._fs import inside
from blobcache.maintenance._index import DigestMismatch, IndexReport
from blobcache.maintenance._location import S3Location
from blobcache.maintenance._s3 import Bucket, S3Object
from blobcache.maintenance._spool import (
    BlobSpool,
    Progress,
    SpooledBlob,
    record_spooled,
    verify_spooled,
)
from blobcache.maintenance._stored import log

#: Objects between two ``objects_listed`` log lines (``-v`` shows them).
_LOG_EVERY = 10_000


def _blob(location: S3Location, found: S3Object) -> tuple[bool, SpooledBlob | None]:
    """``(is_blob, found)``: whether the key names a blob, and it if it can be recorded."""
    relative = found.key[len(location.prefix) :]
    parts = relative.split("/")
    if len(parts) < 3 or parts[-3] != "blobs":
        return False, None
    path = location.path_of(found.key)
    try:
        digest = parse_digest(f"{parts[-2]}:{parts[-1]}")
    except InvalidDigest:
        return True, None
    if path is None:
        return True, None
    return True, SpooledBlob(digest, path, found.size, found.etag, found.key)


def index_s3(
    cache: BlobCache,
    location: S3Location,
    verify_digests: bool,
    workers: int,
    progress: Progress | None,
) -> IndexReport:
    """`index` over ``location``'s objects (see there)."""
    bucket = Bucket(location, workers=workers)
    spool = BlobSpool()
    try:
        bucket.check()
        skipped = listed = 0
        for found in bucket.objects(workers):
            listed += 1
            if listed % _LOG_EVERY == 0:
                log.info("objects_listed", root=str(location), objects=listed)
            is_blob, blob = _blob(location, found)
            if not is_blob:
                continue
            if blob is None or (cache.root is not None and inside(cache.root, blob.path) is None):
                skipped += 1
                continue
            spool.add(blob)
        log.info("index_started", root=str(location), digests=spool.digests())
        mismatches = _verify(bucket, spool, workers) if verify_digests else []
        counts = record_spooled(cache, spool, progress, one_copy_per_tag=False)
    finally:
        spool.close()
        bucket.close()
    report = IndexReport(
        root=str(location),
        skipped=skipped,
        mismatches=tuple(sorted(mismatches, key=lambda mismatch: mismatch.path)),
        **counts,
    )
    log.info(
        "index_finished",
        root=report.root,
        blobs=report.blobs,
        digests=report.digests,
        recorded=report.recorded,
        mismatches=len(report.mismatches),
    )
    return report


def _verify(bucket: Bucket, spool: BlobSpool, workers: int) -> list[DigestMismatch]:
    """Hash every object with content, streamed; mark and return the mismatches."""

    def hash_of(blob: SpooledBlob) -> str | None:
        algorithm = blob.digest.partition(":")[0]
        return bucket.digest(S3Object(blob.key, blob.size, blob.tag), algorithm)

    return [
        DigestMismatch(blob.path, blob.digest, actual)
        for blob, actual in verify_spooled(spool, hash_of, workers)
    ]
