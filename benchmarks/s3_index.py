"""Indexing an S3 bucket at scale: objects per second, and peak memory that must stay flat.

Run ``python benchmarks/s3_index.py [--objects N] [--workers N]`` (or ``make bench``).
It starts moto's server on a free port, fills one bucket in zot's layout (repositories
sharing layers, one object in ten a zero-byte placeholder) with N/2 objects, indexes it
into a fresh SQLite cache in a fresh process, then adds N/2 more and indexes again. Each
run reports objects per second, the peak resident set of its process, and the peak of
Python's own allocations during the index (tracemalloc), and the rate of the bare
listing (listed/s: one thread, nothing recorded; split/s: split at the fan-out and
listed on several threads, as index does with --workers > 1), to tell S3's share from the
cache's and show whether concurrent listing pays on this server. The last
line compares the two
runs: twice the objects should cost about the same memory (the listing is streamed
through a temporary on-disk table), so the memory ratio should stay near 1.0.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from blobcache.testing import FAKE_CREDENTIALS, LOCAL_REGION, moto_server

BUCKET = "bench"
#: Memory may grow by this factor when the bucket doubles (it should not grow at all).
MEMORY_TARGET = 1.25


def _objects(start: int, stop: int) -> list[tuple[str, bytes]]:
    """Objects ``start..stop``: each digest in two repositories, one in ten a placeholder."""
    found = []
    for n in range(start, stop):
        digest_number = n // 2
        content = f"layer {digest_number} ".encode() * 8
        hexdigest = hashlib.sha256(content).hexdigest()
        # Four teams: each part of a concurrent listing fills whole pages (1,000 keys)
        # at both sizes, so the comparison is past the few pages that are ever in flight.
        repository = f"zot/team{n % 4}/app{n % 101}"
        body = b"" if n % 2 and n % 10 == 1 else content
        found.append((f"base/{repository}/blobs/sha256/{hexdigest}", body))
    return found


def _fill(client: Any, objects: list[tuple[str, bytes]], workers: int) -> None:
    def put(item: tuple[str, bytes]) -> None:
        client.put_object(Bucket=BUCKET, Key=item[0], Body=item[1])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(put, objects))


Measured = tuple[int, int, float, int, int, float, float]


def _index_in_child(location: str, workers: int, results: Any) -> None:
    from blobcache import BlobCache
    from blobcache.maintenance import S3Location, index, parse_location
    from blobcache.maintenance._s3 import Bucket

    parsed = parse_location(location)
    assert isinstance(parsed, S3Location)
    started = time.perf_counter()
    bucket = Bucket(parsed)
    listed = sum(1 for _ in bucket.objects())
    listing = time.perf_counter() - started
    started = time.perf_counter()
    sum(1 for _ in bucket.objects(workers))
    concurrent = time.perf_counter() - started
    bucket.close()
    with (
        tempfile.TemporaryDirectory() as directory,
        BlobCache.from_url(f"sqlite:///{directory}/bench.db") as cache,
    ):
        cache.create_table()
        tracemalloc.start()
        started = time.perf_counter()
        report = index(cache, parsed, workers=workers)
        elapsed = time.perf_counter() - started
        _, heap_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    results.put(
        (
            report.blobs,
            report.recorded,
            elapsed,
            rss,
            heap_peak,
            listed / listing,
            listed / concurrent,
        )
    )


def _measure(location: str, workers: int) -> Measured:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=_index_in_child, args=(location, workers, results))
    child.start()
    measured: Measured = results.get(timeout=1800)
    child.join()
    return measured


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=40_000, help="objects in the end")
    parser.add_argument("--workers", type=int, default=8, help="index --workers")
    arguments = parser.parse_args()
    os.environ.update(FAKE_CREDENTIALS)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    import botocore.session

    half = arguments.objects // 2
    rows = []
    with moto_server() as endpoint:
        client = botocore.session.get_session().create_client(
            "s3", region_name=LOCAL_REGION, endpoint_url=endpoint
        )
        client.create_bucket(Bucket=BUCKET)
        location = f"s3://{BUCKET}/base?region={LOCAL_REGION}&endpoint_url={endpoint}"
        for start, stop in ((0, half), (half, arguments.objects)):
            print(f"filling the bucket to {stop} objects...", file=sys.stderr)
            _fill(client, _objects(start, stop), 16)
            rows.append(_measure(location, arguments.workers))
    print(
        f"{'objects':>8} {'recorded':>8} {'seconds':>8} {'objects/s':>10} "
        f"{'listed/s':>10} {'split/s':>10} {'peak RSS':>10} {'heap peak':>10}"
    )
    for blobs, recorded, elapsed, rss, heap, listed, split in rows:
        print(
            f"{blobs:>8} {recorded:>8} {elapsed:>8.2f} {blobs / elapsed:>10.0f} "
            f"{listed:>10.0f} {split:>10.0f} {rss / 2**20:>6.1f} MiB {heap / 2**20:>6.1f} MiB"
        )
    (small, *_, small_rss, small_heap, _, _), (large, *_, large_rss, large_heap, _, _) = rows
    rss_ratio, heap_ratio = large_rss / small_rss, large_heap / small_heap
    print(
        f"objects x{large / small:.2f}: peak RSS x{rss_ratio:.2f}, heap peak x{heap_ratio:.2f} "
        f"(target: at most x{MEMORY_TARGET} each)"
    )
    return 0 if max(rss_ratio, heap_ratio) <= MEMORY_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
