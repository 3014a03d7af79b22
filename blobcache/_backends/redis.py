"""The Redis backend: zot's Redis layout, every write one atomic server-side Lua script."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import redis
import redis.backoff
import redis.exceptions
import redis.retry
from redis.commands.core import Script

from blobcache._backends.base import Item, Removal, StoredItem
from blobcache._errors import BlobCacheError, ConfigurationError, StoreUnavailable
from blobcache._options import Options
from blobcache._url import Location, RedisAddress

#: Keys per HSCAN/SCAN page (a hint to the server) when ``page_size`` is unset.
_SCAN_PAGE = 1000

# Shared by every script: the type check that names a key of the wrong type before
# anything is written (a failing command inside a script does not undo earlier ones),
# and byte-wise string order. Lua's own '<' goes through strcoll(), which follows the
# server's locale; promotion must use code-point order (UTF-8 bytes) as every backend does.
_LUA_HELPERS = """
local function expect(key, want)
  local found = redis.call('TYPE', key)['ok']
  if found ~= 'none' and found ~= want then
    return redis.error_reply('BLOBCACHE_WRONGTYPE ' .. found .. ' ' .. want .. ' ' .. key)
  end
end
local function less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local function smallest(members)
  local best = members[1]
  for i = 2, #members do
    if less(members[i], best) then best = members[i] end
  end
  return best
end
local function check_pairs(count)
  local bad = expect(KEYS[1], 'hash')
  if bad then return bad end
  for i = 1, count do
    bad = expect(KEYS[2 * i], 'set')
    if bad then return bad end
  end
end
"""

# KEYS[1] is the originals hash; pair i has its path set at KEYS[2i] and zot's lock at
# KEYS[2i+1]; ARGV holds digest, path, digest, path... Returns one status per pair:
# 1 recorded, 0 skipped because zot holds the digest's lock (nothing of it was changed).
_PUT = (
    _LUA_HELPERS
    + """
local count = #ARGV / 2
local bad = check_pairs(count)
if bad then return bad end
local out = {}
for i = 1, count do
  local digest, path, paths = ARGV[2 * i - 1], ARGV[2 * i], KEYS[2 * i]
  if redis.call('EXISTS', KEYS[2 * i + 1]) == 1 then
    out[i] = 0
  else
    local original = redis.call('HGET', KEYS[1], digest)
    if original then
      -- The original joins too: zot may have left it outside the set.
      redis.call('SADD', paths, path, original)
    else
      -- A set without an original keeps the original its readers saw: its smallest path.
      local members = redis.call('SMEMBERS', paths)
      redis.call('HSET', KEYS[1], digest, smallest(members) or path)
      redis.call('SADD', paths, path)
    end
    out[i] = 1
  end
end
return out
"""
)

# Same KEYS and ARGV as _PUT. Returns two entries per pair: a status (0 skipped for
# zot's lock, 1 unknown path, 2 removed, 3 removed with the item, 4 removed and the
# second entry was promoted) and the promoted path or ''.
_DELETE = (
    _LUA_HELPERS
    + """
local count = #ARGV / 2
local bad = check_pairs(count)
if bad then return bad end
local out = {}
for i = 1, count do
  local digest, path, paths = ARGV[2 * i - 1], ARGV[2 * i], KEYS[2 * i]
  local status, promoted = 1, ''
  if redis.call('EXISTS', KEYS[2 * i + 1]) == 1 then
    status = 0
  else
    local original = redis.call('HGET', KEYS[1], digest)
    local removed = redis.call('SREM', paths, path) == 1 or original == path
    if removed and original and original ~= path then
      status = 2
      -- Never leave an original without its set.
      if redis.call('SCARD', paths) == 0 then redis.call('SADD', paths, original) end
    elseif removed then
      local rest = redis.call('SMEMBERS', paths)
      if #rest == 0 then
        redis.call('HDEL', KEYS[1], digest)
        status = 3
      else
        local new = smallest(rest)
        redis.call('HSET', KEYS[1], digest, new)
        status = 2
        -- Without a stored original, readers saw the smallest path as the original.
        if original or less(path, new) then status, promoted = 4, new end
      end
    end
  end
  out[2 * i - 1], out[2 * i] = status, promoted
