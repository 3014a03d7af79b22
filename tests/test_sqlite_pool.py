"""The SQLite connection pool: bounded, never shared between threads at once, fork-safe."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Any

import pytest

from blobcache import BlobCache
from tests.helpers import CacheFactory, backend_of, digest_of, read_raw, run_together

pytestmark = pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="counts descriptors through /proc/self/fd"
)


def open_connections(target: str) -> int:
    """Open connections to ``target`` in this process, counted by their WAL descriptors.

    Each connection holds its own descriptor on ``-wal`` until it closes. (Not the
    main file's: while any connection holds its POSIX locks, SQLite keeps a closed
    connection's descriptor on the main file for the next connection to reuse.)
    """
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == f"{target}-wal":
                count += 1
        except OSError:  # the descriptor listdir itself used, closed since
            continue
    return count


def wait_until(condition: Any, what: str, deadline: float = 120.0) -> None:
    """Wait (bounded, generously) for ``condition()``; the test fails, never hangs."""
    give_up = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


class TestBoundedPool:
    def test_thousand_short_lived_threads_leave_at_most_pool_size(
        self, make_cache: CacheFactory
    ) -> None:
        """1,000 threads, a thread per request, in waves of 25 at once: while a wave waits on
        the write lock it holds 25 connections; afterwards at most pool_size stay open."""
        cache = make_cache("sqlite", pool_size=4, synchronous="NORMAL")
        target = backend_of(cache).target
        cache.put(digest_of(0), "/seed")
        blocker = sqlite3.connect(target, isolation_level=None)
        errors: list[BaseException] = []

        def request(n: int) -> None:
            try:
                cache.put(digest_of(n % 50), f"/request/{n}")
                assert cache.get(digest_of(n % 50)) is not None
            except BaseException as exc:
                errors.append(exc)

        waves, size = 40, 25
        for wave in range(waves):
            blocked = wave == 0
            if blocked:  # hold the write lock: the wave's puts wait with their connections
                blocker.execute("BEGIN IMMEDIATE")
            threads = [
                threading.Thread(target=request, args=(wave * size + n,)) for n in range(size)
            ]
            for thread in threads:
                thread.start()
            if blocked:
                wait_until(lambda: open_connections(target) >= size + 1, "25 leased connections")
                blocker.execute("COMMIT")
            for thread in threads:
                thread.join()
        blocker.close()

        assert errors == []
        assert open_connections(target) <= 4
        assert len(read_raw(cache)) == 50
        assert sum(len(paths) for _, paths in read_raw(cache).values()) == 1 + waves * size

    def test_sequential_threads_reuse_one_connection(self, make_cache: CacheFactory) -> None:
        """Threads that come one after another all use the same pooled connection."""
        cache = make_cache("sqlite")
        target = backend_of(cache).target
        cache.put(digest_of(1), "/p")
        seen: set[int] = set()

        def request() -> None:
            connection = backend_of(cache)._connection()
            seen.add(id(connection))
            backend_of(cache)._release(connection)
            assert cache.get(digest_of(1)) == "/p"

        for _ in range(200):
            thread = threading.Thread(target=request)
            thread.start()
            thread.join()
        assert len(seen) == 1
        assert open_connections(target) == 1

    def test_beyond_pool_size_is_closed_when_given_back(self, make_cache: CacheFactory) -> None:
        """Five connections leased at once, then given back: two stay idle, three close."""
        cache = make_cache("sqlite", pool_size=2)
        backend = backend_of(cache)
        leased = [backend._connection() for _ in range(5)]
        assert len({id(connection) for connection in leased}) == 5
        assert open_connections(backend.target) == 5
        for connection in leased:
            backend._release(connection)
        assert open_connections(backend.target) == 2
        assert backend._idle == leased[:2]

    def test_never_leased_to_two_threads_at_once(
        self, make_cache: CacheFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Threads racing through puts, reads and bulk calls never hold the same connection."""
        cache = make_cache("sqlite", pool_size=3, synchronous="NORMAL")
        backend = backend_of(cache)
        lease, give_back = backend._connection, backend._release
        held: set[int] = set()
        guard = threading.Lock()
        clashes: list[int] = []

        def leasing() -> sqlite3.Connection:
            connection = lease()
            with guard:
                if id(connection) in held:
                    clashes.append(id(connection))
                held.add(id(connection))
            return connection  # type: ignore[no-any-return]

        def releasing(connection: sqlite3.Connection) -> None:
            with guard:
                held.discard(id(connection))
            give_back(connection)

        monkeypatch.setattr(backend, "_connection", leasing)
        monkeypatch.setattr(backend, "_release", releasing)
        barrier = threading.Barrier(12)

        def work(n: int) -> None:
            barrier.wait()
            for round_ in range(30):
                cache.put(digest_of(n), f"/{round_}")
                cache.get_many([digest_of(n), digest_of(n + 1)])
                cache.put_many([(digest_of(n), f"/bulk/{round_}")])

        threads = [threading.Thread(target=work, args=(n,)) for n in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert clashes == []
        assert held == set()
        assert all(len(paths) == 60 for _, paths in read_raw(cache).values())

    def test_close_waits_for_leased_connections(self, make_cache: CacheFactory) -> None:
        """close() closes idle connections at once; one in use is closed when given back,
        never under the call using it; the cache reopens on next use."""
        cache = make_cache("sqlite")
        backend = backend_of(cache)
        cache.put(digest_of(1), "/p")
        in_use = backend._connection()
        cache.close()
        assert backend._idle == []
        assert in_use.execute("SELECT count(*) FROM blobcache_path").fetchone() == (1,)
        backend._release(in_use)
        with pytest.raises(sqlite3.ProgrammingError):
            in_use.execute("SELECT 1")
        assert cache.get(digest_of(1)) == "/p"
        assert open_connections(backend.target) == 1

    def test_pool_size_from_the_url(self, tmp_path: Any) -> None:
        """pool_size is an option like the others, from the URL's query."""
        with BlobCache.from_url(f"sqlite:///{tmp_path / 'c.db'}?pool_size=1") as cache:
            backend = backend_of(cache)
            first, second = backend._connection(), backend._connection()
            backend._release(first)
            backend._release(second)
            assert backend._idle == [first]

    def test_connection_from_before_close_is_never_leased(self, make_cache: CacheFactory) -> None:
        """A connection given back while close() ran (it lands in the pool: giving back
        takes no lock) is closed by the next lease instead of being handed out."""
        cache = make_cache("sqlite")
        backend = backend_of(cache)
        stale = backend._connection()
        cache.close()
        backend._idle.append(stale)  # what a give-back racing close() can leave
        fresh = backend._connection()
        assert fresh is not stale
        with pytest.raises(sqlite3.ProgrammingError):
            stale.execute("SELECT 1")
        backend._release(fresh)
        assert backend._idle == [fresh]


class TestFreshFile:
    def test_threads_opening_a_fresh_file_at_once_all_succeed(self, tmp_path: Any) -> None:
        """Eight threads whose first call opens a brand-new file at once: the one that
        creates the schema wins, and none of the others takes the half-seen file for
        another application's (the foreign-file check reads the schema in one snapshot)."""
        for attempt in range(10):
            path = tmp_path / f"fresh-{attempt}.db"
            with BlobCache.from_url(f"sqlite:///{path}") as cache:
                run_together(lambda n: cache.put(digest_of(n), f"/p/{n}"), list(range(8)))
                assert set(read_raw(cache)) == {digest_of(n) for n in range(8)}
