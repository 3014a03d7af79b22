"""create_table makes zot's table once, in the asked billing mode, and tolerates racers."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from blobcache import BlobCache
from tests.dynamodb.helpers import D, Server, make_on, new_table, table_of
from tests.helpers import (
    CacheFactory,
    create_raw_table,
    hooked,
    operation_of,
    raw_client,
    read_raw,
    recording,
    run_together,
)


def describe(cache: BlobCache) -> dict[str, Any]:
    table: dict[str, Any] = raw_client(cache).describe_table(TableName=table_of(cache))["Table"]
    return table


def created_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        dict(record.msg)
        for record in caplog.records
        if isinstance(record.msg, dict) and record.msg.get("event") == "table_created"
    ]


class TestCreateTable:
    """create_table makes zot's table once, in the asked billing mode, and tolerates racers."""

    def test_idempotent(
        self, make_cache: CacheFactory, server: Server, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A second create_table neither fails, nor changes the table, nor logs a creation."""
        caplog.set_level(logging.INFO, logger="blobcache")
        cache = make_on(make_cache, server)
        cache.put(D, "/a")
        first = describe(cache)
        cache.create_table()
        again = BlobCache.from_url(server.url(table_of(cache)))
        again.create_table()
        again.close()
        second = describe(cache)
        for key in ("TableName", "KeySchema", "AttributeDefinitions", "CreationDateTime"):
            assert second[key] == first[key]
        assert first["KeySchema"] == [{"AttributeName": "Digest", "KeyType": "HASH"}]
        assert first["AttributeDefinitions"] == [{"AttributeName": "Digest", "AttributeType": "S"}]
        assert read_raw(cache) == {D: ("/a", frozenset({"/a"}))}
        events = created_events(caplog)
        assert [event["table"] for event in events] == [table_of(cache)]

    def test_pay_per_request_by_default(self, make_cache: CacheFactory, server: Server) -> None:
        """A new table is on-demand unless provisioned capacity is asked for."""
        table = describe(make_on(make_cache, server))
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert table["TableStatus"] == "ACTIVE"

    def test_provisioned_on_request(self, make_cache: CacheFactory, server: Server) -> None:
        """billing_mode=PROVISIONED creates the table with the given capacities."""
        cache = make_on(
            make_cache, server, billing_mode="PROVISIONED", read_capacity=3, write_capacity=4
        )
        table = describe(cache)
        assert table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED") == (
            "PROVISIONED"
        )
        throughput = table["ProvisionedThroughput"]
        assert (throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]) == (3, 4)

    def test_creator_racing_between_describe_and_create(
        self, make_cache: CacheFactory, server: Server, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A table created by someone else after our DescribeTable is accepted, not an error."""
        caplog.set_level(logging.INFO, logger="blobcache")
        table = new_table()
        cache = make_cache(server.kind, url=server.url(table), create=False)
        client = raw_client(cache)

        def rival(request: Any, **_: Any) -> None:
            if operation_of(request) == "CreateTable":
                create_raw_table(client, table, [("Digest", "HASH", "S")])

        with recording(cache) as recorder, hooked(cache, rival):
            cache.create_table()
        assert "CreateTable" in recorder.operations
        assert created_events(caplog) == []
        cache.put(D, "/a")
        assert cache.get(D) == "/a"

    def test_concurrent_creators(
        self,
        make_cache: CacheFactory,
        dynalite_server: Server,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Eight threads creating one new table all succeed and one logs table_created.

        dynalite only: moto's server does not serialise CreateTable against itself.
        """
        caplog.set_level(logging.INFO, logger="blobcache")
        url = dynalite_server.url(new_table())
        caches = [make_cache("dynalite", url=url, create=False) for _ in range(8)]
        run_together(BlobCache.create_table, caches)  # re-raises any thread's error
        assert len(created_events(caplog)) == 1
        caches[0].put(D, "/a")
        assert caches[-1].get(D) == "/a"
