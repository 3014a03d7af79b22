"""verify, prune and migrate: checking and repairing stored items."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from blobcache import BlobCache
from blobcache.maintenance import _verify, migrate, prune, verify
from tests.helpers import (
    CacheFactory,
    assert_invariants,
    backend_of,
    blob,
    digest_of,
    put_raw,
    read_raw,
)


class TestVerify:
    def test_finds_items_another_writer_broke(self, dynamo_cache: BlobCache) -> None:
        """Key-only items, missing originals, originals outside the set and legacy items show."""
        put_raw(dynamo_cache, digest_of(1))
        put_raw(dynamo_cache, digest_of(2), DuplicateBlobPath={"/r/b"})
        put_raw(dynamo_cache, digest_of(3), OriginalBlobPath="/r/o", DuplicateBlobPath={"/r/c"})
        put_raw(dynamo_cache, digest_of(4), BlobPath={"/r/l"})
        dynamo_cache.put(digest_of(5), "/r/fine")

        report = verify(dynamo_cache, root="/nonexistent-root")

        found = sorted((f.kind, f.digest, f.path) for f in report.findings)
        assert found == [
            ("empty_item", digest_of(1), None),
            ("legacy_item", digest_of(4), None),
            ("missing_original", digest_of(2), None),
            ("original_not_in_paths", digest_of(3), "/r/o"),
        ]
        assert not report.ok
        assert report.items == 5

    def test_finds_missing_paths_and_placeholder_originals(
        self, cache: BlobCache, tmp_path: Path
    ) -> None:
        """A path with no file and a zero-byte original beside real content are both reported."""
        digest, placeholder = blob(tmp_path, "a/r", b"layer", placeholder=True)
        _, content = blob(tmp_path, "b/r", b"layer")
        cache.put(digest, placeholder)
        cache.put(digest, content)
        gone = str(tmp_path / "c/r/blobs/sha256" / digest.removeprefix("sha256:"))
        cache.put(digest, gone)

        report = verify(cache, root=tmp_path)

        assert sorted((f.kind, f.path) for f in report.findings) == [
            ("missing_path", gone),
            ("placeholder_original", placeholder),
        ]
        assert (report.items, report.paths, report.unchecked) == (1, 3, 0)

    def test_clean_cache_is_ok(self, cache: BlobCache, tmp_path: Path) -> None:
        """A cache whose every path exists has no findings."""
        digest, path = blob(tmp_path, "r", b"x")
        cache.put(digest, path)
        report = verify(cache)
        assert report.ok
        assert report.findings == ()

    def test_paths_it_cannot_walk_are_unchecked(self, cache: BlobCache, tmp_path: Path) -> None:
        """A symlink loop, a name too long and a symlinked directory in a path neither raise
        nor count as missing: each such path is unchecked."""
        root = tmp_path / "root"
        digest, present = blob(root, "r", b"x")
        (root / "loop").symlink_to(root / "loop")
        outside = tmp_path / "outside"
        outside.mkdir()
        (root / "evil").symlink_to(outside, target_is_directory=True)
        cache.put(digest, present)
        for path in (root / "loop/x", root / ("n" * 300) / "x", root / "evil/gone"):
            cache.put(digest, str(path))

        report = verify(cache, root=root)

        assert report.findings == ()
        assert (report.paths, report.unchecked) == (4, 3)

    def test_original_without_paths_is_not_called_empty(self, dynamo_cache: BlobCache) -> None:
        """An item with an original and no DuplicateBlobPath reads as a one-path item, so
        verify reports the original outside the set, never advice to remove the item."""
        put_raw(dynamo_cache, digest_of(1), OriginalBlobPath="/r/o")

        report = verify(dynamo_cache, root="/nonexistent-root")

        assert [(f.kind, f.path) for f in report.findings] == [("original_not_in_paths", "/r/o")]
        assert "remove" not in report.findings[0].detail
        assert dynamo_cache.get_all(digest_of(1)) == ["/r/o"]


class TestPrune:
    @pytest.fixture
    def stale_cache(self, cache: BlobCache, tmp_path: Path) -> tuple[BlobCache, str, str, str]:
        digest, kept = blob(tmp_path / "root", "r", b"x")
        gone = str(tmp_path / "root/old/blobs/sha256" / digest.removeprefix("sha256:"))
        cache.put(digest, gone)
        cache.put(digest, kept)
        return cache, digest, gone, kept

    def test_dry_run_writes_nothing(
        self, stale_cache: tuple[BlobCache, str, str, str], tmp_path: Path
    ) -> None:
        """Without apply, prune reports the stale path and leaves the cache as it was."""
        cache, digest, gone, _ = stale_cache
        before = read_raw(cache)
        report = prune(cache, root=tmp_path / "root")
        assert [(s.digest, s.path) for s in report.stale] == [(digest, gone)]
        assert not report.applied
        assert read_raw(cache) == before

    def test_apply_removes_stale_paths_and_promotes(
        self, stale_cache: tuple[BlobCache, str, str, str], tmp_path: Path
    ) -> None:
        """With apply, the stale original goes and the remaining path becomes the original."""
        cache, digest, _, kept = stale_cache
        report = prune(cache, root=tmp_path / "root", apply=True)
        assert report.applied
        assert len(report.stale) == 1
        assert read_raw(cache) == {digest: (kept, frozenset({kept}))}
        assert verify(cache, root=tmp_path / "root").ok

    def test_never_touches_entries_outside_root(self, cache: BlobCache, tmp_path: Path) -> None:
        """Relative escapes, absolute paths elsewhere and symlinks out of the tree are kept."""
        root = tmp_path / "root"
        digest, inside = blob(root, "r", b"x")
        outside = tmp_path / "outside"
        outside.mkdir()
        target = outside / "target"
        target.write_bytes(b"secret")
        link = root / "r/blobs/sha256/link"
        link.symlink_to(target)
        crafted = [
            "../../etc/passwd",
            str(outside / "missing"),
            str(tmp_path / "root-sibling/missing"),
            str(link),
        ]
        cache.put(digest, inside)
        for path in crafted:
            cache.put(digest, path)
        before = read_raw(cache)

        report = prune(cache, root=root, apply=True)

        assert report.stale == ()
        assert read_raw(cache) == before
        assert target.read_bytes() == b"secret"
        assert link.is_symlink()

    def test_keeps_paths_behind_a_symlinked_directory(
        self, cache: BlobCache, tmp_path: Path
    ) -> None:
        """A path through a symlink out of ROOT (or through one and back with ``..``) is
        never judged by where it lexically points nor by the files outside: kept."""
        root = tmp_path / "root"
        digest, inside = blob(root, "r", b"x")
        outside = tmp_path / "outside"
        outside.mkdir()
        (root / "evil").symlink_to(outside, target_is_directory=True)
        cache.put(digest, inside)
        cache.put(digest, str(root / "evil/gone"))
        cache.put(digest, f"{root}/evil/../gone")
        before = read_raw(cache)

        report = prune(cache, root=root, apply=True)

        assert report.stale == ()
        assert read_raw(cache) == before

    def test_absolute_paths_in_relative_mode_are_unchecked(
        self, make_cache: CacheFactory, tmp_path: Path
    ) -> None:
        """In relative-path mode, a path stored absolute (by zot, or without a root) is
        unchecked, not moved under the root and called missing; prune keeps it."""
        root = tmp_path / "root"
        digest, path = blob(root, "r", b"x")
        url = f"sqlite:///{tmp_path / 'shared.db'}"
        make_cache("sqlite", url=url).put(digest, path)
        rooted = make_cache("sqlite", url=url, root=root)
        before = read_raw(rooted)

        checked = verify(rooted)
        report = prune(rooted, apply=True)

        assert (checked.findings, checked.unchecked) == ((), 1)
        assert report.stale == ()
        assert read_raw(rooted) == before

    def test_reports_only_paths_it_removed(
        self,
        stale_cache: tuple[BlobCache, str, str, str],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A stale path another writer forgets between the check and the delete is not
        reported as removed."""
        cache, digest, gone, kept = stale_cache
        look_up = _verify.look_up

        def forget_then_look_up(path: str, scope: str | None) -> Any:
            cache.delete(digest, gone)
            return look_up(path, scope)

        monkeypatch.setattr("blobcache.maintenance._prune.look_up", forget_then_look_up)

        report = prune(cache, root=tmp_path / "root", apply=True)

        assert (report.applied, report.stale, report.reappeared) == (True, (), 0)
        assert read_raw(cache) == {digest: (kept, frozenset({kept}))}


