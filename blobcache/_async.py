"""`AsyncBlobCache`: the `BlobCache` API as coroutines that never block the event loop."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TypeVar, Unpack

from blobcache._cache import BlobCache, BlobEntry
from blobcache._options import OptionsDict

_T = TypeVar("_T")
# Entries handed over per trip to a worker thread by AsyncBlobCache.entries().
_ENTRIES_PER_TRIP = 256


class AsyncBlobCache:
    """A `BlobCache` for asyncio code, such as async Flask or Django views and ASGI apps.

    Every call runs the blocking `BlobCache` call in a worker thread
    (``asyncio.to_thread``), so the event loop keeps serving other requests while
    SQLite waits for a lock or DynamoDB answers. The rules, errors and results are
    those of `BlobCache`; one `BlobCache` may serve sync and async code at once.

    .. code-block:: python

        cache = AsyncBlobCache.from_url("sqlite:///blobcache.db")
        await cache.put(digest, path)
        original = await cache.get(digest)

    .. versionadded:: 0.1
    """

    def __init__(self, cache: BlobCache) -> None:
        #: The `BlobCache` the calls run on.
        self.sync = cache

    @classmethod
    def from_url(
        cls,
        url: str | None = None,
        *,
        root: str | os.PathLike[str] | None = None,
        **options: Unpack[OptionsDict],
    ) -> AsyncBlobCache:
        """Open the cache at ``url``, as `BlobCache.from_url` does (no I/O happens here)."""
        return cls(BlobCache.from_url(url, root=root, **options))

    @property
    def name(self) -> str:
        """The backend's name, as `BlobCache.name`."""
        return self.sync.name

    @property
    def uses_relative_paths(self) -> bool:
        """Whether a root was given, as `BlobCache.uses_relative_paths`."""
        return self.sync.uses_relative_paths

    @property
    def root(self) -> str | None:
        """The absolute root of relative-path mode, or ``None``."""
        return self.sync.root

    async def create_table(self) -> None:
        """`BlobCache.create_table`, off the event loop."""
        await _off_loop(self.sync.create_table)

    async def put(self, digest: str, path: str) -> None:
        """`BlobCache.put`, off the event loop."""
        await _off_loop(self.sync.put, digest, path)

    async def get(self, digest: str) -> str:
        """`BlobCache.get`, off the event loop; raises `CacheMiss`."""
        return await _off_loop(self.sync.get, digest)

    async def get_all(self, digest: str) -> list[str]:
        """`BlobCache.get_all`, off the event loop; raises `CacheMiss`."""
        return await _off_loop(self.sync.get_all, digest)

    async def has(self, digest: str, path: str) -> bool:
        """`BlobCache.has`, off the event loop."""
        return await _off_loop(self.sync.has, digest, path)

    async def delete(self, digest: str, path: str) -> None:
        """`BlobCache.delete`, off the event loop."""
        await _off_loop(self.sync.delete, digest, path)

    async def put_many(self, pairs: Iterable[tuple[str, str]]) -> None:
        """`BlobCache.put_many`, off the event loop (the iterable is read in the worker)."""
        await _off_loop(self.sync.put_many, pairs)

    async def get_many(self, digests: Iterable[str]) -> dict[str, str]:
        """`BlobCache.get_many`, off the event loop."""
        return await _off_loop(self.sync.get_many, digests)

    async def delete_many(self, pairs: Iterable[tuple[str, str]]) -> None:
        """`BlobCache.delete_many`, off the event loop."""
        await _off_loop(self.sync.delete_many, pairs)

    async def entries(self) -> AsyncIterator[BlobEntry]:
        """`BlobCache.entries` as an async iterator, fetched in worker threads in batches."""
        iterator = self.sync.entries()
        while True:
            batch: list[BlobEntry] = await _off_loop(
                list, itertools.islice(iterator, _ENTRIES_PER_TRIP)
            )
            for entry in batch:
                yield entry
            if len(batch) < _ENTRIES_PER_TRIP:
                return

    async def close(self) -> None:
        """`BlobCache.close`, off the event loop."""
        await _off_loop(self.sync.close)

    async def __aenter__(self) -> AsyncBlobCache:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<AsyncBlobCache {self.sync!r}>"


async def _off_loop(function: Callable[..., _T], *args: object) -> _T:
    return await asyncio.to_thread(function, *args)
