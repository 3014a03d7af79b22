"""A dedupe cache mapping content digests to their storage paths, in zot's layout."""

from __future__ import annotations

from typing import TYPE_CHECKING

from blobcache._cache import BlobCache, BlobEntry
from blobcache._errors import (
    BlobCacheError,
    CacheMiss,
    ConfigurationError,
    InvalidDigest,
    InvalidPath,
    ItemTooLarge,
    StoreUnavailable,
    TableNotFound,
)
from blobcache._options import Options
from blobcache._url import default_url

if TYPE_CHECKING:
    from blobcache._model import BlobRecord

__all__ = [
    "BlobCache",
    "BlobCacheError",
    "BlobEntry",
    "BlobRecord",
    "CacheMiss",
    "ConfigurationError",
    "InvalidDigest",
    "InvalidPath",
    "ItemTooLarge",
    "Options",
    "StoreUnavailable",
    "TableNotFound",
    "default_url",
]


def __getattr__(name: str) -> object:
    # PynamoDB (and botocore behind it) load only when the DynamoDB side is used.
    if name == "BlobRecord":
        from blobcache._model import BlobRecord

        return BlobRecord
    raise AttributeError(f"module 'blobcache' has no attribute {name!r}")
