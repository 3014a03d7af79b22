"""The PynamoDB model of a cache item, in zot's DynamoDB table layout, and the names it defines."""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from typing import Any

from pynamodb.attributes import Attribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.models import Model


class BlobRecord(Model):
    """One digest in zot's layout: ``Digest``, ``OriginalBlobPath``, ``DuplicateBlobPath``.

    ``Digest`` (S) is the hash key, ``OriginalBlobPath`` (S) the original and
    ``DuplicateBlobPath`` (SS) every path, the original included. The class
    itself points at a placeholder table and is never used for requests; use
    `BlobRecord.bind` for a real one::

        Record = BlobRecord.bind("ZotBlobTable", region="us-east-1")
        Record.get("sha256:...", consistent_read=True).DuplicateBlobPath

    This class is also where blobcache's DynamoDB backend takes every table
    and attribute name from, and the key schema it creates tables with. The
    backend does not send its requests through the model, though: it writes
    with botocore, because its conditional writes need what PynamoDB does not
    give. ``Model.update`` always asks for ``ReturnValues=ALL_NEW``, and
    PynamoDB's connection layer raises a failed condition without the item
    DynamoDB returned with it (``ReturnValuesOnConditionCheckFailure``), which
    would cost every contended delete an extra read.

    .. versionadded:: 0.1
    """

    class Meta:
        table_name = "blobcache"

    Digest = UnicodeAttribute(hash_key=True)
    OriginalBlobPath = UnicodeAttribute(null=True)
    DuplicateBlobPath = UnicodeSetAttribute(null=True)

    @classmethod
    def bind(
        cls,
        table_name: str,
        *,
        region: str | None = None,
        host: str | None = None,
        connect_timeout_seconds: float | None = None,
        read_timeout_seconds: float | None = None,
        max_retry_attempts: int | None = None,
    ) -> type[BlobRecord]:
        """A subclass bound to one table and endpoint; the same arguments give the same class.

        Each configuration gets its own class and its own ``Meta``, so two
        callers in one process never share, or overwrite, each other's table.
        A bound class is always made from the unbound model (binding a bound
        class rebinds its model), so it starts with a connection of its own.

        Args:
            table_name: the DynamoDB table.
            region: its AWS region; PynamoDB's default if not given.
            host: an endpoint URL such as ``http://127.0.0.1:8000``.
            connect_timeout_seconds, read_timeout_seconds, max_retry_attempts:
                the timeouts and retries of the PynamoDB connection that the bound class's own
                calls (``get``, ``save``, ``scan``...) use; PynamoDB's defaults if
                not given. `blobcache.BlobCache` never uses that connection: its
                requests follow `blobcache.Options`.
        """
        return _bind(
            cls.__dict__.get("_unbound", cls),
            table_name,
            region,
            host,
            connect_timeout_seconds,
            read_timeout_seconds,
            max_retry_attempts,
        )


@functools.cache
def _bind(
    base: type[BlobRecord],
    table_name: str,
    region: str | None,
    host: str | None,
    connect_timeout_seconds: float | None,
    read_timeout_seconds: float | None,
    max_retry_attempts: int | None,
) -> type[BlobRecord]:
    connection = {
        "region": region,
        "host": host,
        "connect_timeout_seconds": connect_timeout_seconds,
        "read_timeout_seconds": read_timeout_seconds,
        "max_retry_attempts": max_retry_attempts,
    }
    meta = type(
        "Meta",
        (),
        {
            "table_name": table_name,
            **{key: value for key, value in connection.items() if value is not None},
        },
    )
    # PynamoDB caches a connection on the class and a subclass would find its parent's.
    # Bound classes are made only from the unbound model, which never sends a request
    # (its placeholder table is not one to use), so no connection is there to inherit.
    namespace = {"Meta": meta, "_unbound": base, "__module__": base.__module__}
    bound: type[BlobRecord] = type(f"{base.__name__}[{table_name}]", (base,), namespace)
    return bound


# -- the names, as the model declares them ---------------------------------------------------

#: The hash key: the digest.
DIGEST: str = BlobRecord.Digest.attr_name
#: The original path (a string).
ORIGINAL: str = BlobRecord.OriginalBlobPath.attr_name
#: Every path, the original included (a string set).
PATHS: str = BlobRecord.DuplicateBlobPath.attr_name
#: The seed's legacy layout kept every path in this string set, with no original.
#: Not an attribute of `BlobRecord`: blobcache only ever reads it, to migrate it.
LEGACY_PATHS = "BlobPath"


def key_schema(model: type[Model] = BlobRecord) -> dict[str, list[dict[str, str]]]:
    """CreateTable's ``KeySchema`` and ``AttributeDefinitions``, from ``model``'s key attributes."""
    keys: list[Attribute[Any]] = sorted(
        (attribute for attribute in model.get_attributes().values() if _is_key(attribute)),
        key=lambda attribute: not attribute.is_hash_key,  # DynamoDB wants HASH first
    )
    return {
        "KeySchema": [
            {"AttributeName": key.attr_name, "KeyType": "HASH" if key.is_hash_key else "RANGE"}
            for key in keys
        ],
        "AttributeDefinitions": [
            {"AttributeName": key.attr_name, "AttributeType": key.attr_type} for key in keys
        ],
    }


def _is_key(attribute: Attribute[Any]) -> bool:
    return bool(attribute.is_hash_key or attribute.is_range_key)


def item_bytes(attributes: Mapping[str, str | Collection[str] | None]) -> int:
    """The size DynamoDB counts against its 400 KB item limit.

    Each present attribute weighs its name plus its UTF-8 value (every member
    of a set); an attribute that is ``None`` or an empty set is not stored.
    """
    size = 0
    for name, value in attributes.items():
        if value is None or (not isinstance(value, str) and not value):
            continue
        members = [value] if isinstance(value, str) else value
        size += len(name.encode()) + sum(len(member.encode()) for member in members)
    return size
