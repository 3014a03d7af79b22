"""Faults between blobcache and redis-server (blobcache.testing's fault proxy, speaking RESP):
a write is sent once and says when its outcome is unknown; what ran nothing is retried."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from blobcache import BlobCache, StoreUnavailable
from blobcache.testing import FaultProxy, RedisServer, fault_proxy
from tests.helpers import CacheFactory, assert_invariants, backend_of, digest_of, read_raw

D = digest_of(5)
# Generous: only a stalled request is waited for, and it arrives after stall_seconds.
DEADLINE = 60.0


@pytest.fixture
def proxy(blobcache_redis_server: RedisServer) -> Iterator[FaultProxy]:
    with fault_proxy(blobcache_redis_server.url, stall_seconds=1.0) as running:
        yield running


@pytest.fixture
def pair(make_cache: CacheFactory, proxy: FaultProxy) -> tuple[BlobCache, BlobCache]:
    """A cache reaching Redis directly, and one on the same keys through the proxy."""
    direct = make_cache("redis")
    prefix = backend_of(direct).prefix
    faulty = make_cache(
        "redis",
        url=f"{proxy.endpoint}/0?prefix={prefix}",
        create=False,
        max_retries=2,
        backoff=0.001,
        read_timeout=0.5,
    )
    faulty.put(digest_of(99), "/warm")  # the cluster check and the script loads are done
    faulty.delete(digest_of(99), "/warm")
    assert faulty.has(digest_of(98), "/warm") is False  # and the read script
    return direct, faulty


class TestWritesThroughFaults:
    @pytest.mark.parametrize("fault", ["drop_after_apply", "cut_body", "stall"])
    def test_a_lost_answer_is_an_unknown_outcome_never_resent(
        self, pair: tuple[BlobCache, BlobCache], proxy: FaultProxy, fault: str
    ) -> None:
        """The server applies the put, the answer is lost: StoreUnavailable with
        outcome_unknown, after exactly one request."""
        direct, faulty = pair
        before = proxy.requests
        proxy.inject(fault, operations={"EVALSHA"})
        with pytest.raises(StoreUnavailable) as caught:
            faulty.put(D, "/p")
        assert caught.value.outcome_unknown is True
        assert proxy.requests - before == 1
        assert proxy.injected[fault] == 1
        # A stalled request reaches Redis after the client gave up: wait for it, bounded.
        deadline = time.monotonic() + DEADLINE
        while not direct.has(D, "/p") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert direct.get_all(D) == ["/p"]
        assert proxy.requests - before == 1
        assert_invariants(read_raw(direct))

    def test_a_reset_before_the_server_is_unknown_too_and_changes_nothing(
        self, pair: tuple[BlobCache, BlobCache], proxy: FaultProxy
    ) -> None:
        """The connection breaks before the request reaches Redis: the client cannot tell,
        so the outcome is unknown; nothing was written and nothing is resent."""
        direct, faulty = pair
        direct.put(D, "/o")
        proxy.inject("reset", operations={"EVALSHA"})
        with pytest.raises(StoreUnavailable) as caught:
            faulty.delete(D, "/o")
        assert caught.value.outcome_unknown is True
        assert direct.get_all(D) == ["/o"]

    def test_busy_ran_nothing_so_a_write_is_retried(
        self, pair: tuple[BlobCache, BlobCache], proxy: FaultProxy
    ) -> None:
        """-BUSY says the script did not run: the write is sent again and lands once."""
        direct, faulty = pair
        proxy.inject("throttle", times=2, operations={"EVALSHA"})
        faulty.put(D, "/after-busy")
        assert proxy.injected["throttle"] == 2
        assert direct.get_all(D) == ["/after-busy"]

    def test_busy_past_the_retries_is_a_known_failure(
        self, pair: tuple[BlobCache, BlobCache], proxy: FaultProxy
    ) -> None:
        """Still BUSY after max_retries: StoreUnavailable that says nothing changed."""
        direct, faulty = pair
        proxy.inject("throttle", times=3, operations={"EVALSHA"})
        with pytest.raises(StoreUnavailable) as caught:
            faulty.put(D, "/never")
        assert caught.value.outcome_unknown is False
        assert direct.has(D, "/never") is False


class TestReadsThroughFaults:
    @pytest.mark.parametrize(
        "fault", ["reset", "drop_after_apply", "cut_body", "stall", "throttle"]
    )
    def test_a_read_is_retried(
        self, pair: tuple[BlobCache, BlobCache], proxy: FaultProxy, fault: str
    ) -> None:
        """Reads have no effect to double: each fault is retried and the read answers."""
        direct, faulty = pair
        direct.put(D, "/r")
        proxy.inject(fault, operations={"EVALSHA"})
        assert faulty.get_all(D) == ["/r"]
        assert proxy.injected[fault] == 1
