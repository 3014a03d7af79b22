"""The request budget: each call sends the requests the contract's round-trip table allows."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from blobcache import BlobCache, CacheMiss
from tests.dynamodb.helpers import OTHER, Call, D, Server, delete_call, make_on, put_call
from tests.helpers import CacheFactory, assert_invariants, digest_of, read_raw, recording

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
        put_call(digest_of(3), "/new"),
        1,
        ONE_UPDATE,
        {digest_of(3): ("/new", frozenset({"/new"}))},
    ),
    Budget(
        "put of a new path",
        put_call(D, "/d"),
        1,
        ONE_UPDATE,
        {D: ("/a", frozenset({"/a", "/b", "/c", "/d"}))},
    ),
    Budget(
        "put of a known path",
        put_call(D, "/b"),
        1,
        ONE_UPDATE,
        {D: ("/a", frozenset({"/a", "/b", "/c"}))},
    ),
    Budget(
        "delete of a path neither original nor last",
        delete_call(D, "/b"),
        1,
        ONE_UPDATE,
        {D: ("/a", frozenset({"/a", "/c"}))},
    ),
    Budget(
        "delete of the original",
        delete_call(D, "/a"),
        2,
        {"dynalite": ["UpdateItem", "GetItem", "UpdateItem"], "moto": ["UpdateItem", "UpdateItem"]},
        {D: ("/b", frozenset({"/b", "/c"}))},
    ),
    Budget(
        "delete of the last path",
        delete_call(OTHER, "/solo"),
        2,
        {"dynalite": ["UpdateItem", "GetItem", "DeleteItem"], "moto": ["UpdateItem", "DeleteItem"]},
        {OTHER: None, D: ("/a", frozenset({"/a", "/b", "/c"}))},
    ),
    Budget(
        "delete of an unknown path",
        delete_call(D, "/unknown"),
        2,
        {"dynalite": ["UpdateItem", "GetItem"], "moto": ["UpdateItem"]},
        {D: ("/a", frozenset({"/a", "/b", "/c"}))},
    ),
    Budget(
        "delete of an unknown digest",
        delete_call(digest_of(3), "/unknown"),
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
