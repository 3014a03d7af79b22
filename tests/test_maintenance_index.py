"""index: rebuilding the cache from a storage tree."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from blobcache import BlobCache, InvalidPath
from blobcache.maintenance import index
from tests.helpers import CacheFactory, assert_invariants, blob, read_raw


class TestIndex:
    def test_records_every_blob_with_content_as_original(
        self, cache: BlobCache, tmp_path: Path
    ) -> None:
        """Each digest gets every path; a copy with content is the original, not a placeholder."""
        root = tmp_path / "registry"
        # "a/..." sorts first, so a naive first-found rule would pick the placeholder.
        digest, placeholder = blob(root, "a/app", b"layer", placeholder=True)
        _, content = blob(root, "b/base", b"layer")
        _, copy = blob(root, "c/copy", b"layer")
        single, only = blob(root, "b/base", b"config")

        report = index(cache, root)

        items = read_raw(cache)
        assert items == {
            digest: (content, frozenset({placeholder, content, copy})),
            single: (only, frozenset({only})),
        }
        assert_invariants(items)
        assert (report.blobs, report.digests, report.duplicates) == (4, 2, 2)
        assert (report.placeholders, report.recorded, report.without_content) == (1, 4, 0)
        assert report.reclaimable_bytes == len(b"layer")

    def test_rerun_changes_nothing(self, atomic_cache: BlobCache, tmp_path: Path) -> None:
        """Indexing the same tree twice leaves exactly the same stored items."""
        root = tmp_path / "registry"
        for repository in ("x/one", "x/two", "y/three"):
            blob(root, repository, b"shared")
            blob(root, repository, repository.encode())
        index(atomic_cache, root, workers=4)
        first = read_raw(atomic_cache)
        index(atomic_cache, root, workers=4)
        assert read_raw(atomic_cache) == first
        assert len(first) == 4

    def test_oci_layout_and_empty_blob(self, make_cache: CacheFactory, tmp_path: Path) -> None:
        """An OCI image layout is indexed too, and the empty blob's zero-byte file is content."""
        cache = make_cache("sqlite")
        layout = tmp_path / "layout"
        (layout).mkdir()
        (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        empty, path = blob(tmp_path, "layout", b"")
        report = index(cache, layout)
        assert cache.get_all(empty) == [path]
        assert (report.placeholders, report.without_content) == (0, 0)

    def test_verify_digests_reports_and_skips_mismatches(
        self, make_cache: CacheFactory, tmp_path: Path
    ) -> None:
        """With verify_digests, a file whose bytes do not match its name is reported, not kept."""
        cache = make_cache("sqlite")
        root = tmp_path / "registry"
        digest, good = blob(root, "r/good", b"payload")
        _, bad = blob(root, "r/bad", b"payload")
        Path(bad).write_bytes(b"tampered")
        report = index(cache, root, verify_digests=True)
        assert cache.get_all(digest) == [good]
        assert [(m.path, m.expected) for m in report.mismatches] == [(bad, digest)]
        assert report.mismatches[0].actual == "sha256:" + hashlib.sha256(b"tampered").hexdigest()

    def test_skips_symlinks_and_names_that_are_not_digests(
        self, make_cache: CacheFactory, tmp_path: Path
    ) -> None:
        """Symlinked blobs and files named like no digest are counted as skipped, never recorded."""
        cache = make_cache("sqlite")
        root = tmp_path / "registry"
        digest, path = blob(root, "r/a", b"x")
        outside = tmp_path / "outside"
        outside.write_bytes(b"y")
        link = root / "r/a/blobs/sha256" / hashlib.sha256(b"y").hexdigest()
        link.symlink_to(outside)
        (root / "r/a/blobs/sha256/NOT-A-DIGEST").write_bytes(b"z")
        report = index(cache, root)
        assert read_raw(cache) == {digest: (path, frozenset({path}))}
        assert report.skipped == 2

    def test_root_that_is_not_a_directory_writes_nothing(
        self, make_cache: CacheFactory, tmp_path: Path
    ) -> None:
        """A missing root raises InvalidPath and writes nothing."""
        cache = make_cache("sqlite")
        with pytest.raises(InvalidPath, match="not a directory"):
            index(cache, tmp_path / "missing")
        assert read_raw(cache) == {}

    def test_relative_path_mode_stores_relative_paths(
        self, make_cache: CacheFactory, tmp_path: Path
    ) -> None:
        """With a cache root, stored paths are relative to it and read back absolute."""
        root = tmp_path / "registry"
        digest, path = blob(root, "r/a", b"x")
        cache = make_cache("sqlite", root=root)
        index(cache, root)
        stored = "r/a/blobs/sha256/" + digest.removeprefix("sha256:")
        assert read_raw(cache) == {digest: (stored, frozenset({stored}))}
        assert cache.get(digest) == os.path.abspath(path)

    def test_tree_outside_the_cache_root_is_refused(
        self, make_cache: CacheFactory, tmp_path: Path
    ) -> None:
        """Indexing a tree outside the cache's root raises InvalidPath before writing."""
        (tmp_path / "cache-root").mkdir()
        blob(tmp_path, "elsewhere/r", b"x")
        cache = make_cache("sqlite", root=tmp_path / "cache-root")
        with pytest.raises(InvalidPath, match="not inside the cache's root"):
            index(cache, tmp_path / "elsewhere")
        assert read_raw(cache) == {}

    def test_progress_reaches_the_total(self, make_cache: CacheFactory, tmp_path: Path) -> None:
        """The progress callback ends at (total, total), one call per finished batch."""
        cache = make_cache("sqlite")
        for n in range(5):
            blob(tmp_path / "registry", f"r/{n}", str(n).encode())
        calls: list[tuple[int, int]] = []
        index(
            cache, tmp_path / "registry", progress=lambda done, total: calls.append((done, total))
        )
        assert calls[-1] == (5, 5)
        assert [done for done, _ in calls] == sorted(done for done, _ in calls)
