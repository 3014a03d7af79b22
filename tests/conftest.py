"""Shared fixtures: real local servers, a fresh cache per test on every backend, raw reads."""

from __future__ import annotations

import functools
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from blobcache import BlobCache
from blobcache.testing import FAKE_CREDENTIALS

ALL_BACKENDS = ["sqlite", "dynalite", "moto"]
#: Backends whose conditional writes are atomic under concurrent requests.
ATOMIC_BACKENDS = ["sqlite", "dynalite"]
DYNAMODB_BACKENDS = ["dynalite", "moto"]
REGION = "us-east-1"

RawItems = dict[str, tuple[str | None, frozenset[str]]]
CacheFactory = Callable[..., BlobCache]


def digest_of(n: int) -> str:
    """A real-looking sha256 digest, distinct for each ``n``."""
    return "sha256:" + f"{n:064x}"


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


@pytest.fixture(params=["sqlite", "dynalite"])
def example_cache_url(request: pytest.FixtureRequest) -> str:
    """A fresh, created cache for the example applications, on SQLite and on dynalite,
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


def url_of(cache: BlobCache) -> str:
    """The URL that opens the same store as ``cache`` (for subprocesses and the CLI)."""
    backend: Any = cache._backend
    if cache.name == "sqlite":
        return f"sqlite:///{backend.target}"
    return f"dynamodb:///{backend.target}?region={REGION}&endpoint_url={backend.endpoint_url}"


def raw_client(cache: BlobCache) -> Any:
    """An independent botocore client on the cache's server: blobcache's code is not in the path."""
    backend: Any = cache._backend
    endpoint = backend.endpoint_url
    return _raw_session().create_client("dynamodb", region_name=REGION, endpoint_url=endpoint)


@functools.cache
def _raw_session() -> botocore.session.Session:
    return botocore.session.get_session()


def record_requests(cache: BlobCache) -> list[str]:
    """A live list of the DynamoDB operations the cache sends over HTTP (retries included)."""
    sent: list[str] = []
    if cache.name == "dynamodb":
        backend: Any = cache._backend

        def count(**kwargs: Any) -> None:
            sent.append(kwargs["event_name"].rsplit(".", 1)[-1])

        backend.client.meta.events.register("before-send.dynamodb", count)
    return sent


def read_raw(cache: BlobCache) -> RawItems:
    """Every stored item, read without blobcache: digest -> (original, paths)."""
    backend: Any = cache._backend
    items: RawItems = {}
    if cache.name == "sqlite":
        with sqlite3.connect(backend.target) as connection:
            for digest, original in connection.execute(
                "SELECT digest, original FROM blobcache_item"
            ):
                items[digest] = (original, frozenset())
            for digest, path in connection.execute("SELECT digest, path FROM blobcache_path"):
                original, paths = items.get(digest, (None, frozenset()))
                items[digest] = (original, paths | {path})
        return items
    client = raw_client(cache)
    for page in client.get_paginator("scan").paginate(
        TableName=backend.target, ConsistentRead=True
    ):
        for raw in page["Items"]:
            items[raw["Digest"]["S"]] = (
                raw.get("OriginalBlobPath", {}).get("S"),
                frozenset(raw.get("DuplicateBlobPath", {}).get("SS", ())),
            )
    return items


def assert_invariants(items: RawItems) -> None:
    """No item without paths, and every original among its item's paths."""
    for digest, (original, paths) in items.items():
        assert paths, f"{digest} is an item with no paths"
        assert original is not None, f"{digest} has no original"
        assert original in paths, f"{digest}: original {original!r} not in {sorted(paths)}"
