"""Tuning knobs (retries, timeouts, batching) in one immutable value object."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from blobcache._errors import ConfigurationError, shorten, shown

BillingMode = Literal["PAY_PER_REQUEST", "PROVISIONED"]
Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]


@dataclass(frozen=True, slots=True)
class Options:
    """Every retry, timeout and batching option of a cache, in one place.

    Each field can also be given as a URL query parameter
    (``dynamodb:///blobs?region=eu-west-1&read_timeout=2``) or as a keyword
    argument of `BlobCache.from_url`; keyword arguments win.

    .. versionadded:: 0.1
    """

    #: Seconds to wait for a TCP connection to DynamoDB or Redis (at most 86400).
    connect_timeout: float = 5.0
    #: Seconds to wait for a DynamoDB or Redis response (at most 86400).
    read_timeout: float = 10.0
    #: Retries per request after the first try (at most 100), of a read after any transient
    #: failure, of a write only after one that provably had no effect (no connection could
    #: be made, throttling), since a resent write could take effect twice.
    max_retries: int = 3
    #: Attempts of a conditional write that loses a race (or meets zot's Redis lock).
    max_attempts: int = 16
    #: Seconds of the first back-off between conflicting attempts; it doubles, with jitter.
    backoff: float = 0.005
    #: Seconds the back-off between conflicting attempts grows to at most.
    max_backoff: float = 0.5
    #: Connections kept open to DynamoDB or Redis, per cache (the most threads served at
    #: once; at most 1000).
    max_pool_connections: int = 10
    #: Strongly consistent reads for get/get_all/has/entries (DynamoDB).
    consistent_read: bool = True
    #: Items per Scan (DynamoDB) or HSCAN/SCAN (Redis) page; ``None``: the default.
    page_size: int | None = None
    #: Parallel Scan segments for the maintenance scans (DynamoDB); 1 scans sequentially.
    scan_segments: int = 1
    #: Billing mode of tables created by create_table (DynamoDB).
    billing_mode: BillingMode = "PAY_PER_REQUEST"
    #: Provisioned read capacity, with ``billing_mode="PROVISIONED"``.
    read_capacity: int | None = None
    #: Provisioned write capacity, with ``billing_mode="PROVISIONED"``.
    write_capacity: int | None = None
    #: Seconds create_table waits for a new table to become ACTIVE.
    table_wait_timeout: float = 60.0
    #: Seconds a SQLite writer waits for the write lock before it retries (at most
    #: 2147483, SQLite's limit).
    busy_timeout: float = 30.0
    #: SQLite ``PRAGMA synchronous``; FULL survives power loss, NORMAL only process crashes.
    synchronous: Synchronous = "FULL"
    #: Refuse a store that does not exist yet instead of creating it on first use. A
    #: missing SQLite file (or one without blobcache's schema) raises `TableNotFound`
    #: naming it; `BlobCache.create_table` still creates it. DynamoDB never creates a
    #: table outside `BlobCache.create_table`, so this changes nothing there.
    must_exist: bool = False
    #: Items per batch a bulk call (put_many, get_many, delete_many) hands the backend;
    #: on SQLite one transaction per batch, on DynamoDB at most this many in flight,
    #: on Redis one script run per batch.
    batch_size: int = 1000
    #: Concurrent requests a remote backend may have in flight for one bulk call (DynamoDB).
    workers: int = 8
    #: SQLite connections kept open for reuse; a thread beyond them opens and closes its own.
    pool_size: int = 8

    def __post_init__(self) -> None:
        # Upper bounds too: an absurd value passes here and misbehaves much later (an
        # infinite timeout fails every call, a busy_timeout past 2**31 ms overflows
        # SQLite's and stops waiting, 10**7 pooled connections take seconds to set up).
        for name in ("connect_timeout", "read_timeout", "table_wait_timeout"):
            _require(
                name, 0 < getattr(self, name) <= _DAY, "a positive number of seconds, at most 86400"
            )
        _require(
            "busy_timeout",
            0 < self.busy_timeout <= _SQLITE_MAX_BUSY,
            f"a positive number of seconds, at most {_SQLITE_MAX_BUSY}",
        )
        _require(
            "backoff", 0 <= self.backoff <= 60, "zero or a positive number of seconds, at most 60"
        )
        _require(
            "max_backoff",
            self.backoff <= self.max_backoff <= 3600,
            "at least backoff, at most 3600",
        )
        _require(
            "max_retries", 0 <= self.max_retries <= 100, "zero or a positive integer, at most 100"
        )
        _require(
            "max_attempts", 1 <= self.max_attempts <= 10_000, "a positive integer, at most 10000"
        )
        _require(
            "max_pool_connections",
            1 <= self.max_pool_connections <= 1000,
            "a positive integer, at most 1000",
        )
        for name in ("batch_size", "workers", "pool_size"):
            _require(
                name, 1 <= getattr(self, name) <= 100_000, "a positive integer, at most 100000"
            )
        _require("page_size", self.page_size is None or self.page_size >= 1, "a positive integer")
        _require("scan_segments", 1 <= self.scan_segments <= 1_000_000, "between 1 and 1000000")
        _require(
            "billing_mode",
            self.billing_mode in ("PAY_PER_REQUEST", "PROVISIONED"),
            "PAY_PER_REQUEST or PROVISIONED",
        )
        _require(
            "synchronous",
            self.synchronous in ("OFF", "NORMAL", "FULL", "EXTRA"),
            "OFF, NORMAL, FULL or EXTRA",
        )
        provisioned = self.billing_mode == "PROVISIONED"
        for name in ("read_capacity", "write_capacity"):
            value = getattr(self, name)
            if provisioned:
                _require(
                    name,
                    value is not None and value >= 1,
                    "a positive integer when billing_mode is PROVISIONED",
                )
            else:
                _require(name, value is None, "left unset unless billing_mode is PROVISIONED")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Options:
        """Build options from strings or typed values, as found in URLs and settings files."""
        fields = {field.name: field for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ConfigurationError(
                f"unknown option(s) {shorten(', '.join(unknown))}; "
                f"valid options are {', '.join(fields)}"
            )
        return cls(
            **{name: _coerce(name, fields[name].type, given) for name, given in values.items()}
        )

    def replace(self, **changes: Any) -> Options:
        """Return a copy with some fields changed (validated like the constructor)."""
        return Options.from_mapping({**dataclasses.asdict(self), **changes})


_TYPES: dict[str, type | tuple[type, ...]] = {"bool": bool, "int": int, "float": (int, float)}
_DAY = 86_400.0
#: SQLite keeps its busy timeout in milliseconds in a C int.
_SQLITE_MAX_BUSY = 2_147_483


def _require(name: str, ok: bool, expected: str) -> None:
    if not ok:
        raise ConfigurationError(f"option {name} must be {expected}")


def _coerce(name: str, annotation: object, given: Any) -> Any:
    """Turn ``given`` (often a string from a URL) into the field's type, or explain why not."""
    kind = str(annotation)
    if given is None or not isinstance(given, str):
        value = given
    elif kind.endswith("| None") and given.lower() in ("", "none"):
        value = None
    elif kind.startswith("bool"):
        lowered = given.lower()
        if lowered not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ConfigurationError(f"option {name} must be true or false, not {shown(given)}")
        value = lowered in ("1", "true", "yes", "on")
    elif kind.startswith(("int", "float")):
        try:
            value = int(given) if kind.startswith("int") else float(given)
        except ValueError:
            raise ConfigurationError(
                f"option {name} must be a number, not {shown(given)}"
            ) from None
    else:
        value = given.upper()
    expected = _TYPES.get(kind.split(" ")[0])
    mismatched = (
        expected is not None
        and value is not None
        and (isinstance(value, bool) != kind.startswith("bool") or not isinstance(value, expected))
    )
    if mismatched:
        raise ConfigurationError(f"option {name} must be {kind}, not {shown(value)}")
    return value


class OptionsDict(TypedDict, total=False):
    """The `Options` fields as keyword arguments of `BlobCache.from_url`, for type checkers.

    ``BlobCache.from_url(url, read_timout=2)`` is then a type error, not a surprise at run
    time. Every key is an `Options` field, with the same meaning and type.

    .. versionadded:: 0.1
    """

    connect_timeout: float
    read_timeout: float
    max_retries: int
    max_attempts: int
    backoff: float
    max_backoff: float
    max_pool_connections: int
    consistent_read: bool
    page_size: int | None
    scan_segments: int
    billing_mode: BillingMode
    read_capacity: int | None
    write_capacity: int | None
    table_wait_timeout: float
    busy_timeout: float
    synchronous: Synchronous
    must_exist: bool
    batch_size: int
    workers: int
    pool_size: int
