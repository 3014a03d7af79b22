"""zot's Redis layout: interop both ways, tolerant reads, zot's locks, keys of the wrong type."""

from __future__ import annotations

import random
import threading

import pytest
import redis

from blobcache import BlobCache, BlobCacheError, BlobEntry, CacheMiss, StoreUnavailable
from tests.helpers import assert_invariants, backend_of, digest_of, read_raw, record_requests
from tests.redis.zot import Zot

D, E = digest_of(1), digest_of(2)
# Generous: nothing waits on it unless something hangs.
DEADLINE = 120.0


def keys(cache: BlobCache, digest: str) -> tuple[str, str, str]:
    """The originals hash, the digest's path set and zot's lock key, spelled out."""
    prefix = backend_of(cache).prefix
    return (
        f"{prefix}:blobs:original",
        f"{prefix}:blobs:duplicates:{digest}",
        f"{prefix}:locks:{digest}",
    )


class TestLayout:
    def test_keys_are_zots(self, rcache: BlobCache, client: redis.Redis) -> None:
        """A put writes the hash field and the set zot reads, and nothing else."""
        rcache.put(D, "/r/one")
        rcache.put(D, "/r/two")
        hash_key, set_key, _ = keys(rcache, D)
        assert client.hgetall(hash_key) == {D: "/r/one"}
        assert client.smembers(set_key) == {"/r/one", "/r/two"}
        prefix = backend_of(rcache).prefix
        assert set(client.scan_iter(match=f"{prefix}:*")) == {hash_key, set_key}

    def test_default_prefix_is_zot(self, blobcache_redis_server: object) -> None:
        """Without ?prefix, keys live under 'zot:', as zot's driver writes them."""
        from blobcache.testing import RedisServer

        assert isinstance(blobcache_redis_server, RedisServer)
        cache = BlobCache.from_url(f"{blobcache_redis_server.url}/7")
        plain = redis.Redis(port=blobcache_redis_server.port, db=7, decode_responses=True)
        try:
            cache.put(D, "/z")
            assert plain.hget("zot:blobs:original", D) == "/z"
            assert plain.smembers(f"zot:blobs:duplicates:{D}") == {"/z"}
        finally:
            plain.flushdb()
            plain.close()
            cache.close()

    def test_last_delete_removes_field_and_set_together(
        self, rcache: BlobCache, client: redis.Redis
    ) -> None:
        """Deleting the last path leaves neither the hash field nor the set."""
        rcache.put(D, "/a")
        rcache.put(D, "/b")
        rcache.delete(D, "/a")
        rcache.delete(D, "/b")
        hash_key, set_key, _ = keys(rcache, D)
        assert client.hexists(hash_key, D) is False
        assert client.exists(set_key) == 0


class TestRoundTrips:
    def test_every_call_is_one_request(self, rcache: BlobCache) -> None:
        """Once the scripts are loaded, each call sends one EVALSHA, whatever the delete does."""
        rcache.put(E, "/warm")  # every script loaded (another test may flush them)
        assert rcache.has(E, "/warm")
        rcache.delete(E, "/warm")
        sent = record_requests(rcache)
        calls: list[tuple[str, tuple[str, ...]]] = [
            ("put", (D, "/o")),
            ("put", (D, "/b")),
            ("get", (D,)),
            ("get_all", (D,)),
            ("has", (D, "/b")),
            ("delete", (D, "/nope")),
            ("delete", (D, "/o")),  # the original: promotes
            ("delete", (D, "/b")),  # the last path: removes the item
        ]
        for n, (method, args) in enumerate(calls, start=1):
            getattr(rcache, method)(*args)
            assert sent == ["EVALSHA"] * n

    def test_a_flushed_script_cache_is_reloaded(
        self, rcache: BlobCache, client: redis.Redis
    ) -> None:
        """After SCRIPT FLUSH (or a restart), NOSCRIPT loads the script once and resends."""
        rcache.put(D, "/a")
        client.script_flush()
        sent = record_requests(rcache)
        rcache.put(D, "/b")
        assert sent == ["EVALSHA", "SCRIPT", "EVALSHA"]
        assert rcache.get_all(D) == ["/a", "/b"]


