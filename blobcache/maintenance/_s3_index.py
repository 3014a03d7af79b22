"""Rebuilding the cache from the objects of an S3 location, in flat memory."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

from blobcache._cache import BlobCache
from blobcache._errors import InvalidDigest
from blobcache._validate import parse_digest
from blobcache.maintenance._fs import EMPTY_DIGESTS, inside
from blobcache.maintenance._index import DigestMismatch, IndexReport, Progress, record_groups
from blobcache.maintenance._location import S3Location
from blobcache.maintenance._pool import bounded_map
from blobcache.maintenance._s3 import Bucket, S3Object
from blobcache.maintenance._stored import log

_SPOOL_CACHE_KIB = 8192
#: Objects between two ``objects_listed`` log lines (``-v`` shows them).
_LOG_EVERY = 10_000


@dataclass(frozen=True, slots=True)
class _Found:
    digest: str
    path: str
    size: int
    etag: str
    key: str

    @property
    def content(self) -> bool:
        return self.size > 0 or self.digest in EMPTY_DIGESTS


class _Spool:
    """The blobs found, in a private temporary SQLite file: sorted and grouped on disk.

    SQLite keeps at most ``_SPOOL_CACHE_KIB`` of it in memory and sorts
    through temporary files, so a listing of any length costs flat memory.
    """

    def __init__(self) -> None:
        # An empty file name: a private on-disk database, deleted on close.
        self.db = sqlite3.connect("", isolation_level=None)
        self.db.execute(f"PRAGMA cache_size = -{_SPOOL_CACHE_KIB}")
        self.db.execute("PRAGMA temp_store = FILE")
        self.db.execute(
            "CREATE TABLE blob (digest TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,"
            " etag TEXT NOT NULL, key TEXT NOT NULL, content INTEGER NOT NULL,"
            " bad INTEGER NOT NULL DEFAULT 0)"
        )
        self.db.execute("BEGIN")

    def add(self, found: _Found) -> None:
        self.db.execute(
            "INSERT INTO blob (digest, path, size, etag, key, content) VALUES (?, ?, ?, ?, ?, ?)",
            (found.digest, found.path, found.size, found.etag, found.key, found.content),
        )

    def with_content(self) -> Iterator[tuple[int, _Found]]:
        for rowid, *row in self.db.execute(
            "SELECT rowid, digest, path, size, etag, key FROM blob WHERE content ORDER BY key"
        ):
            yield rowid, _Found(*row)

    def mark_bad(self, rowids: list[int]) -> None:
        self.db.executemany("UPDATE blob SET bad = 1 WHERE rowid = ?", [(r,) for r in rowids])

    def digests(self) -> int:
        (count,) = self.db.execute("SELECT COUNT(DISTINCT digest) FROM blob").fetchone()
        return int(count)

    def groups(self) -> Iterator[tuple[str, list[tuple[str, int, bool, bool]]]]:
        """``(digest, [(path, size, content, bad)])``: content first, each part in key order."""
        digest: str | None = None
        group: list[tuple[str, int, bool, bool]] = []
        rows = self.db.execute(
            "SELECT digest, path, size, content, bad FROM blob ORDER BY digest, content DESC, key"
        )
        for row_digest, path, size, content, bad in rows:
            if row_digest != digest:
                if digest is not None:
                    yield digest, group
                digest, group = row_digest, []
            group.append((path, size, bool(content), bool(bad)))
        if digest is not None:
            yield digest, group

    def close(self) -> None:
        self.db.close()


def _blob(location: S3Location, found: S3Object) -> tuple[bool, _Found | None]:
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
    return True, _Found(digest, path, found.size, found.etag, found.key)


def index_s3(
    cache: BlobCache,
    location: S3Location,
    verify_digests: bool,
    workers: int,
    progress: Progress | None,
) -> IndexReport:
    """`index` over ``location``'s objects (see there)."""
    bucket = Bucket(location, workers=workers)
    spool = _Spool()
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
        total = spool.digests()
        log.info("index_started", root=str(location), digests=total)
        mismatches = _verify(bucket, spool, workers) if verify_digests else []
        counts = _record(cache, spool, progress, total)
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


def _verify(bucket: Bucket, spool: _Spool, workers: int) -> list[DigestMismatch]:
    """Hash every object with content, streamed; mark and return the mismatches."""

    def check(row: tuple[int, _Found]) -> tuple[int, _Found, str | None]:
        rowid, found = row
        algorithm = found.digest.partition(":")[0]
        return rowid, found, bucket.digest(S3Object(found.key, found.size, found.etag), algorithm)

    bad: list[int] = []
    mismatches: list[DigestMismatch] = []
    for rowid, found, actual in bounded_map(check, spool.with_content(), workers):
        if actual is not None and actual != found.digest:
            bad.append(rowid)
            mismatches.append(DigestMismatch(found.path, found.digest, actual))
            log.warning("digest_mismatch", digest=found.digest, path=found.path, actual=actual)
    spool.mark_bad(bad)
    return mismatches


def _record(
    cache: BlobCache, spool: _Spool, progress: Progress | None, total: int
) -> dict[str, int]:
    """Record the spooled groups, content before placeholders; count what the report says."""
    counts = dict.fromkeys(
        ("blobs", "digests", "duplicates", "placeholders", "without_content", "reclaimable_bytes"),
        0,
    )

    def groups() -> Iterator[tuple[str, list[str]]]:
        for digest, group in spool.groups():
            sizes = [size for _, size, content, _ in group if content and size]
            counts["blobs"] += len(group)
            counts["digests"] += 1
            counts["duplicates"] += len(group) - 1
            counts["placeholders"] += sum(1 for _, _, content, _ in group if not content)
            counts["without_content"] += not any(content for _, _, content, _ in group)
            counts["reclaimable_bytes"] += sum(sizes) - max(sizes, default=0)
            yield digest, [path for path, _, _, bad in group if not bad]

    recorded = record_groups(cache, groups(), progress, total)
    return {**counts, "recorded": recorded}
