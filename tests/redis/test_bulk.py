"""The Redis backend's bulk calls: one script run per batch, the final state of the loop."""

from __future__ import annotations

import random

import redis

from blobcache import BlobCache
from blobcache._backends.base import Item, Removal
from tests.helpers import (
    CacheFactory,
    assert_invariants,
    backend_of,
    digest_of,
    read_raw,
    record_requests,
)

D, E = digest_of(1), digest_of(2)


def script(seed: int, count: int) -> list[tuple[str, str]]:
    """Pairs over few digests and paths, so they collide often."""
    rng = random.Random(seed)
    paths = ["/a", "/b", "/B", "/é", "/z"]
    return [(digest_of(rng.randrange(4)), rng.choice(paths)) for _ in range(count)]


class TestBulk:
    def test_put_many_and_delete_many_match_the_loop(self, make_cache: CacheFactory) -> None:
        """The same pairs give the same stored state and Removals as single calls, in one
        EVALSHA each."""
        for seed in range(8):
            bulk, loop = make_cache("redis"), make_cache("redis")
            puts, deletes = script(seed, 40), script(seed + 100, 40)
            bulk.put(digest_of(100), "/warm")  # loads both scripts on the server
            bulk.delete(digest_of(100), "/warm")
            sent = record_requests(bulk)
            backend_of(bulk).put_many(puts)
            removals = backend_of(bulk).delete_many(deletes)
            assert sent.count("EVALSHA") == 2
            for digest, path in puts:
                backend_of(loop).put(digest, path)
            expected = [backend_of(loop).delete(digest, path) for digest, path in deletes]
            assert removals == expected
            assert read_raw(bulk) == read_raw(loop)
            assert_invariants(read_raw(bulk))

    def test_first_path_given_becomes_the_original(self, rcache: BlobCache) -> None:
        """Within one batch the pairs of a digest apply in the order given."""
        backend_of(rcache).put_many([(D, "/z"), (E, "/e"), (D, "/a")])
        assert rcache.get_all(D) == ["/z", "/a"]
        assert backend_of(rcache).delete_many([(D, "/z"), (D, "/nope"), (E, "/e")]) == [
            Removal(removed=True, promoted="/a"),
            Removal(removed=False),
            Removal(removed=True, item_removed=True),
        ]

    def test_get_many_reads_every_digest_in_one_request(self, rcache: BlobCache) -> None:
        """get_many returns found items only, tolerating duplicates, in one EVALSHA."""
        backend_of(rcache).put_many([(D, "/d1"), (D, "/d2"), (E, "/e")])
        rcache.get(D)  # loads the script
        sent = record_requests(rcache)
        found = backend_of(rcache).get_many([D, digest_of(9), E, D])
        assert found == {
            D: Item("/d1", frozenset({"/d1", "/d2"})),
            E: Item("/e", frozenset({"/e"})),
        }
        assert sent == ["EVALSHA"]
        assert backend_of(rcache).get_many([]) == {}

    def test_a_locked_digest_waits_and_keeps_its_order(
        self, rcache: BlobCache, client: redis.Redis
    ) -> None:
        """Pairs of a digest zot has locked are retried after the lock goes, still in order;
        the other digests go through on the first run."""
        backend = backend_of(rcache)
        lock = backend.lock_key(D)
        client.set(lock, "zot", px=60_000)
        run = backend._run
        seen: list[object] = []

        def release_after_first(*args: object, **kwargs: object) -> object:
            reply = run(*args, **kwargs)
            if not seen:
                assert client.hget(backend.originals_key, E) == "/e"  # in while D waited
                client.delete(lock)
            seen.append(reply)
            return reply

        backend._run = release_after_first
        backend.put_many([(D, "/z"), (E, "/e"), (D, "/a")])
        assert seen[0] == [0, 1, 0]
        assert rcache.get_all(D) == ["/z", "/a"]
