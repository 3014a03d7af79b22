"""Bulk calls against the loop of single calls: put_many vs put, get_many vs get.

Run it from the repository root (``make bench`` runs it too)::

    .venv/bin/python benchmarks/bulk_calls.py [--rounds 7] [--pairs 1000] [--strict]

Each round writes ``--pairs`` new digests through a loop of ``put`` on one cache
and through one ``put_many`` on its twin (the same backend and options), then reads
them back through a loop of ``get`` and one ``get_many``; which side goes first
alternates per round. SQLite runs at the default ``synchronous=FULL`` and at
``NORMAL``; DynamoDB on an in-memory dynalite started for the run. The table shows
the median time per pair of each side and the speed-up (loop / bulk) against the
issue's targets.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from blobcache import BlobCache
from blobcache.testing import FAKE_CREDENTIALS, dynalite

#: (backend, call) -> the speed-up issue 9 asks for.
TARGETS = {
    ("sqlite", "put"): 10.0,
    ("sqlite", "get"): 2.0,
    ("dynalite", "put"): 2.0,
    ("dynalite", "get"): 5.0,
}


def digest_of(n: int) -> str:
    return "sha256:" + f"{n:064x}"


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def measure(
    open_cache: Callable[[], BlobCache], rounds: int, pairs: int
) -> dict[str, tuple[float, float]]:
    """Median seconds per pair, (loop, bulk), for put and get."""
    loop_cache, bulk_cache = open_cache(), open_cache()
    samples: dict[str, tuple[list[float], list[float]]] = {"put": ([], []), "get": ([], [])}
    try:
        for number in range(rounds + 1):  # round 0 warms both sides up, unrecorded
            batch = [
                (digest_of(number * pairs + n), f"/srv/registry/r{n % 7}/blobs/sha256/{n:064x}")
                for n in range(pairs)
            ]
            digests = [digest for digest, _ in batch]

            def loop_put(batch: list[tuple[str, str]] = batch) -> None:
                for digest, path in batch:
                    loop_cache.put(digest, path)

            def loop_get(digests: list[str] = digests) -> None:
                for digest in digests:
                    loop_cache.get(digest)

            sides = [
                (0, {"put": loop_put, "get": loop_get}),
                (
                    1,
                    {
                        "put": lambda batch=batch: bulk_cache.put_many(batch),
                        "get": lambda digests=digests: bulk_cache.get_many(digests),
                    },
                ),
            ]
            if number % 2:
                sides.reverse()
            for call in ("put", "get"):
                for side, actions in sides:
                    elapsed = timed(actions[call])
                    if number:
                        samples[call][side].append(elapsed / pairs)
        if bulk_cache.get_many(digests) != {d: loop_cache.get(d) for d in digests}:
            raise RuntimeError("the two sides disagree")
    finally:
        loop_cache.close()
        bulk_cache.close()
    return {
        call: (statistics.median(loop), statistics.median(bulk))
        for call, (loop, bulk) in samples.items()
    }


@contextlib.contextmanager
def delayed(endpoint: str, latency: float) -> Iterator[str]:
    """A TCP proxy in front of ``endpoint`` that holds what the client sends ``latency``
    seconds per chunk, like a network round trip (DynamoDB in its region: a few
    milliseconds); the loop's time per call shows the delay actually added."""
    host, port = endpoint.rsplit("/", 1)[-1].rsplit(":", 1)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def pump(source: socket.socket, sink: socket.socket, delay: float) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                time.sleep(delay)
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                client, _ = listener.accept()
                server = socket.create_connection((host, int(port)))
                for end in (client, server):  # no Nagle: the delay is the only one added
                    end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for args in ((client, server, latency), (server, client, 0.0)):
                    threading.Thread(target=pump, args=args, daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()


def report(label: str, backend: str, results: dict[str, tuple[float, float]]) -> bool:
    print(f"\n{label}")
    print(f"{'call':<16}{'loop µs/pair':>14}{'bulk µs/pair':>14}{'speed-up':>10}{'target':>8}")
    met = True
    for call, (loop, bulk) in results.items():
        speedup, target = loop / bulk, TARGETS[(backend, call)]
        met = met and speedup >= target
        flag = "" if speedup >= target else "  MISSED"
        name = f"{call}_many/{call}"
        print(
            f"{name:<16}{loop * 1e6:>14.1f}{bulk * 1e6:>14.1f}{speedup:>9.1f}x{target:>7.0f}x{flag}"
        )
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="measured rounds (default 7)")
    parser.add_argument("--pairs", type=int, default=1000, help="pairs per round (default 1000)")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="also measure dynalite behind a proxy adding this round trip (e.g. 5)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    for key, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"{args.rounds} rounds of {args.pairs} new digests; median per pair; load {load}")
    met = True
    with tempfile.TemporaryDirectory(prefix="blobcache-bench-") as directory:
        for synchronous in ("FULL", "NORMAL"):

            def sqlite_cache(synchronous: str = synchronous) -> BlobCache:
                url = f"sqlite:///{Path(directory) / uuid.uuid4().hex}.db"
                return BlobCache.from_url(url, synchronous=synchronous)

            results = measure(sqlite_cache, args.rounds, args.pairs)
            met = report(f"sqlite, synchronous={synchronous}", "sqlite", results) and met
    with dynalite() as endpoint:

        def dynamodb_cache(endpoint: str = endpoint) -> BlobCache:
            url = f"dynamodb:///bench-{uuid.uuid4().hex}?region=us-east-1&endpoint_url={endpoint}"
            cache = BlobCache.from_url(url)
            cache.create_table()
            return cache

        results = measure(dynamodb_cache, args.rounds, args.pairs)
        met = report("dynalite (workers=8, batch_size=1000)", "dynalite", results) and met
        if args.latency_ms:
            with delayed(endpoint, args.latency_ms / 1000) as slow:
                results = measure(lambda: dynamodb_cache(slow), args.rounds, args.pairs)
            label = f"dynalite + {args.latency_ms:g} ms round trip (not a target)"
            report(label, "dynalite", results)
    print(f"\ntargets: {'met' if met else 'MISSED'}")
    return 0 if met or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
