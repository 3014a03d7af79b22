"""zot interop: blobcache reads items zot wrote, keeps them valid, and writes zot's layout."""

from __future__ import annotations

import pytest

from blobcache import CacheMiss
from tests.dynamodb.helpers import (
    Call,
    D,
    Server,
    delete_call,
    make_on,
    normalised,
    put_call,
    raw_get,
    raw_put,
    table_of,
    tolerant,
    zot_put,
)
from tests.helpers import CacheFactory, raw_client, read_raw


class TestZotLayout:
    """blobcache reads items zot wrote, keeps them valid, and writes exactly zot's attributes."""

    def test_reads_item_written_by_zot(self, make_cache: CacheFactory, server: Server) -> None:
        """An item built by zot's own requests (original inside the set) reads in full."""
        cache = make_on(make_cache, server)
        client = raw_client(cache)
        for path in ("/zot/b", "/zot/a", "/zot/c"):
            zot_put(client, table_of(cache), D, path)
        assert read_raw(cache) == {D: ("/zot/b", frozenset({"/zot/a", "/zot/b", "/zot/c"}))}
        assert cache.get(D) == "/zot/b"
        assert cache.get_all(D) == ["/zot/b", "/zot/a", "/zot/c"]
        assert cache.has(D, "/zot/c")
        assert not cache.has(D, "/zot/d")
        (entry,) = cache.entries()
        assert (entry.digest, entry.original) == (D, "/zot/b")
        assert entry.paths == frozenset({"/zot/a", "/zot/b", "/zot/c"})

    def test_zot_reads_what_blobcache_wrote(self, make_cache: CacheFactory, server: Server) -> None:
        """zot's lookups (original, then the set) find what blobcache wrote, after a promotion."""
        cache = make_on(make_cache, server)
        for path in ("/a", "/b", "/c"):
            cache.put(D, path)
        cache.delete(D, "/a")
        item = raw_get(cache, D)
        assert item is not None
        assert item["OriginalBlobPath"] == {"S": "/b"}
        assert sorted(item["DuplicateBlobPath"]["SS"]) == ["/b", "/c"]

    def test_original_outside_the_set_is_a_path(
        self, make_cache: CacheFactory, server: Server
    ) -> None:
        """An original missing from DuplicateBlobPath still counts as one of the paths."""
        cache = make_on(make_cache, server)
        raw_put(cache, D, OriginalBlobPath={"S": "/o"}, DuplicateBlobPath={"SS": ["/b", "/a"]})
        assert cache.get(D) == "/o"
        assert cache.get_all(D) == ["/o", "/a", "/b"]
        assert cache.has(D, "/o")
        assert cache.has(D, "/a")
        (entry,) = cache.entries()
        assert entry == type(entry)(D, "/o", frozenset({"/o", "/a", "/b"}))

    def test_item_without_original_reads_smallest_path(
        self, make_cache: CacheFactory, server: Server
    ) -> None:
        """An item with only DuplicateBlobPath reads with its smallest path as the original."""
        cache = make_on(make_cache, server)
        raw_put(cache, D, DuplicateBlobPath={"SS": ["/c", "/b", "/é"]})
        assert cache.get(D) == "/b"
        assert cache.get_all(D) == ["/b", "/c", "/é"]
        assert cache.has(D, "/c")
        (entry,) = cache.entries()
        assert (entry.original, entry.paths) == ("/b", frozenset({"/b", "/c", "/é"}))

    def test_put_on_item_without_original_keeps_the_one_readers_saw(
        self, make_cache: CacheFactory, server: Server
    ) -> None:
        """A put of a smaller path on an item with paths but no original does not take
        over as original: the smallest old path, which every read returned, is written
        down as the original, and the new path joins the set."""
        cache = make_on(make_cache, server)
        raw_put(cache, D, DuplicateBlobPath={"SS": ["/m", "/z"]})
        assert cache.get(D) == "/m"
        cache.put(D, "/a")
        assert cache.get_all(D) == ["/m", "/a", "/z"]
        stored = read_raw(cache)[D]
        assert stored == ("/m", frozenset({"/a", "/m", "/z"}))

    def test_put_on_item_with_only_an_original_puts_it_in_the_set(
        self, make_cache: CacheFactory, server: Server
    ) -> None:
        """A put on an item that has an original but no path set writes both paths into
        the set, so the original is among the paths again."""
        cache = make_on(make_cache, server)
        raw_put(cache, D, OriginalBlobPath={"S": "/o"})
        cache.put(D, "/a")
        assert read_raw(cache)[D] == ("/o", frozenset({"/o", "/a"}))

    @pytest.mark.parametrize(
        ("stored", "path", "expected"),
        [
            # zot's own layout: the original inside the set.
            (("/a", ["/a", "/b", "/c"]), "/a", ("/b", {"/b", "/c"})),
            # original outside the set: deleting it promotes the smallest of the set.
            (("/o", ["/b", "/a"]), "/o", ("/a", {"/a", "/b"})),
            (("/o", ["/b"]), "/o", ("/b", {"/b"})),
            # original outside the set: deleting a set member keeps the original.
            (("/o", ["/b", "/a"]), "/a", ("/o", {"/o", "/b"})),
            (("/o", ["/b"]), "/b", ("/o", {"/o"})),
            # no original: the smallest path is the original.
            ((None, ["/c", "/b", "/d"]), "/b", ("/c", {"/c", "/d"})),
            ((None, ["/c", "/b", "/d"]), "/d", ("/b", {"/b", "/c"})),
            ((None, ["/b"]), "/b", None),
            ((None, ["/b"]), "/x", ("/b", {"/b"})),
        ],
        ids=[
            "inside-delete-original",
            "outside-delete-original",
            "outside-delete-original-one-left",
            "outside-delete-member",
            "outside-delete-only-member",
            "no-original-delete-smallest",
            "no-original-delete-other",
            "no-original-delete-last",
            "no-original-delete-unknown",
        ],
    )
    def test_delete_on_zot_items(
        self,
        make_cache: CacheFactory,
        server: Server,
        stored: tuple[str | None, list[str]],
        path: str,
        expected: tuple[str, set[str]] | None,
    ) -> None:
        """A delete on an item zot wrote reads as the contract says and leaves no empty item."""
        cache = make_on(make_cache, server)
        original, paths = stored
        extra = {} if original is None else {"OriginalBlobPath": {"S": original}}
        raw_put(cache, D, DuplicateBlobPath={"SS": paths}, **extra)
        cache.delete(D, path)
        items = read_raw(cache)
        if expected is None:
            assert items == {}
            with pytest.raises(CacheMiss):
                cache.get(D)
            return
        want_original, want_paths = expected
        assert tolerant(items) == {D: (want_original, frozenset(want_paths))}
        assert cache.get_all(D) == [want_original, *sorted(set(want_paths) - {want_original})]
        raw_original, raw_paths = items[D]
        # Whatever blobcache rewrote, it wrote in its own layout: the original in the set.
        if raw_original is not None and raw_original != original:
            assert raw_original in raw_paths

    def test_blobcache_writes_exactly_zots_attributes(
        self, make_cache: CacheFactory, server: Server
    ) -> None:
        """blobcache writes Digest S, OriginalBlobPath S, DuplicateBlobPath SS and nothing else."""
        cache = make_on(make_cache, server)
        steps: list[Call] = [
            put_call(D, "/a"),  # creates the item
            put_call(D, "/b"),  # grows the set
            put_call(D, "/c"),
            delete_call(D, "/b"),  # single DELETE from the set
            delete_call(D, "/a"),  # promotion: the whole item rewritten
        ]
        for step in steps:
            step(cache)
            item = raw_get(cache, D)
            assert item is not None
            assert {name: next(iter(value)) for name, value in item.items()} == {
                "Digest": "S",
                "OriginalBlobPath": "S",
                "DuplicateBlobPath": "SS",
            }
        assert normalised(raw_get(cache, D)) == {
            "Digest": ("S", D),
            "OriginalBlobPath": ("S", "/c"),
            "DuplicateBlobPath": ("SS", frozenset({"/c"})),
        }

    def test_key_only_item_is_a_miss_and_put_repairs_it(
        self, make_cache: CacheFactory, server: Server
    ) -> None:
        """An item holding only its Digest reads as absent; a put turns it into a full item."""
        cache = make_on(make_cache, server)
        raw_put(cache, D)
        with pytest.raises(CacheMiss):
            cache.get(D)
        with pytest.raises(CacheMiss):
            cache.get_all(D)
        assert not cache.has(D, "/a")
        assert list(cache.entries()) == []
        cache.delete(D, "/a")  # a no-op, not an error
        cache.put(D, "/a")
        assert normalised(raw_get(cache, D)) == {
            "Digest": ("S", D),
            "OriginalBlobPath": ("S", "/a"),
            "DuplicateBlobPath": ("SS", frozenset({"/a"})),
        }
        assert cache.get_all(D) == ["/a"]