end
return out
"""
)

# KEYS[1] is the originals hash, KEYS[i+1] the path set of ARGV[i]. Returns the original
# (nil when absent) and the members of each digest, in one snapshot.
_GET = (
    _LUA_HELPERS
    + """
local bad = expect(KEYS[1], 'hash')
if bad then return bad end
for i = 1, #ARGV do
  bad = expect(KEYS[i + 1], 'set')
  if bad then return bad end
end
local out = {}
for i = 1, #ARGV do
  out[2 * i - 1] = redis.call('HGET', KEYS[1], ARGV[i])
  out[2 * i] = redis.call('SMEMBERS', KEYS[i + 1])
end
return out
"""
)


def _script(source: str) -> Script:
    """redis-py's Script: it hashes the source once; the server loads it on first use.

    Script wants a client only to encode a ``str`` source; bytes need none.
    """
    return Script(None, source.encode())  # type: ignore[arg-type]


#: The put script (EVALSHA by its ``sha``).
PUT_SCRIPT = _script(_PUT)
#: The delete script.
DELETE_SCRIPT = _script(_DELETE)
#: The read script behind get, get_many and the scans.
GET_SCRIPT = _script(_GET)

#: Status codes of the write scripts.
_LOCKED, _MISSED, _REMOVED, _ITEM_REMOVED, _PROMOTED = range(5)

# redis-py maps these replies to errors that say the endpoint is a cluster.
_CLUSTER_ERRORS = (
    redis.exceptions.AskError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.ClusterCrossSlotError,
)
#: Replies that a busy or recovering server gives: retry later.
_TRANSIENT_REPLIES = ("BUSY", "MISCONF", "OOM", "MASTERDOWN")  # as older redis-py leaves them


def open_location(location: Location) -> RedisBackend:
    """The backend for a ``redis://``, ``rediss://`` or ``unix://`` URL."""
    assert location.redis is not None
    return RedisBackend(location.redis, options=location.options)


def _text(value: bytes, what: str) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError as exc:
        raise BlobCacheError(
            f"{what} holds bytes that are not UTF-8 ({value!r}); blobcache and zot write "
            "UTF-8 only, so another application shares this Redis database: give blobcache "
            "its own database or prefix",
            cause=exc,
        ) from exc


