"""DynamoDB-specific behaviour: request budget, zot interop, item limit, errors, tables, binding."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import BotoCoreError, ClientError

from blobcache import (
    BlobCache,
    BlobCacheError,
    BlobRecord,
    CacheMiss,
    ConfigurationError,
    ItemTooLarge,
    StoreUnavailable,
    TableNotFound,
)
from blobcache.testing import free_port
from tests.helpers import (
    DYNAMODB_BACKENDS,
    REGION,
    CacheFactory,
    RawItems,
    assert_invariants,
    backend_of,
    digest_of,
    raw_client,
    read_raw,
)

D = digest_of(1)
OTHER = digest_of(2)
Handler = Callable[..., Any]


@dataclass(frozen=True)
class Server:
    """One local DynamoDB server of the session."""

    kind: str
    endpoint: str

    def url(self, table: str) -> str:
        return f"dynamodb:///{table}?region={REGION}&endpoint_url={self.endpoint}"


@pytest.fixture(params=DYNAMODB_BACKENDS)
def server(request: pytest.FixtureRequest) -> Server:
    """Each local DynamoDB server in turn."""
    kind: str = request.param
    return Server(kind, request.getfixturevalue(f"{kind}_endpoint"))


@pytest.fixture
def dynalite_server(dynalite_endpoint: str) -> Server:
    """dynalite only: atomic requests and the 400 KB item limit."""
    return Server("dynalite", dynalite_endpoint)


def new_table() -> str:
    return f"t-{uuid.uuid4().hex}"


# -- watching the wire ------------------------------------------------------------------------


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
    """Records every request a botocore client sends, retries included."""

    sent: list[Sent] = field(default_factory=list)

    def __call__(self, request: Any, **_: Any) -> None:
        self.sent.append(Sent(operation_of(request), body_of(request)))

    @property
    def operations(self) -> list[str]:
        return [sent.operation for sent in self.sent]

    def clear(self) -> None:
        self.sent.clear()


@contextmanager
def hooked(cache: BlobCache, handler: Handler) -> Iterator[None]:
    """Run ``handler`` on ``before-send`` for every request the cache's client sends."""
    events = backend_of(cache).client.meta.events
    events.register("before-send.dynamodb", handler)
    try:
        yield
    finally:
        events.unregister("before-send.dynamodb", handler)


@contextmanager
def recording(cache: BlobCache) -> Iterator[Recorder]:
    recorder = Recorder()
    with hooked(cache, recorder):
        yield recorder


class _Body:
    """The ``raw`` of an `AWSResponse`: a body that streams once."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def error_response(url: str, code: str, message: str) -> AWSResponse:
    """A DynamoDB JSON error response, as the service sends it with status 400."""
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message})
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "injected"}
    return AWSResponse(url, 400, headers, _Body(body.encode()))


# -- raw access -------------------------------------------------------------------------------


_RAW_CLIENTS: dict[str, Any] = {}


def raw(cache: BlobCache) -> Any:
    """`raw_client`, one per server for this module: creating a client costs ~0.1 s."""
    endpoint = backend_of(cache).record.Meta.host
    if endpoint not in _RAW_CLIENTS:
        _RAW_CLIENTS[endpoint] = raw_client(cache)
    return _RAW_CLIENTS[endpoint]


@pytest.fixture(autouse=True, scope="module")
def _close_raw_clients() -> Iterator[None]:
    yield
    for client in _RAW_CLIENTS.values():
        client.close()
    _RAW_CLIENTS.clear()


def create_raw_table(client: Any, table: str, keys: list[tuple[str, str, str]]) -> None:
    """Create a table with any key schema ``[(name, HASH|RANGE, type)]``, bypassing blobcache."""
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": name, "KeyType": role} for name, role, _ in keys],
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": kind} for name, _, kind in keys
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def table_of(cache: BlobCache) -> str:
    table: str = backend_of(cache).target
    return table


def raw_get(cache: BlobCache, digest: str) -> dict[str, Any] | None:
    """The item exactly as stored, read consistently by an independent client."""
    response = raw(cache).get_item(
        TableName=table_of(cache), Key={"Digest": {"S": digest}}, ConsistentRead=True
    )
    item: dict[str, Any] | None = response.get("Item")
    return item


def raw_put(cache: BlobCache, digest: str, **attributes: Any) -> None:
    """Store an item verbatim, bypassing blobcache."""
    raw(cache).put_item(TableName=table_of(cache), Item={"Digest": {"S": digest}, **attributes})


def zot_put(client: Any, table: str, digest: str, path: str) -> None:
    """A put the way zot's DynamoDB driver sends it: the original first, then ADD to the set."""
    key = {"Digest": {"S": digest}}
    found = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item", {})
    if "OriginalBlobPath" not in found:
        client.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET OriginalBlobPath = :s",
            ExpressionAttributeValues={":s": {"S": path}},
        )
    client.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="ADD DuplicateBlobPath :i",
        ExpressionAttributeValues={":i": {"SS": [path]}},
    )


def normalised(item: dict[str, Any] | None) -> dict[str, tuple[str, Any]] | None:
    """A raw item with string sets as frozensets, so two reads compare equal."""
    if item is None:
        return None
    out: dict[str, tuple[str, Any]] = {}
    for name, value in item.items():
        ((kind, data),) = value.items()
        out[name] = (kind, frozenset(data) if kind == "SS" else data)
    return out


