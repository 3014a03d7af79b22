"""Helpers shared by the tests: digests, raw reads of a store, and the one door to a backend.

Imported explicitly (``from tests.helpers import ...``); fixtures live in conftest.py.
"""

from __future__ import annotations

import functools
import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.session
import redis

from blobcache import BlobCache

ALL_BACKENDS = ["sqlite", "dynalite", "moto", "redis"]
#: Backends whose conditional writes are atomic under concurrent requests.
ATOMIC_BACKENDS = ["sqlite", "dynalite", "redis"]
DYNAMODB_BACKENDS = ["dynalite", "moto"]
REGION = "us-east-1"

RawItems = dict[str, tuple[str | None, frozenset[str]]]
CacheFactory = Callable[..., BlobCache]


def digest_of(n: int) -> str:
    """A real-looking sha256 digest, distinct for each ``n``."""
    return "sha256:" + f"{n:064x}"


def backend_of(cache: BlobCache) -> Any:
    """The backend behind ``cache``: the one place tests reach past the public API."""
    return cache._backend


def blob(
    root: Path, repository: str, content: bytes, *, placeholder: bool = False
) -> tuple[str, str]:
    """Write ``content`` (or a zero-byte placeholder) at its digest in ``repository``."""
    hexdigest = hashlib.sha256(content).hexdigest()
    path = root / repository / "blobs" / "sha256" / hexdigest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"" if placeholder else content)
    return "sha256:" + hexdigest, str(path)


def put_raw(cache: BlobCache, digest: str, **attributes: Any) -> None:
    """Write an item as another writer (zot, the legacy seed) would, bypassing blobcache."""
    item: dict[str, Any] = {"Digest": {"S": digest}}
    for name, value in attributes.items():
        item[name] = {"S": value} if isinstance(value, str) else {"SS": sorted(value)}
    raw_client(cache).put_item(TableName=backend_of(cache).target, Item=item)


def url_of(cache: BlobCache) -> str:
    """The URL that opens the same store as ``cache`` (for subprocesses and the CLI)."""
    backend = backend_of(cache)
    if cache.name == "sqlite":
        return f"sqlite:///{backend.target}"
    if cache.name == "redis":
        return str(backend.target)
    return f"dynamodb:///{backend.target}?region={REGION}&endpoint_url={backend.endpoint_url}"


def raw_client(cache: BlobCache) -> Any:
    """An independent botocore client on the cache's server: blobcache's code is not in the path."""
    backend = backend_of(cache)
    endpoint = backend.endpoint_url
    return _raw_session().create_client("dynamodb", region_name=REGION, endpoint_url=endpoint)


@functools.cache
def _raw_session() -> botocore.session.Session:
    return botocore.session.get_session()


def record_requests(cache: BlobCache) -> list[str]:
    """A live list of the requests the cache sends: DynamoDB operations over HTTP (retries
    included), Redis commands."""
    sent: list[str] = []
    if cache.name == "dynamodb":
        backend = backend_of(cache)

        def count(**kwargs: Any) -> None:
            sent.append(kwargs["event_name"].rsplit(".", 1)[-1])

        backend.client.meta.events.register("before-send.dynamodb", count)
    elif cache.name == "redis":
        backend = backend_of(cache)
        request = backend._request

        def send(args: Any, **kwargs: Any) -> Any:
            sent.append(str(args[0]))
            return request(args, **kwargs)

        backend._request = send
    return sent


def read_raw(cache: BlobCache) -> RawItems:
    """Every stored item, read without blobcache: digest -> (original, paths)."""
    backend = backend_of(cache)
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
    if cache.name == "redis":
        return read_raw_redis(cache)
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


def raw_redis(cache: BlobCache) -> redis.Redis:
    """An independent redis-py client on the cache's server and database (replies as str)."""
    address = backend_of(cache).address
    return redis.Redis(
        host=address.host,
        port=address.port,
        db=address.db,
        password=address.password,
        decode_responses=True,
    )


# One snapshot of the whole layout: a read in two steps could see an item half-way
# through another client's change (the hash field read before a delete, the set after).
_SNAPSHOT = """
local sets = {}
for _, key in ipairs(redis.call('KEYS', ARGV[1])) do
  sets[#sets + 1] = key
  sets[#sets + 1] = redis.call('SMEMBERS', key)
end
return {redis.call('HGETALL', KEYS[1]), sets}
"""


def read_raw_redis(cache: BlobCache) -> RawItems:
    """Every item in zot's Redis layout, read atomically with plain commands (one Lua
    snapshot, not blobcache's scripts): digest -> (original, paths)."""
    backend = backend_of(cache)
    prefix = f"{backend.prefix}:blobs:duplicates:"
    client = raw_redis(cache)
    try:
        originals, sets = client.eval(_SNAPSHOT, 1, backend.originals_key, prefix + "*")
    finally:
        client.close()
    items: RawItems = {
        str(originals[n]): (str(originals[n + 1]), frozenset()) for n in range(0, len(originals), 2)
    }
    for n in range(0, len(sets), 2):
        digest = str(sets[n])[len(prefix) :]
        items[digest] = (items.get(digest, (None, frozenset()))[0], frozenset(sets[n + 1]))
    return items


def assert_invariants(items: RawItems) -> None:
    """No item without paths, and every original among its item's paths."""
    for digest, (original, paths) in items.items():
        assert paths, f"{digest} is an item with no paths"
        assert original is not None, f"{digest} has no original"
        assert original in paths, f"{digest}: original {original!r} not in {sorted(paths)}"
