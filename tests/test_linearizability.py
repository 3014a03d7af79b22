"""Linearizability, checked: concurrent histories on every atomic backend, histories with
faults injected between a client and dynalite, and broken backends the checker must catch.

See tests/linearizability.py for the checker. Run on the backends whose conditional
writes are atomic (ATOMIC_BACKENDS in tests/helpers.py; a new backend is one entry there).
"""

from __future__ import annotations

import math
import multiprocessing
import random
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import botocore.config
import botocore.session
import pytest

from blobcache import BlobCache, StoreUnavailable
from blobcache.testing import FAULTS, FaultProxy, fault_proxy
from tests.helpers import (
    ATOMIC_BACKENDS,
    REGION,
    CacheFactory,
    assert_invariants,
    backend_of,
    digest_of,
    read_raw,
    url_of,
)
from tests.linearizability import (
    MISS,
    UNKNOWN,
    Op,
    Recorder,
    State,
    assert_linearizable,
    check,
)

D = digest_of(13)
PATHS = ["/a", "/b", "/c", "/d"]


def op(kind: str, path: str | None, result: Any, call: float, ret: float, client: str = "") -> Op:
    return Op(kind, D, path, result, call, ret, client)


# -- the checker on hand-made histories ----------------------------------------------------


class TestChecker:
    """The checker accepts what some order explains and rejects what none does."""

    def test_sequential_history(self) -> None:
        """Puts, a promotion and reads in sequence check out."""
        history = [
            op("put", "/b", None, 0, 1),
            op("put", "/a", None, 2, 3),
            op("get_all", None, ["/b", "/a"], 4, 5),
            op("delete", "/b", None, 6, 7),
            op("get", None, "/a", 8, 9),
            op("has", "/b", False, 10, 11),
            op("delete", "/a", None, 12, 13),
            op("get_all", None, MISS, 14, 15),
        ]
        assert [verdict.ok for verdict in check(history)] == [True]

    def test_lost_put(self) -> None:
        """An acknowledged put that a later read does not see is a violation."""
        history = [op("put", "/a", None, 0, 1), op("has", "/a", False, 2, 3)]
        (verdict,) = check(history)
        assert not verdict.ok
        assert "has /a -> False" in str(verdict)

    def test_overlapping_calls_in_either_order(self) -> None:
        """Two first puts that overlap may have either as the original, but not both."""
        puts = [op("put", "/a", None, 0, 10), op("put", "/b", None, 1, 9)]
        assert check([*puts, op("get", None, "/b", 11, 12)])[0].ok
        assert check([*puts, op("get", None, "/a", 11, 12)])[0].ok
        two_originals = [
            *puts,
            op("get", None, "/a", 11, 12, "r1"),
            op("get", None, "/b", 13, 14, "r2"),
        ]
        assert not check(two_originals)[0].ok

    def test_a_delete_applied_twice(self) -> None:
        """Issue 13's history: A's delete applies, a reader sees it, B puts the path back
        and is acknowledged, A's resent delete removes it again: no order explains it."""
        initial = ("/o", frozenset({"/o", "/dup"}))
        history = [
            op("delete", "/dup", None, 0, 100, "A"),
            op("has", "/dup", False, 10, 20, "R"),
            op("put", "/dup", None, 30, 40, "B"),
            op("has", "/dup", False, 110, 120, "S"),
        ]
        assert not check(history, initial=lambda _: initial)[0].ok
        # The same calls, with A's delete failing and B's put surviving, are fine.
        history[0] = op("delete", "/dup", UNKNOWN, 0, math.inf, "A")
        history[3] = op("has", "/dup", True, 110, 120, "S")
        assert check(history, initial=lambda _: initial)[0].ok

    def test_an_indeterminate_write_may_land_late(self) -> None:
        """A put that raised may take effect after it returned (a stalled request); one
        that was acknowledged may not."""
        reads = [op("has", "/a", False, 20, 30), op("has", "/a", True, 40, 50)]
        assert check([op("put", "/a", UNKNOWN, 0, math.inf), *reads])[0].ok
        assert not check([op("put", "/a", None, 0, 10), *reads])[0].ok

    def test_an_indeterminate_write_may_never_land(self) -> None:
        """A put that raised and was never seen is fine; a delete never seen likewise."""
        history = [
            op("put", "/a", UNKNOWN, 0, math.inf),
            op("get_all", None, MISS, 20, 30),
            op("put", "/b", None, 40, 50),
            op("delete", "/b", UNKNOWN, 60, math.inf),
            op("get_all", None, ["/b"], 70, 80),
        ]
        assert check(history)[0].ok


