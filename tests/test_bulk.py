"""Bulk calls (put_many, get_many, delete_many): the loop of single calls, on every backend."""

from __future__ import annotations

import logging
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, assert_type

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blobcache import (
    BlobCache,
    ConfigurationError,
    InvalidDigest,
    InvalidPath,
    ItemTooLarge,
    Options,
    StoreUnavailable,
)
from tests.helpers import (
    ALL_BACKENDS,
    DYNAMODB_BACKENDS,
    CacheFactory,
    assert_invariants,
    backend_of,
    digest_of,
    dynamodb_client,
    read_raw,
    record_requests,
)

Pairs = list[tuple[str, str]]


def pairs_of(count: int, *, start: int = 0, copies: int = 1) -> Pairs:
    """``count`` digests from ``start``, each at ``copies`` paths (the /r0 copy first)."""
    return [
        (digest_of(n), f"/srv/registry/r{copy}/blobs/sha256/{n:064x}")
        for n in range(start, start + count)
        for copy in range(copies)
    ]


def lazy_pairs(count: int, *, start: int = 0) -> Iterator[tuple[str, str]]:
    """`pairs_of` as a generator: each pair is made only when it is asked for."""
    for n in range(start, start + count):
        yield digest_of(n), f"/srv/registry/r0/blobs/sha256/{n:064x}"


def generated(pairs: Iterable[Any]) -> Iterator[Any]:
    """A one-pass iterable (not a Sequence) of ``pairs``."""
    yield from pairs


def loop_put(cache: BlobCache, pairs: Iterable[tuple[str, str]]) -> None:
    for digest, path in pairs:
        cache.put(digest, path)


def loop_delete(cache: BlobCache, pairs: Iterable[tuple[str, str]]) -> None:
    for digest, path in pairs:
        cache.delete(digest, path)


@pytest.fixture(params=ALL_BACKENDS)
def kind(request: pytest.FixtureRequest) -> str:
    """Every backend; a backend added to ALL_BACKENDS is covered here at once."""
    return str(request.param)


#: Input shapes: a list is validated in place, anything else is spooled.
SHAPES: dict[str, Callable[[Pairs], Iterable[Any]]] = {"list": list, "generator": generated}


