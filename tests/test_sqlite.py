"""The SQLite backend's own promises: WAL, sharing, bad files, durability, locations, fork."""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import platformdirs
import pytest

from blobcache import (
    BlobCache,
    BlobCacheError,
    CacheMiss,
    ConfigurationError,
    StoreUnavailable,
)
from tests.helpers import (
    DEADLINE,
    CacheFactory,
    RawItems,
    assert_invariants,
    backend_of,
    digest_of,
    read_raw,
    run_together,
    sqlite_connection,
)

#: One call as the model and the worker scripts see it: ("put" | "delete", digest, path).
Operation = tuple[str, str, str]

# Runs in a fresh interpreter: applies the JSON operations in file argv[2] to the cache at
# argv[1] and prints each index once the call has returned, so the parent knows exactly
# which calls were acknowledged. Each line is padded to 1 KiB: a parent that stops
# reading holds the worker on a full pipe (Linux's holds at most 1 MiB) long before it
# runs out of operations, however slowly the parent is scheduled.
_WORKER = """
import json, sys
from blobcache import BlobCache
cache = BlobCache.from_url(sys.argv[1])
with open(sys.argv[2]) as ops:
    operations = json.load(ops)
for index, (kind, digest, path) in enumerate(operations):
    getattr(cache, kind)(digest, path)
    print(f"{index:<1023}", flush=True)
"""


def operations(seed: int, count: int, *, digests: int = 6, paths: int = 5) -> list[Operation]:
    """A reproducible mix of puts and deletes on a few digests, so items come and go."""
    rng = random.Random(seed)
    return [
        (
            rng.choice(("put", "put", "delete")),
            digest_of(rng.randrange(digests)),
            f"/srv/{seed}/{rng.randrange(paths)}",
        )
        for _ in range(count)
    ]


def model(ops: list[Operation]) -> RawItems:
    """The state the contract promises after ``ops``, computed without blobcache."""
    state: dict[str, tuple[str, set[str]]] = {}
    for kind, digest, path in ops:
        original, paths = state.get(digest, (path, set()))
        if kind == "put":
            state[digest] = (original, paths | {path})
        elif path in paths:
            remaining = paths - {path}
            if not remaining:
                del state[digest]
            else:
                state[digest] = (min(remaining) if path == original else original, remaining)
    return {digest: (original, frozenset(paths)) for digest, (original, paths) in state.items()}


