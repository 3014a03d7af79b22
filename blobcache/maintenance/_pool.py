"""Calls in flight on a few threads, with a bounded window, results in input order."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def bounded_map(
    function: Callable[[Item], Result],
    items: Iterable[Item],
    workers: int,
    *,
    window: int | None = None,
) -> Iterator[Result]:
    """``map(function, items)`` on ``workers`` threads, at most ``window`` calls pending.

    Consumes ``items`` lazily, so a stream of any length runs in bounded
    memory. The first error is raised when its result is reached; calls not
    yet started are cancelled. One worker runs everything in the caller's
    thread.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers!r}")
    if workers == 1:
        yield from map(function, items)
        return
    limit = window or 4 * workers
    pending: deque[Future[Result]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="blobcache") as pool:
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                if len(pending) >= limit:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
