"""Counting the cache: digests, paths, copies per digest, and the largest items."""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass

from blobcache._cache import BlobCache
from blobcache.maintenance._stored import MAX_ITEM_BYTES, item_bytes, stored_items


@dataclass(frozen=True, slots=True)
class ItemSize:
    """One item's size as DynamoDB counts it, and its room left below the 400 KB limit.

    ``headroom_bytes`` is ``None`` on Redis, whose layout has no item limit.

    .. versionadded:: 0.1
    """

    digest: str
    paths: int
    bytes: int
    headroom_bytes: int | None


@dataclass(frozen=True, slots=True)
class Stats:
    """What `stats` counted.

    .. versionadded:: 0.1
    """

    digests: int
    paths: int
    #: ``(copies, digests)`` pairs, by copies: how many digests have that many paths.
    histogram: tuple[tuple[int, int], ...]
    #: The largest items, largest first.
    largest: tuple[ItemSize, ...]
    #: DynamoDB's item size limit the headroom is measured against; ``None`` on Redis.
    limit_bytes: int | None = MAX_ITEM_BYTES


def stats(cache: BlobCache, *, top: int = 5, segments: int | None = None) -> Stats:
    """Count digests and paths, copies per digest, and find the ``top`` largest items.

    Sizes are those of the stored form (relative paths in relative-path
    mode), counted as DynamoDB does, whatever the backend, so a SQLite cache
    can be checked before it moves to DynamoDB. Streams in constant memory.

    Args:
        cache: the cache to count.
        top: how many of the largest items to report.
        segments: parallel Scan segments (DynamoDB).

    Returns:
        A `Stats`.

    .. versionadded:: 0.1
    """
    if top < 0:
        raise ValueError(f"top must be zero or more, not {top!r}")
    digests = paths = 0
    copies: Counter[int] = Counter()
    heap: list[tuple[int, str, int]] = []
    for stored in stored_items(cache, segments):
        every = (
            stored.paths | stored.legacy_paths | ({stored.original} if stored.original else set())
        )
        digests += 1
        paths += len(every)
        copies[len(every)] += 1
        entry = (item_bytes(stored.digest, stored), stored.digest, len(every))
        if len(heap) < top:
            heapq.heappush(heap, entry)
        elif top and entry > heap[0]:
            heapq.heapreplace(heap, entry)
    # A SQLite cache may move to DynamoDB, so its headroom is shown; zot's Redis layout
    # keeps paths in a set with no size limit, and a Redis cache stays on Redis.
    limit = None if cache.name == "redis" else MAX_ITEM_BYTES
    largest = tuple(
        ItemSize(digest, count, size, None if limit is None else limit - size)
        for size, digest, count in sorted(heap, reverse=True)
    )
    return Stats(digests, paths, tuple(sorted(copies.items())), largest, limit)