def tolerant(items: RawItems) -> dict[str, tuple[str, frozenset[str]]]:
    """AttributeMap items read as the contract says: a missing original is the smallest path."""
    read: dict[str, tuple[str, frozenset[str]]] = {}
    for digest, (original, paths) in items.items():
        assert paths, f"{digest} is an item with no paths"
        chosen = original if original is not None else min(paths)
        read[digest] = (chosen, paths | {chosen})
    return read


def make_on(make_cache: CacheFactory, server: Server, **options: Any) -> BlobCache:
    return make_cache(server.kind, url=server.url(new_table()), **options)


# -- 1. the request budget ---------------------------------------------------------------------

Call = Callable[[BlobCache], object]


def _delete(digest: str, path: str) -> Call:
    return lambda cache: cache.delete(digest, path)


def _put(digest: str, path: str) -> Call:
    return lambda cache: cache.put(digest, path)


After = dict[str, tuple[str, frozenset[str]] | None]


@dataclass(frozen=True)
class Budget:
    """One row of the contract's round-trip table, with the requests measured per server."""

    name: str
    call: Call
    #: The contract's ceiling; a hard delete may take one more read on dynalite.
    ceiling: int
    measured: dict[str, list[str]]
    #: The items afterwards, read raw (``None``: no item).
    after: After

    def allowed(self, kind: str) -> int:
        return self.ceiling + (1 if kind == "dynalite" and self.ceiling == 2 else 0)


# Starting state for every case: D = original /a, paths {/a, /b, /c}; OTHER = only /solo.
ONE_UPDATE = {"dynalite": ["UpdateItem"], "moto": ["UpdateItem"]}
BUDGET = [
    Budget(
        "put of a new digest",
        _put(digest_of(3), "/new"),
        1,
        ONE_UPDATE,
        {digest_of(3): ("/new", frozenset({"/new"}))},
    ),
    Budget(
        "put of a new path",
        _put(D, "/d"),
        1,
        ONE_UPDATE,
        {D: ("/a", frozenset({"/a", "/b", "/c", "/d"}))},
    ),
    Budget(
        "put of a known path",
        _put(D, "/b"),
        1,
        ONE_UPDATE,
        {D: ("/a", frozenset({"/a", "/b", "/c"}))},
    ),
    Budget(
        "delete of a path neither original nor last",
        _delete(D, "/b"),
        1,
        ONE_UPDATE,
        {D: ("/a", frozenset({"/a", "/c"}))},
    ),
    Budget(
        "delete of the original",
        _delete(D, "/a"),
        2,
        {"dynalite": ["UpdateItem", "GetItem", "UpdateItem"], "moto": ["UpdateItem", "UpdateItem"]},
        {D: ("/b", frozenset({"/b", "/c"}))},
    ),
    Budget(
        "delete of the last path",
        _delete(OTHER, "/solo"),
        2,
        {"dynalite": ["UpdateItem", "GetItem", "DeleteItem"], "moto": ["UpdateItem", "DeleteItem"]},
        {OTHER: None, D: ("/a", frozenset({"/a", "/b", "/c"}))},
    ),
    Budget(
        "delete of an unknown path",
        _delete(D, "/unknown"),
        2,
        {"dynalite": ["UpdateItem", "GetItem"], "moto": ["UpdateItem"]},
        {D: ("/a", frozenset({"/a", "/b", "/c"}))},
    ),
    Budget(
        "delete of an unknown digest",
        _delete(digest_of(3), "/unknown"),
        2,
        # No item, so nothing comes back with the failed condition: moto reads too.
        {"dynalite": ["UpdateItem", "GetItem"], "moto": ["UpdateItem", "GetItem"]},
        {digest_of(3): None, OTHER: ("/solo", frozenset({"/solo"}))},
    ),
]


