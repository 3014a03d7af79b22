"""Stored items as found, and what they weigh: maintenance's window past `BlobCache.entries`."""

from __future__ import annotations

from collections.abc import Iterator

from blobcache._backends.base import Backend, StoredItem
from blobcache._cache import BlobCache
from blobcache._errors import ConfigurationError
from blobcache._logging import get_logger
from blobcache._model import DIGEST, LEGACY_PATHS, ORIGINAL, PATHS
from blobcache._model import item_bytes as attributes_bytes
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
    """The size DynamoDB counts for ``item`` in `BlobRecord`'s layout (legacy set included)."""
    return attributes_bytes(
        {
            DIGEST: digest,
            ORIGINAL: item.original,
            PATHS: item.paths,
            LEGACY_PATHS: item.legacy_paths,
        }
    )
