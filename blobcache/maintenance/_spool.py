"""The blobs an index found, grouped by digest on disk, and recorded by bulk calls."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from blobcache._cache import BlobCache
from blobcache.maintenance._fs import EMPTY_DIGESTS
from blobcache.maintenance._pool import bounded_map
from blobcache.maintenance._stored import log

#: Called as ``progress(done, total)`` while digests are recorded.
Progress = Callable[[int, int], None]

_SPOOL_CACHE_KIB = 2048


@dataclass(frozen=True, slots=True)
class SpooledBlob:
    """One blob found by a walk or a listing.

    ``tag`` names the bytes behind the path (the object's ETag on S3, the file's
    device and inode on disk); ``key`` orders a digest's paths (the object key on
    S3, the walk's sequence on disk).
    """

    digest: str
    path: str
    size: int
    tag: str
    key: str

    @property
    def content(self) -> bool:
        """Whether it holds the content: any size but zero, or the empty blob itself."""
        return self.size > 0 or self.digest in EMPTY_DIGESTS


class Row(NamedTuple):
    """One blob of a group, as `BlobSpool.groups` yields it."""

    path: str
    size: int
    tag: str
    content: bool
    bad: bool


class BlobSpool:
    """The blobs found, in a private temporary SQLite file: sorted and grouped on disk.

    SQLite keeps at most ``_SPOOL_CACHE_KIB`` of it in memory and sorts
    through temporary files, so a registry of any size costs flat memory.
    """

    def __init__(self) -> None:
        # An empty file name: a private on-disk database, deleted on close.
        self.db = sqlite3.connect("", isolation_level=None)
        self.db.execute(f"PRAGMA cache_size = -{_SPOOL_CACHE_KIB}")
        self.db.execute("PRAGMA temp_store = FILE")
        self.db.execute(
            "CREATE TABLE blob (digest TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,"
            " tag TEXT NOT NULL, key TEXT NOT NULL, content INTEGER NOT NULL,"
            " bad INTEGER NOT NULL DEFAULT 0)"
        )
        self.db.execute("BEGIN")

    def add(self, blob: SpooledBlob) -> None:
        self.db.execute(
            "INSERT INTO blob (digest, path, size, tag, key, content) VALUES (?, ?, ?, ?, ?, ?)",
            (blob.digest, blob.path, blob.size, blob.tag, blob.key, blob.content),
        )

    def with_content(self) -> Iterator[tuple[int, SpooledBlob]]:
        """Every blob holding content, with its row id (for `mark_bad`), in key order."""
        for rowid, *row in self.db.execute(
            "SELECT rowid, digest, path, size, tag, key FROM blob WHERE content ORDER BY key"
        ):
            yield rowid, SpooledBlob(*row)

    def mark_bad(self, rowids: list[int]) -> None:
        """Leave these blobs out of the recording: their content does not match their name."""
        self.db.executemany("UPDATE blob SET bad = 1 WHERE rowid = ?", [(r,) for r in rowids])

    def digests(self) -> int:
        (count,) = self.db.execute("SELECT COUNT(DISTINCT digest) FROM blob").fetchone()
        return int(count)

    def groups(self) -> Iterator[tuple[str, list[Row]]]:
        """``(digest, rows)`` in digest order: content first, each part in key order."""
        digest: str | None = None
        group: list[Row] = []
        rows = self.db.execute(
            "SELECT digest, path, size, tag, content, bad FROM blob "
            "ORDER BY digest, content DESC, key"
        )
        for row_digest, path, size, tag, content, bad in rows:
            if row_digest != digest:
                if digest is not None:
                    yield digest, group
                digest, group = row_digest, []
            group.append(Row(path, size, tag, bool(content), bool(bad)))
        if digest is not None:
            yield digest, group

    def close(self) -> None:
        self.db.close()


def verify_spooled(
    spool: BlobSpool, hash_of: Callable[[SpooledBlob], str | None], workers: int
) -> list[tuple[SpooledBlob, str]]:
    """Hash every blob with content on ``workers`` threads, streamed; mark the mismatches
    bad and return them with the digest their content has."""

    def check(row: tuple[int, SpooledBlob]) -> tuple[int, SpooledBlob, str | None]:
        rowid, blob = row
        return rowid, blob, hash_of(blob)

    bad: list[int] = []
    mismatches: list[tuple[SpooledBlob, str]] = []
    for rowid, blob, actual in bounded_map(check, spool.with_content(), workers):
        if actual is not None and actual != blob.digest:
            bad.append(rowid)
            mismatches.append((blob, actual))
            log.warning("digest_mismatch", digest=blob.digest, path=blob.path, actual=actual)
    spool.mark_bad(bad)
    return mismatches


def record_spooled(
    cache: BlobCache,
    spool: BlobSpool,
    progress: Progress | None,
    *,
    one_copy_per_tag: bool,
) -> dict[str, int]:
    """Record the spooled groups, content before placeholders; count what the report says.

    With ``one_copy_per_tag`` (hard links on disk), copies sharing a tag share
    their bytes, so only distinct tags count towards the bytes dedupe would free.
    """
    counts = dict.fromkeys(
        ("blobs", "digests", "duplicates", "placeholders", "without_content", "reclaimable_bytes"),
        0,
    )

    def groups() -> Iterator[tuple[str, list[str]]]:
        for digest, group in spool.groups():
            with_content = [row for row in group if row.content and row.size]
            if one_copy_per_tag:
                sizes = list({row.tag: row.size for row in with_content}.values())
            else:
                sizes = [row.size for row in with_content]
            counts["blobs"] += len(group)
            counts["digests"] += 1
            counts["duplicates"] += len(group) - 1
            counts["placeholders"] += sum(1 for row in group if not row.content)
            counts["without_content"] += not any(row.content for row in group)
            counts["reclaimable_bytes"] += sum(sizes) - max(sizes, default=0)
            yield digest, [row.path for row in group if not row.bad]

    recorded = record_groups(cache, groups(), progress, spool.digests())
    return {**counts, "recorded": recorded}


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
