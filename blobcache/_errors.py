"""The exception hierarchy: one root, one subclass per thing a caller can act on.

.. code-block:: text

    BlobCacheError
    ├── CacheMiss            (also a LookupError)
    ├── InvalidDigest        (also a ValueError)
    ├── InvalidPath          (also a ValueError)
    ├── ItemTooLarge
    ├── TableNotFound
    ├── StoreUnavailable
    └── ConfigurationError
"""

from __future__ import annotations

#: The most characters of an input an error message repeats.
SHOWN_LIMIT = 200


def shorten(text: str, limit: int = SHOWN_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was: a 10 MB input must not
    make a 10 MB message."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def shown(value: object, limit: int = SHOWN_LIMIT) -> str:
    """The ``repr`` of an input for a message, shortened like `shorten` (quoted, escaped)."""
    if isinstance(value, (str, bytes)) and len(value) > limit:
        unit = "characters" if isinstance(value, str) else "bytes"
        return f"{value[:limit]!r}... ({len(value)} {unit})"
    return shorten(repr(value), limit)


class BlobCacheError(Exception):
    """Root of every error blobcache raises.

    ``cause`` is the backend exception behind this one, if any (also set as
    ``__cause__``), so handlers can inspect it without walking the chain.

    .. versionadded:: 0.1
    """

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause

    @property
    def cause_response_code(self) -> str | None:
        """The DynamoDB error code of ``cause`` (``"ThrottlingException"``...), if any."""
        response = getattr(self.cause, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            return str(code) if code is not None else None
        return None


class CacheMiss(BlobCacheError, LookupError):
    """The digest has no entry in the cache.

    .. versionadded:: 0.1
    """

    def __init__(self, digest: str) -> None:
        super().__init__(f"no cache entry for digest {digest!r}; record one with put(digest, path)")
        self.digest = digest


class InvalidDigest(BlobCacheError, ValueError):
    """A digest does not follow the OCI digest grammar.

    ``position`` is the 0-based index of the bad entry in a bulk call's input, else ``None``.

    .. versionadded:: 0.1
    """

    def __init__(self, digest: object, reason: str, *, position: int | None = None) -> None:
        super().__init__(
            f"invalid digest {shown(digest)}{_at(position)}: {reason}; expected "
            "'algorithm:encoded', e.g. 'sha256:' followed by 64 lowercase hex characters"
        )
        self.digest = digest
        self.reason = reason
        self.position = position


class InvalidPath(BlobCacheError, ValueError):
    """A storage path is empty, not text, too long, or escapes the root.

    ``position`` is the 0-based index of the bad entry in a bulk call's input, else ``None``.

    .. versionadded:: 0.1
    """

    def __init__(self, path: object, reason: str, *, position: int | None = None) -> None:
        super().__init__(f"invalid path {shown(path)}{_at(position)}: {reason}")
        self.path = path
        self.reason = reason
        self.position = position


def _at(position: int | None) -> str:
    return "" if position is None else f" at position {position} (nothing was sent)"


class ItemTooLarge(BlobCacheError):
    """A put would take an item past DynamoDB's 400 KB item limit; nothing was written.

    .. versionadded:: 0.1
    """

    def __init__(self, digest: str, paths: int, *, cause: BaseException | None = None) -> None:
        super().__init__(
            f"digest {digest!r} already has {paths} paths and one more would exceed "
            "DynamoDB's 400 KB item limit; nothing was written. Prune stale paths "
            "('blobcache prune') or shorten paths with relative-path mode (root=...)",
            cause=cause,
        )
        self.digest = digest
        self.paths = paths


class TableNotFound(BlobCacheError):
    """The table (or SQLite schema) does not exist yet.

    .. versionadded:: 0.1
    """

    def __init__(self, table: str, *, cause: BaseException | None = None) -> None:
        super().__init__(
            f"table {table!r} does not exist; create it with cache.create_table() "
            "or 'blobcache create-table --url URL'",
            cause=cause,
        )
        self.table = table


class StoreUnavailable(BlobCacheError):
    """The store could not be reached or kept refusing: network, timeouts, throttling.

    ``outcome_unknown`` is ``True`` when a write reached the store and its answer was
    lost (a timeout, a reset, a 5xx, a damaged response): it may or may not have taken
    effect, at most once. ``False`` means the call changed nothing.

    .. versionadded:: 0.1

    .. versionadded:: 0.2 ``outcome_unknown``
    """

    def __init__(
        self, message: str, *, cause: BaseException | None = None, outcome_unknown: bool = False
    ) -> None:
        super().__init__(message, cause=cause)
        self.outcome_unknown = outcome_unknown


class ConfigurationError(BlobCacheError):
    """A URL, option or setting is wrong; the message says which and how to fix it.

    .. versionadded:: 0.1
    """


# Tracebacks, reprs and the docs name each error as callers import and catch it:
# blobcache.CacheMiss, not blobcache._errors.CacheMiss.
for _error in (
    BlobCacheError,
    CacheMiss,
    InvalidDigest,
    InvalidPath,
    ItemTooLarge,
    TableNotFound,
    StoreUnavailable,
    ConfigurationError,
):
    _error.__module__ = "blobcache"
del _error