class TestRequestBudget:
    """Each call sends exactly the requests the contract's round-trip table allows."""

    @pytest.fixture
    def seeded(self, make_cache: CacheFactory, server: Server) -> tuple[Server, BlobCache]:
        cache = make_on(make_cache, server)
        for path in ("/a", "/b", "/c"):
            cache.put(D, path)
        cache.put(OTHER, "/solo")
        return server, cache

    @pytest.mark.parametrize("case", BUDGET, ids=[case.name for case in BUDGET])
    def test_write_requests(self, seeded: tuple[Server, BlobCache], case: Budget) -> None:
        """put sends one UpdateItem; a delete sends the measured sequence, within the ceiling."""
        server, cache = seeded
        with recording(cache) as recorder:
            case.call(cache)
        assert recorder.operations == case.measured[server.kind]
        assert len(recorder.operations) <= case.allowed(server.kind)
        items = read_raw(cache)
        for digest, state in case.after.items():
            assert items.get(digest) == state
        assert_invariants(items)

    @pytest.mark.parametrize(
        "call",
        [
            lambda cache: cache.get(D),
            lambda cache: cache.get_all(D),
            lambda cache: cache.has(D, "/b"),
            lambda cache: cache.has(D, "/unknown"),
            lambda cache: cache.has(digest_of(3), "/a"),
        ],
        ids=["get", "get_all", "has-hit", "has-miss-path", "has-miss-digest"],
    )
    def test_reads_send_one_get_item(self, seeded: tuple[Server, BlobCache], call: Call) -> None:
        """get, get_all and has each send exactly one GetItem."""
        _, cache = seeded
        with recording(cache) as recorder:
            call(cache)
        assert recorder.operations == ["GetItem"]

    def test_miss_sends_one_get_item(self, seeded: tuple[Server, BlobCache]) -> None:
        """A get of an unknown digest raises CacheMiss after one GetItem."""
        _, cache = seeded
        with recording(cache) as recorder, pytest.raises(CacheMiss):
            cache.get(digest_of(3))
        assert recorder.operations == ["GetItem"]

    def test_put_is_one_update(self, seeded: tuple[Server, BlobCache]) -> None:
        """put sets the original if absent and adds the path in the same UpdateItem; its
        only condition refuses an item with paths but no original (repaired apart)."""
        _, cache = seeded
        with recording(cache) as recorder:
            cache.put(D, "/d")
        (sent,) = recorder.sent
        expression = sent.body["UpdateExpression"]
        assert "if_not_exists" in expression
        assert "ADD" in expression
        assert sent.body["ConditionExpression"] == (
            "attribute_exists(#orig) AND attribute_exists(#paths) "
            "OR attribute_not_exists(#orig) AND attribute_not_exists(#paths)"
        )

    def test_reads_are_consistent_by_default(self, seeded: tuple[Server, BlobCache]) -> None:
        """GetItem and Scan ask for strongly consistent reads unless told otherwise."""
        _, cache = seeded
        with recording(cache) as recorder:
            cache.get(D)
            cache.get_all(D)
            cache.has(D, "/a")
            assert len(list(cache.entries())) == 2
        assert recorder.operations == ["GetItem", "GetItem", "GetItem", "Scan"]
        assert [sent.body.get("ConsistentRead") for sent in recorder.sent] == [True] * 4

    def test_consistent_read_false_turns_it_off(
        self, make_cache: CacheFactory, server: Server
    ) -> None:
        """consistent_read=False sends eventually consistent GetItem and Scan requests."""
        cache = make_on(make_cache, server, consistent_read=False)
        cache.put(D, "/a")
        with recording(cache) as recorder:
            assert cache.get(D) == "/a"
            assert cache.get_all(D) == ["/a"]
            assert cache.has(D, "/a")
            assert [entry.digest for entry in cache.entries()] == [D]
        assert recorder.operations == ["GetItem", "GetItem", "GetItem", "Scan"]
        assert [sent.body.get("ConsistentRead") for sent in recorder.sent] == [False] * 4

    def test_entries_sends_one_scan_per_page(
        self, make_cache: CacheFactory, server: Server
    ) -> None:
        """entries() streams the table one Scan page at a time, page_size items per page."""
        cache = make_on(make_cache, server, page_size=2)
        for n in range(5):
            cache.put(digest_of(10 + n), f"/p{n}")
        with recording(cache) as recorder:
            found = {entry.digest for entry in cache.entries()}
        assert found == {digest_of(10 + n) for n in range(5)}
        assert recorder.operations == ["Scan"] * 3
        assert [sent.body.get("Limit") for sent in recorder.sent] == [2, 2, 2]


# -- 2. zot interop ----------------------------------------------------------------------------


