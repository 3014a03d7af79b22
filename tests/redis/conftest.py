"""Fixtures for the Redis backend's own tests: a cache, plain clients, zot beside it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from blobcache import BlobCache
from tests.helpers import CacheFactory, backend_of, raw_redis
from tests.redis.zot import Zot


@pytest.fixture
def rcache(make_cache: CacheFactory) -> BlobCache:
    """A fresh cache on the session's redis-server, under a prefix of its own."""
    return make_cache("redis")


@pytest.fixture
def client(rcache: BlobCache) -> Iterator[redis.Redis]:
    """A plain redis-py client on the same server and database."""
    plain = raw_redis(rcache)
    yield plain
    plain.close()


@pytest.fixture
def zot(rcache: BlobCache, client: redis.Redis) -> Zot:
    """zot's driver on the same keys as ``rcache``."""
    return Zot(client, backend_of(rcache).prefix)
