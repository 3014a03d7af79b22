"""Shared fixtures: real local servers, a fresh cache per test on every backend, raw reads."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from blobcache import BlobCache
from blobcache.testing import FAKE_CREDENTIALS
from tests.helpers import (
    ALL_BACKENDS,
    ATOMIC_BACKENDS,
    DYNAMODB_BACKENDS,
    REGION,
    CacheFactory,
)


@pytest.fixture(scope="session", autouse=True)
def _fake_aws_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fake credentials, nothing from the developer's own AWS set-up, and a throwaway
    per-user data directory, so the default SQLite location never touches the real one."""
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith("AWS_") or key == "BLOBCACHE_URL":
            del os.environ[key]
    os.environ.update(FAKE_CREDENTIALS)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    # botocore reads these once per process; the developer's own must not leak in.
    missing = str(tmp_path_factory.mktemp("no-aws") / "missing")
    os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = missing
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data"))
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def _blobcache_logger_restored() -> Iterator[None]:
    """Put the ``blobcache`` logger back after each test.

    The command line adds a handler on the stream it ran with and lowers the level
    with -v; left behind, every later call would log into a dead CliRunner buffer that
    only grows (and inflates the bulk tests' memory peaks).
    """
    logger = logging.getLogger("blobcache")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


# The servers are the ones blobcache.testing's plugin starts for applications: one
# dynalite and one moto server per session, shared with the plugin's own tests.
@pytest.fixture(scope="session")
def dynalite_endpoint(_fake_aws_environment: None, blobcache_dynalite_endpoint: str) -> str:
    return blobcache_dynalite_endpoint


@pytest.fixture(scope="session")
def moto_endpoint(_fake_aws_environment: None, blobcache_moto_endpoint: str) -> str:
    return blobcache_moto_endpoint


def cache_url(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> str:
    """A URL for a fresh, empty store of ``kind``."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / f'cache-{uuid.uuid4().hex}.db'}"
    if kind == "redis":
        server = request.getfixturevalue("blobcache_redis_server")
        return f"{server.url}/0?prefix=t-{uuid.uuid4().hex}"
    endpoint = request.getfixturevalue(f"{kind}_endpoint")
    return f"dynamodb:///t-{uuid.uuid4().hex}?region={REGION}&endpoint_url={endpoint}"


@pytest.fixture
def make_cache(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CacheFactory]:
    """Factory: ``make_cache(kind, root=None, create=True, **options)`` gives a fresh cache."""
    opened: list[BlobCache] = []

    def make(kind: str, *, create: bool = True, url: str | None = None, **kwargs: Any) -> BlobCache:
        cache = BlobCache.from_url(url or cache_url(request, kind, tmp_path), **kwargs)
        if create:
            cache.create_table()
        opened.append(cache)
        return cache

    yield make
    for cache in opened:
        cache.close()


@pytest.fixture(params=["sqlite", "dynalite", "redis"])
def example_cache_url(request: pytest.FixtureRequest) -> str:
    """A fresh, created cache for the example applications, on SQLite, dynalite and Redis,
    from the blobcache.testing plugin as an application's tests would get it."""
    url: str = request.getfixturevalue(f"blobcache_{request.param}_url")
    return url


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Where an example application keeps uploaded blobs."""
    return tmp_path / "store"


@pytest.fixture(params=ALL_BACKENDS)
def cache(request: pytest.FixtureRequest, make_cache: CacheFactory) -> BlobCache:
    """A fresh, empty cache on each backend."""
    return make_cache(request.param)


@pytest.fixture(params=ATOMIC_BACKENDS)
def atomic_cache(request: pytest.FixtureRequest, make_cache: CacheFactory) -> BlobCache:
    """A fresh cache on each backend that makes conditional writes atomic."""
    return make_cache(request.param)


@pytest.fixture(params=DYNAMODB_BACKENDS)
def dynamo_cache(request: pytest.FixtureRequest, make_cache: CacheFactory) -> BlobCache:
    """A fresh cache on each local DynamoDB server."""
    return make_cache(request.param)


@pytest.fixture(autouse=True)
def _pytester_without_django(request: pytest.FixtureRequest) -> None:
    """A pytester run is a project of its own: the Django settings the Django tests put in
    the environment (for django.setup) must not make pytest-django load them there."""
    if "pytester" in request.fixturenames:
        request.getfixturevalue("monkeypatch").delenv("DJANGO_SETTINGS_MODULE", raising=False)
