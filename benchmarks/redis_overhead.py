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
import sys
from pathlib import Path

import redis

from blobcache import BlobCache
from blobcache._backends.redis import _DELETE, _GET, _PUT
from blobcache.testing import redis_server

sys.path.insert(0, str(Path(__file__).parent))
from side_by_side import interleaved, report

TARGET = 1.15


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


def measure(url: str, rounds: int, calls: int) -> dict[str, tuple[float, float]]:
    """Median per-call seconds (blobcache, raw) of each call."""
    cache = BlobCache.from_url(f"{url}/0?prefix=bench-blobcache")
    cache.create_table()
    raw = RawSide(f"{url}/0", "bench-raw")
    try:
        return interleaved(cache, raw, rounds, calls)
    finally:
        cache.close()
        raw.close()


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
        ok = report(measure(server.url, args.rounds, args.calls), TARGET)
    print(f"\ntarget: every ratio <= {TARGET}x: {'met' if ok else 'MISSED'}")
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