# -- concurrent histories on every atomic backend ------------------------------------------

DIGESTS = [digest_of(n) for n in range(2)]
OPERATIONS = 40


def random_history(cache: BlobCache, client: str, seed: int, operations: int) -> list[Op]:
    """Random puts, deletes and reads of a few shared paths on two digests; calls that
    raise StoreUnavailable are recorded as indeterminate and the client carries on."""
    rng = random.Random(seed)
    recorder = Recorder(cache, client)
    for _ in range(operations):
        digest, path = rng.choice(DIGESTS), rng.choice(PATHS)
        call = rng.choice(["put", "put", "delete", "delete", "get_all", "has"])
        try:
            if call in ("put", "delete", "has"):
                getattr(recorder, call)(digest, path)
            else:
                recorder.get_all(digest)
        except StoreUnavailable:
            continue
    return recorder.history


def history_in_process(url: str, client: str, seed: int) -> list[Op]:
    with BlobCache.from_url(url) as cache:
        return random_history(cache, client, seed, OPERATIONS)


def run_threads(caches: list[BlobCache], operations: int = OPERATIONS) -> list[Op]:
    with ThreadPoolExecutor(len(caches)) as pool:
        futures = [
            pool.submit(random_history, cache, f"t{n}", n, operations)
            for n, cache in enumerate(caches)
        ]
        return [call for future in futures for call in future.result(timeout=300)]


@pytest.fixture(params=ATOMIC_BACKENDS)
def atomic(request: pytest.FixtureRequest, make_cache: CacheFactory) -> BlobCache:
    return make_cache(request.param)


class TestConcurrentHistories:
    def test_threads(self, atomic: BlobCache) -> None:
        """Six threads on one cache, fighting over four paths of two digests: every
        digest's history is linearizable and no item is left broken."""
        history = run_threads([atomic] * 6)
        verdicts = assert_linearizable(history)
        assert sum(verdict.operations for verdict in verdicts) == len(history) > 200
        assert_invariants(read_raw(atomic))

    def test_threads_and_processes(self, atomic: BlobCache) -> None:
        """Two processes and three threads, one clock: the merged history is linearizable."""
        url = url_of(atomic)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(2, mp_context=context) as processes:
            remote = [processes.submit(history_in_process, url, f"p{n}", 100 + n) for n in (0, 1)]
            history = run_threads([atomic] * 3)
            for future in remote:
                history += future.result(timeout=300)
        assert {call.client for call in history} == {"t0", "t1", "t2", "p0", "p1"}
        assert_linearizable(history)
        assert_invariants(read_raw(atomic))


# -- histories with faults between the client and dynalite ---------------------------------


@pytest.fixture
def proxy(dynalite_endpoint: str) -> Iterator[FaultProxy]:
    with fault_proxy(dynalite_endpoint, stall_seconds=1.0) as running:
        yield running


def through(make_cache: CacheFactory, proxy: FaultProxy, table: str, **options: Any) -> BlobCache:
    url = f"dynamodb:///{table}?region={REGION}&endpoint_url={proxy.endpoint}"
    return make_cache("dynalite", url=url, create=False, **options)


@pytest.fixture
def pair(make_cache: CacheFactory, proxy: FaultProxy) -> tuple[BlobCache, BlobCache]:
    """A cache reaching dynalite directly, and one on the same table through the proxy
    (short read timeout, so a stall times out)."""
    direct = make_cache("dynalite")
    faulty = through(make_cache, proxy, backend_of(direct).target, read_timeout=0.5)
    return direct, faulty


