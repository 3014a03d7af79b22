"""Contention: a delete whose conditional writes keep losing retries a bounded number of times."""

from __future__ import annotations

from typing import Any

import pytest

from blobcache import BlobCache, BlobCacheError, StoreUnavailable
from tests.dynamodb.helpers import D, Server, make_on, table_of
from tests.helpers import (
    CacheFactory,
    Handler,
    Recorder,
    assert_invariants,
    body_of,
    hooked,
    raw_client,
    read_raw,
)


class TestContention:
    """A delete whose conditional writes keep losing retries a bounded number of times."""

    def intruder(self, cache: BlobCache, limit: int | None) -> tuple[Recorder, Handler]:
        """A hook that, before each conditional write, puts a new path as another writer would."""
        client = raw_client(cache)
        writes = Recorder()

        def intrude(request: Any, **kwargs: Any) -> None:
            if "ConditionExpression" not in body_of(request):
                return
            writes(request, **kwargs)
            if limit is not None and len(writes.sent) > limit:
                return
            path = f"/intruder/{len(writes.sent)}"
            client.update_item(
                TableName=table_of(cache),
                Key={"Digest": {"S": D}},
                UpdateExpression="SET #o = if_not_exists(#o, :p) ADD #s :s",
                ExpressionAttributeNames={"#o": "OriginalBlobPath", "#s": "DuplicateBlobPath"},
                ExpressionAttributeValues={":p": {"S": path}, ":s": {"SS": [path]}},
            )

        return writes, intrude

    def test_gives_up_after_max_attempts(self, make_cache: CacheFactory, server: Server) -> None:
        """Losing every conditional write raises StoreUnavailable naming max_attempts."""
        cache = make_on(make_cache, server, max_attempts=3, backoff=0.001)
        cache.put(D, "/a")
        cache.put(D, "/b")
        writes, intrude = self.intruder(cache, limit=None)
        with hooked(cache, intrude), pytest.raises(BlobCacheError) as raised:
            cache.delete(D, "/a")
        assert type(raised.value) is StoreUnavailable
        assert "gave up" in str(raised.value)
        assert "3 attempts" in str(raised.value)
        assert "max_attempts" in str(raised.value)
        assert len(writes.sent) == 1 + 3  # the single DELETE, then max_attempts rewrites
        items = read_raw(cache)
        assert_invariants(items)
        assert items == {
            D: ("/a", frozenset({"/a", "/b"} | {f"/intruder/{n}" for n in range(1, 5)}))
        }

    def test_wins_once_the_rival_stops(self, make_cache: CacheFactory, server: Server) -> None:
        """A delete that lost twice succeeds on its next try and keeps every rival's put."""
        cache = make_on(make_cache, server, max_attempts=5, backoff=0.001)
        cache.put(D, "/a")
        cache.put(D, "/z")
        writes, intrude = self.intruder(cache, limit=3)
        with hooked(cache, intrude):
            cache.delete(D, "/a")
        assert len(writes.sent) == 4
        rivals = {f"/intruder/{n}" for n in range(1, 4)}
        items = read_raw(cache)
        assert_invariants(items)
        assert items == {D: ("/intruder/1", frozenset({"/z"} | rivals))}
        assert cache.get(D) == "/intruder/1"
