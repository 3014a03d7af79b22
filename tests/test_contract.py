"""The contract (docs/contract.md), pinned on every backend: SQLite, dynalite and moto's server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from blobcache import (
    BlobCache,
    BlobCacheError,
    BlobEntry,
    CacheMiss,
    InvalidDigest,
    InvalidPath,
)
from tests.helpers import (
    ALL_BACKENDS,
    CacheFactory,
    assert_invariants,
    digest_of,
    read_raw,
    record_requests,
)

# Real digests, as zot's tests use them.
LAYER = "sha256:7173b809ca12ec5dee4506cd86be934c4596dd234ee82c0662eac04a8c2c71dc"
CONFIG = "sha256:1e3c8e6d9a4e1b9f2c3a0e5b4d6c7f8091a2b3c4d5e6f708192a3b4c5d6e7f80"
SHA512 = "sha512:" + "ab" * 64


def zot_path(repo: str, digest: str) -> str:
    algorithm, hex_ = digest.split(":")
    return f"/var/lib/zot/{repo}/blobs/{algorithm}/{hex_}"


class TestPutAndGet:
    def test_first_put_is_the_original(self, cache: BlobCache) -> None:
        """The first path recorded for a digest is its original; later ones are not."""
        cache.put(LAYER, zot_path("b", LAYER))
        cache.put(LAYER, zot_path("a", LAYER))
        assert cache.get(LAYER) == zot_path("b", LAYER)
        assert read_raw(cache)[LAYER] == (
            zot_path("b", LAYER),
            frozenset({zot_path("a", LAYER), zot_path("b", LAYER)}),
        )

    def test_get_all_orders_original_then_sorted(self, cache: BlobCache) -> None:
        """get_all returns the original first, then the other paths in sorted order."""
        for repo in ("m", "z", "a", "k"):
            cache.put(LAYER, zot_path(repo, LAYER))
        assert cache.get_all(LAYER) == [zot_path(r, LAYER) for r in ("m", "a", "k", "z")]

    def test_put_is_idempotent(self, cache: BlobCache) -> None:
        """Putting the same path again changes nothing."""
        cache.put(LAYER, "/x")
        cache.put(LAYER, "/y")
        cache.put(LAYER, "/x")
        assert cache.get_all(LAYER) == ["/x", "/y"]
        assert read_raw(cache) == {LAYER: ("/x", frozenset({"/x", "/y"}))}

    def test_digests_are_independent(self, cache: BlobCache) -> None:
        """Paths recorded for one digest never show up under another."""
        cache.put(LAYER, "/layer")
        cache.put(CONFIG, "/config")
        cache.put(SHA512, "/big")
        assert cache.get_all(LAYER) == ["/layer"]
        assert cache.get_all(CONFIG) == ["/config"]
        assert cache.get(SHA512) == "/big"

    @pytest.mark.parametrize("method", ["get", "get_all"])
    def test_unknown_digest_is_a_miss(self, cache: BlobCache, method: str) -> None:
        """get and get_all raise CacheMiss, which is also a LookupError, for an unknown digest."""
        with pytest.raises(CacheMiss) as caught:
            getattr(cache, method)(LAYER)
        assert isinstance(caught.value, LookupError)
        assert caught.value.digest == LAYER
        assert LAYER in str(caught.value)

    def test_has(self, cache: BlobCache) -> None:
        """has answers for the exact digest and path only."""
        cache.put(LAYER, "/a")
        assert cache.has(LAYER, "/a") is True
        assert cache.has(LAYER, "/b") is False
        assert cache.has(CONFIG, "/a") is False

    def test_unicode_paths_round_trip(self, cache: BlobCache) -> None:
        """Non-ASCII paths are stored and returned unchanged."""
        path = "/srv/régistry/日本/blobs/🐳"
        cache.put(LAYER, path)
        assert cache.get(LAYER) == path
        assert cache.has(LAYER, path)

    def test_name(self, cache: BlobCache) -> None:
        """name says which backend serves the cache."""
        assert cache.name in ("sqlite", "dynamodb", "redis")
        assert cache.uses_relative_paths is False


class TestDelete:
    def test_duplicate_delete_keeps_the_original(self, cache: BlobCache) -> None:
        """zot: deleting a duplicate leaves the original in place."""
        cache.put(LAYER, zot_path("one", LAYER))
        cache.put(LAYER, zot_path("two", LAYER))
        cache.delete(LAYER, zot_path("two", LAYER))
        assert cache.get_all(LAYER) == [zot_path("one", LAYER)]

    def test_original_delete_promotes_the_smallest_path(self, cache: BlobCache) -> None:
        """zot: deleting the original promotes the smallest remaining path, not a random one."""
        for repo in ("orig", "zeta", "beta", "gamma"):
            cache.put(LAYER, zot_path(repo, LAYER))
        cache.delete(LAYER, zot_path("orig", LAYER))
        assert cache.get(LAYER) == zot_path("beta", LAYER)
        original, paths = read_raw(cache)[LAYER]
        assert original == zot_path("beta", LAYER)
        assert paths == {zot_path(r, LAYER) for r in ("zeta", "beta", "gamma")}

    def test_promotion_uses_code_point_order(self, cache: BlobCache) -> None:
        """Promotion compares code points: 'B' < 'a' < 'é'."""
        for path in ("/orig", "/é", "/a", "/B"):
            cache.put(LAYER, path)
        cache.delete(LAYER, "/orig")
        assert cache.get(LAYER) == "/B"
        cache.delete(LAYER, "/B")
        assert cache.get(LAYER) == "/a"

    def test_path_put_three_times_is_gone_after_one_delete(self, cache: BlobCache) -> None:
        """zot: a path recorded three times is gone after a single delete."""
        for _ in range(3):
            cache.put(LAYER, "/dup")
        cache.delete(LAYER, "/dup")
        with pytest.raises(CacheMiss):
            cache.get(LAYER)
        assert read_raw(cache) == {}

    def test_last_path_removes_the_item(self, cache: BlobCache) -> None:
        """Deleting the last path removes the item itself: no empty item is left."""
        cache.put(LAYER, "/a")
        cache.put(LAYER, "/b")
        cache.delete(LAYER, "/b")
        cache.delete(LAYER, "/a")
        assert read_raw(cache) == {}
        assert cache.has(LAYER, "/a") is False

    def test_unknown_path_and_digest_are_no_ops(self, cache: BlobCache) -> None:
        """Deleting an unknown path or digest changes nothing and raises nothing."""
        cache.put(LAYER, "/a")
        before = read_raw(cache)
        cache.delete(LAYER, "/never")
        cache.delete(CONFIG, "/a")
        assert read_raw(cache) == before

    def test_refill_after_empty_starts_a_new_original(self, cache: BlobCache) -> None:
        """After the item goes, the next put's path is the new original."""
        cache.put(LAYER, "/a")
        cache.delete(LAYER, "/a")
        cache.put(LAYER, "/z")
        cache.put(LAYER, "/b")
        assert cache.get_all(LAYER) == ["/z", "/b"]


