"""All or nothing: a call that fails part-way leaves the old state or the new one, never a mix.

Faults a server cannot produce on demand are injected: a connection error before
a chosen request, a response lost after the server applied a write, and a SQLite
statement failing inside a transaction.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from blobcache import BlobCache, StoreUnavailable
from tests.helpers import (
    DYNAMODB_BACKENDS,
    CacheFactory,
    assert_invariants,
    backend_of,
    digest_of,
    hooked,
    read_raw,
    sqlite_connection,
)

D = digest_of(7)
# Each scenario: the paths put first, then the path deleted. Deleting the original
# and deleting the last path are the multi-request deletes.
SCENARIOS = {
    "original": (["/o", "/b", "/a"], "/o"),
    "last": (["/only"], "/only"),
    "duplicate": (["/o", "/dup"], "/dup"),
}


def seeded(make_cache: CacheFactory, kind: str, scenario: str, **options: Any) -> BlobCache:
    cache = make_cache(kind, max_retries=0, **options)
    for path in SCENARIOS[scenario][0]:
        cache.put(D, path)
    return cache


class TestDynamoDBFaults:
    @pytest.mark.parametrize("kind", DYNAMODB_BACKENDS)
    @pytest.mark.parametrize("scenario", sorted(SCENARIOS))
    @pytest.mark.parametrize("fail_at", [0, 1, 2])
    def test_connection_lost_before_a_request(
        self, make_cache: CacheFactory, kind: str, scenario: str, fail_at: int
    ) -> None:
        """A delete whose n-th request never reaches the server raises StoreUnavailable and
        has changed nothing; run again, it completes."""
        cache = seeded(make_cache, kind, scenario)
        before = read_raw(cache)
        sent: list[str] = []

        def drop(**kwargs: Any) -> None:
            sent.append(kwargs["event_name"])
            if len(sent) == fail_at + 1:
                raise EndpointConnectionError(endpoint_url="http://injected")

        with hooked(cache, drop):
            try:
                cache.delete(D, SCENARIOS[scenario][1])
            except StoreUnavailable as exc:
                assert isinstance(exc.cause, EndpointConnectionError)  # noqa: PT017
                assert read_raw(cache) == before
            else:
                assert len(sent) <= fail_at  # the call needed fewer requests than that
        cache.delete(D, SCENARIOS[scenario][1])
        after = read_raw(cache)
        assert_invariants(after)
        assert SCENARIOS[scenario][1] not in after.get(D, (None, frozenset()))[1]

    @pytest.mark.parametrize("kind", DYNAMODB_BACKENDS)
    @pytest.mark.parametrize("scenario", sorted(SCENARIOS))
    def test_response_lost_after_the_write(
        self, make_cache: CacheFactory, kind: str, scenario: str
    ) -> None:
        """When the server applied a delete's write but the answer is lost, the call raises
        and the change is whole: the path is gone and the item is consistent."""
        cache = seeded(make_cache, kind, scenario)
        deleted = SCENARIOS[scenario][1]

        def lose(**kwargs: Any) -> None:
            if kwargs["event_name"].endswith(("UpdateItem", "DeleteItem")) and (
                kwargs.get("http_response") is not None
                and kwargs["http_response"].status_code == 200
            ):
                raise EndpointConnectionError(endpoint_url="http://injected")

        with hooked(cache, lose, "after-call"), pytest.raises(StoreUnavailable):
            cache.delete(D, deleted)
        after = read_raw(cache)
        assert_invariants(after)
        assert deleted not in after.get(D, (None, frozenset()))[1]
        remaining = set(SCENARIOS[scenario][0]) - {deleted}
        assert after.get(D, (None, frozenset()))[1] == remaining


class _FailingConnection:
    """A sqlite3 connection that fails the n-th statement of a transaction."""

    def __init__(self, real: sqlite3.Connection, fail_at: int) -> None:
        self.real, self.fail_at, self.count = real, fail_at, 0

    def execute(self, sql: str, *args: Any) -> Any:
        if not sql.startswith(("BEGIN", "ROLLBACK")):
            self.count += 1
            if self.count == self.fail_at:
                error = sqlite3.OperationalError("disk I/O error (injected)")
                error.sqlite_errorcode = sqlite3.SQLITE_IOERR
                raise error
        return self.real.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class TestSQLiteFaults:
    @pytest.mark.parametrize("scenario", sorted(SCENARIOS))
    @pytest.mark.parametrize("fail_at", [1, 2, 3, 4])
    def test_statement_failing_mid_transaction(
        self,
        make_cache: CacheFactory,
        monkeypatch: pytest.MonkeyPatch,
        scenario: str,
        fail_at: int,
    ) -> None:
        """A delete whose n-th statement fails rolls back whole: StoreUnavailable, and the
        stored state is exactly as before."""
        cache = seeded(make_cache, "sqlite", scenario)
        before = read_raw(cache)
        failing = _FailingConnection(sqlite_connection(cache), fail_at)
        monkeypatch.setattr(backend_of(cache), "_connection", lambda: failing)
        try:
            cache.delete(D, SCENARIOS[scenario][1])
        except StoreUnavailable as exc:
            assert "injected" in str(exc)  # noqa: PT017
            assert read_raw(cache) == before
            assert not failing.real.in_transaction
        else:
            assert failing.count < fail_at  # the delete ran fewer statements than that
        monkeypatch.undo()
        assert_invariants(read_raw(cache))
