"""Stored items as found, and what they weigh: maintenance's window past `BlobCache.entries`."""

from __future__ import annotations

from collections.abc import Iterator

from blobcache._backends.base import Backend, StoredItem
from blobcache._cache import BlobCache
from blobcache._errors import ConfigurationError
from blobcache._logging import get_logger
from blobcache._validate import PathMapper

#: DynamoDB's hard limit on the size of one item, in bytes.
MAX_ITEM_BYTES = 400 * 1024

log = get_logger("blobcache.maintenance")


def backend_of(cache: BlobCache) -> Backend:
    """The backend behind ``cache``; maintenance reads what `BlobCache.entries` hides."""
    return cache._backend


def mapper_of(cache: BlobCache) -> PathMapper:
    """Maps between the cache's stored paths and the paths its callers see."""
    return cache._paths


def stored_items(cache: BlobCache, segments: int | None = None) -> Iterator[StoredItem]:
    """Every stored item as found, over ``segments`` parallel scans (default: the options')."""
    count = cache.options.scan_segments if segments is None else segments
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ConfigurationError(f"segments must be a positive integer, not {count!r}")
    return backend_of(cache).scan_stored(count)


def item_bytes(digest: str, item: StoredItem) -> int:
    """The size DynamoDB charges for ``item``: attribute names plus UTF-8 values."""
    size = len("Digest") + len(digest)
    if item.original is not None:
        size += len("OriginalBlobPath") + len(item.original.encode())
    if item.paths:
        size += len("DuplicateBlobPath") + sum(len(path.encode()) for path in item.paths)
    if item.legacy_paths:
        size += len("BlobPath") + sum(len(path.encode()) for path in item.legacy_paths)
    return size
