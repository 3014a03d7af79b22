"""The PynamoDB model of a cache item, in zot's DynamoDB table layout."""

from __future__ import annotations

import functools

from pynamodb.attributes import UnicodeAttribute, UnicodeSetAttribute
from pynamodb.models import Model


class BlobRecord(Model):
    """One digest in zot's layout: ``Digest``, ``OriginalBlobPath``, ``DuplicateBlobPath``.

    ``Digest`` (S) is the hash key, ``OriginalBlobPath`` (S) the original and

    ``DuplicateBlobPath`` (SS) every path, the original included. The class
    itself points at a placeholder table; use `BlobRecord.bind` for a real one::

        Record = BlobRecord.bind("ZotBlobTable", region="us-east-1")
        Record.get("sha256:...", consistent_read=True).DuplicateBlobPath

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
        caches in one process never share, or overwrite, each other's table.
        """
        return _bind(
            cls,
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
    settings = {
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
            **{key: value for key, value in settings.items() if value is not None},
        },
    )
    # _connection is cached per class; a fresh None keeps the base's out of reach.
    namespace = {"Meta": meta, "_connection": None, "__module__": base.__module__}
    return type(f"{base.__name__}[{table_name}]", (base,), namespace)
