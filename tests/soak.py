"""A bounded soak: mixed traffic with injected faults against every backend, then checks.

    python -m tests.soak --duration 600          # what ``make soak`` runs (10 minutes)
    python -m tests.soak --duration 30 --backends sqlite

For each backend in turn, worker threads and processes (most through the faults) put,
delete and read paths on a large pool of digests and on one *sampled* digest at a time
(a new one every ``--window`` seconds, so each recorded history stays small enough to
check). Afterwards it checks the invariants of every stored item and the
linearizability of every sampled digest's history, and prints operations done, faults
injected, violations and latency percentiles. Exit status 1 on any violation.

A backend is one entry in `BACKENDS`: a context manager yielding the URL of a fresh
store, the URL clients use to reach it through faults, and something that injects them.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import random
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field

from blobcache import BlobCache, StoreUnavailable
from blobcache.testing import (
    FAKE_CREDENTIALS,
    FAULTS,
    RESP_FAULTS,
    dynalite,
    fault_proxy,
    redis_server,
)
from tests.helpers import REGION, assert_invariants, digest_of, read_raw
from tests.linearizability import Op, Recorder, Verdict, check


@dataclass
class Target:
    """A store under soak: a direct URL, a URL through faults, and the faults' counts."""

    url: str
    faulty_url: str
    injected: Callable[[], Counter[str]]
    stop: Callable[[], None] = lambda: None


@contextlib.contextmanager
def sqlite_target(rate: float, seed: int) -> Iterator[Target]:
    """SQLite's faults are lock contention: a thread holds the write lock past the
    clients' busy_timeout now and then, so their calls fail with StoreUnavailable."""
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "soak.db")
        url = f"sqlite:///{path}"
        with BlobCache.from_url(url) as cache:
            cache.create_table()
        injected: Counter[str] = Counter()
        stop = threading.Event()

        def hold_the_lock() -> None:
            rng = random.Random(seed)
            connection = sqlite3.connect(path, isolation_level=None, timeout=30)
            # At the default rate 0.05, the lock is taken about once a second.
            while not stop.wait(rng.uniform(0.5, 1.5) * 0.05 / max(rate, 0.001)):
                connection.execute("BEGIN EXCLUSIVE")
                injected["write_lock_held"] += 1
                stop.wait(0.3)
                connection.execute("COMMIT")
            connection.close()

        locker = threading.Thread(target=hold_the_lock, daemon=True)
        locker.start()
        try:
            yield Target(url, url + "?busy_timeout=0.1", lambda: Counter(injected), stop.set)
        finally:
            stop.set()
            locker.join()


@contextlib.contextmanager
def dynalite_target(rate: float, seed: int) -> Iterator[Target]:
    """dynalite behind a fault proxy injecting every fault it knows at random."""
    os.environ.update(FAKE_CREDENTIALS)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    with dynalite() as endpoint, fault_proxy(endpoint, stall_seconds=1.0) as proxy:
        table = f"soak-{uuid.uuid4().hex}"
        url = f"dynamodb:///{table}?region={REGION}&endpoint_url={endpoint}"
        with BlobCache.from_url(url) as cache:
            cache.create_table()
        proxy.inject_randomly(rate, list(FAULTS), seed=seed)
        faulty = f"dynamodb:///{table}?region={REGION}&endpoint_url={proxy.endpoint}"
        yield Target(url, faulty + "&read_timeout=0.5", lambda: proxy.injected, proxy.clear)


@contextlib.contextmanager
def redis_target(rate: float, seed: int) -> Iterator[Target]:
    """redis-server behind a fault proxy injecting every fault RESP allows at random."""
    with redis_server() as server, fault_proxy(server.url, stall_seconds=1.0) as proxy:
        prefix = f"soak-{uuid.uuid4().hex}"
        url = f"{server.url}/0?prefix={prefix}"
        with BlobCache.from_url(url) as cache:
            cache.create_table()
        proxy.inject_randomly(rate, list(RESP_FAULTS), seed=seed)
        faulty = f"{proxy.endpoint}/0?prefix={prefix}&read_timeout=0.5"
        yield Target(url, faulty, lambda: proxy.injected, proxy.clear)


#: Backend name -> how to set one up.
BACKENDS: dict[str, Callable[[float, int], contextlib.AbstractContextManager[Target]]] = {
    "sqlite": sqlite_target,
    "dynalite": dynalite_target,
    "redis": redis_target,
}


@dataclass
class Tally:
    """What one worker did: calls by kind and outcome, latencies, the sampled history."""

    calls: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    history: list[Op] = field(default_factory=list)


@dataclass(frozen=True)
class Sampler:
    """The digest under observation, a new one every ``window`` seconds from ``started``
    (``time.monotonic`` is system-wide, so worker processes agree on it)."""

    window: float
    started: float

    def current(self) -> str:
        return digest_of(10**9 + int((time.monotonic() - self.started) / self.window))


