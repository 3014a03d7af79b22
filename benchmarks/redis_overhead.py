"""Per-call overhead of BlobCache on Redis against raw redis-py sending the same scripts.

Run ``python benchmarks/redis_overhead.py [--rounds N] [--calls N]`` (or ``make bench``).
It starts its own ``redis-server`` (from the OS package) on a free loopback port. The raw
side is a plain ``redis.Redis`` client running the very Lua scripts blobcache runs
(``register_script``, so EVALSHA), with the same keys, under another prefix. The two
sides alternate call by call, so machine noise hits both alike; the table shows the
median time of each call, and blobcache/raw.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import redis

from blobcache import BlobCache
from blobcache._backends.redis import _DELETE, _GET, _PUT
from blobcache.testing import redis_server

TARGET = 1.15
CALLS = ("put", "get", "has", "delete")


def digest_of(n: int) -> str:
    """A sha256 digest, distinct for each ``n``."""
    return "sha256:" + f"{n:064x}"


class RawSide:
    """What blobcache sends per call, straight from redis-py: one EVALSHA of the same script."""

    def __init__(self, url: str, prefix: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.originals = f"{prefix}:blobs:original"
        self.paths, self.locks = f"{prefix}:blobs:duplicates:", f"{prefix}:locks:"
        self.put_script = self.client.register_script(_PUT)
        self.delete_script = self.client.register_script(_DELETE)
        self.get_script = self.client.register_script(_GET)

    def put(self, digest: str, path: str) -> None:
        keys = [self.originals, self.paths + digest, self.locks + digest]
        self.put_script(keys=keys, args=[digest, path])

    def _read(self, digest: str) -> tuple[str, frozenset[str]]:
        original, members = self.get_script(
            keys=[self.originals, self.paths + digest], args=[digest]
        )
        return original.decode(), frozenset(member.decode() for member in members)

    def get(self, digest: str) -> str:
        return self._read(digest)[0]

    def has(self, digest: str, path: str) -> bool:
        return path in self._read(digest)[1]

    def delete(self, digest: str, path: str) -> None:
        keys = [self.originals, self.paths + digest, self.locks + digest]
        self.delete_script(keys=keys, args=[digest, path])

    def close(self) -> None:
        self.client.close()


def steps(side: BlobCache | RawSide, base: int, calls: int) -> dict[str, Callable[[int], object]]:
    """Each call kind as a function of ``n``, on ``calls`` new digests from ``base``."""
    digests = [digest_of(base + n) for n in range(calls)]
    paths = [f"/srv/registry/repo/blobs/sha256/{n:064x}" for n in range(base, base + calls)]
    return {
        "put": lambda n: side.put(digests[n], paths[n]),
        "get": lambda n: side.get(digests[n]),
        "has": lambda n: side.has(digests[n], paths[n]),
        "delete": lambda n: side.delete(digests[n], paths[n]),
    }


def measure(url: str, rounds: int, calls: int) -> dict[str, tuple[float, float]]:
    """Median per-call seconds (blobcache, raw) of each call.

    Each round puts, reads, checks and deletes ``calls`` new digests; within a phase the
    two sides alternate call by call (and which goes first), so a burst of noise from
    other processes lands on both, and the median drops it.
    """
    samples: dict[str, dict[str, list[float]]] = {
        side: {name: [] for name in CALLS} for side in ("blobcache", "raw")
    }
    clock = time.perf_counter
    cache = BlobCache.from_url(f"{url}/0?prefix=bench-blobcache")
    cache.create_table()
    raw = RawSide(f"{url}/0", "bench-raw")
    try:
        for number in range(rounds + 1):  # round 0 warms both sides up, unrecorded
            base = calls * number
            sides = [("blobcache", steps(cache, base, calls)), ("raw", steps(raw, base, calls))]
            for name in CALLS:
                for n in range(calls):
                    for side, step in sides if n % 2 == 0 else reversed(sides):
                        start = clock()
                        step[name](n)
                        elapsed = clock() - start
                        if number:
                            samples[side][name].append(elapsed)
    finally:
        cache.close()
        raw.close()
    return {
        name: (
            statistics.median(samples["blobcache"][name]),
            statistics.median(samples["raw"][name]),
        )
        for name in CALLS
    }


def report(results: dict[str, tuple[float, float]]) -> bool:
    """Print the table; return whether every ratio meets the target."""
    print(f"{'call':<8}{'blobcache µs':>14}{'raw µs':>10}{'ratio':>8}")
    within = True
    for name, (ours, theirs) in results.items():
        ratio = ours / theirs
        within = within and ratio <= TARGET
        flag = "" if ratio <= TARGET else f"  > {TARGET}x"
        print(f"{name:<8}{ours * 1e6:>14.1f}{theirs * 1e6:>10.1f}{ratio:>7.2f}x{flag}")
    return within


def main(argv: list[str] | None = None) -> int:
    """Measure every call kind once; ``--strict`` exits 1 on a miss."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds of every call kind")
    parser.add_argument("--calls", type=int, default=200, help="calls of each kind per round")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a ratio misses")
    args = parser.parse_args(argv)
    with redis_server() as server:
        version = redis.Redis(port=server.port).info("server")["redis_version"]
        print(
            f"Python {sys.version.split()[0]}, redis-py {redis.__version__}, redis-server "
            f"{version}; {args.rounds} rounds x {args.calls} calls of each kind; median per call"
        )
        ok = report(measure(server.url, args.rounds, args.calls))
    print(f"\ntarget: every ratio <= {TARGET}x: {'met' if ok else 'MISSED'}")
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
