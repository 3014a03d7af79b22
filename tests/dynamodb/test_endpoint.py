"""The endpoint: without ``endpoint_url`` in the URL, botocore's own chain chooses it."""

from __future__ import annotations

import pytest

from tests.dynamodb.helpers import D, new_table
from tests.helpers import REGION, CacheFactory, read_raw


class TestEndpoint:
    def test_service_endpoint_from_the_environment(
        self, make_cache: CacheFactory, dynalite_endpoint: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """AWS_ENDPOINT_URL_DYNAMODB points a URL without endpoint_url at that server
        (botocore 1.31 and later: the floor pyproject.toml declares)."""
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynalite_endpoint)
        table = new_table()
        cache = make_cache("dynalite", url=f"dynamodb:///{table}?region={REGION}")
        cache.put(D, "/a")
        # Read back on dynalite by a client told the endpoint explicitly.
        witness = make_cache(
            "dynalite",
            create=False,
            url=f"dynamodb:///{table}?region={REGION}&endpoint_url={dynalite_endpoint}",
        )
        assert read_raw(witness) == {D: ("/a", frozenset({"/a"}))}