class TestFaultyHistories:
    @pytest.mark.parametrize("kind", sorted(FAULTS))
    def test_each_fault(
        self, pair: tuple[BlobCache, BlobCache], proxy: FaultProxy, kind: str
    ) -> None:
        """Four threads through the proxy and two direct, a quarter of the proxied
        requests hit by the fault: linearizable, no broken item, faults surfaced only as
        StoreUnavailable."""
        direct, faulty = pair
        proxy.inject_randomly(0.25, [kind], seed=len(kind))
        history = run_threads([faulty] * 4 + [direct] * 2, operations=30)
        proxy.clear()
        assert proxy.injected[kind] > 0
        assert_linearizable(history)
        assert_invariants(read_raw(direct))

    def test_every_fault_at_once(
        self, pair: tuple[BlobCache, BlobCache], proxy: FaultProxy
    ) -> None:
        """All faults mixed, with transport retries on: still linearizable."""
        direct, faulty = pair
        proxy.inject_randomly(0.3, list(FAULTS), seed=13)
        history = run_threads([faulty] * 4 + [direct] * 2, operations=30)
        proxy.clear()
        assert len(proxy.injected) >= 4
        indeterminate = [call for call in history if call.result is UNKNOWN]
        assert indeterminate, "no write had an unknown outcome: the faults did not bite"
        assert_linearizable(history)
        assert_invariants(read_raw(direct))

    def test_processes_through_faults(
        self, pair: tuple[BlobCache, BlobCache], proxy: FaultProxy
    ) -> None:
        """Two processes and two threads through the proxy, every fault mixed in, two
        threads direct: linearizable across processes too."""
        direct, faulty = pair
        proxy.inject_randomly(0.2, seed=7)
        url = url_of(faulty)  # through the proxy
        assert proxy.endpoint in url
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(2, mp_context=context) as processes:
            remote = [
                processes.submit(history_in_process, url + "&read_timeout=0.5", f"p{n}", 200 + n)
                for n in (0, 1)
            ]
            history = run_threads([faulty] * 2 + [direct] * 2, operations=30)
            for future in remote:
                history += future.result(timeout=300)
        proxy.clear()
        assert {call.client for call in history} >= {"p0", "p1"}
        assert sum(proxy.injected.values()) > 0
        assert_linearizable(history)
        assert_invariants(read_raw(direct))


# -- the two histories of issue 13, built exactly --------------------------------------------


def lost_response_history(
    direct: BlobCache, faulty: BlobCache, proxy: FaultProxy, *, first: str
) -> list[Op]:
    """A's ``first`` call (delete or put of /dup) is applied and its response lost; at
    that moment R reads /dup and B does the opposite call, acknowledged; then A's call
    returns (or raises) and S reads /dup."""
    a, r, b, s = (
        Recorder(cache, name)
        for cache, name in zip((faulty, direct, direct, direct), "ARBS", strict=True)
    )

    def meanwhile() -> None:
        r.has(D, "/dup")
        (b.put if first == "delete" else b.delete)(D, "/dup")

    proxy.inject("drop_after_apply", operations=["UpdateItem"], on_fault=meanwhile)
    try:
        getattr(a, first)(D, "/dup")
    except StoreUnavailable as exc:
        assert "may or may not have taken effect" in str(exc)  # noqa: PT017
    s.has(D, "/dup")
    return sorted(a.history + r.history + b.history + s.history, key=lambda call: call.call)


def seed_for(direct: BlobCache, first: str) -> State:
    """Store the item A's call starts from, and return it for the checker."""
    direct.put(D, "/o")
    if first == "put":
        return ("/o", frozenset({"/o"}))
    direct.put(D, "/dup")
    return ("/o", frozenset({"/o", "/dup"}))


def with_blind_resend(cache: BlobCache) -> None:
    """Break ``cache`` the way the old code was: botocore resends every failed request."""
    backend = backend_of(cache)
    config = botocore.config.Config(retries={"total_max_attempts": 4, "mode": "standard"})
    backend._client = botocore.session.get_session().create_client(
        "dynamodb", region_name=REGION, endpoint_url=backend.endpoint_url, config=config
    )


@pytest.fixture
def patient_pair(make_cache: CacheFactory, proxy: FaultProxy) -> tuple[BlobCache, BlobCache]:
    """As `pair`, with a read timeout long enough that A's call always waits for the proxy
    to act: on a busy machine a short one could expire first and change the story."""
    direct = make_cache("dynalite")
    return direct, through(make_cache, proxy, backend_of(direct).target, read_timeout=60)


