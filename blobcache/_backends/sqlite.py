"""The embedded backend: one SQLite file, shared safely by threads and processes."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from blobcache._backends.base import Item, Removal, StoredItem
from blobcache._errors import BlobCacheError, ConfigurationError, StoreUnavailable, TableNotFound
from blobcache._options import Options
from blobcache._url import Location

#: The schema this release writes, kept in ``PRAGMA user_version``.
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE blobcache_item (
    digest   TEXT PRIMARY KEY,
    original TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE blobcache_path (
    digest TEXT NOT NULL,
    path   TEXT NOT NULL,
    PRIMARY KEY (digest, path)
) WITHOUT ROWID;
PRAGMA user_version = 1;
"""
_SCAN_PAGE = 1000

# Bumped in every forked child, so backends notice a fork without a syscall per call.
_fork_generation = 0
# Connections a forked child inherited: never used, and never closed either, since
# closing a copy in the child could checkpoint or unlink the parent's WAL.
_inherited: list[sqlite3.Connection] = []
# Guards a pool's reset after a fork; itself replaced in the child, where another
# thread of the parent may have held it.
_fork_lock = threading.Lock()


def _after_fork() -> None:
    global _fork_generation, _fork_lock
    _fork_generation += 1
    _fork_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork)


class _Connection(sqlite3.Connection):
    """A pooled connection that knows the pool epoch and fork generation it was opened in."""

    epoch = -1
    generation = -1
    #: False once a failed rollback closed it: it must not go back to the pool.
    usable = True


def open_location(location: Location) -> SQLiteBackend:
    """The backend for a ``sqlite:///FILE`` URL."""
    return SQLiteBackend(location.target, options=location.options)


