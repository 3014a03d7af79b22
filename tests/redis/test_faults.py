"""A redis-server killed and restarted mid-run: calls raise StoreUnavailable meanwhile,
and nothing acknowledged is lost (the server runs with AOF, fsync always)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest
import redis

from blobcache import BlobCache, StoreUnavailable
from blobcache.testing import RedisServer, redis_server
from tests.helpers import assert_invariants, digest_of, read_raw

# Generous bounds for a busy 2-core machine; nothing waits on them unless something hangs.
DEADLINE = 120.0


@pytest.fixture
def durable() -> Iterator[RedisServer]:
    """A redis-server that acknowledges a write only after it is on disk."""
    with redis_server("--appendonly", "yes", "--appendfsync", "always") as server:
        yield server


def open_cache(server: RedisServer) -> BlobCache:
    return BlobCache.from_url(
        f"{server.url}/0?prefix=faults",
        max_retries=1,
        backoff=0.001,
        max_backoff=0.01,
        connect_timeout=2,
        read_timeout=5,
    )


class TestKilledServer:
    def test_calls_fail_while_down_and_work_after_restart(self, durable: RedisServer) -> None:
        """Every call raises StoreUnavailable while the server is down; after a restart the
        same cache carries on (scripts reloaded) and every acknowledged write is there."""
        cache = open_cache(durable)
        for n in range(30):
            cache.put(digest_of(n), f"/p/{n}")
            cache.put(digest_of(n), f"/q/{n}")
        cache.delete(digest_of(0), "/p/0")
        before = read_raw(cache)
        durable.stop(kill=True)
        for call in (
            lambda: cache.put(digest_of(99), "/x"),
            lambda: cache.get(digest_of(1)),
            lambda: cache.delete(digest_of(1), "/p/1"),
            lambda: list(cache.entries()),
            cache.create_table,
        ):
            with pytest.raises(StoreUnavailable):
                call()
        durable.start()
        assert read_raw(cache) == before
        assert cache.get(digest_of(0)) == "/q/0"  # the promotion survived
        cache.put(digest_of(99), "/after")  # NOSCRIPT: the restarted server forgot the scripts
        assert cache.get_all(digest_of(99)) == ["/after"]
        cache.close()

    def test_a_writer_mid_run_loses_nothing_acknowledged(self, durable: RedisServer) -> None:
        """A thread puts and deletes while the server is killed and restarted under it."""
        cache = open_cache(durable)
        acked: dict[int, int] = {}  # digest number -> how many of its 3 calls returned
        failed: list[int] = []
        enough, saw_failure, restarted = threading.Event(), threading.Event(), threading.Event()

        def writer() -> None:
            for n in range(400):
                digest, done = digest_of(n), 0
                try:
                    for method, path in (("put", "/a"), ("put", "/b"), ("delete", "/a")):
                        getattr(cache, method)(digest, path)
                        done += 1
                except StoreUnavailable:
                    failed.append(n)
                    saw_failure.set()
                    # Keep going only once the server is back, so the run ends after it.
                    restarted.wait(DEADLINE)
                acked[n] = done
                if n == 50:
                    enough.set()

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            assert enough.wait(DEADLINE)
            durable.stop(kill=True)
            assert saw_failure.wait(DEADLINE)
            durable.start()
        finally:
            restarted.set()
            thread.join(DEADLINE)
        assert not thread.is_alive()
        assert failed, "the writer never saw the server down"
        items = read_raw(cache)
        assert_invariants(items)
        for n, done in acked.items():
            state = items.get(digest_of(n))
            if done == 3:
                assert state == ("/b", frozenset({"/b"})), n
            elif done >= 1:
                assert state is not None, n
                assert ("/a" if done == 1 else "/b") in state[1], n
        assert sum(1 for done in acked.values() if done == 3) > 50
        cache.close()


class TestFrozenServer:
    def test_a_timed_out_write_is_store_unavailable_and_sent_once(
        self, durable: RedisServer
    ) -> None:
        """A server that stops answering (SIGSTOP) times a write out: StoreUnavailable saying
        it may have landed. The write is sent once, never resent, so it lands at most once."""
        cache = BlobCache.from_url(
            f"{durable.url}/0?prefix=frozen", read_timeout=0.5, max_retries=2, backoff=0.001
        )
        cache.put(digest_of(1), "/first")  # loads the script
        plain = redis.Redis(port=durable.port, decode_responses=True)
        plain.config_resetstat()
        assert durable.process is not None
        pid = durable.process.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            with pytest.raises(StoreUnavailable, match="may or may not have taken effect"):
                cache.put(digest_of(1), "/during")
        finally:
            os.kill(pid, signal.SIGCONT)
        original, paths = read_raw(cache)[digest_of(1)]
        assert original == "/first"
        assert paths in ({"/first"}, {"/first", "/during"})
        evalsha = plain.info("commandstats").get("cmdstat_evalsha", {"calls": 0})
        assert evalsha["calls"] <= 1
        plain.close()
        cache.close()
