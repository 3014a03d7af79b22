"""zot's Redis driver (pkg/storage/cache/redis.go), command for command, on plain redis-py.

Each function sends exactly the commands zot sends, in its order, so tests can
check that blobcache reads what zot writes and zot reads what blobcache writes.
"""

from __future__ import annotations

import random
import time
import uuid

import redis

# zot's constants: BlobsCache, OriginalBucket, DuplicatesBucket, RedisLocksBucket.
BLOBS, ORIGINAL, DUPLICATES, LOCKS = "blobs", "original", "duplicates", "locks"

# redsync's release: delete the lock only while it still holds our token.
_UNLOCK = """
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0
"""


class Zot:
    """One zot instance's cache driver on ``client`` (decoding replies) under ``prefix``."""

    def __init__(self, client: redis.Redis, prefix: str = "zot") -> None:
        self.client = client
        self.prefix = prefix

    def join(self, *parts: str) -> str:
        return self.prefix + ":" + ":".join(parts)

    def lock(self, digest: str) -> str:
        """redsync's Lock: SET key token NX PX 8000, retried (redsync tries 32 times with a
        random delay); returns the token."""
        token = uuid.uuid4().hex
        for _ in range(2000):
            if self.client.set(self.join(LOCKS, digest), token, nx=True, px=8000):
                return token
            time.sleep(random.uniform(0.0005, 0.005))
        raise TimeoutError(f"zot could not lock {digest}")

    def unlock(self, digest: str, token: str) -> None:
        self.client.eval(_UNLOCK, 1, self.join(LOCKS, digest), token)

    def put_blob(self, digest: str, path: str) -> None:
        """PutBlob: lock, HEXISTS, then MULTI [HSET] SADD EXEC, unlock."""
        token = self.lock(digest)
        try:
            exists = self.client.hexists(self.join(BLOBS, ORIGINAL), digest)
            with self.client.pipeline(transaction=True) as pipe:
                if not exists:
                    pipe.hset(self.join(BLOBS, ORIGINAL), digest, path)
                pipe.sadd(self.join(BLOBS, DUPLICATES, digest), path)
                pipe.execute()
        finally:
            self.unlock(digest, token)

    def get_blob(self, digest: str) -> str | None:
        """GetBlob: HGET (None is zot's ErrCacheMiss)."""
        value = self.client.hget(self.join(BLOBS, ORIGINAL), digest)
        return None if value is None else str(value)

    def get_all_blobs(self, digest: str) -> list[str] | None:
        """GetAllBlobs: HGET, then SMEMBERS; the original first, then the others."""
        original = self.get_blob(digest)
        if original is None:
            return None
        members = self.client.smembers(self.join(BLOBS, DUPLICATES, digest))
        return [original, *(str(m) for m in members if str(m) != original)]

    def has_blob(self, digest: str, path: str) -> bool:
        """HasBlob: SISMEMBER, then HEXISTS."""
        if not self.client.sismember(self.join(BLOBS, DUPLICATES, digest), path):
            return False
        return bool(self.client.hexists(self.join(BLOBS, ORIGINAL), digest))

    def delete_blob(self, digest: str, path: str) -> None:
        """DeleteBlob: lock, SREM, HGET; if it was the original, SRANDMEMBER then HSET or HDEL."""
        token = self.lock(digest)
        try:
            paths = self.join(BLOBS, DUPLICATES, digest)
            self.client.srem(paths, path)
            if self.get_blob(digest) != path:
                return
            new = self.client.srandmember(paths)
            if new is None:
                self.client.hdel(self.join(BLOBS, ORIGINAL), digest)
                return
            self.client.hset(self.join(BLOBS, ORIGINAL), digest, str(new))
        finally:
            self.unlock(digest, token)