class TestZotInterop:
    def test_blobcache_reads_what_zot_writes(self, rcache: BlobCache, zot: Zot) -> None:
        """Items written with zot's own command sequence read back correctly."""
        zot.put_blob(D, "/zot/a")
        zot.put_blob(D, "/zot/b")
        zot.put_blob(E, "/zot/e")
        assert rcache.get(D) == "/zot/a"
        assert rcache.get_all(D) == ["/zot/a", "/zot/b"]
        assert rcache.has(D, "/zot/b")
        zot.delete_blob(D, "/zot/a")  # zot promotes a random member: here the only one
        assert rcache.get_all(D) == ["/zot/b"]
        assert sorted(rcache.entries(), key=lambda e: e.digest) == [
            BlobEntry(D, "/zot/b", frozenset({"/zot/b"})),
            BlobEntry(E, "/zot/e", frozenset({"/zot/e"})),
        ]

    def test_zot_reads_what_blobcache_writes(self, rcache: BlobCache, zot: Zot) -> None:
        """zot's HGET, SMEMBERS and SISMEMBER see what blobcache put and deleted."""
        for path in ("/bc/orig", "/bc/z", "/bc/b"):
            rcache.put(D, path)
        assert zot.get_blob(D) == "/bc/orig"
        assert sorted(zot.get_all_blobs(D) or []) == ["/bc/b", "/bc/orig", "/bc/z"]
        assert zot.has_blob(D, "/bc/z")
        rcache.delete(D, "/bc/orig")
        assert zot.get_blob(D) == "/bc/b"
        assert zot.has_blob(D, "/bc/orig") is False
        rcache.delete(D, "/bc/b")
        rcache.delete(D, "/bc/z")
        assert zot.get_blob(D) is None
        assert zot.has_blob(D, "/bc/z") is False

    def test_mixed_writers_keep_the_invariants(self, rcache: BlobCache, zot: Zot) -> None:
        """zot and blobcache writing the same digests in turn leave a valid layout."""
        for n in range(12):
            digest = digest_of(n % 3)
            writer = zot.put_blob if n % 2 else rcache.put
            writer(digest, f"/p/{n}")
        for n in range(0, 12, 4):
            (zot.delete_blob if n % 8 else rcache.delete)(digest_of(n % 3), f"/p/{n}")
        assert_invariants(read_raw(rcache))
        for entry in rcache.entries():
            assert zot.get_blob(entry.digest) == entry.original


class TestBesideARunningZot:
    def test_zot_and_blobcache_writing_at_once_keep_the_invariants(
        self, rcache: BlobCache, zot: Zot
    ) -> None:
        """Threads running zot's locked sequences and threads running blobcache's scripts on
        the same digests: blobcache never lands inside zot's critical section, so every item
        keeps an original among its paths, and no item is left without paths."""
        errors: list[BaseException] = []
        start = threading.Barrier(4)

        def work(seed: int, as_zot: bool) -> None:
            rng = random.Random(seed)
            try:
                start.wait(DEADLINE)
                for _ in range(150):
                    digest, path = digest_of(rng.randrange(3)), f"/p/{rng.randrange(5)}"
                    if as_zot:
                        (zot.put_blob if rng.random() < 0.6 else zot.delete_blob)(digest, path)
                    else:
                        (rcache.put if rng.random() < 0.6 else rcache.delete)(digest, path)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(seed, seed % 2 == 0)) for seed in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(DEADLINE)
        assert errors == []
        items = read_raw(rcache)
        assert_invariants(items)
        for entry in rcache.entries():
            assert zot.get_blob(entry.digest) == entry.original
            assert entry.paths == items[entry.digest][1]


class TestTolerantReads:
    def test_original_outside_the_set(self, rcache: BlobCache, client: redis.Redis) -> None:
        """An original missing from its set is still one of the paths; a put repairs it."""
        hash_key, set_key, _ = keys(rcache, D)
        client.hset(hash_key, D, "/orig")
        client.sadd(set_key, "/dup")
        assert rcache.get_all(D) == ["/orig", "/dup"]
        assert rcache.has(D, "/orig")
        rcache.put(D, "/new")
        assert client.smembers(set_key) == {"/orig", "/dup", "/new"}

    def test_set_without_original(self, rcache: BlobCache, client: redis.Redis) -> None:
        """A set with no original reads with its smallest path as original; a put writes it."""
        hash_key, set_key, _ = keys(rcache, D)
        client.sadd(set_key, "/m", "/c")
        assert rcache.get(D) == "/c"
        assert list(rcache.entries()) == [BlobEntry(D, "/c", frozenset({"/c", "/m"}))]
        rcache.put(D, "/a")
        assert client.hget(hash_key, D) == "/c"
        assert rcache.get_all(D) == ["/c", "/a", "/m"]

    def test_original_without_set(self, rcache: BlobCache, client: redis.Redis) -> None:
        """An original with no set is the item's one path; deleting it removes the item."""
        hash_key, _, _ = keys(rcache, D)
        client.hset(hash_key, D, "/lonely")
        assert rcache.get_all(D) == ["/lonely"]
        assert list(rcache.entries()) == [BlobEntry(D, "/lonely", frozenset({"/lonely"}))]
        rcache.delete(D, "/lonely")
        with pytest.raises(CacheMiss):
            rcache.get(D)
        assert client.hexists(hash_key, D) is False

    def test_deleting_the_smallest_of_a_set_without_original(
        self, rcache: BlobCache, client: redis.Redis
    ) -> None:
        """The original readers saw goes; the next smallest path is written down as original."""
        hash_key, set_key, _ = keys(rcache, D)
        client.sadd(set_key, "/a", "/b", "/c")
        rcache.delete(D, "/a")
        assert client.hget(hash_key, D) == "/b"
        assert rcache.get_all(D) == ["/b", "/c"]

    def test_duplicate_delete_never_empties_the_set_under_an_original(
        self, rcache: BlobCache, client: redis.Redis
    ) -> None:
        """Deleting the set's last member while the original sits outside keeps the original."""
        hash_key, set_key, _ = keys(rcache, D)
        client.hset(hash_key, D, "/orig")
        client.sadd(set_key, "/dup")
        rcache.delete(D, "/dup")
        assert rcache.get_all(D) == ["/orig"]
        assert client.smembers(set_key) == {"/orig"}