class TestPutMany:
    @pytest.mark.parametrize("shape", sorted(SHAPES))
    def test_same_state_as_the_loop(self, make_cache: CacheFactory, kind: str, shape: str) -> None:
        """put_many leaves exactly the state the loop of put leaves, across several batches."""
        pairs = pairs_of(7, copies=3)
        pairs += [(digest_of(0), "/late/copy"), (digest_of(1), "/srv/registry/r2/x")]
        bulk, loop = make_cache(kind, batch_size=4, workers=3), make_cache(kind)
        bulk.put_many(SHAPES[shape](pairs))
        loop_put(loop, pairs)
        assert read_raw(bulk) == read_raw(loop)
        assert len(read_raw(bulk)) == 7
        assert_invariants(read_raw(bulk))

    def test_first_path_given_becomes_the_original(
        self, make_cache: CacheFactory, kind: str
    ) -> None:
        """For a new digest the first path given is the original; a known digest keeps its own."""
        cache = make_cache(kind, batch_size=2)
        cache.put(digest_of(1), "/known")
        cache.put_many(
            [(digest_of(2), "/z"), (digest_of(1), "/a"), (digest_of(2), "/b"), (digest_of(2), "/a")]
        )
        assert cache.get_all(digest_of(1)) == ["/known", "/a"]
        assert cache.get_all(digest_of(2)) == ["/z", "/a", "/b"]

    def test_empty_input_writes_nothing(self, make_cache: CacheFactory, kind: str) -> None:
        """An empty list or an empty generator is a no-op, with no request sent."""
        cache = make_cache(kind)
        sent = record_requests(cache)
        cache.put_many([])
        cache.put_many(generated([]))
        cache.delete_many(generated([]))
        assert cache.get_many([]) == {}
        assert read_raw(cache) == {}
        assert sent == []

    def test_relative_path_mode(self, make_cache: CacheFactory, kind: str) -> None:
        """Paths are stored relative to the root and read back absolute, as with put."""
        cache = make_cache(kind, root="/srv/registry")
        cache.put_many([(digest_of(1), "/srv/registry/a/x"), (digest_of(1), "b/x")])
        assert read_raw(cache) == {digest_of(1): ("a/x", frozenset({"a/x", "b/x"}))}
        assert cache.get_many([digest_of(1)]) == {digest_of(1): "/srv/registry/a/x"}

    def test_batches_never_exceed_batch_size(
        self, make_cache: CacheFactory, kind: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The backend is handed batches of at most batch_size pairs, every pair exactly once."""
        cache = make_cache(kind, batch_size=3)
        backend = backend_of(cache)
        handed: list[int] = []
        real = backend.put_many

        def counting(batch: Pairs) -> None:
            handed.append(len(batch))
            real(batch)

        monkeypatch.setattr(backend, "put_many", counting)
        cache.put_many(generated(pairs_of(10)))
        assert handed == [3, 3, 3, 1]
        assert len(read_raw(cache)) == 10


class TestGetMany:
    def test_hits_and_misses(self, make_cache: CacheFactory, kind: str) -> None:
        """get_many maps every known digest to its original; misses and duplicates are fine."""
        cache = make_cache(kind, batch_size=2)
        cache.put_many(pairs_of(3, copies=2))
        asked = [digest_of(n) for n in (0, 5, 1, 0, 2, 9)]
        assert cache.get_many(generated(asked)) == {
            digest_of(n): f"/srv/registry/r0/blobs/sha256/{n:064x}" for n in range(3)
        }

    def test_many_keys(self, make_cache: CacheFactory, kind: str) -> None:
        """Hundreds of digests (several BatchGetItem requests on DynamoDB) read back right."""
        cache = make_cache(kind)
        cache.put_many(pairs_of(250))
        found = cache.get_many(digest_of(n) for n in range(300))
        assert found == dict(pairs_of(250))

    def test_one_digest_string_is_refused(self, make_cache: CacheFactory, kind: str) -> None:
        """A single digest where an iterable of them belongs raises InvalidDigest, not 64 misses."""
        cache = make_cache(kind)
        with pytest.raises(InvalidDigest, match="iterable of digests"):
            cache.get_many(digest_of(1))


class TestDeleteMany:
    @pytest.mark.parametrize("shape", sorted(SHAPES))
    def test_same_state_as_the_loop(self, make_cache: CacheFactory, kind: str, shape: str) -> None:
        """delete_many promotes and removes exactly as the loop of delete does."""
        seed = pairs_of(5, copies=3)
        bulk, loop = make_cache(kind, batch_size=3, workers=4), make_cache(kind)
        for cache in (bulk, loop):
            cache.put_many(seed)
        doomed = [
            (digest_of(0), "/srv/registry/r0/blobs/sha256/" + f"{0:064x}"),  # the original
            (digest_of(1), "/srv/registry/r1/blobs/sha256/" + f"{1:064x}"),  # a copy
            *[(digest, path) for digest, path in seed if digest == digest_of(2)],  # all of it
            (digest_of(3), "/never/recorded"),
            (digest_of(99), "/unknown/digest"),
            (digest_of(0), "/srv/registry/r2/blobs/sha256/" + f"{0:064x}"),
        ]
        bulk.delete_many(SHAPES[shape](doomed))
        loop_delete(loop, doomed)
        assert read_raw(bulk) == read_raw(loop)
        assert digest_of(2) not in read_raw(bulk)
        assert bulk.get(digest_of(0)) == "/srv/registry/r1/blobs/sha256/" + f"{0:064x}"
        assert_invariants(read_raw(bulk))


BAD_PAIRS: dict[str, tuple[object, type[Exception]]] = {
    "digest": (("sha256:nothex", "/p"), InvalidDigest),
    "digest type": ((7, "/p"), InvalidDigest),
    "empty path": ((digest_of(1), ""), InvalidPath),
    "NUL in path": ((digest_of(1), "/a\x00b"), InvalidPath),
    "path type": ((digest_of(1), b"/bytes"), InvalidPath),
    "not a pair": ((digest_of(1), "/p", "/q"), InvalidDigest),
}


class TestValidation:
    @pytest.mark.parametrize("method", ["put_many", "delete_many"])
    @pytest.mark.parametrize("bad", sorted(BAD_PAIRS))
    @pytest.mark.parametrize("shape", sorted(SHAPES))
    def test_bad_entry_names_its_position_and_writes_nothing(
        self, make_cache: CacheFactory, kind: str, method: str, bad: str, shape: str
    ) -> None:
        """One bad pair at position 7 raises naming position 7; the batches before it
        (batch_size 2) were never sent."""
        cache = make_cache(kind, batch_size=2)
        cache.put_many(pairs_of(8, start=100))
        before = read_raw(cache)
        sent = record_requests(cache)
        entry, error = BAD_PAIRS[bad]
        pairs: list[Any] = [*pairs_of(7), entry, *pairs_of(3, start=50)]
        if method == "delete_many":
            pairs[:7] = pairs_of(7, start=100)
        with pytest.raises(error) as caught:
            getattr(cache, method)(SHAPES[shape](pairs))
        assert caught.value.position == 7  # type: ignore[attr-defined]
        assert "at position 7" in str(caught.value)
        assert sent == []
        assert read_raw(cache) == before

    def test_path_outside_root(self, make_cache: CacheFactory, kind: str) -> None:
        """In relative-path mode a path escaping the root is refused with its position."""
        cache = make_cache(kind, root="/srv/registry")
        with pytest.raises(InvalidPath, match="at position 1") as caught:
            cache.put_many(generated([(digest_of(1), "a/x"), (digest_of(2), "/etc/passwd")]))
        assert caught.value.position == 1
        assert read_raw(cache) == {}

    @pytest.mark.parametrize("shape", sorted(SHAPES))
    def test_get_many_bad_digest(self, make_cache: CacheFactory, kind: str, shape: str) -> None:
        """A bad digest among many raises InvalidDigest naming its position; nothing is sent."""
        cache = make_cache(kind, batch_size=2)
        sent = record_requests(cache)
        digests: list[Any] = [digest_of(n) for n in range(5)] + ["SHA256:AB", digest_of(9)]
        with pytest.raises(InvalidDigest) as caught:
            cache.get_many(SHAPES[shape](digests))
        assert caught.value.position == 5
        assert sent == []


class TestFailureMidway:
    @pytest.mark.parametrize("method", ["put_many", "delete_many"])
    def test_rerun_after_a_failed_batch_is_safe(
        self, make_cache: CacheFactory, kind: str, method: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A store failure on the second batch raises; the first batch stays applied, and
        running the same call again ends in the state of the loop of single calls."""
        seed = pairs_of(6, copies=2)
        work = pairs_of(6, copies=3, start=3) if method == "put_many" else seed[::-1]
        bulk, loop = make_cache(kind, batch_size=4), make_cache(kind)
        for cache in (bulk, loop):
            loop_put(cache, seed)
        backend = backend_of(bulk)
        real = getattr(backend, method)
        calls: list[int] = []

        def failing(batch: Pairs) -> Any:
            calls.append(len(batch))
            if len(calls) == 2:
                raise StoreUnavailable("injected: the store went away")
            return real(batch)

        monkeypatch.setattr(backend, method, failing)
        with pytest.raises(StoreUnavailable, match="injected"):
            getattr(bulk, method)(generated(work))
        halfway = read_raw(bulk)
        assert halfway != read_raw(loop)  # the first batch landed
        assert_invariants(halfway)
        monkeypatch.setattr(backend, method, real)
        getattr(bulk, method)(generated(work))
        (loop_put if method == "put_many" else loop_delete)(loop, work)
        assert read_raw(bulk) == read_raw(loop)

    @pytest.mark.parametrize("backend_kind", DYNAMODB_BACKENDS)
    def test_dynamodb_failure_inside_a_batch(
        self, make_cache: CacheFactory, backend_kind: str
    ) -> None:
        """On DynamoDB a batch is many requests: a connection lost on one of them raises
        StoreUnavailable; the digests written stay whole, and a re-run completes the loop."""
        from botocore.exceptions import EndpointConnectionError

        pairs = pairs_of(12, copies=2)
        bulk, loop = make_cache(backend_kind, max_retries=0, workers=4), make_cache(backend_kind)
        seen: list[str] = []

        def drop(**kwargs: Any) -> None:
            seen.append(kwargs["event_name"])
            if len(seen) == 9:
                raise EndpointConnectionError(endpoint_url="http://injected")

        dynamodb_client(bulk).meta.events.register("before-send.dynamodb.UpdateItem", drop)
        with pytest.raises(StoreUnavailable):
            bulk.put_many(pairs)
        assert_invariants(read_raw(bulk))
        assert 0 < sum(len(paths) for _, paths in read_raw(bulk).values()) < len(pairs)
        bulk.put_many(pairs)
        loop_put(loop, pairs)
        assert read_raw(bulk) == read_raw(loop)


class TestDynamoDBRequests:
    @pytest.mark.parametrize("backend_kind", DYNAMODB_BACKENDS)
    def test_get_many_uses_batch_get_item(
        self, make_cache: CacheFactory, backend_kind: str
    ) -> None:
        """250 digests cost 3 BatchGetItem requests of at most 100 keys, and no GetItem."""
        cache = make_cache(backend_kind)
        cache.put_many(pairs_of(250))
        sent = record_requests(cache)
        assert len(cache.get_many(digest_of(n) for n in range(250))) == 250
        assert sent == ["BatchGetItem"] * 3

    @pytest.mark.parametrize("backend_kind", DYNAMODB_BACKENDS)
    def test_put_many_sends_one_update_per_digest(
        self, make_cache: CacheFactory, backend_kind: str
    ) -> None:
        """Writes stay the conditional UpdateItem of put, one per digest of a batch: it
        carries all the batch's paths of that digest, the first one the original if new."""
        cache, loop = make_cache(backend_kind), make_cache(backend_kind)
        cache.put(digest_of(0), "/known")
        loop.put(digest_of(0), "/known")
        pairs = pairs_of(20, copies=3)
        sent = record_requests(cache)
        cache.put_many(pairs)
        assert sent == ["UpdateItem"] * 20
        loop_put(loop, pairs)
        assert read_raw(cache) == read_raw(loop)

    def test_item_filling_up_raises_where_the_loop_does(self, make_cache: CacheFactory) -> None:
        """A digest whose batch of paths would pass 400 KB (dynalite enforces it) falls back
        to one put per path: ItemTooLarge, and the state the loop leaves when it raises."""
        paths = [f"/r/{n:03d}/" + "x" * 3900 for n in range(120)]
        pairs = [(digest_of(1), path) for path in paths] + [(digest_of(2), "/fine")]
        bulk, loop = make_cache("dynalite", workers=1), make_cache("dynalite")
        with pytest.raises(ItemTooLarge):
            bulk.put_many(pairs)
        with pytest.raises(ItemTooLarge):
            loop_put(loop, pairs)
        assert read_raw(bulk)[digest_of(1)] == read_raw(loop)[digest_of(1)]
        assert 90 < len(read_raw(bulk)[digest_of(1)][1]) < 120

    @pytest.mark.parametrize("backend_kind", DYNAMODB_BACKENDS)
    def test_unprocessed_keys_are_asked_again(
        self, make_cache: CacheFactory, backend_kind: str
    ) -> None:
        """Keys the server leaves unprocessed (injected: local servers never do) are
        requested again until every item is read."""
        cache = make_cache(backend_kind, backoff=0, workers=1)
        cache.put_many(pairs_of(30))
        sent = record_requests(cache)
        cache.get_many([])  # nothing sent for nothing asked
        dynamodb_client(cache).meta.events.register(
            "after-call.dynamodb.BatchGetItem", _leave_half_unprocessed(backend_of(cache).target)
        )
        assert cache.get_many(digest_of(n) for n in range(30)) == dict(pairs_of(30))
        assert len(sent) > 1
        assert set(sent) == {"BatchGetItem"}

    @pytest.mark.parametrize("backend_kind", DYNAMODB_BACKENDS)
    def test_unprocessed_keys_give_up(self, make_cache: CacheFactory, backend_kind: str) -> None:
        """A server that never processes a key makes get_many raise StoreUnavailable after
        max_attempts rounds without progress."""
        cache = make_cache(backend_kind, backoff=0, max_attempts=3)
        cache.put_many(pairs_of(5))
        sent = record_requests(cache)
        dynamodb_client(cache).meta.events.register(
            "after-call.dynamodb.BatchGetItem",
            _leave_half_unprocessed(backend_of(cache).target, everything=True),
        )
        with pytest.raises(StoreUnavailable, match="unprocessed"):
            cache.get_many(digest_of(n) for n in range(5))
        assert sent == ["BatchGetItem"] * 3


def _leave_half_unprocessed(table: str, *, everything: bool = False) -> Callable[..., None]:
    """An after-call hook that moves half (or all) of a BatchGetItem's items to UnprocessedKeys."""

    def hook(parsed: dict[str, Any], **_: Any) -> None:
        items = parsed.get("Responses", {}).get(table, [])
        if len(items) < 2 and not everything:
            return
        kept = [] if everything else items[: len(items) // 2]
        dropped = items[len(kept) :]
        parsed["Responses"][table] = kept
        if dropped:
            keys = [{"Digest": item["Digest"]} for item in dropped]
            parsed["UnprocessedKeys"] = {table: {"Keys": keys, "ConsistentRead": True}}

    return hook


# Few digests and paths, so pairs of one digest collide and deletes promote.
DIGESTS = st.sampled_from([digest_of(n) for n in range(4)])
PATHS = st.sampled_from(["/a", "/b", "/B", "/c/d", "/é", "/zz"])
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["put", "delete"]),
        st.lists(st.tuples(DIGESTS, PATHS), max_size=12),
        st.sampled_from(sorted(SHAPES)),
    ),
    min_size=1,
    max_size=5,
)


