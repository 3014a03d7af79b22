"""Every write script against every broken state zot can leave: the result is what the
tolerant reading of the state, changed as the contract says, gives."""

from __future__ import annotations

import itertools

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blobcache import BlobCache
from blobcache._backends.base import Item, Removal
from tests.helpers import backend_of, digest_of

PATHS = st.sampled_from(["/a", "/b", "/B", "/é", "/zz", "/a/b"])
STATES = st.tuples(st.none() | PATHS, st.frozensets(PATHS, max_size=4))
_digests = itertools.count(1000)


def seed(
    cache: BlobCache, client: redis.Redis, original: str | None, members: frozenset[str]
) -> str:
    """Write a raw state for a digest of its own, as another writer could leave it."""
    backend = backend_of(cache)
    digest = digest_of(next(_digests))
    if original is not None:
        client.hset(backend.originals_key, digest, original)
    if members:
        client.sadd(backend.paths_key(digest), *members)
    return digest


def stored(cache: BlobCache, client: redis.Redis, digest: str) -> tuple[str | None, set[str]]:
    backend = backend_of(cache)
    original = client.hget(backend.originals_key, digest)
    return (None if original is None else str(original)), set(
        map(str, client.smembers(backend.paths_key(digest)))
    )


LOOSE = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class TestScriptsOnAnyState:
    @LOOSE
    @given(state=STATES, path=PATHS)
    def test_put(
        self,
        rcache: BlobCache,
        client: redis.Redis,
        state: tuple[str | None, frozenset[str]],
        path: str,
    ) -> None:
        """put adds the path to what readers saw, and leaves the layout whole."""
        digest = seed(rcache, client, *state)
        before = Item.tolerant(*state)
        backend_of(rcache).put(digest, path)
        after = backend_of(rcache).get(digest)
        if before is None:
            assert after == Item(path, frozenset({path}))
        else:
            assert after == Item(before.original, before.paths | {path})
        original, members = stored(rcache, client, digest)
        assert original is not None
        assert original in members
        assert path in members

    @LOOSE
    @given(state=STATES, path=PATHS)
    def test_delete(
        self,
        rcache: BlobCache,
        client: redis.Redis,
        state: tuple[str | None, frozenset[str]],
        path: str,
    ) -> None:
        """delete does what Item.without says to what readers saw, and reports it so."""
        digest = seed(rcache, client, *state)
        before = Item.tolerant(*state)
        raw_before = stored(rcache, client, digest)
        removal = backend_of(rcache).delete(digest, path)
        after = backend_of(rcache).get(digest)
        if before is None or path not in before.paths:
            assert removal == Removal(removed=False)
            assert stored(rcache, client, digest) == raw_before  # nothing written
            return
        assert after == before.without(path)
        assert removal == Removal.between(before, after)
        original, members = stored(rcache, client, digest)
        if after is None:
            assert (original, members) == (None, set())
        else:
            assert original == after.original
            assert members  # never an original without its set