class TestZotLayout:
    """blobcache reads items zot wrote, keeps them valid, and writes exactly zot's attributes."""

    def test_reads_item_written_by_zot(self, make_cache: CacheFactory, server: Server) -> None:
        """An item built by zot's own requests (original inside the set) reads in full."""
        cache = make_on(make_cache, server)
        client = raw(cache)
        for path in ("/zot/b", "/zot/a", "/zot/c"):
            zot_put(client, table_of(cache), D, path)
        assert read_raw(cache) == {D: ("/zot/b", frozenset({"/zot/a", "/zot/b", "/zot/c"}))}
        assert cache.get(D) == "/zot/b"
        assert cache.get_all(D) == ["/zot/b", "/zot/a", "/zot/c"]
        assert cache.has(D, "/zot/c")
        assert not cache.has(D, "/zot/d")
        (entry,) = cache.entries()
        assert (entry.digest, entry.original) == (D, "/zot/b")
        assert entry.paths == frozenset({"/zot/a", "/zot/b", "/zot/c"})

    def test_zot_reads_what_blobcache_wrote(self, make_cache: CacheFactory, server: Server) -> None:
        """zot's lookups (original, then the set) find what blobcache wrote, after a promotion."""
        cache = make_on(make_cache, server)
        for path in ("/a", "/b", "/c"):
            cache.put(D, path)
        cache.delete(D, "/a")
        item = raw_get(cache, D)
        assert item is not None
        assert item["OriginalBlobPath"] == {"S": "/b"}
        assert sorted(item["DuplicateBlobPath"]["SS"]) == ["/b", "/c"]

    def test_original_outside_the_set_is_a_path(
        self, make_cache: CacheFactory, server: Server
    ) -> None:
        """An original missing from DuplicateBlobPath still counts as one of the paths."""
        cache = make_on(make_cache, server)
        raw_put(cache, D, OriginalBlobPath={"S": "/o"}, DuplicateBlobPath={"SS": ["/b", "/a"]})
        assert cache.get(D) == "/o"
        assert cache.get_all(D) == ["/o", "/a", "/b"]
        assert cache.has(D, "/o")
        assert cache.has(D, "/a")
        (entry,) = cache.entries()
        assert entry == type(entry)(D, "/o", frozenset({"/o", "/a", "/b"}))

    def test_item_without_original_reads_smallest_path(
        self, make_cache: CacheFactory, server: Server
    ) -> None:
        """An item with only DuplicateBlobPath reads with its smallest path as the original."""
        cache = make_on(make_cache, server)
        raw_put(cache, D, DuplicateBlobPath={"SS": ["/c", "/b", "/é"]})
        assert cache.get(D) == "/b"
        assert cache.get_all(D) == ["/b", "/c", "/é"]
        assert cache.has(D, "/c")
        (entry,) = cache.entries()
        assert (entry.original, entry.paths) == ("/b", frozenset({"/b", "/c", "/é"}))

    def test_put_on_item_without_original_keeps_the_one_readers_saw(
        self, make_cache: CacheFactory, server: Server
    ) -> None:
        """A put of a smaller path on an item with paths but no original does not take
        over as original: the smallest old path, which every read returned, is written
        down as the original, and the new path joins the set."""
        cache = make_on(make_cache, server)
        raw_put(cache, D, DuplicateBlobPath={"SS": ["/m", "/z"]})
        assert cache.get(D) == "/m"
        cache.put(D, "/a")
        assert cache.get_all(D) == ["/m", "/a", "/z"]
        stored = read_raw(cache)[D]
        assert stored == ("/m", frozenset({"/a", "/m", "/z"}))

    def test_put_on_item_with_only_an_original_puts_it_in_the_set(
        self, make_cache: CacheFactory, server: Server
    ) -> None:
        """A put on an item that has an original but no path set writes both paths into
        the set, so the original is among the paths again."""
        cache = make_on(make_cache, server)
        raw_put(cache, D, OriginalBlobPath={"S": "/o"})
        cache.put(D, "/a")
        assert read_raw(cache)[D] == ("/o", frozenset({"/o", "/a"}))

    @pytest.mark.parametrize(
        ("stored", "path", "expected"),
        [
            # zot's own layout: the original inside the set.
            (("/a", ["/a", "/b", "/c"]), "/a", ("/b", {"/b", "/c"})),
            # original outside the set: deleting it promotes the smallest of the set.
            (("/o", ["/b", "/a"]), "/o", ("/a", {"/a", "/b"})),
            (("/o", ["/b"]), "/o", ("/b", {"/b"})),
            # original outside the set: deleting a set member keeps the original.
            (("/o", ["/b", "/a"]), "/a", ("/o", {"/o", "/b"})),
            (("/o", ["/b"]), "/b", ("/o", {"/o"})),
            # no original: the smallest path is the original.
            ((None, ["/c", "/b", "/d"]), "/b", ("/c", {"/c", "/d"})),
            ((None, ["/c", "/b", "/d"]), "/d", ("/b", {"/b", "/c"})),
            ((None, ["/b"]), "/b", None),
            ((None, ["/b"]), "/x", ("/b", {"/b"})),
        ],
        ids=[
            "inside-delete-original",
            "outside-delete-original",
            "outside-delete-original-one-left",
            "outside-delete-member",
            "outside-delete-only-member",
            "no-original-delete-smallest",
            "no-original-delete-other",
            "no-original-delete-last",
            "no-original-delete-unknown",
        ],
    )
    def test_delete_on_zot_items(
        self,
        make_cache: CacheFactory,
        server: Server,
        stored: tuple[str | None, list[str]],
        path: str,
        expected: tuple[str, set[str]] | None,
    ) -> None:
        """A delete on an item zot wrote reads as the contract says and leaves no empty item."""
        cache = make_on(make_cache, server)
        original, paths = stored
        extra = {} if original is None else {"OriginalBlobPath": {"S": original}}
        raw_put(cache, D, DuplicateBlobPath={"SS": paths}, **extra)
        cache.delete(D, path)
        items = read_raw(cache)
        if expected is None:
            assert items == {}
            with pytest.raises(CacheMiss):
                cache.get(D)
            return
        want_original, want_paths = expected
        assert tolerant(items) == {D: (want_original, frozenset(want_paths))}
        assert cache.get_all(D) == [want_original, *sorted(set(want_paths) - {want_original})]
        raw_original, raw_paths = items[D]
        # Whatever blobcache rewrote, it wrote in its own layout: the original in the set.
        if raw_original is not None and raw_original != original:
            assert raw_original in raw_paths

    def test_blobcache_writes_exactly_zots_attributes(
        self, make_cache: CacheFactory, server: Server
    ) -> None:
        """blobcache writes Digest S, OriginalBlobPath S, DuplicateBlobPath SS and nothing else."""
        cache = make_on(make_cache, server)
        steps: list[Call] = [
            _put(D, "/a"),  # creates the item
            _put(D, "/b"),  # grows the set
            _put(D, "/c"),
            _delete(D, "/b"),  # single DELETE from the set
            _delete(D, "/a"),  # promotion: the whole item rewritten
        ]
        for step in steps:
            step(cache)
            item = raw_get(cache, D)
            assert item is not None
            assert {name: next(iter(value)) for name, value in item.items()} == {
                "Digest": "S",
                "OriginalBlobPath": "S",
                "DuplicateBlobPath": "SS",
            }
        assert normalised(raw_get(cache, D)) == {
            "Digest": ("S", D),
            "OriginalBlobPath": ("S", "/c"),
            "DuplicateBlobPath": ("SS", frozenset({"/c"})),
        }

    def test_key_only_item_is_a_miss_and_put_repairs_it(
        self, make_cache: CacheFactory, server: Server
    ) -> None:
        """An item holding only its Digest reads as absent; a put turns it into a full item."""
        cache = make_on(make_cache, server)
        raw_put(cache, D)
        with pytest.raises(CacheMiss):
            cache.get(D)
        with pytest.raises(CacheMiss):
            cache.get_all(D)
        assert not cache.has(D, "/a")
        assert list(cache.entries()) == []
        cache.delete(D, "/a")  # a no-op, not an error
        cache.put(D, "/a")
        assert normalised(raw_get(cache, D)) == {
            "Digest": ("S", D),
            "OriginalBlobPath": ("S", "/a"),
            "DuplicateBlobPath": ("SS", frozenset({"/a"})),
        }
        assert cache.get_all(D) == ["/a"]


