"""A Hypothesis state machine drives each backend against a plain model of the contract."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from blobcache import BlobCache, BlobEntry, CacheMiss
from tests.helpers import ALL_BACKENDS, CacheFactory, assert_invariants, digest_of, read_raw

DIGESTS = st.sampled_from([digest_of(n) for n in range(3)])
# Few paths, so puts and deletes collide often; mixed case and non-ASCII test the ordering.
PATHS = st.sampled_from(["/a", "/b", "/B", "/c/d", "/é", "/zz"])


class Model:
    """The contract, as plainly as it can be written: digest -> (original, paths)."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[str, set[str]]] = {}

    def put(self, digest: str, path: str) -> None:
        original, paths = self.items.get(digest, (path, set()))
        self.items[digest] = (original, paths | {path})

    def delete(self, digest: str, path: str) -> None:
        if digest not in self.items:
            return
        original, paths = self.items[digest]
        remaining = paths - {path}
        if not remaining:
            del self.items[digest]
        else:
            self.items[digest] = (original if original != path else min(remaining), remaining)


def machine_for(open_cache: Callable[[], BlobCache]) -> type[RuleBasedStateMachine]:
    class CacheMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.cache = open_cache()
            self.model = Model()

        @rule(digest=DIGESTS, path=PATHS)
        def put(self, digest: str, path: str) -> None:
            self.cache.put(digest, path)
            self.model.put(digest, path)

        @rule(digest=DIGESTS, path=PATHS)
        def delete(self, digest: str, path: str) -> None:
            self.cache.delete(digest, path)
            self.model.delete(digest, path)

        @rule(digest=DIGESTS)
        def get_all(self, digest: str) -> None:
            if digest not in self.model.items:
                with pytest.raises(CacheMiss):
                    self.cache.get_all(digest)
                return
            original, paths = self.model.items[digest]
            assert self.cache.get(digest) == original
            assert self.cache.get_all(digest) == [original, *sorted(paths - {original})]

        @rule(digest=DIGESTS, path=PATHS)
        def has(self, digest: str, path: str) -> None:
            expected = path in self.model.items.get(digest, ("", set()))[1]
            assert self.cache.has(digest, path) is expected

        @rule()
        def entries(self) -> None:
            assert set(self.cache.entries()) == {
                BlobEntry(digest, original, frozenset(paths))
                for digest, (original, paths) in self.model.items.items()
            }

        @invariant()
        def stored_state_matches_the_model(self) -> None:
            stored = read_raw(self.cache)
            assert_invariants(stored)
            assert stored == {
                digest: (original, frozenset(paths))
                for digest, (original, paths) in self.model.items.items()
            }

        def teardown(self) -> None:
            self.cache.close()

    return CacheMachine


class TestAgainstModel:
    @pytest.mark.parametrize("kind", ALL_BACKENDS)
    def test_backend_follows_the_model(self, make_cache: CacheFactory, kind: str) -> None:
        """Any sequence of calls leaves exactly the model's state: no lost path, no empty item,
        original first-writer-wins and promoted to the smallest remaining path."""
        machine = machine_for(lambda: make_cache(kind))
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=25,
                stateful_step_count=20,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
            ),
        )
