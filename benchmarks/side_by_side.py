"""The harness the per-call overhead benchmarks share: blobcache and a raw client,
timed call by call on the same digests, side by side in one run."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any, Protocol

CALLS = ("put", "get", "has", "delete")


class Side(Protocol):
    def put(self, digest: str, path: str) -> Any: ...
    def get(self, digest: str) -> Any: ...
    def has(self, digest: str, path: str) -> Any: ...
    def delete(self, digest: str, path: str) -> Any: ...


def digest_of(n: int) -> str:
    """A sha256 digest, distinct for each ``n``."""
    return "sha256:" + f"{n:064x}"


def steps(side: Side, base: int, calls: int) -> dict[str, Callable[[int], object]]:
    """Each call kind as a function of ``n``, on ``calls`` new digests from ``base``."""
    digests = [digest_of(base + n) for n in range(calls)]
    paths = [f"/srv/registry/repo/blobs/sha256/{n:064x}" for n in range(base, base + calls)]
    return {
        "put": lambda n: side.put(digests[n], paths[n]),
        "get": lambda n: side.get(digests[n]),
        "has": lambda n: side.has(digests[n], paths[n]),
        "delete": lambda n: side.delete(digests[n], paths[n]),
    }


def interleaved(ours: Side, raw: Side, rounds: int, calls: int) -> dict[str, tuple[float, float]]:
    """Median per-call seconds (blobcache, raw) of each call.

    Each round puts, reads, checks and deletes ``calls`` new digests; within a phase the
    two sides alternate call by call (and which goes first), so a burst of noise from
    other processes lands on both, and the median drops it.
    """
    samples: dict[str, dict[str, list[float]]] = {
        side: {name: [] for name in CALLS} for side in ("blobcache", "raw")
    }
    clock = time.perf_counter
    for number in range(rounds + 1):  # round 0 warms both sides up, unrecorded
        base = calls * number
        sides = [("blobcache", steps(ours, base, calls)), ("raw", steps(raw, base, calls))]
        for name in CALLS:
            for n in range(calls):
                for side, step in sides if n % 2 == 0 else reversed(sides):
                    start = clock()
                    step[name](n)
                    elapsed = clock() - start
                    if number:
                        samples[side][name].append(elapsed)
    return {
        name: (
            statistics.median(samples["blobcache"][name]),
            statistics.median(samples["raw"][name]),
        )
        for name in CALLS
    }


def report(results: dict[str, tuple[float, float]], target: float) -> bool:
    """Print one table; return whether every ratio meets ``target``."""
    print(f"{'call':<8}{'blobcache µs':>14}{'raw µs':>10}{'ratio':>8}")
    within = True
    for name, (ours, theirs) in results.items():
        ratio = ours / theirs
        within = within and ratio <= target
        flag = "" if ratio <= target else f"  > {target}x"
        print(f"{name:<8}{ours * 1e6:>14.1f}{theirs * 1e6:>10.1f}{ratio:>7.2f}x{flag}")
    return within
