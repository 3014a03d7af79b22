"""The storage backends: one protocol (`base.Backend`) and its implementations side by side.

A backend plugs in here by URL scheme; `blobcache.BlobCache` never asks which
one it has. Each module is imported only when a URL names it, so the SQLite
side never loads botocore or redis-py.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from blobcache._backends.base import Backend
    from blobcache._backends.dynamodb import DynamoDBBackend
    from blobcache._backends.redis import RedisBackend
    from blobcache._backends.sqlite import SQLiteBackend
    from blobcache._url import Location

    # mypy checks here that every backend keeps the whole protocol.
    _BACKENDS: tuple[type[Backend], ...] = (DynamoDBBackend, RedisBackend, SQLiteBackend)

#: URL scheme -> module whose ``open_location(location)`` builds the backend.
_MODULES = {
    "dynamodb": "blobcache._backends.dynamodb",
    "sqlite": "blobcache._backends.sqlite",
    "redis": "blobcache._backends.redis",
}


def open_backend(location: Location) -> Backend:
    """The backend for a parsed URL; nothing is connected until its first call."""
    module = importlib.import_module(_MODULES[location.scheme])
    backend: Backend = module.open_location(location)
    return backend
