"""The README's quickstart, runnable: record copies of one blob and ask where it lives."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from blobcache import BlobCache, CacheMiss

with tempfile.TemporaryDirectory() as scratch:
    cache = BlobCache.from_url(f"sqlite:///{Path(scratch) / 'blobcache.db'}")
    cache.create_table()

    digest = "sha256:" + hashlib.sha256(b"hello, layer").hexdigest()
    cache.put(digest, "/var/lib/registry/library/alpine/blobs/sha256/" + digest[7:])
    cache.put(digest, "/var/lib/registry/team/app/blobs/sha256/" + digest[7:])

    print("original:", cache.get(digest))
    print("all paths:", *cache.get_all(digest), sep="\n  ")

    cache.delete(digest, cache.get(digest))
    print("after deleting the original:", cache.get(digest))
    cache.delete(digest, cache.get(digest))
    try:
        cache.get(digest)
    except CacheMiss:
        print("after deleting the last path: no entry")
    cache.close()
