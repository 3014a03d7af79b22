"""Failures surface as the right blobcache error, with the cause kept; nothing else escapes."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import BotoCoreError, ClientError

from blobcache import (
    BlobCacheError,
    ConfigurationError,
    Options,
    StoreUnavailable,
    TableNotFound,
)
from blobcache.testing import free_port
from tests.dynamodb.helpers import (
    Call,
    D,
    Server,
    delete_call,
    error_response,
    make_on,
    new_table,
    put_call,
    table_of,
)
from tests.helpers import (
    REGION,
    CacheFactory,
    Recorder,
    create_raw_table,
    hooked,
    raw_client,
    read_raw,
    recording,
)


class TestErrors:
    """Failures surface as the right blobcache error, with the cause kept; nothing else escapes."""

    def test_unreachable_endpoint(self, make_cache: CacheFactory) -> None:
        """A port nothing listens on raises StoreUnavailable within the configured retries."""
        url = (
            f"dynamodb:///{new_table()}?region={REGION}&endpoint_url=http://127.0.0.1:{free_port()}"
        )
        cache = make_cache("dynalite", url=url, create=False, connect_timeout=0.5, max_retries=1)
        with recording(cache) as recorder, pytest.raises(BlobCacheError) as raised:
            cache.get(D)
        assert type(raised.value) is StoreUnavailable
        assert len(recorder.sent) == 2  # the first try and max_retries=1 retry
        assert isinstance(raised.value.cause, BotoCoreError)
        assert raised.value.__cause__ is raised.value.cause
        assert "127.0.0.1" in str(raised.value)

    def test_silent_endpoint_times_out(self, make_cache: CacheFactory) -> None:
        """A server that accepts but never answers: a read raises StoreUnavailable after
        1 + max_retries attempts of read_timeout each (a write is sent once, test_hostile)."""
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(16)
            port = listener.getsockname()[1]
            url = f"dynamodb:///{new_table()}?region={REGION}&endpoint_url=http://127.0.0.1:{port}"
            cache = make_cache("dynalite", url=url, create=False, read_timeout=0.5, max_retries=1)
            with recording(cache) as recorder:
                started = time.monotonic()
                with pytest.raises(BlobCacheError) as raised:
                    cache.get(D)
                elapsed = time.monotonic() - started
        assert type(raised.value) is StoreUnavailable
        assert len(recorder.sent) == 2
        # Two attempts of at least read_timeout each; with the default read_timeout they
        # would take twice that default (a bound no busy machine comes near otherwise).
        assert 2 * 0.5 <= elapsed < 2 * Options().read_timeout
        assert isinstance(raised.value.cause, BotoCoreError)

    @pytest.mark.parametrize(
        "call",
        [
            put_call(D, "/a"),
            lambda cache: cache.get(D),
            lambda cache: cache.has(D, "/a"),
            delete_call(D, "/a"),
            lambda cache: list(cache.entries()),
        ],
        ids=["put", "get", "has", "delete", "entries"],
    )
    def test_missing_table(self, make_cache: CacheFactory, server: Server, call: Call) -> None:
        """Every call on a missing table raises TableNotFound saying how to create it."""
        cache = make_cache(server.kind, url=server.url(new_table()), create=False)
        with pytest.raises(BlobCacheError) as raised:
            call(cache)
        error = raised.value
        assert type(error) is TableNotFound
        assert table_of(cache) in str(error)
        assert "create_table()" in str(error)
        assert "blobcache create-table" in str(error)
        assert error.cause_response_code == "ResourceNotFoundException"

    def test_wrong_key_schema(self, make_cache: CacheFactory, server: Server) -> None:
        """A table keyed on "id" is reported as having the wrong key schema by every call."""
        table = new_table()
        cache = make_cache(server.kind, url=server.url(table), create=False)
        client = raw_client(cache)
        create_raw_table(client, table, [("id", "HASH", "S")])
        calls: list[Call] = [
            lambda cache: cache.create_table(),
            put_call(D, "/a"),
            lambda cache: cache.get(D),
            lambda cache: cache.has(D, "/a"),
            delete_call(D, "/a"),
        ]
        for call in calls:
            with pytest.raises(BlobCacheError) as raised:
                call(cache)
            assert type(raised.value) is ConfigurationError
            assert "key schema" in str(raised.value)
            assert "'Digest'" in str(raised.value)
        assert client.scan(TableName=table)["Items"] == []

    def test_entries_on_a_foreign_table(self, make_cache: CacheFactory, server: Server) -> None:
        """Scanning a table whose items have no Digest key says the key schema is wrong,
        instead of failing with a KeyError."""
        table = new_table()
        cache = make_cache(server.kind, url=server.url(table), create=False)
        client = raw_client(cache)
        create_raw_table(client, table, [("id", "HASH", "S")])
        client.put_item(TableName=table, Item={"id": {"S": "x"}})
        with pytest.raises(ConfigurationError, match="key schema"):
            list(cache.entries())

    def test_range_key_refused_by_create_table(
        self, make_cache: CacheFactory, server: Server
    ) -> None:
        """create_table on a table with an extra range key says the key schema is wrong."""
        table = new_table()
        cache = make_cache(server.kind, url=server.url(table), create=False)
        create_raw_table(
            raw_client(cache), table, [("Digest", "HASH", "S"), ("Path", "RANGE", "S")]
        )
        with pytest.raises(BlobCacheError) as raised:
            cache.create_table()
        assert type(raised.value) is ConfigurationError
        assert "key schema" in str(raised.value)

    def test_missing_region(
        self,
        make_cache: CacheFactory,
        server: Server,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
    ) -> None:
        """Without a region anywhere, the first call raises ConfigurationError saying to set one."""
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
        monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
        monkeypatch.delenv("AWS_REGION", raising=False)
        url = f"dynamodb:///{new_table()}?endpoint_url={server.endpoint}"
        cache = make_cache(server.kind, url=url, create=False)
        with pytest.raises(BlobCacheError) as raised:
            cache.get(D)
        assert type(raised.value) is ConfigurationError
        assert "region" in str(raised.value)
        assert raised.value.cause is not None

    def test_throttling_after_retries(self, make_cache: CacheFactory, server: Server) -> None:
        """Throttling on every try raises StoreUnavailable with the DynamoDB code, after retries."""
        cache = make_on(make_cache, server, max_retries=1)
        tries = Recorder()

        def throttle(request: Any, **kwargs: Any) -> AWSResponse:
            tries(request, **kwargs)
            return error_response(
                request.url, "ProvisionedThroughputExceededException", "slow down"
            )

        with hooked(cache, throttle), pytest.raises(BlobCacheError) as raised:
            cache.put(D, "/a")
        error = raised.value
        assert type(error) is StoreUnavailable
        assert error.cause_response_code == "ProvisionedThroughputExceededException"
        assert isinstance(error.cause, ClientError)
        assert tries.operations == ["UpdateItem", "UpdateItem"]
        assert read_raw(cache) == {}

    def test_throttling_within_retries_is_invisible(
        self, make_cache: CacheFactory, server: Server
    ) -> None:
        """One throttled try is retried by the transport and the put takes effect once."""
        cache = make_on(make_cache, server, max_retries=2)
        tries = Recorder()

        def throttle_once(request: Any, **kwargs: Any) -> AWSResponse | None:
            tries(request, **kwargs)
            if len(tries.sent) > 1:
                return None
            return error_response(request.url, "ThrottlingException", "slow down")

        with hooked(cache, throttle_once):
            cache.put(D, "/a")
        assert tries.operations == ["UpdateItem", "UpdateItem"]
        assert read_raw(cache) == {D: ("/a", frozenset({"/a"}))}
