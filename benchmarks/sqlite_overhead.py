"""Per-call overhead of BlobCache on SQLite against raw sqlite3 running the same statements.

Run ``python benchmarks/sqlite_overhead.py [--rounds N] [--calls N]`` (or ``make bench``).
Both sides use a separate temporary file with the same pragmas (WAL, the ``synchronous``
level under test, busy timeout) and the same ``BEGIN IMMEDIATE`` write transactions as
``blobcache/_sqlite.py``. The two sides alternate call by call, so machine noise hits
both alike; the table shows the median time of each call, and blobcache/raw.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
from pathlib import Path

from blobcache import BlobCache, Options
from blobcache._backends.sqlite import _SCHEMA

sys.path.insert(0, str(Path(__file__).parent))
from side_by_side import interleaved, report

TARGET = 1.3


class RawSide:
    """The statements blobcache/_sqlite.py runs per call, with nothing around them."""

    def __init__(self, filename: str, options: Options) -> None:
        self.connection = sqlite3.connect(
            filename, timeout=options.busy_timeout, isolation_level=None, check_same_thread=False
        )
        self.connection.execute("PRAGMA journal_mode = WAL")
        self.connection.execute(f"PRAGMA synchronous = {options.synchronous}")
        self.connection.executescript(_SCHEMA)

    def put(self, digest: str, path: str) -> None:
        connection = self.connection
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(
            "INSERT INTO blobcache_item (digest, original) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (digest, path),
        )
        connection.execute(
            "INSERT INTO blobcache_path (digest, path) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (digest, path),
        )
        connection.execute("COMMIT")

    def get(self, digest: str) -> str:
        rows = self.connection.execute(
            "SELECT i.original, p.path FROM blobcache_item AS i "
            "JOIN blobcache_path AS p ON p.digest = i.digest WHERE i.digest = ?",
            (digest,),
        ).fetchall()
        return str(rows[0][0])

    def has(self, digest: str, path: str) -> bool:
        # blobcache answers has() from the same one-statement read as get().
        rows = self.connection.execute(
            "SELECT i.original, p.path FROM blobcache_item AS i "
            "JOIN blobcache_path AS p ON p.digest = i.digest WHERE i.digest = ?",
            (digest,),
        ).fetchall()
        return any(row[1] == path for row in rows)

    def delete(self, digest: str, path: str) -> None:
        # The benchmark deletes the only path, the original: the longest path through delete.
        connection = self.connection
        connection.execute("BEGIN IMMEDIATE")
        row = connection.execute(
            "SELECT original FROM blobcache_item WHERE digest = ?", (digest,)
        ).fetchone()
        connection.execute(
            "DELETE FROM blobcache_path WHERE digest = ? AND path = ?", (digest, path)
        )
        if row[0] == path:
            (smallest,) = connection.execute(
                "SELECT min(path) FROM blobcache_path WHERE digest = ?", (digest,)
            ).fetchone()
            if smallest is None:
                connection.execute("DELETE FROM blobcache_item WHERE digest = ?", (digest,))
        connection.execute("COMMIT")

    def close(self) -> None:
        self.connection.close()


def measure(synchronous: str, rounds: int, calls: int) -> dict[str, tuple[float, float]]:
    """Median per-call seconds (blobcache, raw) of each call at one ``synchronous`` level."""
    options = Options(synchronous=synchronous)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory(prefix="blobcache-bench-") as directory:
        cache = BlobCache.from_url(
            f"sqlite:///{Path(directory) / 'blobcache.db'}", synchronous=synchronous
        )
        cache.create_table()
        raw = RawSide(str(Path(directory) / "raw.db"), options)
        try:
            return interleaved(cache, raw, rounds, calls)
        finally:
            cache.close()
            raw.close()


def main(argv: list[str] | None = None) -> int:
    """Measure at the default ``synchronous`` and at NORMAL; ``--strict`` exits 1 on a miss."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds of every call kind")
    parser.add_argument("--calls", type=int, default=200, help="calls of each kind per round")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a ratio misses")
    args = parser.parse_args(argv)
    print(
        f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}; "
        f"{args.rounds} rounds x {args.calls} calls of each kind; median per call"
    )
    ok = True
    for synchronous in dict.fromkeys((Options().synchronous, "NORMAL")):
        print(f"\nsynchronous={synchronous}")
        ok = report(measure(synchronous, args.rounds, args.calls), TARGET) and ok
    print(f"\ntarget: every ratio <= {TARGET}x: {'met' if ok else 'MISSED'}")
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
