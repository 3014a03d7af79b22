"""DynamoDB's 400 KB item limit: the put that would pass it raises and changes nothing."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from blobcache import ItemTooLarge
from tests.dynamodb.helpers import D, Server, make_on, normalised, raw_get
from tests.helpers import CacheFactory


class TestItemLimit:
    """dynalite enforces DynamoDB's 400 KB item limit; moto does not on ADD, so dynalite only."""

    def test_put_past_the_limit_raises_and_changes_nothing(
        self, make_cache: CacheFactory, dynalite_server: Server
    ) -> None:
        """The put that would pass 400 KB raises ItemTooLarge naming digest and path count."""
        cache = make_on(make_cache, dynalite_server)
        filler = "x" * 3_990
        stored, before = 0, None
        with pytest.raises(ItemTooLarge) as raised:  # noqa: PT012 - the loop is the setup
            for n in range(200):
                before = normalised(raw_get(cache, D))
                cache.put(D, f"/{n:04d}/{filler}")
                stored += 1
        error = raised.value
        assert type(error) is ItemTooLarge
        assert 90 < stored < 110  # about 400 KB of 4 KB paths
        assert (error.digest, error.paths) == (D, stored)
        assert D in str(error)
        assert f"{stored} paths" in str(error)
        assert isinstance(error.cause, ClientError)
        assert before is not None
        assert normalised(raw_get(cache, D)) == before
        assert len(cache.get_all(D)) == stored
        assert cache.get(D) == f"/0000/{filler}"

    def test_known_path_still_puts_on_a_full_item(
        self, make_cache: CacheFactory, dynalite_server: Server
    ) -> None:
        """Re-putting a path an item already holds does not grow it, so it still succeeds."""
        cache = make_on(make_cache, dynalite_server)
        filler = "y" * 3_990
        n = 0
        with pytest.raises(ItemTooLarge):  # noqa: PT012 - fill until full
            while n < 200:
                cache.put(D, f"/{n:04d}/{filler}")
                n += 1
        before = normalised(raw_get(cache, D))
        cache.put(D, f"/0001/{filler}")
        assert normalised(raw_get(cache, D)) == before
        cache.delete(D, f"/0001/{filler}")
        cache.put(D, f"/{n:04d}/{filler}")  # room for one again
        assert cache.has(D, f"/{n:04d}/{filler}")
