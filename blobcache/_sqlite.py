"""The embedded backend: one SQLite file, shared safely by threads and processes."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from blobcache._backend import Item, Removal
from blobcache._errors import BlobCacheError, ConfigurationError, StoreUnavailable
from blobcache._options import Options

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


class SQLiteBackend:
    """Keeps items in two tables of one SQLite file, in WAL mode.

    Each thread gets its own connection; every write is one ``BEGIN
    IMMEDIATE`` transaction, so it takes the write lock before it reads and
    never has to upgrade a read lock (the source of "database is locked").
    The schema is created on first use.
    """

    name = "sqlite"

    def __init__(self, filename: str, *, options: Options) -> None:
        self.target = filename
        self.options = options
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._pid = os.getpid()

    # -- connections ------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._pid != os.getpid():
            # A forked child must not touch its parent's connections.
            self._local, self._connections, self._pid = threading.local(), [], os.getpid()
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._open()
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
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
            connection.execute("BEGIN IMMEDIATE")
            try:
                # Re-read under the write lock: another process may have won.
                (version,) = connection.execute("PRAGMA user_version").fetchone()
                if version == 0:
                    connection.executescript(_SCHEMA)  # commits the transaction
                    return
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        if version > SCHEMA_VERSION:
            raise BlobCacheError(
                f"SQLite database {self.target!r} has schema version {version}, newer than "
                f"{SCHEMA_VERSION}, the newest this blobcache knows; upgrade blobcache"
            )

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(
                f"SQLite database {self.target!r} failed: {exc}; if it is locked, another "
                "process holds a write transaction longer than busy_timeout "
                f"({self.options.busy_timeout} s)",
                cause=exc,
            ) from exc
        except sqlite3.DatabaseError as exc:
            raise BlobCacheError(
                f"SQLite database {self.target!r} is corrupt or not a blobcache database: "
                f"{exc}; restore it from a backup or rebuild it with 'blobcache index'",
                cause=exc,
            ) from exc

    @contextmanager
    def _transaction(self, mode: str) -> Iterator[sqlite3.Connection]:
        """One transaction: ``IMMEDIATE`` for writes, ``DEFERRED`` for consistent reads."""
        connection = self._connection()
        with self._translate():
            connection.execute(f"BEGIN {mode}")
            try:
                yield connection
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    # -- the backend protocol ---------------------------------------------------------------

    def create_table(self) -> bool:
        """Create the schema if missing (it is also created on first use)."""
        connection = self._connection()
        with self._translate():
            (count,) = connection.execute(
                "SELECT count(*) FROM sqlite_master WHERE name = 'blobcache_item'"
            ).fetchone()
        return bool(count == 0)

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
        with self._translate():
            rows = (
                self._connection()
                .execute(
                    "SELECT i.original, p.path FROM blobcache_item AS i "
                    "JOIN blobcache_path AS p ON p.digest = i.digest WHERE i.digest = ?",
                    (digest,),
                )
                .fetchall()
            )
        if not rows:
            return None
        return Item(rows[0][0], frozenset(path for _, path in rows))

    def delete(self, digest: str, path: str) -> Removal:
        """Remove the path, promoting the smallest remaining path or removing the item."""
        with self._transaction("IMMEDIATE") as connection:
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

    def close(self) -> None:
        """Close every connection this backend opened, from any thread."""
        with self._lock:
            connections, self._connections = self._connections, []
            self._local = threading.local()
        for connection in connections:
            connection.close()
