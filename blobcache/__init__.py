"""A dedupe cache mapping content digests to their storage paths, in zot's layout."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

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
from blobcache._options import Options, OptionsDict
from blobcache._url import default_url

if TYPE_CHECKING:
    from blobcache._async import AsyncBlobCache
    from blobcache._cache import BlobCache, BlobEntry
    from blobcache._model import BlobRecord

__all__ = [
    "AsyncBlobCache",
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
    "OptionsDict",
    "StoreUnavailable",
    "TableNotFound",
    "default_url",
]


# Loaded on first access: structlog (~150 ms) and PynamoDB with botocore are not needed
# to import blobcache.testing, a pytest plugin loaded in every run of every project that
# installs blobcache, nor by the SQLite side for PynamoDB.
_LAZY = {
    "AsyncBlobCache": "blobcache._async",
    "BlobCache": "blobcache._cache",
    "BlobEntry": "blobcache._cache",
    "BlobRecord": "blobcache._model",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'blobcache' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
