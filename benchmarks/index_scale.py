"""index of a synthetic registry against raw inserts, and peak memory of index/export/entries.

Run it from the repository root (``make bench`` runs it too)::

    .venv/bin/python benchmarks/index_scale.py [--blobs 100000] [--small 10000]
        [--synchronous NORMAL] [--skip-dynamodb] [--skip-memory]

It writes a synthetic registry of ``--blobs`` blob files with
``benchmarks/make_registry.py`` into a temporary directory, then:

1. **throughput**: ``blobcache.maintenance.index(cache, root)`` into a fresh SQLite
   file and into a fresh dynalite table, in paths per second, side by side with the
   floor: the same rows written at their best, raw ``sqlite3`` inserting them in one
   transaction and raw botocore sending BatchWriteItem requests (25 items each, on
   as many threads as blobcache's ``workers``), from a list made beforehand, so the
   floor pays neither the walk nor validation;
2. **memory**: the peak resident memory (``VmHWM``, Linux) of ``index``,
   ``export_jsonl`` and a pass over ``entries()``, each in a fresh process, on
   SQLite, at ``--small`` and at ``--blobs`` blob files, and what the operation
   added to the process's peak; flat memory means the two sizes are within 20 %.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import botocore.session

from blobcache import BlobCache, Options, maintenance
from blobcache._backends.sqlite import _SCHEMA
from blobcache.testing import FAKE_CREDENTIALS, dynalite

sys.path.insert(0, str(Path(__file__).parent))
from make_registry import make_registry

REGION = "us-east-1"


def registry_rows(root: Path) -> dict[str, list[str]]:
    """digest -> paths, the original first, as index records them (for the floors)."""
    rows: dict[str, list[tuple[int, str]]] = {}
    for directory, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            path = os.path.join(directory, name)
            placeholder = os.lstat(path).st_size == 0
            rows.setdefault(f"sha256:{name}", []).append((placeholder, path))
    return {digest: [path for _, path in sorted(paths)] for digest, paths in rows.items()}


def sqlite_floor(filename: str, rows: dict[str, list[str]], synchronous: str) -> float:
    """Seconds raw sqlite3 takes to insert every row in one transaction."""
    connection = sqlite3.connect(filename, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute(f"PRAGMA synchronous = {synchronous}")
    connection.executescript(_SCHEMA)
    started = time.perf_counter()
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany(
        "INSERT INTO blobcache_item (digest, original) VALUES (?, ?)",
        [(digest, paths[0]) for digest, paths in rows.items()],
    )
    connection.executemany(
        "INSERT INTO blobcache_path (digest, path) VALUES (?, ?)",
        [(digest, path) for digest, paths in rows.items() for path in paths],
    )
    connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def dynamodb_floor(endpoint: str, rows: dict[str, list[str]], workers: int) -> float:
    """Seconds raw botocore takes to BatchWriteItem every item, 25 a request, on threads."""
    client: Any = botocore.session.get_session().create_client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=endpoint,
        config=botocore.config.Config(max_pool_connections=workers),
    )
    table = f"floor-{uuid.uuid4().hex}"
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "Digest", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "Digest", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table)
    items = [
        {
            "PutRequest": {
                "Item": {
                    "Digest": {"S": digest},
                    "OriginalBlobPath": {"S": paths[0]},
                    "DuplicateBlobPath": {"SS": paths},
                }
            }
        }
        for digest, paths in rows.items()
    ]
    requests = [items[n : n + 25] for n in range(0, len(items), 25)]

    def send(batch: list[dict[str, Any]]) -> None:
        while batch:
            response = client.batch_write_item(RequestItems={table: batch})
            batch = response.get("UnprocessedItems", {}).get(table, [])

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(send, requests))
    return time.perf_counter() - started


def timed_put_many(cache: BlobCache, rows: dict[str, list[str]]) -> float:
    """Seconds put_many takes for the same pairs: what index approaches through bulk calls."""
    cache.create_table()
    started = time.perf_counter()
    cache.put_many([(digest, path) for digest, paths in rows.items() for path in paths])
    return time.perf_counter() - started


def timed_index(cache: BlobCache, root: Path) -> tuple[float, int]:
    cache.create_table()
    started = time.perf_counter()
    report = maintenance.index(cache, root)
    return time.perf_counter() - started, report.recorded


def throughput(root: Path, work: Path, synchronous: str, with_dynamodb: bool) -> None:
    rows = registry_rows(root)
    paths = sum(len(p) for p in rows.values())
    print(f"\nindex throughput: {paths} paths, {len(rows)} digests")
    print(f"{'store':<26}{'index paths/s':>15}{'floor paths/s':>15}{'floor/index':>13}")
    url = f"sqlite:///{work / 'index.db'}"
    elapsed, recorded = timed_index(BlobCache.from_url(url, synchronous=synchronous), root)
    floor = sqlite_floor(str(work / "floor.db"), rows, synchronous)
    assert recorded == paths, (recorded, paths)
    label = f"sqlite ({synchronous})"
    print(f"{label:<26}{paths / elapsed:>15.0f}{paths / floor:>15.0f}{elapsed / floor:>12.1f}x")
    bulk_url = f"sqlite:///{work / 'bulk.db'}"
    bulk = timed_put_many(BlobCache.from_url(bulk_url, synchronous=synchronous), rows)
    label = "  put_many, same pairs"
    print(f"{label:<26}{paths / bulk:>15.0f}{paths / floor:>15.0f}{bulk / floor:>12.1f}x")
    if not with_dynamodb:
        return
    with dynalite() as endpoint:
        url = f"dynamodb:///index-{uuid.uuid4().hex}?region={REGION}&endpoint_url={endpoint}"
        elapsed, recorded = timed_index(BlobCache.from_url(url), root)
        floor = dynamodb_floor(endpoint, rows, Options().workers)
        bulk = timed_put_many(BlobCache.from_url(url.replace("index-", "bulk-")), rows)
    assert recorded == paths, (recorded, paths)
    label = "dynalite"
    print(f"{label:<26}{paths / elapsed:>15.0f}{paths / floor:>15.0f}{elapsed / floor:>12.1f}x")
    label = "  put_many, same pairs"
    print(f"{label:<26}{paths / bulk:>15.0f}{paths / floor:>15.0f}{bulk / floor:>12.1f}x")


# Runs in a fresh interpreter: the peak resident memory one operation adds.
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
_PROBE = """
import io, json, sys
from blobcache import BlobCache, maintenance
def high_water_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
operation, url, root = sys.argv[1:4]
cache = BlobCache.from_url(url, synchronous="NORMAL")
cache.create_table()
next(iter(cache.entries()), None)  # open the connection before the baseline
before = high_water_kib()
if operation == "index":
    maintenance.index(cache, root)