def work(url: str, deadline: float, sampler: Sampler, seed: int, name: str) -> Tally:
    rng = random.Random(seed)
    tally = Tally()
    paths = [f"/soak/{n}" for n in range(6)]
    with BlobCache.from_url(url) as cache:
        recorder = Recorder(cache, name)
        while time.monotonic() < deadline:
            sampled = rng.random() < 0.4
            digest = sampler.current() if sampled else digest_of(rng.randrange(2000))
            path = rng.choice(paths)
            kind = rng.choice(["put", "put", "delete", "delete", "get_all", "has", "get"])
            target: object = recorder if sampled else cache
            started = time.perf_counter()
            try:
                if kind in ("put", "delete", "has"):
                    getattr(target, kind)(digest, path)
                elif sampled:
                    getattr(recorder, kind)(digest)
                else:
                    with contextlib.suppress(LookupError):
                        getattr(cache, kind)(digest)
            except StoreUnavailable:
                tally.calls[f"{kind} unavailable"] += 1
                continue
            tally.calls[kind] += 1
            tally.latencies.setdefault(kind, []).append(time.perf_counter() - started)
        tally.history = recorder.history
    return tally


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def soak(
    name: str,
    seconds: float,
    threads: int,
    processes: int,
    window: float,
    rate: float,
    seed: int,
) -> int:
    """Soak one backend; print the report; return the number of violations."""
    print(
        f"== {name}: {seconds:.0f} s, {threads} threads and {processes} processes, "
        f"fault rate {rate}",
        flush=True,
    )
    with BACKENDS[name](rate, seed) as target:
        sampler = Sampler(window, time.monotonic())
        deadline = sampler.started + seconds
        context = multiprocessing.get_context("spawn")
        with (
            ThreadPoolExecutor(threads) as pool,
            ProcessPoolExecutor(max(processes, 1), mp_context=context) as spawned,
        ):
            futures = [
                pool.submit(
                    work,
                    # Two thirds of the clients go through the faults, the rest not.
                    target.faulty_url if n % 3 else target.url,
                    deadline,
                    sampler,
                    seed + n,
                    f"t{n}",
                )
                for n in range(threads)
            ]
            futures += [
                spawned.submit(work, target.faulty_url, deadline, sampler, seed + 100 + n, f"p{n}")
                for n in range(processes)
            ]
            tallies = [future.result() for future in futures]
        target.stop()
        injected = target.injected()
        with BlobCache.from_url(target.url) as cache:
            stored = read_raw(cache)
    calls: Counter[str] = Counter()
    latencies: dict[str, list[float]] = {}
    history: list[Op] = []
    for tally in tallies:
        calls.update(tally.calls)
        history += tally.history
        for kind, values in tally.latencies.items():
            latencies.setdefault(kind, []).extend(values)
    violations = 0
    try:
        assert_invariants(stored)
        invariants = f"held on {len(stored)} items"
    except AssertionError as exc:
        violations += 1
        invariants = f"VIOLATED: {exc}"
    started = time.monotonic()
    verdicts: list[Verdict] = check(history, budget=60)
    checked = time.monotonic() - started
    bad = [verdict for verdict in verdicts if verdict.ok is False]
    undecided = [verdict for verdict in verdicts if verdict.ok is None]
    violations += len(bad)
    done = sum(count for kind, count in calls.items() if "unavailable" not in kind)
    failed = sum(count for kind, count in calls.items() if "unavailable" in kind)
    print(f"operations: {done} succeeded, {failed} raised StoreUnavailable")
    for kind in sorted(calls):
        print(f"  {kind:<22} {calls[kind]:>8}")
    print(f"faults injected: {sum(injected.values())}")
    for kind in sorted(injected):
        print(f"  {kind:<22} {injected[kind]:>8}")
    print(f"invariants: {invariants}")
    print(
        f"linearizability: {len(verdicts)} sampled digests, {len(history)} recorded calls "
        f"from {len({call.client for call in history})} clients, "
        f"{len(bad)} violations, {len(undecided)} undecided, checked in {checked:.1f} s"
    )
    for verdict in bad:
        print(f"  {verdict}")
    print("latency (ms)           p50      p90      p99      max")
    for kind in sorted(latencies):
        values = latencies[kind]
        row = [percentile(values, share) * 1000 for share in (0.5, 0.9, 0.99)]
        row.append(max(values) * 1000)
        print(f"  {kind:<16} " + " ".join(f"{value:8.1f}" for value in row))
    print(f"violations: {violations}", flush=True)
    return violations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds in all")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated")
    parser.add_argument("--threads", type=int, default=6)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--window", type=float, default=5.0, help="seconds per sampled digest")
    parser.add_argument("--rate", type=float, default=0.05, help="share of faulty requests")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    names = [name for name in args.backends.split(",") if name]
    unknown = sorted(set(names) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(unknown)}; known: {', '.join(BACKENDS)}")
    each = args.duration / len(names)
    violations = sum(
        soak(name, each, args.threads, args.processes, args.window, args.rate, args.seed)
        for name in names
    )
    print(f"== total violations: {violations}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
