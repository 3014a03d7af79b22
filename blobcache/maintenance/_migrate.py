"""Converting items in the seed's legacy layout to the current one, in place."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from blobcache._backends.base import StoredItem
from blobcache._cache import BlobCache
from blobcache.maintenance._stored import backend_of, log, stored_items


@dataclass(frozen=True, slots=True)
class MigrateReport:
    """What `migrate` converted.

    .. versionadded:: 0.1
    """

    items: int
    migrated: int
    #: Legacy items another writer changed between the scan and the write; re-run to finish.
    raced: int


def migrate(cache: BlobCache, *, segments: int | None = None) -> MigrateReport:
    """Convert every legacy item (a ``BlobPath`` set, no original) to the current layout.

    Each item is converted by one conditional write: its legacy paths join
    ``DuplicateBlobPath``, the smallest becomes the original unless the item
    has one, and ``BlobPath`` goes. An interruption leaves every item either
    legacy or converted, and a re-run converts what is left, so it is safe
    to stop and run again. The SQLite backend has no legacy layout.

    The conversions go out as the bulk calls' writes do: ``Options.batch_size``
    legacy items at a time, ``Options.workers`` conditional writes in flight.
    (They stay one conditional write per item rather than `BlobCache.put_many`,
    which could not remove ``BlobPath`` in the same write.)

    Args:
        cache: the cache to migrate.
        segments: parallel Scan segments (DynamoDB).

    Returns:
        A `MigrateReport`; ``raced`` counts items to pick up with another run.

    .. versionadded:: 0.1
    """
    backend = backend_of(cache)
    items = migrated = raced = 0

    def legacy() -> Iterator[StoredItem]:
        nonlocal items
        for stored in stored_items(cache, segments):
            items += 1
            if stored.legacy_paths:
                yield stored

    def convert(stored: StoredItem) -> bool:
        return backend.migrate_legacy(stored.digest, stored.legacy_paths)

    found = legacy()
    with ThreadPoolExecutor(cache.options.workers, thread_name_prefix="blobcache-migrate") as pool:
        while batch := list(itertools.islice(found, cache.options.batch_size)):
            for stored, won in zip(batch, pool.map(convert, batch), strict=True):
                if won:
                    migrated += 1
                    log.info("item_migrated", digest=stored.digest, paths=len(stored.legacy_paths))
                else:
                    raced += 1
    return MigrateReport(items, migrated, raced)