def run_worker(url: str, ops: list[Operation], workdir: Path) -> subprocess.Popen[str]:
    """Start a separate interpreter that applies ``ops`` to the cache at ``url``."""
    # A file, not argv: thousands of operations exceed the kernel's argument limit.
    ops_file = workdir / f"ops-{uuid.uuid4().hex}.json"
    ops_file.write_text(json.dumps(ops))
    return subprocess.Popen(
        [sys.executable, "-c", _WORKER, url, str(ops_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def sqlite_url(path: Path) -> str:
    """The URL of an absolute file path (``sqlite:////abs/file.db``)."""
    return f"sqlite:///{path}"


def integrity(path: str) -> str:
    """SQLite's own verdict on the file, read without blobcache."""
    with sqlite3.connect(path) as connection:
        (verdict,) = connection.execute("PRAGMA integrity_check").fetchone()
    return str(verdict)


class TestJournal:
    def test_wal_mode_is_persistent_in_the_file(self, make_cache: CacheFactory) -> None:
        """A cache puts its file in WAL mode; another connection reads it back from the file."""
        cache = make_cache("sqlite")
        cache.put(digest_of(1), "/a")
        with sqlite3.connect(backend_of(cache).target) as connection:
            (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
        assert mode == "wal"

    def test_each_connection_uses_the_configured_synchronous(
        self, make_cache: CacheFactory
    ) -> None:
        """``synchronous`` (per connection, not stored in the file) follows the option."""
        levels = {"OFF": 0, "NORMAL": 1, "FULL": 2, "EXTRA": 3}
        for name, level in levels.items():
            connection = sqlite_connection(make_cache("sqlite", synchronous=name))
            (value,) = connection.execute("PRAGMA synchronous").fetchone()
            assert value == level, name


class TestPersistence:
    def test_data_survives_close_and_reopen(self, make_cache: CacheFactory) -> None:
        """Everything written, promotion included, reads back after closing and reopening."""
        cache = make_cache("sqlite")
        url = sqlite_url(Path(backend_of(cache).target))
        cache.put(digest_of(1), "/b")
        cache.put(digest_of(1), "/c")
        cache.put(digest_of(1), "/a")
        cache.delete(digest_of(1), "/b")  # promotes /a, the smallest remaining
        cache.put(digest_of(2), "/z")
        cache.close()

        reopened = make_cache("sqlite", url=url, create=False)
        assert reopened.get_all(digest_of(1)) == ["/a", "/c"]
        assert reopened.get(digest_of(2)) == "/z"
        assert read_raw(reopened) == {
            digest_of(1): ("/a", frozenset({"/a", "/c"})),
            digest_of(2): ("/z", frozenset({"/z"})),
        }

    def test_closed_cache_reopens_on_next_use(self, make_cache: CacheFactory) -> None:
        """``close()`` releases the connection; the next call opens a new one and works."""
        cache = make_cache("sqlite")
        cache.put(digest_of(1), "/a")
        cache.close()
        cache.put(digest_of(1), "/b")
        assert cache.get_all(digest_of(1)) == ["/a", "/b"]


class TestSharing:
    def test_threads_share_one_cache_without_lock_errors(self, make_cache: CacheFactory) -> None:
        """Threads hammering one cache never see an error and lose nothing; the pool keeps
        no more idle connections than pool_size."""
        cache = make_cache("sqlite")  # default options: the default busy_timeout
        threads, rounds = 8, 40
        per_thread = [operations(seed, rounds, digests=3) for seed in range(threads)]

        def work(ops: list[Operation]) -> None:
            for kind, digest, path in ops:
                getattr(cache, kind)(digest, path)

        run_together(work, per_thread)  # re-raises any thread's error
        assert 1 <= len(backend_of(cache)._idle) <= cache.options.pool_size
        # Each thread writes its own paths, so only the paths per digest are predictable.
        expected: dict[str, set[str]] = {}
        for ops in per_thread:
            for digest, (_, paths) in model(ops).items():
                expected.setdefault(digest, set()).update(paths)
        stored = read_raw(cache)
        assert_invariants(stored)
        assert {d: set(paths) for d, (_, paths) in stored.items()} == expected

    def test_processes_share_one_new_file_without_lock_errors(self, tmp_path: Path) -> None:
        """Processes racing on a file that does not exist yet all succeed; no put is lost."""
        url = sqlite_url(tmp_path / "shared.db")
        per_process = [operations(seed, 60, digests=3) for seed in range(4)]
        workers = [run_worker(url, ops, tmp_path) for ops in per_process]
        outcomes = [worker.communicate(timeout=DEADLINE) for worker in workers]

        for worker, (out, err) in zip(workers, outcomes, strict=True):
            assert worker.returncode == 0, err
            assert "locked" not in err
            assert len(out.split()) == 60
        expected: dict[str, set[str]] = {}
        for ops in per_process:
            for digest, (_, paths) in model(ops).items():
                expected.setdefault(digest, set()).update(paths)
        with BlobCache.from_url(url) as cache:
            stored = read_raw(cache)
        assert_invariants(stored)
        assert {d: set(paths) for d, (_, paths) in stored.items()} == expected
        assert integrity(str(tmp_path / "shared.db")) == "ok"


class TestConnectionLifetime:
    def test_close_while_other_threads_read_does_not_crash(self, tmp_path: Path) -> None:
        """close() from one thread while others run statements neither crashes the process
        nor breaks those threads: they reopen their own connections and carry on."""
        script = f"""
import threading
from blobcache import BlobCache
cache = BlobCache.from_url("sqlite:///{tmp_path / "c.db"}")
digest = "sha256:" + "a" * 64
cache.put(digest, "/p")
stop, errors = threading.Event(), []
def read():
    try:
        while not stop.is_set():
            assert cache.get(digest) == "/p"
            cache.put(digest, "/q")
            list(cache.entries())
    except BaseException as exc:
        errors.append(exc)
threads = [threading.Thread(target=read) for _ in range(4)]
for t in threads: t.start()
for _ in range(300): cache.close()
stop.set()
for t in threads: t.join()
print(len(errors))
"""
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "0"

    def test_finished_threads_leave_no_open_connection(self, make_cache: CacheFactory) -> None:
        """A connection lives as long as its thread: many short-lived threads (a server's
        thread per request) do not pile up open files."""
        cache = make_cache("sqlite")
        cache.put(digest_of(1), "/p")

        def open_files() -> int:
            return len(os.listdir("/proc/self/fd"))

        def one_request() -> None:
            assert cache.get(digest_of(1)) == "/p"

        def requests(count: int) -> int:
            for _ in range(count):
                thread = threading.Thread(target=one_request)
                thread.start()
                thread.join()
            gc.collect()
            return open_files()

        # SQLite keeps a small pool of closed descriptors for reuse, so the first batch
        # may grow the count a little; a leak would add two per thread in every batch.
        after_first = requests(200)
        assert requests(200) - after_first < 10


class TestBadFiles:
    def test_newer_schema_version_says_upgrade(self, tmp_path: Path) -> None:
        """A file from a newer release is refused with its version and the fix; it is untouched."""
        path = tmp_path / "newer.db"
        with sqlite3.connect(path) as connection:
            connection.execute("PRAGMA user_version = 99")
        before = path.read_bytes()
        cache = BlobCache.from_url(sqlite_url(path))
        calls: list[Callable[[], object]] = [
            lambda: cache.put(digest_of(1), "/a"),
            lambda: cache.get(digest_of(1)),
            cache.create_table,
        ]
        for call in calls:
            with pytest.raises(BlobCacheError, match="schema version 99") as info:
                call()
            assert "upgrade blobcache" in str(info.value)
            assert not isinstance(info.value, StoreUnavailable | ConfigurationError)
        cache.close()
        assert path.read_bytes() == before

    def test_corrupt_file_is_reported_as_corrupt(self, tmp_path: Path) -> None:
        """Random bytes give a BlobCacheError saying corrupt or not a blobcache database."""
        path = tmp_path / "corrupt.db"
        garbage = random.Random(3).randbytes(16384)
        path.write_bytes(garbage)
        cache = BlobCache.from_url(sqlite_url(path))
        for call in (lambda: cache.put(digest_of(1), "/a"), lambda: cache.has(digest_of(1), "/a")):
            with pytest.raises(BlobCacheError, match="corrupt or not a blobcache database") as info:
                call()
            assert isinstance(info.value.cause, sqlite3.DatabaseError)
        cache.close()
        assert path.read_bytes() == garbage

    def test_another_applications_database_is_not_unavailable(self, tmp_path: Path) -> None:
        """A SQLite file of another program (user_version 1, no our tables) is named as such."""
        path = tmp_path / "other.db"
        with sqlite3.connect(path) as connection:
            connection.execute("CREATE TABLE notes (body TEXT)")
            connection.execute("PRAGMA user_version = 1")
        with BlobCache.from_url(sqlite_url(path)) as cache:
            with pytest.raises(BlobCacheError, match="not a blobcache database") as info:
                cache.put(digest_of(1), "/a")
            assert not isinstance(info.value, StoreUnavailable)
        with sqlite3.connect(path) as connection:
            tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master")]
        assert tables == ["notes"]

    @pytest.mark.parametrize("where", ["missing-directory", "a-directory"])
    def test_unopenable_path_is_a_configuration_error(self, tmp_path: Path, where: str) -> None:
        """A file in a missing directory, or a directory, gives ConfigurationError naming it."""
        target = tmp_path / "missing" / "cache.db" if where == "missing-directory" else tmp_path
        with BlobCache.from_url(sqlite_url(target)) as cache:
            with pytest.raises(ConfigurationError, match="directory exists") as info:
                cache.put(digest_of(1), "/a")
            assert str(target) in str(info.value)
        assert not (tmp_path / "missing").exists()


class TestDurability:
    @pytest.mark.parametrize("acknowledged", [40, 200])
    def test_sigkill_loses_no_acknowledged_call(self, tmp_path: Path, acknowledged: int) -> None:
        """A writer killed mid-run keeps every acknowledged call; the next is all or nothing."""
        path = tmp_path / "durable.db"
        ops = operations(acknowledged, 5000)
        writer = run_worker(sqlite_url(path), ops, tmp_path)
        assert writer.stdout is not None
        for _ in range(acknowledged):
            assert writer.stdout.readline(), writer.communicate()[1]
        writer.send_signal(signal.SIGKILL)
        rest, _ = writer.communicate(timeout=DEADLINE)
        assert writer.returncode == -signal.SIGKILL
        done = acknowledged + len(rest.split())
        assert done < len(ops), "the writer finished before it was killed"

        with BlobCache.from_url(sqlite_url(path)) as cache:
            stored = read_raw(cache)
            assert_invariants(stored)
            # The call in flight at the kill either fully happened or not at all.
            assert stored in (model(ops[:done]), model(ops[: done + 1]))
            assert integrity(str(path)) == "ok"
            cache.put(digest_of(99), "/after")
            assert cache.get(digest_of(99)) == "/after"


class TestDefaultLocation:
    def test_blobcache_url_wins(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """``from_url()`` with ``$BLOBCACHE_URL`` set opens that cache."""
        path = tmp_path / "from-env.db"
        monkeypatch.setenv("BLOBCACHE_URL", sqlite_url(path))
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
        with BlobCache.from_url() as cache:
            cache.put(digest_of(1), "/a")
            assert backend_of(cache).target == str(path)
        with BlobCache.from_url(sqlite_url(path)) as reopened:
            assert reopened.get(digest_of(1)) == "/a"
        assert not (tmp_path / "xdg").exists()

    @pytest.mark.skipif(sys.platform != "linux", reason="the XDG layout is Linux's")
    @pytest.mark.parametrize("xdg", [True, False])
    def test_without_url_uses_the_user_data_directory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, xdg: bool
    ) -> None:
        """No URL and no ``$BLOBCACHE_URL``: a file under the per-user data dir, created."""
        monkeypatch.delenv("BLOBCACHE_URL", raising=False)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        if xdg:
            monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
            expected = tmp_path / "xdg" / "blobcache" / "blobcache.db"
        else:
            monkeypatch.delenv("XDG_DATA_HOME", raising=False)
            expected = tmp_path / "home" / ".local" / "share" / "blobcache" / "blobcache.db"
        assert Path(platformdirs.user_data_dir("blobcache")) == expected.parent
        assert not expected.parent.exists()

        with BlobCache.from_url() as cache:
            cache.put(digest_of(1), "/a")
            assert backend_of(cache).target == str(expected)
        with sqlite3.connect(expected) as connection:
            rows = connection.execute("SELECT digest, original FROM blobcache_item").fetchall()
        assert rows == [(digest_of(1), "/a")]

    def test_uncreatable_user_data_directory_is_a_configuration_error(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """If the per-user directory cannot be made, the error says to set BLOBCACHE_URL."""
        blocker = tmp_path / "file"
        blocker.write_text("not a directory")
        monkeypatch.delenv("BLOBCACHE_URL", raising=False)
        monkeypatch.setenv("XDG_DATA_HOME", str(blocker))
        with pytest.raises(ConfigurationError, match="BLOBCACHE_URL"):
            BlobCache.from_url()
        assert blocker.read_text() == "not a directory"


class TestURLForms:
    def test_three_slashes_is_relative_to_the_working_directory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``sqlite:///rel.db`` is a file in the cwd at open time, even after a chdir."""
        (tmp_path / "a" / "sub").mkdir(parents=True)
        (tmp_path / "b").mkdir()
        monkeypatch.chdir(tmp_path / "a")
        with BlobCache.from_url("sqlite:///sub/rel.db") as cache:
            cache.put(digest_of(1), "/a")
            monkeypatch.chdir(tmp_path / "b")
            # A thread opens its own connection after the chdir: it must see the same file.
            seen: list[bool] = []
            thread = threading.Thread(target=lambda: seen.append(cache.has(digest_of(1), "/a")))
            thread.start()
            thread.join()
            assert seen == [True]
        assert (tmp_path / "a" / "sub" / "rel.db").is_file()
        assert list((tmp_path / "b").iterdir()) == []

    def test_four_slashes_is_absolute(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``sqlite:////abs/file.db`` names an absolute path, whatever the cwd."""
        (tmp_path / "cwd").mkdir()
        monkeypatch.chdir(tmp_path / "cwd")
        url = "sqlite:////" + str(tmp_path / "abs.db").lstrip("/")
        with BlobCache.from_url(url) as cache:
            cache.put(digest_of(1), "/a")
        with sqlite3.connect(tmp_path / "abs.db") as connection:
            (count,) = connection.execute("SELECT count(*) FROM blobcache_path").fetchone()
        assert count == 1
        assert list((tmp_path / "cwd").iterdir()) == []


def _forked_child(cache: BlobCache, results: Any) -> None:
    """In a forked child: read what the parent wrote, then write through the same cache."""
    try:
        seen = cache.get_all(digest_of(1))
        for n in range(20):
            cache.put(digest_of(2), f"/child/{n:02}")
        cache.delete(digest_of(1), "/parent/a")
        results.put(("ok", seen))
    except BaseException as exc:
        results.put(("error", repr(exc)))


class TestFork:
    def test_forked_child_uses_the_cache_and_parent_keeps_working(
        self, make_cache: CacheFactory
    ) -> None:
        """A child forked with an open cache works, and the parent's connection stays sound."""
        cache = make_cache("sqlite")
        cache.put(digest_of(1), "/parent/a")
        cache.put(digest_of(1), "/parent/b")
        parent_connection = sqlite_connection(cache)

        context = multiprocessing.get_context("fork")
        results = context.Queue()
        children = [context.Process(target=_forked_child, args=(cache, results)) for _ in range(3)]
        for child in children:
            child.start()
        # The parent writes while its children do.
        for n in range(20):
            cache.put(digest_of(3), f"/parent/{n:02}")
        outcomes = [results.get(timeout=DEADLINE) for _ in children]
        for child in children:
            child.join(timeout=DEADLINE)
            assert child.exitcode == 0

        # Another child may already have deleted /parent/a.
        possible = (["/parent/a", "/parent/b"], ["/parent/b"])
        assert all(status == "ok" and seen in possible for status, seen in outcomes), outcomes
        assert sqlite_connection(cache) is parent_connection
        assert cache.get_all(digest_of(1)) == ["/parent/b"]
        assert cache.get_all(digest_of(2)) == [f"/child/{n:02}" for n in range(20)]
        cache.put(digest_of(4), "/parent/after")
        assert cache.get(digest_of(4)) == "/parent/after"
        with pytest.raises(CacheMiss):
            cache.get(digest_of(5))
        stored = read_raw(cache)
        assert_invariants(stored)
        assert len(stored[digest_of(3)][1]) == 20
        assert integrity(backend_of(cache).target) == "ok"