class RedisBackend:
    """Keeps items in zot's Redis layout: one hash of originals, one path set per digest.

    ``<prefix>:blobs:original`` maps each digest to its original and
    ``<prefix>:blobs:duplicates:<digest>`` holds every path. Each call is one
    request: a Lua script run by EVALSHA (loaded once, reloaded after NOSCRIPT),
    so a write is atomic without a client-side lock, and a write never lands
    while zot holds its lock ``<prefix>:locks:<digest>``.

    Requests go straight to pooled redis-py connections: a read is retried on a
    broken connection, a write is sent once (only connecting is retried), so a
    write never takes effect twice.
    """

    name = "redis"

    def __init__(self, address: RedisAddress, *, options: Options) -> None:
        self.address = address
        self.options = options
        self.target = address.display()
        self.prefix = address.prefix
        self.log_fields = {"backend": self.name, "prefix": address.prefix}
        self.originals_key = f"{address.prefix}:blobs:original"
        self._paths_prefix = f"{address.prefix}:blobs:duplicates:"
        self._locks_prefix = f"{address.prefix}:locks:"
        self._pool: redis.BlockingConnectionPool | None = None
        self._lock = threading.Lock()
        self._checked = False
        self._put, self._delete, self._get = PUT_SCRIPT, DELETE_SCRIPT, GET_SCRIPT

    def __repr__(self) -> str:
        return f"<RedisBackend {self.target!r}>"

    # -- keys -------------------------------------------------------------------------------

    def paths_key(self, digest: str) -> str:
        """The set of every path of ``digest``."""
        return self._paths_prefix + digest

    def lock_key(self, digest: str) -> str:
        """The key zot's writers hold (redsync) while they change ``digest``."""
        return self._locks_prefix + digest

    # -- connections ------------------------------------------------------------------------

    @property
    def pool(self) -> redis.BlockingConnectionPool:
        """redis-py's connection pool, created on first use; nothing connects before a call."""
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = self._create_pool()
        return self._pool

    def _create_pool(self) -> redis.BlockingConnectionPool:
        address, options = self.address, self.options
        # redis-py's own policy retries connecting (nothing sent yet); requests are
        # retried here, reads only.
        retry = redis.retry.Retry(
            redis.backoff.EqualJitterBackoff(
                cap=options.max_backoff, base=max(options.backoff, 0.001)
            ),
            options.max_retries,
        )
        kwargs: dict[str, Any] = {
            "db": address.db,
            "username": address.username,
            "password": address.password,
            "socket_connect_timeout": options.connect_timeout,
            "socket_timeout": options.read_timeout,
            "retry": retry,
            "max_connections": options.max_pool_connections,
            # Waiting for a free connection is bounded like any request.
            "timeout": options.connect_timeout + options.read_timeout,
        }
        if address.socket_path is not None:
            kwargs["connection_class"] = redis.UnixDomainSocketConnection
            kwargs["path"] = address.socket_path
        else:
            kwargs["host"], kwargs["port"] = address.host, address.port
            # TCP keepalive notices a connection a firewall dropped while it sat idle.
            kwargs["socket_keepalive"] = True
            if address.tls:
                kwargs["connection_class"] = redis.SSLConnection
                for key, value in address.tls_options:
                    kwargs[key] = (
                        value.lower() in ("1", "true", "yes", "on")
                        if key == "ssl_check_hostname"
                        else value
                    )
        return redis.BlockingConnectionPool(**kwargs)  # type: ignore[no-untyped-call]

    def _request(self, args: Sequence[Any], *, retry: bool) -> Any:
        """Send one command on a pooled connection and read its reply.

        Retried, up to ``max_retries`` times with jittered back-off: connecting (by
        redis-py's policy: nothing was sent yet), a reply saying the server ran nothing
        (BUSY, LOADING, MASTERDOWN), and, for a read only (``retry``), a broken
        connection or a timeout. A write that met one of those raises `StoreUnavailable`
        with ``outcome_unknown`` at once: it may have taken effect, and is never resent.
        """
        self._check_server()
        attempt = 0
        while True:
            pool: Any = self.pool  # redis-py leaves its pool methods unannotated
            try:
                connection = pool.get_connection()
            except redis.exceptions.RedisError as exc:
                raise self._error(exc) from exc
            failure: redis.exceptions.RedisError
            try:
                connection.send_command(*args)
                return connection.read_response()
            except redis.exceptions.BusyLoadingError as exc:
                failure = exc  # a reply (LOADING), not a broken connection: nothing ran
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                connection.disconnect()
                if not retry or attempt >= self.options.max_retries:
                    raise self._error(exc, write_sent=not retry) from exc
                failure = exc
            except redis.exceptions.RedisError as exc:
                if str(exc).startswith("WRONGTYPE") and args[0] in ("HSCAN", "HMGET"):
                    # Only the scans address the hash without a script that checks it.
                    raise self._wrong_type("?", "hash", str(args[1]), exc) from exc
                if not _ran_nothing(exc):
                    raise self._error(exc) from exc
                failure = exc
            except BaseException:
                # Interrupted mid-reply: the connection may hold half an answer.
                connection.disconnect()
                raise
            finally:
                pool.release(connection)
            if attempt >= self.options.max_retries:
                raise self._error(failure) from failure
            attempt += 1
            time.sleep(self._backoff(attempt))

    def _run(self, script: Script, keys: Sequence[str], args: Sequence[str], *, write: bool) -> Any:
        """EVALSHA ``script``; after NOSCRIPT (a restarted or flushed server), load and resend."""
        command = ["EVALSHA", script.sha, len(keys), *keys, *args]
        try:
            return self._request(command, retry=not write)
        except BlobCacheError as exc:
            if not isinstance(exc.cause, redis.exceptions.NoScriptError):
                raise
        # NOSCRIPT: the server ran nothing, so resending a write is safe.
        self._request(["SCRIPT", "LOAD", script.script], retry=True)
        return self._request(command, retry=not write)

    def _check_server(self) -> None:
        """Once per backend: refuse a cluster endpoint, whose slots split zot's keys."""
        if self._checked:
            return
        self._checked = True
        try:
            info = self._request(["INFO", "cluster"], retry=True)
        except BlobCacheError as exc:
            if isinstance(exc.cause, redis.exceptions.ResponseError):
                # INFO denied by an ACL or renamed away: a cluster still shows itself
                # later, by MOVED or CROSSSLOT replies.
                return
            self._checked = False
            raise
        except BaseException:
            self._checked = False
            raise
        text = info.decode(errors="replace") if isinstance(info, bytes) else str(info)
        if "cluster_enabled:1" in text:
            self._checked = False
            raise ConfigurationError(self._cluster_message())

    def _cluster_message(self) -> str:
        return (
            f"{self.target} is a Redis Cluster node; blobcache, like zot, keeps every "
            f"original in one hash ({self.originals_key!r}) and needs a single Redis "
            "server (a primary, with replicas if you like): point the URL at one"
        )

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.options.backoff * 2**attempt, self.options.max_backoff)
        return random.uniform(0, ceiling)

    def _error(
        self, exc: redis.exceptions.RedisError, *, write_sent: bool = False
    ) -> BlobCacheError:
        """The blobcache error for a failed redis-py request; ``write_sent`` if a write was
        on its way when the connection failed."""
        where = self.target
        if isinstance(
            exc,
            redis.exceptions.AuthenticationError
            | redis.exceptions.AuthenticationWrongNumberOfArgsError,
        ):
            return ConfigurationError(
                f"Redis at {where} refused the credentials ({exc}); check the user name and "
                "password in the URL ('redis://USER:PASSWORD@HOST...')",
                cause=exc,
            )
        if isinstance(exc, redis.exceptions.NoPermissionError):
            return ConfigurationError(
                f"the Redis user of {where} may not run a command blobcache needs ({exc}); "
                "grant it EVALSHA, SCRIPT, HSCAN, HMGET, SCAN and TYPE, and read/write "
                f"access to the '{self.prefix}:*' keys",
                cause=exc,
            )
        if isinstance(exc, redis.exceptions.ReadOnlyError):
            return ConfigurationError(
                f"{where} is a read-only replica ({exc}); point the URL at the primary",
                cause=exc,
            )
        if isinstance(exc, _CLUSTER_ERRORS) and not isinstance(
            exc,
            redis.exceptions.MasterDownError,  # a replica cut off from its primary
        ):
            return ConfigurationError(self._cluster_message(), cause=exc)
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return ConfigurationError(
                f"the TLS certificate of {where} failed verification ({exc}); give the CA "
                "that signed it with ?ssl_ca_certs=/path/to/ca.pem",
                cause=exc,
            )
        if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            if write_sent:
                return StoreUnavailable(
                    f"Redis at {where} failed while a write was on its way: {exc}; it may "
                    "or may not have taken effect (it is never resent): read the digest back "
                    "before writing again, and check the server and network, or raise "
                    "read_timeout",
                    cause=exc,
                    outcome_unknown=True,
                )
            return StoreUnavailable(
                f"Redis at {where} is unavailable after {self.options.max_retries} retries: "
                f"{exc}; check that it runs and the network, or raise "
                "connect_timeout/read_timeout/max_retries",
                cause=exc,
            )
        message = str(exc)
        if message.startswith("BLOBCACHE_WRONGTYPE "):
            _, found, want, key = message.split(" ", 3)
            return self._wrong_type(found, want, key, exc)
        if isinstance(
            exc, redis.exceptions.OutOfMemoryError | redis.exceptions.MasterDownError
        ) or message.startswith(_TRANSIENT_REPLIES):
            return StoreUnavailable(
                f"Redis at {where} refused the request: {exc}; retry later, and check its "
                "memory limit and persistence (the server log says more)",
                cause=exc,
            )
        return BlobCacheError(f"Redis at {where} rejected a request: {exc}", cause=exc)

    def _wrong_type(
        self, found: str, want: str, key: str, exc: redis.exceptions.RedisError
    ) -> BlobCacheError:
        if found == "?":
            found = self._type_of(key)
        return BlobCacheError(
            f"Redis key {key!r} on {self.target} holds a {found}, not the {want} of zot's "
            "layout; another application writes under the same prefix: remove the key, or "
            "give blobcache its own prefix or database",
            cause=exc,
        )

    def _type_of(self, key: str) -> str:
        try:
            found = self._request(["TYPE", key], retry=True)
        except BlobCacheError:
            return "value of another type"
        return found.decode() if isinstance(found, bytes) else str(found)

    # -- the backend protocol ---------------------------------------------------------------

    def create_table(self) -> bool:
        """Check that the server answers and takes writes; Redis needs nothing created.

        The probe is the delete script on a digest that cannot exist: it checks
        the scripts, the key permissions and write access, and changes nothing.
        """
        self.delete_many([("blobcache-probe:not-a-digest", "/")])
        return False

    def _pair_keys(self, pairs: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
        keys, args = [self.originals_key], list[str]()
        for digest, path in pairs:
            keys += (self.paths_key(digest), self.lock_key(digest))
            args += (digest, path)
        return keys, args

    def put(self, digest: str, path: str) -> None:
        """Record ``path``: one script run; the first path of a digest becomes its original."""
        self.put_many([(digest, path)])

    def put_many(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Record every pair in one script run, in order; pairs zot has locked wait and retry."""
        self._write_all(self._put, pairs, 1)

    def delete(self, digest: str, path: str) -> Removal:
        """Remove ``path``: one script run that promotes the smallest path or removes the item."""
        return self.delete_many([(digest, path)])[0]

    def delete_many(self, pairs: Sequence[tuple[str, str]]) -> list[Removal]:
        """Remove every pair in one script run, in order; one `Removal` per pair."""
        replies = self._write_all(self._delete, pairs, 2)
        removals = []
        for status, promoted in replies:
            if status == _MISSED:
                removals.append(Removal(removed=False))
            elif status == _ITEM_REMOVED:
                removals.append(Removal(removed=True, item_removed=True))
            elif status == _PROMOTED:
                removals.append(Removal(removed=True, promoted=_text(promoted, "a path")))
            else:
                removals.append(Removal(removed=True))
        return removals

    def _write_all(
        self, script: Script, pairs: Sequence[tuple[str, str]], width: int
    ) -> list[list[Any]]:
        """Run a write script over ``pairs`` until zot's locks let every pair through.

        A digest zot has locked is skipped whole by one run (the lock cannot change
        during a script), so the pairs of each digest keep their order across retries.
        Returns each pair's ``width`` reply entries.
        """
        if not pairs:
            return []
        results: list[list[Any] | None] = [None] * len(pairs)
        waiting = list(range(len(pairs)))
        for attempt in range(self.options.max_attempts):
            if attempt:
                time.sleep(self._backoff(attempt))
            keys, args = self._pair_keys([pairs[i] for i in waiting])
            reply = self._run(script, keys, args, write=True)
            still = []
            for n, index in enumerate(waiting):
                entry = reply[n * width : (n + 1) * width]
                if entry[0] == _LOCKED:
                    still.append(index)
                else:
                    results[index] = entry
            waiting = still
            if not waiting:
                return [entry for entry in results if entry is not None]
        locked = sorted({pairs[i][0] for i in waiting})
        raise StoreUnavailable(
            f"gave up writing {', '.join(locked)} on {self.target} after "
            f"{self.options.max_attempts} attempts: zot held the Redis lock all along, and "
            "nothing was written for "
            f"{'it' if len(locked) == 1 else 'them'}. Retry, or raise max_attempts (a stale "
            f"lock expires by itself: '{self.lock_key(locked[0])}')"
        )

    def get(self, digest: str) -> Item | None:
        """The item, read in one script run (one snapshot)."""
        return self._read([digest]).get(digest)

    def get_many(self, digests: Sequence[str]) -> dict[str, Item]:
        """Every item found, read in one script run; misses are absent."""
        return self._read(digests)

    def _read(self, digests: Sequence[str]) -> dict[str, Item]:
        found: dict[str, Item] = {}
        for digest, original, members in self._read_raw(digests):
            item = Item.tolerant(original, members)
            if item is not None:
                found[digest] = item
        return found

    def _read_raw(self, digests: Sequence[str]) -> Iterator[tuple[str, str | None, frozenset[str]]]:
        if not digests:
            return
        keys = [self.originals_key, *map(self.paths_key, digests)]
        reply = self._run(self._get, keys, digests, write=False)
        for n, digest in enumerate(digests):
            original, members = reply[2 * n], reply[2 * n + 1]
            yield (
                digest,
                None if original is None else _text(original, f"the original of {digest}"),
                frozenset(_text(member, f"a path of {digest}") for member in members),
            )

    def scan(self) -> Iterator[tuple[str, Item]]:
        """Every item, a page at a time: HSCAN over the originals, then SCAN for orphan sets."""
        for raw in self.scan_stored():
            item = Item.tolerant(raw.original, raw.paths)
            if item is not None:
                yield raw.digest, item

    def scan_stored(self, segments: int = 1) -> Iterator[StoredItem]:
        """Every item as stored, in constant memory; ``segments`` is ignored (one server).

        First every digest of the originals hash (HSCAN), then every path set
        with no original (SCAN). Like a DynamoDB Scan this is no snapshot: an
        item changed meanwhile may show either state, and Redis may return an
        entry twice if the hash is resized during the scan.
        """
        count = self.options.page_size or _SCAN_PAGE
        cursor = b"0"
        while True:
            cursor, flat = self._request(
                ["HSCAN", self.originals_key, cursor, "COUNT", count], retry=True
            )
            field = f"a field of {self.originals_key}"
            digests = [_text(flat[i], field) for i in range(0, len(flat), 2)]
            for digest, original, members in self._read_raw(digests):
                yield StoredItem(digest, original, members)
            if cursor in (b"0", 0):
                break
        pattern = _glob_escape(self._paths_prefix) + "*"
        cursor = b"0"
        while True:
            cursor, keys = self._request(
                ["SCAN", cursor, "MATCH", pattern, "COUNT", count], retry=True
            )
            digests = [_text(key, "a key")[len(self._paths_prefix) :] for key in keys]
            if digests:
                originals = self._request(["HMGET", self.originals_key, *digests], retry=True)
                orphans = [d for d, o in zip(digests, originals, strict=True) if o is None]
                for digest, original, members in self._read_raw(orphans):
                    if original is None and members:
                        yield StoredItem(digest, None, members)
            if cursor in (b"0", 0):
                break

    def migrate_legacy(self, digest: str, legacy: frozenset[str]) -> bool:
        """Nothing to do: zot's Redis layout has no legacy form."""
        return False

    def release(self) -> None:
        """Nothing to do: every call gives its connection back to the pool as it ends."""

    def check(self) -> None:
        """Nothing to check before connecting: the URL was validated when parsed, and
        reachability and credentials show at the first call (or `create_table`)."""

    def close(self) -> None:
        """Close every pooled connection (call it when no other thread is mid-call);
        the next call opens new ones."""
        pool = self._pool
        if pool is not None:
            pool.disconnect()


def _ran_nothing(exc: redis.exceptions.RedisError) -> bool:
    """Whether a reply says the server ran nothing and may do so after a pause."""
    return isinstance(exc, redis.exceptions.MasterDownError) or str(exc).startswith(
        ("BUSY", "MASTERDOWN")
    )


def _glob_escape(text: str) -> str:
    """``text`` as a literal in a SCAN MATCH pattern."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)
