"""BlobRecord binding: one bound model class per configuration; the shared Meta is untouched."""

from __future__ import annotations

from typing import Any

import pytest

from blobcache import BlobRecord, CacheMiss
from tests.dynamodb.helpers import OTHER, D, Server, make_on, new_table, table_of
from tests.helpers import REGION, CacheFactory, assert_invariants, read_raw


def where(record: type[BlobRecord]) -> tuple[str, str, str]:
    """A bound class's table, endpoint and region, from its own Meta."""
    meta: Any = record.Meta
    return meta.table_name, meta.host, meta.region


class TestBlobRecordBinding:
    """One bound model class per configuration; the shared Meta is never touched."""

    def test_same_arguments_same_class(self) -> None:
        """bind is cached: equal arguments return the very same class."""
        one = BlobRecord.bind("blobs", region=REGION, host="http://127.0.0.1:1")
        two = BlobRecord.bind("blobs", region=REGION, host="http://127.0.0.1:1")
        assert one is two
        assert issubclass(one, BlobRecord)
        assert one.Meta is not BlobRecord.Meta

    def test_different_configurations_different_classes(self) -> None:
        """A different table, endpoint, region or timeout gives a different class and Meta."""
        base = BlobRecord.bind("blobs", region=REGION, host="http://127.0.0.1:1")
        others = [
            BlobRecord.bind("other", region=REGION, host="http://127.0.0.1:1"),
            BlobRecord.bind("blobs", region=REGION, host="http://127.0.0.1:2"),
            BlobRecord.bind("blobs", region="eu-west-1", host="http://127.0.0.1:1"),
            BlobRecord.bind(
                "blobs", region=REGION, host="http://127.0.0.1:1", read_timeout_seconds=1.0
            ),
        ]
        assert len({base, *others}) == 5
        assert [where(cls) for cls in others] == [
            ("other", "http://127.0.0.1:1", REGION),
            ("blobs", "http://127.0.0.1:2", REGION),
            ("blobs", "http://127.0.0.1:1", "eu-west-1"),
            ("blobs", "http://127.0.0.1:1", REGION),
        ]
        assert where(base) == ("blobs", "http://127.0.0.1:1", REGION)

    def test_meta_never_mutated(
        self, make_cache: CacheFactory, dynalite_endpoint: str, moto_endpoint: str
    ) -> None:
        """Caches and bound classes on two servers in one process leave BlobRecord.Meta
        exactly as it was, and each bound class reads from its own server."""
        before = dict(vars(BlobRecord.Meta))
        table = new_table()
        first = make_cache("dynalite", url=Server("dynalite", dynalite_endpoint).url(table))
        second = make_cache("moto", url=Server("moto", moto_endpoint).url(table))
        first.put(D, "/on-dynalite")
        second.put(D, "/on-moto")
        records = [
            BlobRecord.bind(table, region=REGION, host=endpoint)
            for endpoint in (dynalite_endpoint, moto_endpoint)
        ]
        assert records[0] is not records[1]
        found = [record.get(D, consistent_read=True).OriginalBlobPath for record in records]
        assert found == ["/on-dynalite", "/on-moto"]
        assert dict(vars(BlobRecord.Meta)) == before
        assert BlobRecord.Meta.table_name == "blobcache"

    def test_rebinding_a_used_class_reaches_the_new_endpoint(
        self, make_cache: CacheFactory, dynalite_endpoint: str, moto_endpoint: str
    ) -> None:
        """Binding a bound class that has already sent requests gives a class on the new
        endpoint, not one that inherits the old class's connection to a same-named table."""
        table = new_table()
        make_cache("dynalite", url=Server("dynalite", dynalite_endpoint).url(table)).put(D, "/d")
        make_cache("moto", url=Server("moto", moto_endpoint).url(table)).put(D, "/m")
        first = BlobRecord.bind(table, region=REGION, host=dynalite_endpoint)
        assert first.get(D, consistent_read=True).OriginalBlobPath == "/d"
        second = first.bind(table, region=REGION, host=moto_endpoint)
        assert second.get(D, consistent_read=True).OriginalBlobPath == "/m"
        assert second is BlobRecord.bind(table, region=REGION, host=moto_endpoint)
        assert first.get(D, consistent_read=True).OriginalBlobPath == "/d"

    def test_same_table_name_on_two_servers(
        self, make_cache: CacheFactory, dynalite_endpoint: str, moto_endpoint: str
    ) -> None:
        """Caches with one table name on two servers keep separate data."""
        table = new_table()
        on_dynalite = make_cache("dynalite", url=Server("dynalite", dynalite_endpoint).url(table))
        on_moto = make_cache("moto", url=Server("moto", moto_endpoint).url(table))
        on_dynalite.put(D, "/d")
        on_moto.put(D, "/m")
        on_moto.put(OTHER, "/m2")
        assert on_dynalite.get_all(D) == ["/d"]
        assert on_moto.get_all(D) == ["/m"]
        with pytest.raises(CacheMiss):
            on_dynalite.get(OTHER)
        assert read_raw(on_dynalite) == {D: ("/d", frozenset({"/d"}))}
        assert read_raw(on_moto) == {
            D: ("/m", frozenset({"/m"})),
            OTHER: ("/m2", frozenset({"/m2"})),
        }

    def test_model_level_access(self, make_cache: CacheFactory, server: Server) -> None:
        """A bound BlobRecord reads what blobcache wrote, and blobcache reads what it saves."""
        cache = make_on(make_cache, server)
        cache.put(D, "/a")
        cache.put(D, "/b")
        record_class = BlobRecord.bind(table_of(cache), region=REGION, host=server.endpoint)
        record = record_class.get(D, consistent_read=True)
        assert record.Digest == D
        assert record.OriginalBlobPath == "/a"
        assert record.DuplicateBlobPath == {"/a", "/b"}
        record_class(OTHER, OriginalBlobPath="/x", DuplicateBlobPath={"/x", "/y"}).save()
        assert cache.get_all(OTHER) == ["/x", "/y"]
        assert_invariants(read_raw(cache))
