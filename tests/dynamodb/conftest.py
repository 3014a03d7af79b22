"""Fixtures for the DynamoDB tests: each local server in turn, or dynalite alone."""

from __future__ import annotations

import pytest

from tests.dynamodb.helpers import Server
from tests.helpers import DYNAMODB_BACKENDS


@pytest.fixture(params=DYNAMODB_BACKENDS)
def server(request: pytest.FixtureRequest) -> Server:
    """Each local DynamoDB server in turn."""
    kind: str = request.param
    return Server(kind, request.getfixturevalue(f"{kind}_endpoint"))


@pytest.fixture
def dynalite_server(dynalite_endpoint: str) -> Server:
    """dynalite only: atomic requests and the 400 KB item limit."""
    return Server("dynalite", dynalite_endpoint)