class SQLiteBackend:
    """Keeps items in two tables of one SQLite file, in WAL mode.

    Connections come from a bounded pool: each call leases one, so no two
    threads ever use a connection at once, and gives it back when it returns.
    At most ``Options.pool_size`` idle connections are kept (the most recently
    used first); one given back beyond that is closed at once, so a
    thread-per-request server holds at most ``pool_size`` connections when
    idle, however many threads it has made. A forked child leaves the parent's
    connections alone and opens its own. Every write is one ``BEGIN IMMEDIATE``
    transaction, so it takes the write lock before it reads and never has to
    upgrade a read lock (the source of "database is locked"). The schema is
    created on first use.
    """

    name = "sqlite"

    def __init__(self, filename: str, *, options: Options) -> None:
        # Resolved once: each thread opens its connection lazily, and a relative name
        # resolved after a chdir would open a second, different database.
        self.target = os.path.abspath(filename)
        self.log_fields = {"backend": self.name}
        self.options = options
        # Idle connections, the most recently used last.
        self._idle: list[_Connection] = []
        # Serialises close()'s epoch bumps.
        self._lock = threading.Lock()
        self._generation = _fork_generation
        # close() bumps the epoch: a connection leased before it is closed when given back.
        self._epoch = 0
        self._created_schema = False

    # -- connections ------------------------------------------------------------------------

    # The pool takes no lock: list.pop and list.append are atomic, and a connection
    # is only ever closed by the one thread that popped it (or held it) last, so
    # none is closed while in use. The epoch is read without a lock: a stale read
    # only lets a connection from before close() serve one more call, or closes one.

    def _connection(self, *, create: bool = False) -> sqlite3.Connection:
        """Lease a connection for this thread's exclusive use; give it back with `_release`."""
        if self._generation != _fork_generation:
            self._forget_parent()
        idle = self._idle
        while idle:
            try:
                connection = idle.pop()
            except IndexError:  # another thread took the last one
                break
            if connection.epoch == self._epoch:
                return connection
            connection.close()  # given back as close() ran
        return self._open(create=create or not self.options.must_exist)

    def _release(self, connection: sqlite3.Connection) -> None:
        """Give a leased connection back: kept while the pool has room, else closed."""
        if not isinstance(connection, _Connection):
            return  # not one of ours (a test's stand-in)
        if connection.generation != _fork_generation:
            _inherited.append(connection)  # leased in the parent before a fork
            return
        if not connection.usable:
            return
        size, idle = self.options.pool_size, self._idle
        if connection.epoch == self._epoch and len(idle) < size:
            idle.append(connection)
            while len(idle) > size:  # two threads gave back at once
                try:
                    idle.pop(0).close()
                except IndexError:
                    break
            return
        # Idle beyond the pool size, or from before close(): no other thread holds it.
        connection.close()

    def _forget_parent(self) -> None:
        """In a forked child: set the parent's idle connections aside, unused and unclosed."""
        with _fork_lock:
            if self._generation != _fork_generation:
                _inherited.extend(self._idle)
                self._idle = []
                self._lock = threading.Lock()
                self._generation = _fork_generation

    def _open(self, *, create: bool) -> _Connection:
        # One thread of this process opens at a time: connections switching a fresh file
        # to WAL while another creates its schema can get "database is locked" at once,
        # without the busy timeout (SQLite's deadlock avoidance). Opens are rare: pooled.
        with self._lock:
            return self._open_unlocked(create=create)

    def _open_unlocked(self, *, create: bool) -> _Connection:
        with self._translate():
            try:
                connection = sqlite3.connect(
                    # mode=rw: open an existing file only (must_exist), never create one.
                    self.target if create else f"{Path(self.target).as_uri()}?mode=rw",
                    timeout=self.options.busy_timeout,
                    isolation_level=None,
                    check_same_thread=False,
                    factory=_Connection,
                    uri=not create,
                )
            except sqlite3.OperationalError as exc:
                if not create and not os.path.exists(self.target):
                    raise self._missing(exc) from exc
                raise ConfigurationError(
                    f"cannot open SQLite database {self.target!r}: {exc}; check that its "
                    "directory exists and is writable",
                    cause=exc,
                ) from exc
            try:
                # Refuse a newer or a foreign file before the WAL switch, which rewrites
                # its header, and before the schema is created in it.
                self._refuse_foreign(connection)
                if not create and not connection.execute("PRAGMA user_version").fetchone()[0]:
                    raise self._missing(None)  # must_exist: no schema, and nothing written
                connection.execute("PRAGMA journal_mode = WAL")
                connection.execute(f"PRAGMA synchronous = {self.options.synchronous}")
                self._ensure_schema(connection)
            except BaseException:
                connection.close()
                raise
        connection.epoch, connection.generation = self._epoch, _fork_generation
        return connection

    def _ensure_schema(self, connection: sqlite3.Connection) -> None:
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        if version == 0:
            with self._transaction("IMMEDIATE", connection):
                # Re-read under the write lock: another process may have won.
                (version,) = connection.execute("PRAGMA user_version").fetchone()
                if version == 0:
                    # Statement by statement: executescript would COMMIT first, dropping
                    # the write lock, and two processes could both create the tables.
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        connection.execute(statement)
                    version, self._created_schema = SCHEMA_VERSION, True
        self._refuse_newer(version)

    def _missing(self, cause: BaseException | None) -> TableNotFound:
        return TableNotFound(self.target, cause=cause, kind="SQLite database")

    def _refuse_foreign(self, connection: sqlite3.Connection) -> None:
        """Refuse, untouched, a file with a newer schema or one another application owns.

        Only reads: a fresh file has no tables and version 0; a blobcache file has
        a version and both of blobcache's tables.
        """
        # One read transaction, one snapshot: read apart, a version from before another
        # connection created the schema and tables from after would look foreign.
        connection.execute("BEGIN DEFERRED")
        try:
            (version,) = connection.execute("PRAGMA user_version").fetchone()
            tables = {
                name
                for (name,) in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
                )
            }
        finally:
            connection.execute("COMMIT")
        ours = version > 0 and {"blobcache_item", "blobcache_path"} <= tables
        if tables and not ours:
            raise ConfigurationError(
                f"SQLite database {self.target!r} is not a blobcache database (it has "
                f"{len(tables)} table(s) of another application, schema version {version}); "
                "it was left untouched: point blobcache at a file of its own"
            )
        self._refuse_newer(version)

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise BlobCacheError(
                f"SQLite database {self.target!r} has schema version {version}, newer than "
                f"{SCHEMA_VERSION}, the newest this blobcache knows; upgrade blobcache"
            )

    def _error(self, exc: sqlite3.DatabaseError) -> BlobCacheError:
        """The blobcache error for a failed SQLite call."""
        if isinstance(exc, sqlite3.OperationalError):
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_ERROR:
                # An SQL error in our fixed statements ("no such table"): another
                # application's database, not a store that is temporarily unavailable.
                return BlobCacheError(
                    f"SQLite database {self.target!r} is not a blobcache database: {exc}; "
                    "point blobcache at its own file",
                    cause=exc,
                )
            return StoreUnavailable(
                f"SQLite database {self.target!r} failed: {exc}; if it is locked, another "
                "process holds a write transaction longer than busy_timeout "
                f"({self.options.busy_timeout} s)",
                cause=exc,
            )
        return BlobCacheError(
            f"SQLite database {self.target!r} is corrupt or not a blobcache database: "
            f"{exc}; restore it from a backup or rebuild it with 'blobcache index'",
            cause=exc,
        )

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc

    @contextmanager
    def _transaction(
        self, mode: str, connection: sqlite3.Connection | None = None
    ) -> Iterator[sqlite3.Connection]:
        """One transaction: ``IMMEDIATE`` for writes, ``DEFERRED`` for consistent reads.

        On a leased connection, given back afterwards, unless ``connection`` (one
        being opened) is given.
        """
        leased = connection is None
        if connection is None:
            connection = self._connection()
        try:
            with self._translate():
                connection.execute(f"BEGIN {mode}")
                try:
                    yield connection
                    connection.execute("COMMIT")
                except BaseException:
                    # Also after a failed COMMIT: the transaction is still open then.
                    self._roll_back(connection)
                    raise
        finally:
            if leased:
                self._release(connection)

    def _roll_back(self, connection: sqlite3.Connection) -> None:
        try:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
        except sqlite3.Error:
            # A connection that cannot roll back is not reused: the next lease opens a new one.
            connection.usable = False  # type: ignore[attr-defined]
            connection.close()

    # -- the backend protocol ---------------------------------------------------------------

    def create_table(self) -> bool:
        """Create the schema if missing; opening a connection already does, so report that.

        Returns ``True`` once, to the first call after this backend created the schema.
        """
        self._release(self._connection(create=True))
        created, self._created_schema = self._created_schema, False
        return created

    def put(self, digest: str, path: str) -> None:
        """Insert the item if new (this path becomes the original) and the path."""
        with self._transaction("IMMEDIATE") as connection:
            connection.execute(
                "INSERT INTO blobcache_item (digest, original) VALUES (?, ?) "
                "ON CONFLICT DO NOTHING",
                (digest, path),
            )
            connection.execute(
                "INSERT INTO blobcache_path (digest, path) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (digest, path),
            )

    def get(self, digest: str) -> Item | None:
        """The item, read in one statement (one snapshot)."""
        connection = self._connection()
        try:
            rows = connection.execute(
                "SELECT i.original, p.path FROM blobcache_item AS i "
                "JOIN blobcache_path AS p ON p.digest = i.digest WHERE i.digest = ?",
                (digest,),
            ).fetchall()
        except sqlite3.DatabaseError as exc:  # not _translate: reads are the hot path
            raise self._error(exc) from exc
        finally:
            self._release(connection)
        if not rows:
            return None
        return Item(rows[0][0], frozenset([row[1] for row in rows]))

    def delete(self, digest: str, path: str) -> Removal:
        """Remove the path, promoting the smallest remaining path or removing the item."""
        with self._transaction("IMMEDIATE") as connection:
            return _delete_in(connection, digest, path)

    def put_many(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Every pair in one ``BEGIN IMMEDIATE`` transaction, in the order given.

        An item row is inserted only by the first pair of a new digest, so the
        first path given becomes the original, as with a loop of `put`.
        """
        with self._transaction("IMMEDIATE") as connection:
            connection.executemany(
                "INSERT INTO blobcache_item (digest, original) VALUES (?, ?) "
                "ON CONFLICT DO NOTHING",
                pairs,
            )
            connection.executemany(
                "INSERT INTO blobcache_path (digest, path) VALUES (?, ?) ON CONFLICT DO NOTHING",
                pairs,
            )

    def get_many(self, digests: Sequence[str]) -> dict[str, Item]:
        """One ``IN (...)`` query per batch (split only past SQLite's limit on parameters)."""
        wanted = list(digests)  # IN ignores duplicates
        found: dict[str, Item] = {}
        # Two plain IN queries beat one JOIN by half; one read transaction keeps
        # each item's original and paths from the same snapshot.
        with self._transaction("DEFERRED") as connection:
            limit = connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            for start in range(0, len(wanted), limit):
                chunk = wanted[start : start + limit]
                marks = ", ".join("?" * len(chunk))
                originals = connection.execute(
                    f"SELECT digest, original FROM blobcache_item WHERE digest IN ({marks})", chunk
                ).fetchall()
                paths: dict[str, list[str]] = {}
                for digest, path in connection.execute(
                    f"SELECT digest, path FROM blobcache_path WHERE digest IN ({marks})", chunk
                ):
                    paths.setdefault(digest, []).append(path)
                for digest, original in originals:
                    found[digest] = Item._make((original, frozenset(paths[digest])))
        return found

    def delete_many(self, pairs: Sequence[tuple[str, str]]) -> list[Removal]:
        """Every pair in one ``BEGIN IMMEDIATE`` transaction, each as `delete` does it."""
        with self._transaction("IMMEDIATE") as connection:
            return [_delete_in(connection, digest, path) for digest, path in pairs]

    def scan(self) -> Iterator[tuple[str, Item]]:
        """Every item in digest order, a page at a time; no lock is held between pages."""
        after = ""
        page_size = self.options.page_size or _SCAN_PAGE
        while True:
            with self._transaction("DEFERRED") as connection:
                items = connection.execute(
                    "SELECT digest, original FROM blobcache_item WHERE digest > ? "
                    "ORDER BY digest LIMIT ?",
                    (after, page_size),
                ).fetchall()
                if not items:
                    return
                paths: dict[str, set[str]] = {}
                for digest, path in connection.execute(
                    "SELECT digest, path FROM blobcache_path WHERE digest BETWEEN ? AND ?",
                    (items[0][0], items[-1][0]),
                ):
                    paths.setdefault(digest, set()).add(path)
            for digest, original in items:
                yield digest, Item(original, frozenset(paths.get(digest, ())) | {original})
            after = items[-1][0]

    def scan_stored(self, segments: int = 1) -> Iterator[StoredItem]:
        """Every item; the schema cannot hold a broken one, so this is `scan` (one segment)."""
        for digest, item in self.scan():
            yield StoredItem(digest, item.original, item.paths)

    def migrate_legacy(self, digest: str, legacy: frozenset[str]) -> bool:
        """Nothing to do: the SQLite schema has no legacy layout."""
        return False

    def release(self) -> None:
        """Nothing to do: every call gives its connection back to the pool as it ends."""

    def check(self) -> None:
        """The file's directory must exist: SQLite creates files, never directories."""
        directory = os.path.dirname(self.target)
        if not os.path.isdir(directory):
            raise ConfigurationError(
                f"cannot use SQLite database {self.target!r}: its directory {directory!r} "
                "does not exist; create it, or fix the URL"
            )

    def close(self) -> None:
        """Close the idle connections; a leased one is closed when its call gives it back.

        A connection is never closed while a call uses it: SQLite would crash
        the process if another thread ran a statement on it meanwhile.
        """
        if self._generation != _fork_generation:
            self._forget_parent()
            return
        with self._lock:
            self._epoch += 1
        while True:
            try:
                self._idle.pop().close()
            except IndexError:
                return


def _delete_in(connection: sqlite3.Connection, digest: str, path: str) -> Removal:
    """Remove ``path`` inside the caller's write transaction, as `SQLiteBackend.delete` says."""
    row = connection.execute(
        "SELECT original FROM blobcache_item WHERE digest = ?", (digest,)
    ).fetchone()
    if row is None:
        return Removal(removed=False)
    deleted = connection.execute(
        "DELETE FROM blobcache_path WHERE digest = ? AND path = ?", (digest, path)
    ).rowcount
    if not deleted:
        return Removal(removed=False)
    if row[0] != path:
        return Removal(removed=True)
    # BINARY collation compares UTF-8 bytes: code-point order, as Item.without.
    (smallest,) = connection.execute(
        "SELECT min(path) FROM blobcache_path WHERE digest = ?", (digest,)
    ).fetchone()
    if smallest is None:
        connection.execute("DELETE FROM blobcache_item WHERE digest = ?", (digest,))
        return Removal(removed=True, item_removed=True)
    connection.execute(
        "UPDATE blobcache_item SET original = ? WHERE digest = ?", (smallest, digest)
    )
    return Removal(removed=True, promoted=smallest)
