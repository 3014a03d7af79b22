"""The embedded backend: one SQLite file, shared safely by threads and processes."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from blobcache._backends.base import Item, Removal, StoredItem
from blobcache._errors import BlobCacheError, ConfigurationError, StoreUnavailable
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


def _after_fork() -> None:
    global _fork_generation
    _fork_generation += 1


os.register_at_fork(after_in_child=_after_fork)


class _ThreadConnection(threading.local):
    """One thread's connection, and the backend epoch it was opened in."""

    connection: sqlite3.Connection | None = None
    epoch = -1
    generation = 0


def open_location(location: Location) -> SQLiteBackend:
    """The backend for a ``sqlite:///FILE`` URL."""
    return SQLiteBackend(location.target, options=location.options)


class SQLiteBackend:
    """Keeps items in two tables of one SQLite file, in WAL mode.

    Each thread gets its own connection, held in thread-local storage only,
    so it closes when its thread ends; every write is one ``BEGIN IMMEDIATE``
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
        self._local = _ThreadConnection()
        # close() bumps the epoch; each thread then closes its own connection on next use.
        self._epoch = 0
        self._created_schema = False

    # -- connections ------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        local = self._local
        connection = local.connection
        if (
            connection is not None
            and local.epoch == self._epoch
            and local.generation == _fork_generation
        ):
            return connection
        if connection is not None:
            if local.generation != _fork_generation:
                _inherited.append(connection)
            else:
                connection.close()  # this thread's own, from before close()
            local.connection = None
        connection = self._open()
        local.connection, local.epoch, local.generation = (
            connection,
            self._epoch,
            _fork_generation,
        )
        return connection

    def _open(self) -> sqlite3.Connection:
        with self._translate():
            try:
                connection = sqlite3.connect(
                    self.target,
                    timeout=self.options.busy_timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
            except sqlite3.OperationalError as exc:
                raise ConfigurationError(
                    f"cannot open SQLite database {self.target!r}: {exc}; check that its "
                    "directory exists and is writable",
                    cause=exc,
                ) from exc
            try:
                # Refuse a newer or a foreign file before the WAL switch, which rewrites
                # its header, and before the schema is created in it.
                self._refuse_foreign(connection)
                connection.execute("PRAGMA journal_mode = WAL")
                connection.execute(f"PRAGMA synchronous = {self.options.synchronous}")
                self._ensure_schema(connection)
            except BaseException:
                connection.close()
                raise
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

    def _refuse_foreign(self, connection: sqlite3.Connection) -> None:
        """Refuse, untouched, a file with a newer schema or one another application owns.

        Only reads: a fresh file has no tables and version 0; a blobcache file has
        a version and both of blobcache's tables.
        """
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        tables = {
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
            )
        }
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

        On this thread's connection, unless ``connection`` (one being opened) is given.
        """
        if connection is None:
            connection = self._connection()
        with self._translate():
            connection.execute(f"BEGIN {mode}")
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                # Also after a failed COMMIT: the transaction is still open then.
                self._roll_back(connection)
                raise

    def _roll_back(self, connection: sqlite3.Connection) -> None:
        try:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
        except sqlite3.Error:
            # A connection that cannot roll back is not reused: this thread opens a new one.
            self._local.connection = None
            connection.close()

    # -- the backend protocol ---------------------------------------------------------------

    def create_table(self) -> bool:
        """Create the schema if missing; opening a connection already does, so report that.

        Returns ``True`` once, to the first call after this backend created the schema.
        """
        self._connection()
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
        wanted = list(dict.fromkeys(digests))
        connection = self._connection()
        rows: list[tuple[str, str, str]] = []
        try:
            limit = connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            for start in range(0, len(wanted), limit):
                chunk = wanted[start : start + limit]
                rows += connection.execute(
                    "SELECT i.digest, i.original, p.path FROM blobcache_item AS i "
                    "JOIN blobcache_path AS p ON p.digest = i.digest "
                    f"WHERE i.digest IN ({', '.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc
        originals: dict[str, str] = {}
        paths: dict[str, list[str]] = {}
        for digest, original, path in rows:
            originals[digest] = original
            paths.setdefault(digest, []).append(path)
        return {
            digest: Item(original, frozenset(paths[digest]))
            for digest, original in originals.items()
        }

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

    def close(self) -> None:
        """Close this thread's connection; other threads close theirs on next use.

        A connection is never closed from another thread: one may be running a
        statement on it, and SQLite would crash the process.
        """
        self._epoch += 1
        local = self._local
        if local.connection is not None and local.generation == _fork_generation:
            local.connection.close()
        local.connection = None


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