class TestMigrate:
    def test_converts_legacy_items_in_place(self, dynamo_cache: BlobCache) -> None:
        """Legacy BlobPath items get the current layout; the smallest path becomes the original."""
        put_raw(dynamo_cache, digest_of(1), BlobPath={"/r/b", "/r/a"})
        put_raw(dynamo_cache, digest_of(2), BlobPath={"/r/c"})
        dynamo_cache.put(digest_of(3), "/r/current")

        report = migrate(dynamo_cache)

        assert (report.items, report.migrated, report.raced) == (3, 2, 0)
        items = read_raw(dynamo_cache)
        assert items == {
            digest_of(1): ("/r/a", frozenset({"/r/a", "/r/b"})),
            digest_of(2): ("/r/c", frozenset({"/r/c"})),
            digest_of(3): ("/r/current", frozenset({"/r/current"})),
        }
        assert_invariants(items)
        assert dynamo_cache.get_all(digest_of(1)) == ["/r/a", "/r/b"]
        assert verify(dynamo_cache, root="/nonexistent").findings == ()

    def test_is_idempotent_and_keeps_an_existing_original(self, dynamo_cache: BlobCache) -> None:
        """A half-written item keeps its original; a second run finds nothing to do."""
        put_raw(
            dynamo_cache,
            digest_of(1),
            OriginalBlobPath="/r/z",
            DuplicateBlobPath={"/r/z"},
            BlobPath={"/r/a"},
        )
        assert migrate(dynamo_cache).migrated == 1
        after = read_raw(dynamo_cache)
        assert after == {digest_of(1): ("/r/z", frozenset({"/r/a", "/r/z"}))}
        again = migrate(dynamo_cache)
        assert (again.migrated, again.raced) == (0, 0)
        assert read_raw(dynamo_cache) == after

    def test_parallel_scan_sees_every_item(self, make_cache: CacheFactory) -> None:
        """With several scan segments, every legacy item is migrated exactly once."""
        cache = make_cache("dynalite")
        for n in range(40):
            put_raw(cache, digest_of(n), BlobPath={f"/r/{n}"})
        report = migrate(cache, segments=4)
        assert (report.items, report.migrated) == (40, 40)
        assert all(original is not None for original, _ in read_raw(cache).values())

    def test_sqlite_has_nothing_to_migrate(self, make_cache: CacheFactory) -> None:
        """On SQLite, migrate scans and changes nothing."""
        cache = make_cache("sqlite")
        cache.put(digest_of(1), "/r/a")
        before = read_raw(cache)
        assert migrate(cache).migrated == 0
        assert read_raw(cache) == before
        assert os.path.exists(backend_of(cache).target)
