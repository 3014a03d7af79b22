"""dedupe: replacing duplicate copies by hard links, safely."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from blobcache import BlobCache, InvalidPath
from blobcache.maintenance import _fs, dedupe, index
from tests.helpers import CacheFactory, blob, read_raw


def snapshot(root: Path) -> dict[str, tuple[int, bytes | str]]:
    """Every entry under ``root``: inode and content (or symlink target)."""
    found: dict[str, tuple[int, bytes | str]] = {}
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory, name)
            status = path.lstat()
            body = os.readlink(path) if path.is_symlink() else path.read_bytes()
            found[str(path)] = (status.st_ino, body)
    return found


@pytest.fixture
def sqlite_cache(make_cache: CacheFactory) -> BlobCache:
    return make_cache("sqlite")


class TestDedupe:
    def test_dry_run_touches_nothing(self, sqlite_cache: BlobCache, tmp_path: Path) -> None:
        """Without apply, the report lists the links but no file and no entry changes."""
        root = tmp_path / "registry"
        blob(root, "a/r", b"layer" * 10)
        blob(root, "b/r", b"layer" * 10)
        index(sqlite_cache, root)
        files, entries = snapshot(root), read_raw(sqlite_cache)

        report = dedupe(sqlite_cache, root)

        assert not report.applied
        assert len(report.links) == 1
        assert report.reclaimed_bytes == 50
        assert snapshot(root) == files
        assert read_raw(sqlite_cache) == entries

    def test_apply_links_copies_to_the_original(
        self, sqlite_cache: BlobCache, tmp_path: Path
    ) -> None:
        """Each copy becomes a hard link to the original, with its content intact."""
        root = tmp_path / "registry"
        _, original = blob(root, "a/r", b"layer" * 10)
        _, copy = blob(root, "b/r", b"layer" * 10)
        _, third = blob(root, "c/r", b"layer" * 10)
        index(sqlite_cache, root)

        report = dedupe(sqlite_cache, root, apply=True)

        assert report.applied
        assert sorted(link.path for link in report.links) == [copy, third]
        assert report.reclaimed_bytes == 100
        inode = os.stat(original).st_ino
        assert os.stat(copy).st_ino == os.stat(third).st_ino == inode
        assert Path(copy).read_bytes() == b"layer" * 10
        assert not [name for name in os.listdir(Path(copy).parent) if ".blobcache-" in name]
        again = dedupe(sqlite_cache, root, apply=True)
        assert (len(again.links), again.already_linked, again.reclaimed_bytes) == (0, 2, 0)

    def test_skips_placeholders_and_differing_content(
        self, sqlite_cache: BlobCache, tmp_path: Path
    ) -> None:
        """A zero-byte placeholder and a copy with other bytes are reported and left alone."""
        root = tmp_path / "registry"
        blob(root, "a/r", b"layer")
        _, placeholder = blob(root, "b/r", b"layer", placeholder=True)
        _, corrupt = blob(root, "c/r", b"layer")
        Path(corrupt).write_bytes(b"LAYER")
        index(sqlite_cache, root)
        files = snapshot(root)

        report = dedupe(sqlite_cache, root, apply=True)

        assert sorted((s.path, s.reason) for s in report.skipped) == [
            (placeholder, "placeholder"),
            (corrupt, "content_differs"),
        ]
        assert report.links == ()
        assert snapshot(root) == files

    def test_never_touches_paths_outside_root(
        self, sqlite_cache: BlobCache, tmp_path: Path
    ) -> None:
        """Escapes, absolute paths elsewhere, symlinks and symlinked directories stay untouched."""
        root = tmp_path / "registry"
        digest, original = blob(root, "a/r", b"layer")
        outside = tmp_path / "outside"
        outside.mkdir()
        elsewhere = outside / "copy"
        elsewhere.write_bytes(b"layer")
        link = root / "b/r/blobs/sha256" / digest.removeprefix("sha256:")
        link.parent.mkdir(parents=True)
        link.symlink_to(elsewhere)
        (root / "c").symlink_to(outside, target_is_directory=True)
        through_dir = str(root / "c/copy")
        sqlite_cache.put(digest, original)
        for path in ("../../etc/passwd", str(elsewhere), str(link), through_dir):
            sqlite_cache.put(digest, path)
        before_inode = elsewhere.stat().st_ino

        report = dedupe(sqlite_cache, root, apply=True)

        assert report.links == ()
        assert sorted((s.path, s.reason) for s in report.skipped) == sorted(
            [
                ("../../etc/passwd", "outside_root"),
                (str(elsewhere), "outside_root"),
                (str(link), "not_a_regular_file"),
                (through_dir, "symlink_in_path"),
            ]
        )
        assert elsewhere.stat().st_ino == before_inode
        assert elsewhere.read_bytes() == b"layer"
        assert link.is_symlink()
        assert os.stat(original).st_nlink == 1

    def test_symlinked_original_is_not_used(self, sqlite_cache: BlobCache, tmp_path: Path) -> None:
        """An original that is a symlink is never linked from; its copies are skipped."""
        root = tmp_path / "registry"
        digest, copy = blob(root, "b/r", b"layer")
        secret = tmp_path / "secret"
        secret.write_bytes(b"layer")
        fake = root / "a/r/blobs/sha256" / digest.removeprefix("sha256:")
        fake.parent.mkdir(parents=True)
        fake.symlink_to(secret)
        sqlite_cache.put(digest, str(fake))
        sqlite_cache.put(digest, copy)

        report = dedupe(sqlite_cache, root, apply=True)

        assert [(s.path, s.reason) for s in report.skipped] == [(copy, "original_unusable")]
        assert os.stat(copy).st_ino != secret.stat().st_ino

    def test_root_must_be_a_directory(self, sqlite_cache: BlobCache, tmp_path: Path) -> None:
        """A missing root raises InvalidPath."""
        with pytest.raises(InvalidPath):
            dedupe(sqlite_cache, tmp_path / "missing")


LAYER = b"layer" * 10
#: The module whose helpers the fault-injection tests replace.
DEDUPE = "blobcache.maintenance._dedupe"


def leftovers(root: Path) -> list[str]:
    """Temporary names dedupe left behind under ``root``."""
    return [name for _, _, files in os.walk(root) for name in files if ".blobcache-" in name]


class TestDedupeSwaps:
    """Files swapped between the comparison and the link (fault injection on the helpers)."""

    def test_original_swapped_for_a_symlink_is_not_linked(
        self, sqlite_cache: BlobCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An original replaced by a symlink out of ROOT after the comparison is never
        linked: the copy keeps its inode and bytes, and is reported as original_changed."""
        root = tmp_path / "registry"
        _, original = blob(root, "a/r", LAYER)
        _, copy = blob(root, "b/r", LAYER)
        index(sqlite_cache, root)
        outside = tmp_path / "outside"
        outside.write_bytes(LAYER)
        compare = _fs.same_content

        def compare_then_swap(first: int, second: int) -> bool:
            same = compare(first, second)
            os.symlink(outside, original + ".new")
            os.replace(original + ".new", original)
            return same

        monkeypatch.setattr(f"{DEDUPE}.same_content", compare_then_swap)
        inode = os.lstat(copy).st_ino

        report = dedupe(sqlite_cache, root, apply=True)

        assert report.links == ()
        assert [(s.path, s.reason) for s in report.skipped] == [(copy, "original_changed")]
        assert not Path(copy).is_symlink()
        assert os.lstat(copy).st_ino == inode
        assert Path(copy).read_bytes() == LAYER
        assert leftovers(root) == []

    def test_copy_swapped_after_the_comparison_keeps_its_bytes(
        self, sqlite_cache: BlobCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A copy replaced by another file after the comparison is not renamed over:
        the new file keeps its bytes, and the copy is reported as copy_changed."""
        root = tmp_path / "registry"
        _, original = blob(root, "a/r", LAYER)
        _, copy = blob(root, "b/r", LAYER)
        index(sqlite_cache, root)
        compare = _fs.same_content

        def compare_then_swap(first: int, second: int) -> bool:
            same = compare(first, second)
            Path(copy + ".new").write_bytes(b"written meanwhile")
            os.replace(copy + ".new", copy)
            return same

        monkeypatch.setattr(f"{DEDUPE}.same_content", compare_then_swap)

        report = dedupe(sqlite_cache, root, apply=True)

        assert report.links == ()
        assert [(s.path, s.reason) for s in report.skipped] == [(copy, "copy_changed")]
        assert Path(copy).read_bytes() == b"written meanwhile"
        assert os.stat(original).st_nlink == 1
        assert leftovers(root) == []

    @pytest.mark.timeout(120)  # a hang fails fast; a busy machine does not
    @pytest.mark.parametrize(
        ("side", "reason"), [("original", "original_unusable"), ("copy", "copy_changed")]
    )
    def test_file_swapped_for_a_fifo_does_not_hang(
        self,
        sqlite_cache: BlobCache,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        side: str,
        reason: str,
    ) -> None:
        """A file swapped for a FIFO between its lstat and its open is opened without
        blocking and skipped; the FIFO is left as it is."""
        root = tmp_path / "registry"
        _, original = blob(root, "a/r", LAYER)
        _, copy = blob(root, "b/r", LAYER)
        index(sqlite_cache, root)
        victim = original if side == "original" else copy
        victim_dir = os.stat(os.path.dirname(victim)).st_ino
        open_file = _fs.open_nofollow

        def swap_then_open(name: str, dir_fd: int | None = None) -> int:
            assert dir_fd is not None
            if os.fstat(dir_fd).st_ino == victim_dir and os.path.isfile(victim):
                os.unlink(victim)
                os.mkfifo(victim)
            return open_file(name, dir_fd)

        monkeypatch.setattr(f"{DEDUPE}.open_nofollow", swap_then_open)

        report = dedupe(sqlite_cache, root, apply=True)

        assert report.links == ()
        assert [(s.path, s.reason) for s in report.skipped] == [(copy, reason)]
        assert stat.S_ISFIFO(os.lstat(victim).st_mode)


class TestDedupeErrors:
    def test_long_names_are_linked(self, sqlite_cache: BlobCache, tmp_path: Path) -> None:
        """A copy whose name is near the 255-byte limit is linked like any other."""
        root = tmp_path / "registry"
        root.mkdir()
        digest, _ = blob(tmp_path, "unused", LAYER)
        original, copy = root / "a", root / ("L" * 250)
        for path in (original, copy):
            path.write_bytes(LAYER)
            sqlite_cache.put(digest, str(path))

        report = dedupe(sqlite_cache, root, apply=True)

        assert [link.path for link in report.links] == [str(copy)]
        assert copy.stat().st_ino == original.stat().st_ino
        assert leftovers(root) == []

    def test_a_copy_the_file_system_refuses_is_skipped_and_the_run_goes_on(
        self, sqlite_cache: BlobCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An OSError on one copy (here EMLINK from link) skips it as "error" with the
        errno in detail; the next copy is still linked."""
        root = tmp_path / "registry"
        _, original = blob(root, "a/r", LAYER)
        _, refused = blob(root, "b/r", LAYER)
        _, linked = blob(root, "c/r", LAYER)
        index(sqlite_cache, root)
        link = os.link
        calls: list[str] = []

        def refuse_first(*args: Any, **kwargs: Any) -> None:
            calls.append("link")
            if len(calls) == 1:
                raise OSError(errno.EMLINK, os.strerror(errno.EMLINK))
            link(*args, **kwargs)

        monkeypatch.setattr(os, "link", refuse_first)

        report = dedupe(sqlite_cache, root, apply=True)

        assert [link.path for link in report.links] == [linked]
        [skipped] = report.skipped
        assert (skipped.path, skipped.reason) == (refused, "error")
        assert skipped.detail is not None
        assert os.strerror(errno.EMLINK) in skipped.detail
        assert os.stat(linked).st_ino == os.stat(original).st_ino
        assert os.stat(refused).st_nlink == 1