@pytest.mark.parametrize("first", ["delete", "put"])
class TestLostResponses:
    def test_a_write_takes_effect_at_most_once(
        self, patient_pair: tuple[BlobCache, BlobCache], proxy: FaultProxy, first: str
    ) -> None:
        """The write whose response was lost is not resent: it raises StoreUnavailable
        saying the outcome is unknown, B's acknowledged call stands, and the history is
        linearizable."""
        direct, faulty = patient_pair
        initial = seed_for(direct, first)
        history = lost_response_history(direct, faulty, proxy, first=first)
        (a_call,) = [call for call in history if call.client == "A"]
        assert a_call.result is UNKNOWN
        assert direct.has(D, "/dup") is (first == "delete")
        assert_linearizable(history, initial=lambda _: initial)
        assert_invariants(read_raw(direct))

    def test_the_checker_catches_a_blind_resend(
        self, patient_pair: tuple[BlobCache, BlobCache], proxy: FaultProxy, first: str
    ) -> None:
        """With botocore resending (the old code), A's write applies twice, B's
        acknowledged call is undone, and the checker says so."""
        direct, faulty = patient_pair
        with_blind_resend(faulty)
        initial = seed_for(direct, first)
        history = lost_response_history(direct, faulty, proxy, first=first)
        assert direct.has(D, "/dup") is (first == "put")  # B's call was undone
        (verdict,) = check(history, initial=lambda _: initial)
        assert not verdict.ok
        assert "NOT linearizable" in str(verdict)


# -- a read-modify-write without its condition ----------------------------------------------


class TestBrokenRewrite:
    @pytest.mark.parametrize("broken", [False, True])
    def test_a_put_between_read_and_write(
        self, make_cache: CacheFactory, monkeypatch: pytest.MonkeyPatch, broken: bool
    ) -> None:
        """A deletes the original (read, then write the new item); B's put lands between
        the two. With the condition on the state read, A retries and B's path stays; an
        unconditional rewrite (a broken backend) loses it, and the checker catches that."""
        first = make_cache("dynalite")
        second = BlobCache.from_url(url_of(first))
        first.put(D, "/o")
        first.put(D, "/a")
        if broken:
            from blobcache._backends import dynamodb

            monkeypatch.setattr(
                dynamodb,
                "_state_condition",
                lambda raw: ("attribute_exists(#orig) OR attribute_not_exists(#orig)", {}),
            )
        a, b, s = Recorder(first, "A"), Recorder(second, "B"), Recorder(second, "S")
        done: list[bool] = []

        def put_between(request: Any, **_: Any) -> None:
            body = request.body.decode() if isinstance(request.body, bytes) else request.body
            if not done and "SET #orig = :orig, #paths = :paths" in body:
                done.append(True)
                b.put(D, "/b")

        events = backend_of(first).client.meta.events
        events.register("before-send.dynamodb.UpdateItem", put_between)
        a.delete(D, "/o")
        events.unregister("before-send.dynamodb.UpdateItem", put_between)
        s.get_all(D)
        second.close()
        assert done
        history = a.history + b.history + s.history
        initial = ("/o", frozenset({"/o", "/a"}))
        (verdict,) = check(history, initial=lambda _: initial)
        assert verdict.ok is not broken
        assert (s.history[-1].result == ["/a", "/b"]) is not broken


class TestUnconditionalDelete:
    def test_caught(self, make_cache: CacheFactory, monkeypatch: pytest.MonkeyPatch) -> None:
        """A backend whose one-request delete drops its condition removes the original
        from the set without promoting another: readers still see the deleted path, and
        the checker says the history is not linearizable."""
        from blobcache._backends.dynamodb import DynamoDBBackend

        real_update = DynamoDBBackend._update

        def unconditional(self: Any, digest: str, expression: str, values: Any, *rest: Any) -> None:
            if expression.startswith("DELETE"):
                paths = {":paths": values[":paths"]}
                real_update(self, digest, expression, paths, None, {"#paths": "DuplicateBlobPath"})
                return
            real_update(self, digest, expression, values, *rest)

        cache = make_cache("dynalite")
        recorder = Recorder(cache, "A")
        recorder.put(D, "/o")
        recorder.put(D, "/a")
        monkeypatch.setattr(DynamoDBBackend, "_update", unconditional)
        recorder.delete(D, "/o")
        monkeypatch.undo()
        assert recorder.get_all(D) == ["/o", "/a"]  # the deleted original is still read
        (verdict,) = check(recorder.history)
        assert verdict.ok is False