class TestEntries:
    def test_entries_lists_every_item(self, cache: BlobCache) -> None:
        """entries yields one BlobEntry per digest with its original and every path."""
        cache.put(LAYER, "/l1")
        cache.put(LAYER, "/l2")
        cache.put(CONFIG, "/c1")
        assert sorted(cache.entries(), key=lambda e: e.digest) == sorted(
            [
                BlobEntry(LAYER, "/l1", frozenset({"/l1", "/l2"})),
                BlobEntry(CONFIG, "/c1", frozenset({"/c1"})),
            ],
            key=lambda e: e.digest,
        )

    def test_entries_streams_across_pages(self, make_cache: CacheFactory, kind: str) -> None:
        """entries pages through the whole table when it is larger than one page."""
        cache = make_cache(kind, page_size=7)
        digests = {digest_of(n) for n in range(40)}
        for digest in digests:
            cache.put(digest, f"/p/{digest[-6:]}")
        iterator = cache.entries()
        first = next(iterator)
        assert isinstance(first, BlobEntry)
        assert {first.digest} | {entry.digest for entry in iterator} == digests

    def test_empty_cache_has_no_entries(self, cache: BlobCache) -> None:
        """A new cache yields nothing."""
        assert list(cache.entries()) == []


@pytest.fixture(params=ALL_BACKENDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


BAD_DIGESTS: list[Any] = [
    "key1",
    "sha256:",
    ":abc",
    "sha256:" + "A" * 64,
    "sha256:" + "a" * 63,
    "sha256:" + "a" * 65,
    "sha512:" + "a" * 64,
    "sha256:" + "g" * 64,
    "SHA256:" + "a" * 64,
    "sha256:" + "a" * 64 + "\n",
    " sha256:" + "a" * 64,
    "",
    None,
    42,
    b"sha256:" + b"a" * 64,
]
BAD_PATHS: list[Any] = ["", "a\x00b", "/bad\udcff", "/" + "x" * 4096, None, 7, b"/bytes"]


class TestBadInput:
    def test_bad_digest_is_rejected_before_any_request(self, cache: BlobCache) -> None:
        """Every call raises InvalidDigest (a ValueError) for each bad digest, sending nothing."""
        cache.put(LAYER, "/keep")
        before, sent = read_raw(cache), record_requests(cache)
        for digest in BAD_DIGESTS:
            for method, args in (
                ("put", (digest, "/p")),
                ("get", (digest,)),
                ("get_all", (digest,)),
                ("has", (digest, "/p")),
                ("delete", (digest, "/p")),
            ):
                with pytest.raises(InvalidDigest) as caught:
                    getattr(cache, method)(*args)
                assert isinstance(caught.value, ValueError)
                assert "expected 'algorithm:encoded'" in str(caught.value)
        assert sent == []
        assert read_raw(cache) == before

    def test_bad_path_is_rejected_before_any_request(self, cache: BlobCache) -> None:
        """put, has and delete raise InvalidPath (a ValueError) for bad paths, sending nothing."""
        cache.put(LAYER, "/keep")
        before, sent = read_raw(cache), record_requests(cache)
        for path in BAD_PATHS:
            for method in ("put", "has", "delete"):
                with pytest.raises(InvalidPath) as caught:
                    getattr(cache, method)(LAYER, path)
                assert isinstance(caught.value, ValueError)
        assert sent == []
        assert read_raw(cache) == before

    def test_longest_valid_path_is_accepted(self, cache: BlobCache) -> None:
        """A path of exactly 4,096 encoded bytes is valid (multi-byte characters count as bytes)."""
        path = "/" + "é" * 2047 + "x"
        assert len(path.encode()) == 4096
        cache.put(LAYER, path)
        assert cache.get(LAYER) == path
        with pytest.raises(InvalidPath, match="4097 bytes"):
            cache.put(LAYER, path + "y")

    def test_valid_unregistered_algorithm(self, cache: BlobCache) -> None:
        """Digests of algorithms the OCI spec does not register follow only the grammar."""
        digest = "blake3+x.y:AbC_-="
        cache.put(digest, "/b")
        assert cache.get(digest) == "/b"


class TestRelativePaths:
    @pytest.fixture
    def rooted(self, make_cache: CacheFactory, kind: str, tmp_path: Path) -> BlobCache:
        return make_cache(kind, root=tmp_path / "registry")

    def test_paths_are_stored_relative_and_returned_absolute(
        self, rooted: BlobCache, tmp_path: Path
    ) -> None:
        """With a root, the store keeps POSIX paths relative to it; callers see absolute ones."""
        root = tmp_path / "registry"
        rooted.put(LAYER, str(root / "library" / "alpine" / "blobs"))
        rooted.put(LAYER, "team/app/../app/blobs")
        assert rooted.uses_relative_paths is True
        assert read_raw(rooted) == {
            LAYER: ("library/alpine/blobs", frozenset({"library/alpine/blobs", "team/app/blobs"}))
        }
        assert rooted.get_all(LAYER) == [
            os.path.join(root, "library", "alpine", "blobs"),
            os.path.join(root, "team", "app", "blobs"),
        ]
        assert rooted.has(LAYER, str(root / "team/app/blobs"))
        assert [e.paths for e in rooted.entries()] == [
            frozenset(rooted.get_all(LAYER)),
        ]

    def test_paths_outside_root_are_rejected(self, rooted: BlobCache) -> None:
        """A path that escapes the root (or is the root) raises InvalidPath and sends nothing."""
        sent = record_requests(rooted)
        for path in ("../escape", "a/../../escape", "/etc/passwd", ".", "a/..", "/"):
            with pytest.raises(InvalidPath, match="not inside root"):
                rooted.put(LAYER, path)
        assert sent == []
        assert read_raw(rooted) == {}

    def test_delete_by_either_spelling(self, rooted: BlobCache, tmp_path: Path) -> None:
        """An absolute and a relative spelling of one path name the same entry."""
        rooted.put(LAYER, "a/blob")
        rooted.put(LAYER, "b/blob")
        rooted.delete(LAYER, str(tmp_path / "registry" / "a" / "blob"))
        assert rooted.get_all(LAYER) == [str(tmp_path / "registry" / "b" / "blob")]


class TestErrors:
    def test_error_tree(self) -> None:
        """Every public error descends from BlobCacheError; two are also builtin errors."""
        import blobcache

        for name in (
            "CacheMiss",
            "InvalidDigest",
            "InvalidPath",
            "ItemTooLarge",
            "TableNotFound",
            "StoreUnavailable",
            "ConfigurationError",
        ):
            assert issubclass(getattr(blobcache, name), BlobCacheError)
        assert issubclass(blobcache.CacheMiss, LookupError)
        assert issubclass(blobcache.InvalidDigest, ValueError)
        assert issubclass(blobcache.InvalidPath, ValueError)

    def test_create_table_is_idempotent(self, cache: BlobCache) -> None:
        """create_table on an existing table or schema keeps the data."""
        cache.put(LAYER, "/a")
        cache.create_table()
        cache.create_table()
        assert cache.get(LAYER) == "/a"

    def test_invariants_after_a_mixed_session(self, cache: BlobCache) -> None:
        """After a mix of puts and deletes, every stored item has paths and its original in them."""
        for n in range(6):
            for p in range(4):
                cache.put(digest_of(n), f"/r{p}/{n}")
        for n in range(6):
            for p in range(n % 5):
                cache.delete(digest_of(n), f"/r{p}/{n}")
        items = read_raw(cache)
        assert_invariants(items)
        assert len(items) == 6 - 1  # n=4 deleted every path