# -- 3. the 400 KB item limit --------------------------------------------------------------------


class TestItemLimit:
    """dynalite enforces DynamoDB's 400 KB item limit; moto does not on ADD, so dynalite only."""

    def test_put_past_the_limit_raises_and_changes_nothing(
        self, make_cache: CacheFactory, dynalite_server: Server
    ) -> None:
        """The put that would pass 400 KB raises ItemTooLarge naming digest and path count."""
        cache = make_on(make_cache, dynalite_server)
        filler = "x" * 3_990
        stored, before = 0, None
        with pytest.raises(ItemTooLarge) as raised:  # noqa: PT012 - the loop is the setup
            for n in range(200):
                before = normalised(raw_get(cache, D))
                cache.put(D, f"/{n:04d}/{filler}")
                stored += 1
        error = raised.value
        assert type(error) is ItemTooLarge
        assert 90 < stored < 110  # about 400 KB of 4 KB paths
        assert (error.digest, error.paths) == (D, stored)
        assert D in str(error)
        assert f"{stored} paths" in str(error)
        assert isinstance(error.cause, ClientError)
        assert before is not None
        assert normalised(raw_get(cache, D)) == before
        assert len(cache.get_all(D)) == stored
        assert cache.get(D) == f"/0000/{filler}"

    def test_known_path_still_puts_on_a_full_item(
        self, make_cache: CacheFactory, dynalite_server: Server
    ) -> None:
        """Re-putting a path an item already holds does not grow it, so it still succeeds."""
        cache = make_on(make_cache, dynalite_server)
        filler = "y" * 3_990
        n = 0
        with pytest.raises(ItemTooLarge):  # noqa: PT012 - fill until full
            while n < 200:
                cache.put(D, f"/{n:04d}/{filler}")
                n += 1
        before = normalised(raw_get(cache, D))
        cache.put(D, f"/0001/{filler}")
        assert normalised(raw_get(cache, D)) == before
        cache.delete(D, f"/0001/{filler}")
        cache.put(D, f"/{n:04d}/{filler}")  # room for one again
        assert cache.has(D, f"/{n:04d}/{filler}")


# -- 4. errors ---------------------------------------------------------------------------------