class TestZotLock:
    def test_a_held_lock_blocks_writes_then_gives_up(
        self, make_cache: object, rcache: BlobCache, client: redis.Redis
    ) -> None:
        """While zot holds the digest's lock, put and delete change nothing and finally raise."""
        rcache.put(D, "/before")
        lock_key = keys(rcache, D)[2]
        client.set(lock_key, "zot-token", px=60_000)
        impatient = BlobCache.from_url(
            backend_of(rcache).target, max_attempts=3, backoff=0.001, max_backoff=0.002
        )
        try:
            before = read_raw(rcache)
            with pytest.raises(StoreUnavailable, match="zot held the Redis lock") as caught:
                impatient.put(D, "/during")
            assert lock_key in str(caught.value)
            assert "after 3 attempts" in str(caught.value)
            assert caught.value.outcome_unknown is False
            with pytest.raises(StoreUnavailable):
                impatient.delete(D, "/before")
            assert read_raw(rcache) == before
            impatient.put(E, "/other")  # other digests are not held up
            assert impatient.get(E) == "/other"
        finally:
            impatient.close()

    def test_a_write_goes_through_once_the_lock_is_released(
        self, rcache: BlobCache, client: redis.Redis
    ) -> None:
        """A put that found the lock retries and lands once zot releases it."""
        _, _, lock_key = keys(rcache, D)
        client.set(lock_key, "zot-token", px=60_000)
        backend = backend_of(rcache)
        run = backend._run
        replies: list[object] = []

        def release_after_first(*args: object, **kwargs: object) -> object:
            reply = run(*args, **kwargs)
            replies.append(reply)
            client.delete(lock_key)  # zot finishes its critical section
            return reply

        backend._run = release_after_first
        rcache.put(D, "/after")
        assert replies[0] == [0]  # the first run saw the lock and changed nothing
        assert len(replies) == 2
        assert rcache.get_all(D) == ["/after"]


class TestWrongType:
    def test_a_set_key_of_the_wrong_type_is_named(
        self, rcache: BlobCache, client: redis.Redis
    ) -> None:
        """A string where the path set belongs: every call names the key; nothing is written."""
        hash_key, set_key, _ = keys(rcache, D)
        client.set(set_key, "not a set")
        for call in (
            lambda: rcache.put(D, "/p"),
            lambda: rcache.get(D),
            lambda: rcache.delete(D, "/p"),
        ):
            with pytest.raises(BlobCacheError, match="holds a string, not the set") as caught:
                call()
            assert set_key in str(caught.value)
        assert client.hexists(hash_key, D) is False
        assert client.get(set_key) == "not a set"

    def test_the_hash_key_of_the_wrong_type_is_named(
        self, rcache: BlobCache, client: redis.Redis
    ) -> None:
        """A list where the originals hash belongs is named in the error, and left alone."""
        hash_key, _, _ = keys(rcache, D)
        client.rpush(hash_key, "x")
        with pytest.raises(BlobCacheError, match="holds a list, not the hash") as caught:
            rcache.put(D, "/p")
        assert hash_key in str(caught.value)
        with pytest.raises(BlobCacheError, match=hash_key):
            list(rcache.entries())
        assert client.lrange(hash_key, 0, -1) == ["x"]