elif operation == "export":
    class Null(io.TextIOBase):
        def write(self, text):
            return len(text)
    maintenance.export_jsonl(cache, Null())
else:
    count = sum(1 for _ in cache.entries())
after = high_water_kib()
print(json.dumps({"added_kib": after - before, "peak_kib": after}))
"""


def probe(operation: str, url: str, root: Path) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, operation, url, str(root)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, int] = json.loads(done.stdout)
    return result


def memory(sizes: list[int], work: Path) -> None:
    print("\npeak memory on SQLite, each operation in a fresh process (MiB added / peak RSS)")
    measured: dict[str, list[dict[str, int]]] = {"index": [], "export": [], "entries": []}
    for size in sizes:
        root = work / f"registry-{size}"
        if not root.exists():
            make_registry(root, size)
        url = f"sqlite:///{work / f'memory-{size}.db'}"
        for operation in measured:
            measured[operation].append(probe(operation, url, root))
    header = "".join(f"{f'{size} blobs':>22}" for size in sizes)
    print(f"{'operation':<10}{header}{'large/small':>13}")
    for operation, results in measured.items():
        cells = "".join(
            f"{r['added_kib'] / 1024:>12.1f} / {r['peak_kib'] / 1024:>6.1f}" for r in results
        )
        small, large = results[0]["peak_kib"], results[-1]["peak_kib"]
        print(f"{operation:<10}{cells}{large / small:>12.2f}x")
    print("target: peak RSS at the large size within 20 % of the small size (large/small <= 1.20)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blobs", type=int, default=100_000, help="blob files (default 100000)")
    parser.add_argument("--small", type=int, default=10_000, help="small size for memory")
    parser.add_argument(
        "--synchronous", default="NORMAL", help="SQLite synchronous for index (default NORMAL)"
    )
    parser.add_argument("--skip-dynamodb", action="store_true", help="SQLite only")
    parser.add_argument("--skip-memory", action="store_true", help="throughput only")
    parser.add_argument("--skip-throughput", action="store_true", help="memory only")
    args = parser.parse_args(argv)
    for key, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, load {load}")
    with tempfile.TemporaryDirectory(prefix="blobcache-scale-") as directory:
        work = Path(directory)
        root = work / f"registry-{args.blobs}"
        started = time.perf_counter()
        files, digests = make_registry(root, args.blobs)
        seconds = time.perf_counter() - started
        print(f"wrote {files} blob files, {digests} digests in {seconds:.0f} s")
        if not args.skip_throughput:
            throughput(root, work, args.synchronous, not args.skip_dynamodb)
        if not args.skip_memory:
            memory([args.small, args.blobs], work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
