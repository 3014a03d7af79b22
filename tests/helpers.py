"""Helpers shared by the tests: digests, raw reads of a store, the one door to a backend,
watching DynamoDB requests, and one harness for threads that start together.

Imported explicitly (``from tests.helpers import ...``); fixtures live in conftest.py.
Raw reads and writes spell zot's attribute names out rather than take them from
`BlobRecord`: they are the independent witness of the layout the model declares.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

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
Handler = Callable[..., Any]
T = TypeVar("T")
R = TypeVar("R")
#: How long a test waits for work that takes seconds at most on an idle machine: long
#: enough never to be the reason a test fails on a busy one, short enough to end a hang.
DEADLINE = 120.0


def digest_of(n: int) -> str:
    """A real-looking sha256 digest, distinct for each ``n``."""
    return "sha256:" + f"{n:064x}"


def backend_of(cache: BlobCache) -> Any:
    """The backend behind ``cache``: the one place tests reach past the public API."""
    return cache._backend


def sqlite_connection(cache: BlobCache) -> sqlite3.Connection:
    """The connection a SQLite cache's next call on this thread would use, left in its pool.

    Leased and given straight back: the pool hands out the most recently given back
    connection first, so with no other thread about, the next call uses this one.
    """
    backend = backend_of(cache)
    connection: sqlite3.Connection = backend._connection()
    backend._release(connection)
    return connection


def dynamodb_client(cache: BlobCache) -> Any:
    """The botocore client a DynamoDB cache sends its requests with."""
    return backend_of(cache).client


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
    """An independent botocore client on the cache's server: blobcache's code is not in the path.

    One per server for the session: creating a client costs about 0.1 s.
    """
    return _raw_client(backend_of(cache).endpoint_url)


@functools.cache
def _raw_client(endpoint: str) -> Any:
    return botocore.session.get_session().create_client(
        "dynamodb", region_name=REGION, endpoint_url=endpoint
    )


def create_raw_table(client: Any, table: str, keys: list[tuple[str, str, str]]) -> None:
    """Create a table with any key schema ``[(name, HASH|RANGE, type)]``, bypassing blobcache,
    and wait until it is ACTIVE (a server may answer for a new table only after that)."""
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": name, "KeyType": role} for name, role, _ in keys],
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": kind} for name, _, kind in keys
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    delay = 0.05
    client.get_waiter("table_exists").wait(
        TableName=table, WaiterConfig={"Delay": delay, "MaxAttempts": int(DEADLINE / delay)}
    )


# -- watching DynamoDB requests --------------------------------------------------------------


def operation_of(request: Any) -> str:
    """The DynamoDB operation of a prepared request (``UpdateItem``...)."""
    target = request.headers["X-Amz-Target"]
    target = target.decode() if isinstance(target, bytes) else target
    return str(target).rsplit(".", 1)[-1]


def body_of(request: Any) -> dict[str, Any]:
    """The JSON parameters of a prepared request, as sent on the wire."""
    body = request.body.decode() if isinstance(request.body, bytes) else request.body
    parsed: dict[str, Any] = json.loads(body or "{}")
    return parsed


@dataclass(frozen=True)
class Sent:
    """One HTTP request as it left the client: operation name and JSON body."""

    operation: str
    body: dict[str, Any]


@dataclass
class Recorder:
    """Records every request a botocore client sends, retries included (a ``before-send``
    handler); ``operations`` is a live list of their names."""

    sent: list[Sent] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)

    def __call__(self, request: Any, **_: Any) -> None:
        self.sent.append(Sent(operation_of(request), body_of(request)))
        self.operations.append(self.sent[-1].operation)

    def clear(self) -> None:
        self.sent.clear()
        self.operations.clear()


@contextmanager
def hooked(cache: BlobCache, handler: Handler, event: str = "before-send") -> Iterator[None]:
    """Run ``handler`` on ``event`` (``before-send``, ``after-call``...) for every request
    the cache's client sends, for the duration of the block."""
    events = dynamodb_client(cache).meta.events
    events.register(f"{event}.dynamodb", handler)
    try:
        yield
    finally:
        events.unregister(f"{event}.dynamodb", handler)


@contextmanager
def recording(cache: BlobCache) -> Iterator[Recorder]:
    """Record the requests the cache sends inside the block."""
    recorder = Recorder()
    with hooked(cache, recorder):
        yield recorder


def record_requests(cache: BlobCache) -> list[str]:
    """A live list of the requests the cache sends from now on: DynamoDB operations (none
    on SQLite), Redis commands."""
    recorder = Recorder()
    if cache.name == "dynamodb":
        dynamodb_client(cache).meta.events.register("before-send.dynamodb", recorder)
    elif cache.name == "redis":
        backend = backend_of(cache)
        request = backend._request

        def send(args: Any, **kwargs: Any) -> Any:
            recorder.operations.append(str(args[0]))
            return request(args, **kwargs)

        backend._request = send
    return recorder.operations


# -- threads that start together -------------------------------------------------------------


def run_together(
    work: Callable[[T], R], inputs: Sequence[T], *, timeout: float = DEADLINE
) -> list[R]:
    """Run ``work`` on each input in a thread of its own, all released at once by a barrier.

    Returns the results in the order of ``inputs`` and re-raises the first error a
    thread raised. Every wait is bounded by ``timeout`` so a stuck thread fails the
    test instead of hanging it.
    """
    barrier = threading.Barrier(len(inputs))

    def start(item: T) -> R:
        barrier.wait(timeout)
        return work(item)

    with ThreadPoolExecutor(len(inputs)) as pool:
        futures = [pool.submit(start, item) for item in inputs]
        return [future.result(timeout) for future in futures]


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
