"""Helpers for the DynamoDB tests: servers, tables, items read and written around blobcache.

Items are read and written with an independent botocore client (`tests.helpers.raw_client`)
and zot's attribute names spelled out, so these tests witness the layout on the wire.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.awsrequest import AWSResponse

from blobcache import BlobCache
from tests.helpers import REGION, CacheFactory, RawItems, backend_of, digest_of, raw_client

D = digest_of(1)
OTHER = digest_of(2)
#: One call on a cache, as a value (for parametrized tests).
Call = Callable[[BlobCache], object]


@dataclass(frozen=True)
class Server:
    """One local DynamoDB server of the session."""

    kind: str
    endpoint: str

    def url(self, table: str) -> str:
        return f"dynamodb:///{table}?region={REGION}&endpoint_url={self.endpoint}"


def new_table() -> str:
    """A table name no other test uses."""
    return f"t-{uuid.uuid4().hex}"


def make_on(make_cache: CacheFactory, server: Server, **options: Any) -> BlobCache:
    """A fresh cache, its table created, on ``server``."""
    return make_cache(server.kind, url=server.url(new_table()), **options)


def put_call(digest: str, path: str) -> Call:
    return lambda cache: cache.put(digest, path)


def delete_call(digest: str, path: str) -> Call:
    return lambda cache: cache.delete(digest, path)


# -- items around blobcache -------------------------------------------------------------------


def table_of(cache: BlobCache) -> str:
    table: str = backend_of(cache).target
    return table


def raw_get(cache: BlobCache, digest: str) -> dict[str, Any] | None:
    """The item exactly as stored, read consistently by an independent client."""
    response = raw_client(cache).get_item(
        TableName=table_of(cache), Key={"Digest": {"S": digest}}, ConsistentRead=True
    )
    item: dict[str, Any] | None = response.get("Item")
    return item


def raw_put(cache: BlobCache, digest: str, **attributes: Any) -> None:
    """Store an item verbatim, bypassing blobcache."""
    raw_client(cache).put_item(
        TableName=table_of(cache), Item={"Digest": {"S": digest}, **attributes}
    )


def zot_put(client: Any, table: str, digest: str, path: str) -> None:
    """A put the way zot's DynamoDB driver sends it: the original first, then ADD to the set."""
    key = {"Digest": {"S": digest}}
    found = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item", {})
    if "OriginalBlobPath" not in found:
        client.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET OriginalBlobPath = :s",
            ExpressionAttributeValues={":s": {"S": path}},
        )
    client.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="ADD DuplicateBlobPath :i",
        ExpressionAttributeValues={":i": {"SS": [path]}},
    )


def normalised(item: dict[str, Any] | None) -> dict[str, tuple[str, Any]] | None:
    """A raw item with string sets as frozensets, so two reads compare equal."""
    if item is None:
        return None
    out: dict[str, tuple[str, Any]] = {}
    for name, value in item.items():
        ((kind, data),) = value.items()
        out[name] = (kind, frozenset(data) if kind == "SS" else data)
    return out


def tolerant(items: RawItems) -> dict[str, tuple[str, frozenset[str]]]:
    """Raw items read as the contract says: a missing original is the smallest path."""
    read: dict[str, tuple[str, frozenset[str]]] = {}
    for digest, (original, paths) in items.items():
        assert paths, f"{digest} is an item with no paths"
        chosen = original if original is not None else min(paths)
        read[digest] = (chosen, paths | {chosen})
    return read


# -- answers a server cannot be made to give ---------------------------------------------------


class _Body:
    """The ``raw`` of an `AWSResponse`: a body that streams once."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def error_response(url: str, code: str, message: str) -> AWSResponse:
    """A DynamoDB JSON error response, as the service sends it with status 400."""
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message})
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "injected"}
    return AWSResponse(url, 400, headers, _Body(body.encode()))