class TestErrors:
    """Failures surface as the right blobcache error, with the cause kept; nothing else escapes."""

    def test_unreachable_endpoint(self, make_cache: CacheFactory) -> None:
        """A port nothing listens on raises StoreUnavailable within the configured retries."""
        url = f"dynamodb:///t?region={REGION}&endpoint_url=http://127.0.0.1:{free_port()}"
        cache = make_cache("dynalite", url=url, create=False, connect_timeout=0.5, max_retries=1)
        with recording(cache) as recorder:
            started = time.monotonic()
            with pytest.raises(BlobCacheError) as raised:
                cache.get(D)
            elapsed = time.monotonic() - started
        assert type(raised.value) is StoreUnavailable
        assert elapsed < 10
        assert len(recorder.sent) == 2  # the first try and max_retries=1 retry
        assert isinstance(raised.value.cause, BotoCoreError)
        assert raised.value.__cause__ is raised.value.cause
        assert "127.0.0.1" in str(raised.value)

    def test_silent_endpoint_times_out(self, make_cache: CacheFactory) -> None:
        """A server that accepts but never answers: a read raises StoreUnavailable after
        1 + max_retries attempts of read_timeout each (a write is sent once, test_hostile)."""
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(16)
            port = listener.getsockname()[1]
            url = f"dynamodb:///t?region={REGION}&endpoint_url=http://127.0.0.1:{port}"
            cache = make_cache("dynalite", url=url, create=False, read_timeout=0.5, max_retries=1)
            with recording(cache) as recorder:
                started = time.monotonic()
                with pytest.raises(BlobCacheError) as raised:
                    cache.get(D)
                elapsed = time.monotonic() - started
        assert type(raised.value) is StoreUnavailable
        assert len(recorder.sent) == 2
        assert 0.9 < elapsed < 10  # two attempts of at least read_timeout each
        assert isinstance(raised.value.cause, BotoCoreError)

    @pytest.mark.parametrize(
        "call",
        [
            _put(D, "/a"),
            lambda cache: cache.get(D),
            lambda cache: cache.has(D, "/a"),
            _delete(D, "/a"),
            lambda cache: list(cache.entries()),
        ],
        ids=["put", "get", "has", "delete", "entries"],
    )
    def test_missing_table(self, make_cache: CacheFactory, server: Server, call: Call) -> None:
        """Every call on a missing table raises TableNotFound saying how to create it."""
        cache = make_cache(server.kind, url=server.url(new_table()), create=False)
        with pytest.raises(BlobCacheError) as raised:
            call(cache)
        error = raised.value
        assert type(error) is TableNotFound
        assert table_of(cache) in str(error)
        assert "create_table()" in str(error)
        assert "blobcache create-table" in str(error)
        assert error.cause_response_code == "ResourceNotFoundException"

    def test_wrong_key_schema(self, make_cache: CacheFactory, server: Server) -> None:
        """A table keyed on "id" is reported as having the wrong key schema by every call."""
        table = new_table()
        cache = make_cache(server.kind, url=server.url(table), create=False)
        client = raw(cache)
        create_raw_table(client, table, [("id", "HASH", "S")])
        calls: list[Call] = [
            lambda cache: cache.create_table(),
            _put(D, "/a"),
            lambda cache: cache.get(D),
            lambda cache: cache.has(D, "/a"),
            _delete(D, "/a"),
        ]
        for call in calls:
            with pytest.raises(BlobCacheError) as raised:
                call(cache)
            assert type(raised.value) is ConfigurationError
            assert "key schema" in str(raised.value)
            assert "'Digest'" in str(raised.value)
        assert client.scan(TableName=table)["Items"] == []

    def test_entries_on_a_foreign_table(self, make_cache: CacheFactory, server: Server) -> None:
        """Scanning a table whose items have no Digest key says the key schema is wrong,
        instead of failing with a KeyError."""
        table = new_table()
        cache = make_cache(server.kind, url=server.url(table), create=False)
        client = raw(cache)
        create_raw_table(client, table, [("id", "HASH", "S")])
        client.put_item(TableName=table, Item={"id": {"S": "x"}})
        with pytest.raises(ConfigurationError, match="key schema"):
            list(cache.entries())

    def test_range_key_refused_by_create_table(
        self, make_cache: CacheFactory, server: Server
    ) -> None:
        """create_table on a table with an extra range key says the key schema is wrong."""
        table = new_table()
        cache = make_cache(server.kind, url=server.url(table), create=False)
        create_raw_table(raw(cache), table, [("Digest", "HASH", "S"), ("Path", "RANGE", "S")])
        with pytest.raises(BlobCacheError) as raised:
            cache.create_table()
        assert type(raised.value) is ConfigurationError
        assert "key schema" in str(raised.value)

    def test_missing_region(
        self,
        make_cache: CacheFactory,
        server: Server,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
    ) -> None:
        """Without a region anywhere, the first call raises ConfigurationError saying to set one."""
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
        monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
        monkeypatch.delenv("AWS_REGION", raising=False)
        url = f"dynamodb:///{new_table()}?endpoint_url={server.endpoint}"
        cache = make_cache(server.kind, url=url, create=False)
        with pytest.raises(BlobCacheError) as raised:
            cache.get(D)
        assert type(raised.value) is ConfigurationError
        assert "region" in str(raised.value)
        assert raised.value.cause is not None

    def test_throttling_after_retries(self, make_cache: CacheFactory, server: Server) -> None:
        """Throttling on every try raises StoreUnavailable with the DynamoDB code, after retries."""
        cache = make_on(make_cache, server, max_retries=1)
        tries = Recorder()

        def throttle(request: Any, **kwargs: Any) -> AWSResponse:
            tries(request, **kwargs)
            return error_response(
                request.url, "ProvisionedThroughputExceededException", "slow down"
            )

        with hooked(cache, throttle), pytest.raises(BlobCacheError) as raised:
            cache.put(D, "/a")
        error = raised.value
        assert type(error) is StoreUnavailable
        assert error.cause_response_code == "ProvisionedThroughputExceededException"
        assert isinstance(error.cause, ClientError)
        assert tries.operations == ["UpdateItem", "UpdateItem"]
        assert read_raw(cache) == {}

    def test_throttling_within_retries_is_invisible(
        self, make_cache: CacheFactory, server: Server
    ) -> None:
        """One throttled try is retried by the transport and the put takes effect once."""
        cache = make_on(make_cache, server, max_retries=2)
        tries = Recorder()

        def throttle_once(request: Any, **kwargs: Any) -> AWSResponse | None:
            tries(request, **kwargs)
            if len(tries.sent) > 1:
                return None
            return error_response(request.url, "ThrottlingException", "slow down")

        with hooked(cache, throttle_once):
            cache.put(D, "/a")
        assert tries.operations == ["UpdateItem", "UpdateItem"]
        assert read_raw(cache) == {D: ("/a", frozenset({"/a"}))}


# -- 5. create_table ---------------------------------------------------------------------------


def describe(cache: BlobCache) -> dict[str, Any]:
    table: dict[str, Any] = raw(cache).describe_table(TableName=table_of(cache))["Table"]
    return table


def created_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        dict(record.msg)
        for record in caplog.records
        if isinstance(record.msg, dict) and record.msg.get("event") == "table_created"
    ]


