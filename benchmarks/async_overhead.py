"""What AsyncBlobCache adds per call on SQLite: the trip to a worker thread and back.

Run ``python benchmarks/async_overhead.py [--calls N]``. One cache on a temporary file
serves both sides: ``cache.get``/``cache.put`` called directly, and the same calls awaited
through `AsyncBlobCache` inside one event loop. The sides alternate in blocks so machine
noise hits both alike; the table shows the median time per call and async/sync. Then N
concurrent awaited gets, to show the loop is not serialised behind one call.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from blobcache import AsyncBlobCache, BlobCache


def digest_of(n: int) -> str:
    return "sha256:" + f"{n:064x}"


async def measure(cache: BlobCache, calls: int) -> dict[str, tuple[float, float]]:
    acache = AsyncBlobCache(cache)
    timings: dict[str, tuple[list[float], list[float]]] = {"put": ([], []), "get": ([], [])}
    for n in range(calls):
        digest, path = digest_of(n), f"/srv/{n}"
        start = time.perf_counter()
        cache.put(digest, path)
        middle = time.perf_counter()
        await acache.put(digest, path + "x")
        end = time.perf_counter()
        timings["put"][0].append(middle - start)
        timings["put"][1].append(end - middle)
        start = time.perf_counter()
        cache.get(digest)
        middle = time.perf_counter()
        await acache.get(digest)
        end = time.perf_counter()
        timings["get"][0].append(middle - start)
        timings["get"][1].append(end - middle)
    return {
        name: (statistics.median(sync), statistics.median(async_))
        for name, (sync, async_) in timings.items()
    }


async def concurrent(cache: BlobCache, calls: int) -> float:
    acache = AsyncBlobCache(cache)
    start = time.perf_counter()
    await asyncio.gather(*(acache.get(digest_of(n % 100)) for n in range(calls)))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'bench.db'}"
        with BlobCache.from_url(url, synchronous="NORMAL") as cache:
            cache.create_table()
            results = asyncio.run(measure(cache, args.calls))
            elapsed = asyncio.run(concurrent(cache, args.calls))
    print(f"{'call':<6}{'sync µs':>10}{'async µs':>10}{'async/sync':>12}")
    for name, (sync, async_) in results.items():
        print(f"{name:<6}{sync * 1e6:>10.1f}{async_ * 1e6:>10.1f}{async_ / sync:>12.2f}")
    print(f"{args.calls} concurrent awaited gets: {elapsed * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