class TestAgainstTheLoop:
    def test_bulk_calls_match_the_loop_on_a_twin(self, make_cache: CacheFactory, kind: str) -> None:
        """Any sequence of put_many/delete_many leaves the state the loop of single calls
        leaves on a twin cache, and get_many answers as get does."""
        bulk, loop = make_cache(kind, batch_size=3, workers=4), make_cache(kind)

        @settings(
            max_examples=30 if kind == "sqlite" else 12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        )
        @given(steps=STEPS)
        def check(steps: list[tuple[str, Pairs, str]]) -> None:
            for cache in (bulk, loop):  # start each example empty
                loop_delete(cache, [(e.digest, p) for e in cache.entries() for p in e.paths])
            for method, pairs, shape in steps:
                getattr(bulk, f"{method}_many")(SHAPES[shape](pairs))
                (loop_put if method == "put" else loop_delete)(loop, pairs)
                assert read_raw(bulk) == read_raw(loop)
            assert_invariants(read_raw(bulk))
            expected = {entry.digest: entry.original for entry in loop.entries()}
            assert bulk.get_many(digest_of(n) for n in range(5)) == expected

        check()


class TestMemory:
    def test_generator_runs_in_flat_memory(
        self, make_cache: CacheFactory, kind: str, tmp_path: Path
    ) -> None:
        """put_many and delete_many of a generator peak at about one batch of memory: four
        times the pairs cost no more than a small margin over the smaller run."""
        count, batch = (20_000, 100) if kind == "sqlite" else (320, 40)
        cache = make_cache(kind, batch_size=batch)
        cache.put_many(pairs_of(2 * batch, start=10**6))  # warm up clients, connections, caches

        def peak(call: Callable[[Iterator[tuple[str, str]]], object], n: int, start: int) -> int:
            tracemalloc.start()
            try:
                call(lazy_pairs(n, start=start))
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()

        small = peak(cache.put_many, count // 4, 0)
        large = peak(cache.put_many, count, count)
        deleted = peak(cache.delete_many, count, count)
        held = peak(list, count, count)  # what holding the input alone would cost
        if kind == "sqlite":  # enough pairs for the input to outweigh the client's buffers
            allowance = small * 1.25 + 128 * 1024
            assert large < held / 4
        else:  # botocore's buffers vary with the requests in flight at the peak
            allowance = small * 2 + 256 * 1024
        assert large < allowance
        assert deleted < allowance
        assert len(read_raw(cache)) == 2 * batch + count // 4


class TestOptions:
    @pytest.mark.parametrize("name", ["batch_size", "workers", "pool_size"])
    def test_bulk_options_must_be_positive(self, name: str) -> None:
        """batch_size, workers and pool_size refuse zero with a ConfigurationError naming them."""
        with pytest.raises(ConfigurationError, match=f"option {name} must be a positive integer"):
            Options.from_mapping({name: 0})

    def test_bulk_options_from_the_url(self, tmp_path: Path) -> None:
        """The bulk options come from the URL's query like every other option."""
        url = f"sqlite:///{tmp_path / 'c.db'}?batch_size=50&workers=2&pool_size=3"
        with BlobCache.from_url(url) as cache:
            assert (cache.options.batch_size, cache.options.workers) == (50, 2)
            assert cache.options.pool_size == 3


class TestLogging:
    def test_bulk_calls_log_the_loops_events(
        self, make_cache: CacheFactory, kind: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """put_many and delete_many log, per pair, the INFO events the loop logs: blob_put,
        blob_deleted, original_promoted, item_removed, with digest and path."""
        pairs = [(digest_of(1), "/b"), (digest_of(1), "/a"), (digest_of(2), "/c")]
        doomed = [(digest_of(1), "/b"), (digest_of(2), "/c"), (digest_of(2), "/gone")]

        def events(run: Callable[[BlobCache], None], cache: BlobCache) -> list[tuple[Any, ...]]:
            caplog.clear()
            with caplog.at_level(logging.INFO, logger="blobcache"):
                run(cache)
            return [
                (r.msg["event"], r.msg.get("digest"), r.msg.get("path"))  # type: ignore[index, union-attr]
                for r in caplog.records
                if r.name.startswith("blobcache.") and r.levelno == logging.INFO
            ]

        def bulk(cache: BlobCache) -> None:
            cache.put_many(pairs)
            cache.delete_many(doomed)

        def loop(cache: BlobCache) -> None:
            loop_put(cache, pairs)
            loop_delete(cache, doomed)

        logged = events(bulk, make_cache(kind, workers=1))
        assert logged == events(loop, make_cache(kind))
        assert [event for event, _, _ in logged] == [
            "blob_put",
            "blob_put",
            "blob_put",
            "blob_deleted",
            "original_promoted",
            "blob_deleted",
            "item_removed",
        ]


class TestTypes:
    def test_bulk_signatures(self, tmp_path: Path) -> None:
        """The documented signatures hold, at run time and for mypy (assert_type)."""
        cache = BlobCache.from_url(f"sqlite:///{tmp_path / 'api.db'}", root=tmp_path)
        digest = digest_of(1)
        assert_type(cache.put_many([(digest, "a"), (digest, "b")]), None)
        found = cache.get_many([digest, digest_of(2)])
        assert_type(found, dict[str, str])
        assert found == {digest: str(tmp_path / "a")}
        assert_type(cache.delete_many(iter([(digest, "a")])), None)
        assert cache.get_all(digest) == [str(tmp_path / "b")]
        cache.close()