class TestCreateTable:
    """create_table makes zot's table once, in the asked billing mode, and tolerates racers."""

    def test_idempotent(
        self, make_cache: CacheFactory, server: Server, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A second create_table neither fails, nor changes the table, nor logs a creation."""
        caplog.set_level(logging.INFO, logger="blobcache")
        cache = make_on(make_cache, server)
        cache.put(D, "/a")
        first = describe(cache)
        cache.create_table()
        again = BlobCache.from_url(server.url(table_of(cache)))
        again.create_table()
        again.close()
        second = describe(cache)
        for key in ("TableName", "KeySchema", "AttributeDefinitions", "CreationDateTime"):
            assert second[key] == first[key]
        assert first["KeySchema"] == [{"AttributeName": "Digest", "KeyType": "HASH"}]
        assert first["AttributeDefinitions"] == [{"AttributeName": "Digest", "AttributeType": "S"}]
        assert read_raw(cache) == {D: ("/a", frozenset({"/a"}))}
        events = created_events(caplog)
        assert [event["table"] for event in events] == [table_of(cache)]

    def test_pay_per_request_by_default(self, make_cache: CacheFactory, server: Server) -> None:
        """A new table is on-demand unless provisioned capacity is asked for."""
        table = describe(make_on(make_cache, server))
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert table["TableStatus"] == "ACTIVE"

    def test_provisioned_on_request(self, make_cache: CacheFactory, server: Server) -> None:
        """billing_mode=PROVISIONED creates the table with the given capacities."""
        cache = make_on(
            make_cache, server, billing_mode="PROVISIONED", read_capacity=3, write_capacity=4
        )
        table = describe(cache)
        assert table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED") == (
            "PROVISIONED"
        )
        throughput = table["ProvisionedThroughput"]
        assert (throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]) == (3, 4)

    def test_creator_racing_between_describe_and_create(
        self, make_cache: CacheFactory, server: Server, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A table created by someone else after our DescribeTable is accepted, not an error."""
        caplog.set_level(logging.INFO, logger="blobcache")
        table = new_table()
        cache = make_cache(server.kind, url=server.url(table), create=False)
        client = raw(cache)

        def rival(request: Any, **_: Any) -> None:
            if operation_of(request) == "CreateTable":
                create_raw_table(client, table, [("Digest", "HASH", "S")])

        with recording(cache) as recorder, hooked(cache, rival):
            cache.create_table()
        assert "CreateTable" in recorder.operations
        assert created_events(caplog) == []
        cache.put(D, "/a")
        assert cache.get(D) == "/a"

    def test_concurrent_creators(
        self,
        make_cache: CacheFactory,
        dynalite_server: Server,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Eight threads creating one new table all succeed and one logs table_created.

        dynalite only: moto's server does not serialise CreateTable against itself.
        """
        caplog.set_level(logging.INFO, logger="blobcache")
        url = dynalite_server.url(new_table())
        caches = [make_cache("dynalite", url=url, create=False) for _ in range(8)]
        barrier = threading.Barrier(len(caches))
        errors: list[BaseException] = []

        def create(cache: BlobCache) -> None:
            barrier.wait()
            try:
                cache.create_table()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=create, args=(cache,)) for cache in caches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(created_events(caplog)) == 1
        caches[0].put(D, "/a")
        assert caches[-1].get(D) == "/a"


# -- 6. BlobRecord binding ---------------------------------------------------------------------


def where(record: type[BlobRecord]) -> tuple[str, str, str]:
    """A bound class's table, endpoint and region, from its own Meta."""
    meta: Any = record.Meta
    return meta.table_name, meta.host, meta.region


def meta_snapshot() -> dict[str, Any]:
    return {
        "meta": dict(vars(BlobRecord.Meta)),
        "connection": BlobRecord.__dict__.get("_connection"),
    }


class TestBlobRecordBinding:
    """One bound model class per configuration; the shared Meta is never touched."""

    def test_same_arguments_same_class(self) -> None:
        """bind is cached: equal arguments return the very same class."""
        one = BlobRecord.bind("blobs", region=REGION, host="http://127.0.0.1:1")
        two = BlobRecord.bind("blobs", region=REGION, host="http://127.0.0.1:1")
        assert one is two
        assert issubclass(one, BlobRecord)
        assert one.Meta is not BlobRecord.Meta

    def test_different_configurations_different_classes(self) -> None:
        """A different table, endpoint, region or timeout gives a different class and Meta."""
        base = BlobRecord.bind("blobs", region=REGION, host="http://127.0.0.1:1")
        others = [
            BlobRecord.bind("other", region=REGION, host="http://127.0.0.1:1"),
            BlobRecord.bind("blobs", region=REGION, host="http://127.0.0.1:2"),
            BlobRecord.bind("blobs", region="eu-west-1", host="http://127.0.0.1:1"),
            BlobRecord.bind(
                "blobs", region=REGION, host="http://127.0.0.1:1", read_timeout_seconds=1.0
            ),
        ]
        assert len({base, *others}) == 5
        assert [where(cls) for cls in others] == [
            ("other", "http://127.0.0.1:1", REGION),
            ("blobs", "http://127.0.0.1:2", REGION),
            ("blobs", "http://127.0.0.1:1", "eu-west-1"),
            ("blobs", "http://127.0.0.1:1", REGION),
        ]
        assert where(base) == ("blobs", "http://127.0.0.1:1", REGION)

    def test_meta_never_mutated(
        self, make_cache: CacheFactory, dynalite_endpoint: str, moto_endpoint: str
    ) -> None:
        """Two caches on two servers in one process leave BlobRecord.Meta exactly as it was."""
        before = meta_snapshot()
        table = new_table()
        first = make_cache("dynalite", url=Server("dynalite", dynalite_endpoint).url(table))
        second = make_cache("moto", url=Server("moto", moto_endpoint).url(table))
        first.put(D, "/on-dynalite")
        second.put(D, "/on-moto")
        assert meta_snapshot() == before
        assert BlobRecord.Meta.table_name == "blobcache"
        records = [backend_of(cache).record for cache in (first, second)]
        assert records[0] is not records[1]
        assert [record.Meta.host for record in records] == [dynalite_endpoint, moto_endpoint]

    def test_same_table_name_on_two_servers(
        self, make_cache: CacheFactory, dynalite_endpoint: str, moto_endpoint: str
    ) -> None:
        """Caches with one table name on two servers keep separate data."""
        table = new_table()
        on_dynalite = make_cache("dynalite", url=Server("dynalite", dynalite_endpoint).url(table))
        on_moto = make_cache("moto", url=Server("moto", moto_endpoint).url(table))
        on_dynalite.put(D, "/d")
        on_moto.put(D, "/m")
        on_moto.put(OTHER, "/m2")
        assert on_dynalite.get_all(D) == ["/d"]
        assert on_moto.get_all(D) == ["/m"]
        with pytest.raises(CacheMiss):
            on_dynalite.get(OTHER)
        assert read_raw(on_dynalite) == {D: ("/d", frozenset({"/d"}))}
        assert read_raw(on_moto) == {
            D: ("/m", frozenset({"/m"})),
            OTHER: ("/m2", frozenset({"/m2"})),
        }

    def test_model_level_access(self, make_cache: CacheFactory, server: Server) -> None:
        """A bound BlobRecord reads what blobcache wrote, and blobcache reads what it saves."""
        cache = make_on(make_cache, server)
        cache.put(D, "/a")
        cache.put(D, "/b")
        record_class = BlobRecord.bind(table_of(cache), region=REGION, host=server.endpoint)
        record = record_class.get(D, consistent_read=True)
        assert record.Digest == D
        assert record.OriginalBlobPath == "/a"
        assert record.DuplicateBlobPath == {"/a", "/b"}
        record_class(OTHER, OriginalBlobPath="/x", DuplicateBlobPath={"/x", "/y"}).save()
        assert cache.get_all(OTHER) == ["/x", "/y"]
        assert_invariants(read_raw(cache))


# -- 7. contention -------------------------------------------------------------------------------


class TestContention:
    """A delete whose conditional writes keep losing retries a bounded number of times."""

    def intruder(self, cache: BlobCache, limit: int | None) -> tuple[Recorder, Handler]:
        """A hook that, before each conditional write, puts a new path as another writer would."""
        client = raw(cache)
        writes = Recorder()

        def intrude(request: Any, **kwargs: Any) -> None:
            if "ConditionExpression" not in body_of(request):
                return
            writes(request, **kwargs)
            if limit is not None and len(writes.sent) > limit:
                return
            path = f"/intruder/{len(writes.sent)}"
            client.update_item(
                TableName=table_of(cache),
                Key={"Digest": {"S": D}},
                UpdateExpression="SET #o = if_not_exists(#o, :p) ADD #s :s",
                ExpressionAttributeNames={"#o": "OriginalBlobPath", "#s": "DuplicateBlobPath"},
                ExpressionAttributeValues={":p": {"S": path}, ":s": {"SS": [path]}},
            )

        return writes, intrude

    def test_gives_up_after_max_attempts(self, make_cache: CacheFactory, server: Server) -> None:
        """Losing every conditional write raises StoreUnavailable naming max_attempts."""
        cache = make_on(make_cache, server, max_attempts=3, backoff=0.001)
        cache.put(D, "/a")
        cache.put(D, "/b")
        writes, intrude = self.intruder(cache, limit=None)
        with hooked(cache, intrude), pytest.raises(BlobCacheError) as raised:
            cache.delete(D, "/a")
        assert type(raised.value) is StoreUnavailable
        assert "gave up" in str(raised.value)
        assert "3 attempts" in str(raised.value)
        assert "max_attempts" in str(raised.value)
        assert len(writes.sent) == 1 + 3  # the single DELETE, then max_attempts rewrites
        items = read_raw(cache)
        assert_invariants(items)
        assert items == {
            D: ("/a", frozenset({"/a", "/b"} | {f"/intruder/{n}" for n in range(1, 5)}))
        }

    def test_wins_once_the_rival_stops(self, make_cache: CacheFactory, server: Server) -> None:
        """A delete that lost twice succeeds on its next try and keeps every rival's put."""
        cache = make_on(make_cache, server, max_attempts=5, backoff=0.001)
        cache.put(D, "/a")
        cache.put(D, "/z")
        writes, intrude = self.intruder(cache, limit=3)
        with hooked(cache, intrude):
            cache.delete(D, "/a")
        assert len(writes.sent) == 4
        rivals = {f"/intruder/{n}" for n in range(1, 4)}
        items = read_raw(cache)
        assert_invariants(items)
        assert items == {D: ("/intruder/1", frozenset({"/z"} | rivals))}
        assert cache.get(D) == "/intruder/1"
