"""Write a synthetic registry in zot's layout: ``ROOT/<repository>/blobs/sha256/<hex>``.

Run it from the repository root::

    .venv/bin/python benchmarks/make_registry.py ROOT [--blobs 100000] [--repositories 200]

Blob ``n`` holds the bytes ``b"blob <n>\\n"``, so its name is its real sha256 (``index
--verify-digests`` agrees). A digest is stored in one to three repositories (about
half the blob files are extra copies): the first copy is a file with the content, a
second copy a hard link to it (deduplicated), a third a zero-byte placeholder, as zot
leaves them on S3-backed storage. The same arguments always give the same tree.
Nothing is written outside ROOT; delete it when done.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path


def copies_of(n: int) -> int:
    """How many repositories hold digest ``n``: 1, 2 or 3, two in five digests shared."""
    return (1, 1, 1, 2, 3)[n % 5]


def make_registry(root: Path, blobs: int, repositories: int = 200) -> tuple[int, int]:
    """Write at least ``blobs`` blob files under ``root``; return (blob files, digests)."""
    made: set[Path] = set()
    files = digests = 0
    n = 0
    while files < blobs:
        content = f"blob {n}\n".encode()
        hexdigest = hashlib.sha256(content).hexdigest()
        first: Path | None = None
        for copy in range(min(copies_of(n), blobs - files)):
            directory = root / f"repo-{(n + copy * 7919) % repositories:04d}" / "blobs" / "sha256"
            if directory not in made:
                directory.mkdir(parents=True, exist_ok=True)
                made.add(directory)
            path = directory / hexdigest
            if path.exists():
                continue
            if first is None:
                path.write_bytes(content)
                first = path
            elif copy == 1:
                os.link(first, path)
            else:
                path.touch()
            files += 1
        digests += 1
        n += 1
    return files, digests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="directory to write the registry into")
    parser.add_argument("--blobs", type=int, default=100_000, help="blob files (default 100000)")
    parser.add_argument("--repositories", type=int, default=200, help="repositories (default 200)")
    args = parser.parse_args(argv)
    files, digests = make_registry(args.root, args.blobs, args.repositories)
    print(f"{files} blob files, {digests} digests under {args.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
