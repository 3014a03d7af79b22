"""Parsing of cache URLs, and the default location when none is given."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from blobcache._errors import ConfigurationError, shown
from blobcache._options import Options

#: Environment variable holding the URL used when none is given.
URL_ENV = "BLOBCACHE_URL"

_DYNAMODB_KEYS = ("region", "endpoint_url")
# The user-information part of any URL inside a text: "scheme://user:secret@".
# Bounded repeats and a lookbehind keep it linear on a hostile megabyte-long URL.
_USERINFO = re.compile(
    r"(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]{0,31}(?::|%3[Aa])(?://|%2[Ff]%2[Ff]))"
    r"[^/?#@\s]{0,4096}?(@|%40)"
)
# DynamoDB's table name characters (it also wants at least 3; the server says so).
_TABLE = re.compile(r"[A-Za-z0-9_.-]{1,255}")
# A region name as botocore accepts one: a DNS label (AWS names look like "eu-west-1").
_REGION = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def redact(text: str) -> str:
    """``text`` with the credentials of every URL in it (``user:secret@``) replaced by ``***@``."""
    return _USERINFO.sub(r"\1***\2", text)


def _shown_url(url: str) -> str:
    """A URL as a message may show it: credentials redacted, shortened."""
    return shown(redact(url))


#: Schemes of the Redis backend, as redis-py's ``from_url`` reads them.
REDIS_SCHEMES = ("redis", "rediss", "unix")
#: zot's key prefix when its configuration names none.
REDIS_DEFAULT_PREFIX = "zot"
_REDIS_TLS_KEYS = (
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_check_hostname",
)


@dataclass(frozen=True, slots=True)
class RedisAddress:
    """Where a Redis server listens, how to log in, and zot's key prefix.

    The password is kept out of ``repr`` and out of `display`.
    """

    #: Host name, or ``None`` for a Unix socket.
    host: str | None
    port: int
    #: Path of the Unix socket, for ``unix://`` URLs.
    socket_path: str | None
    db: int
    prefix: str = REDIS_DEFAULT_PREFIX
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: redis-py's ``ssl_*`` keyword arguments given in the URL, for ``rediss://``.
    tls_options: tuple[tuple[str, str], ...] = ()

    def display(self) -> str:
        """The URL without the password: for messages, logs and ``repr``."""
        query = f"prefix={quote(self.prefix, safe='')}"
        user = f"{quote(self.username, safe='')}@" if self.username else ""
        if self.socket_path is not None:
            return f"unix://{user}{quote(self.socket_path)}?db={self.db}&{query}"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{user}{host}:{self.port}/{self.db}?{query}"


@dataclass(frozen=True, slots=True)
class Location:
    """Where a cache lives: the backend, its address, and its options."""

    scheme: str
    #: DynamoDB table name, SQLite file path, or the Redis URL without its password.
    target: str
    region: str | None = None
    endpoint_url: str | None = None
    options: Options = field(default_factory=Options)
    redis: RedisAddress | None = None


def default_url() -> str:
    """``$BLOBCACHE_URL``, else a SQLite file in the per-user data directory.

    What `BlobCache.from_url` opens when it is given no URL.

    .. versionadded:: 0.1
    """
    return _default_url(create=False)


def _default_url(*, create: bool) -> str:
    """`default_url`; ``create`` makes the per-user directory, which SQLite won't."""
    from_env = os.environ.get(URL_ENV, "").strip()
    if from_env:
        return from_env
    import platformdirs

    directory = Path(platformdirs.user_data_dir("blobcache"))
    if create:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create the per-user data directory {str(directory)!r}: {exc}; "
                f"create it, or set {URL_ENV} to a cache URL"
            ) from exc
    return "sqlite:///" + str(directory / "blobcache.db")


def parse_url(url: str | None, overrides: Mapping[str, Any]) -> Location:
    """Split ``url`` into a `Location`; ``overrides`` are option keyword arguments."""
    if url is None:
        url = _default_url(create=True)
    if not isinstance(url, str):
        raise ConfigurationError(f"cache URL must be a string, not {type(url).__name__}")
    if url.partition(":")[0].lower() in REDIS_SCHEMES:
        return _redis(url, overrides)
    try:
        parts = urlsplit(url)
        has_credentials = parts.username is not None or parts.password is not None
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise ConfigurationError(f"malformed cache URL: {redact(str(exc))}") from exc
    if has_credentials:
        raise ConfigurationError(
            "credentials do not belong in a cache URL; use botocore's usual chain "
            "(environment, profile, instance role)"
        )
    try:
        query = dict(
            parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        )
    except ValueError as exc:
        raise ConfigurationError(f"malformed query string in cache URL {_shown_url(url)}") from exc
    if parts.scheme == "dynamodb":
        return _dynamodb(url, parts.netloc, parts.path, query, overrides)
    if parts.scheme == "sqlite":
        return _sqlite(url, parts.netloc, parts.path, query, overrides)
    raise ConfigurationError(
        f"unsupported cache URL {_masked_url(url)}; use 'sqlite:///FILE', "
        "'dynamodb:///TABLE?region=REGION' or 'redis://HOST:PORT/DB'"
    )


def _dynamodb(
    url: str, netloc: str, path: str, query: dict[str, str], overrides: Mapping[str, Any]
) -> Location:
    table = unquote(path.lstrip("/"))
    if netloc or not table or "/" in table:
        raise ConfigurationError(
            f"cannot read a table name from {_shown_url(url)}; write 'dynamodb:///TABLE?region=REGION'"
        )
    if not _TABLE.fullmatch(table):
        raise ConfigurationError(
            f"{shown(table)} is not a DynamoDB table name: use at most 255 letters, digits, "
            "'_', '-' and '.'"
        )
    location: dict[str, Any] = {
        key: query.pop(key) or None for key in _DYNAMODB_KEYS if key in query
    }
    endpoint = location.get("endpoint_url")
    if endpoint is not None and _has_credentials(endpoint):
        raise ConfigurationError(
            "endpoint_url must not carry credentials (user:password@); give them through "
            "botocore's usual chain (environment, profile, instance role)"
        )
    if endpoint is not None and not _is_http_url(endpoint):
        raise ConfigurationError(
            f"endpoint_url must be an http(s) URL with a host, such as "
            f"'http://127.0.0.1:8000', not {_shown_url(endpoint)}"
        )
    region = location.get("region")
    if region is not None and not _REGION.fullmatch(region):
        raise ConfigurationError(
            f"region must be a region name such as 'us-east-1', not {shown(region)}"
        )
    return Location(
        "dynamodb", table, options=Options.from_mapping({**query, **overrides}), **location
    )


def _has_credentials(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.username is not None or parts.password is not None
    except ValueError:
        return "@" in url  # unparsable: refuse rather than risk echoing a secret


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a bad port or bracket
        return False


def _sqlite(
    url: str, netloc: str, path: str, query: dict[str, str], overrides: Mapping[str, Any]
) -> Location:
    # SQLAlchemy's convention: sqlite:///relative.db and sqlite:////absolute.db.
    filename = unquote(path[1:])
    if netloc or not filename:
        raise ConfigurationError(
            f"cannot read a database file from {_shown_url(url)}; write 'sqlite:///relative.db' "
            "or 'sqlite:////absolute/path.db'"
        )
    if "\x00" in filename:
        raise ConfigurationError(f"{_shown_url(url)}: a file name cannot contain a NUL character")
    if filename == ":memory:" or filename.startswith("file:"):
        raise ConfigurationError(
            f"{_shown_url(url)}: in-memory and URI-style SQLite databases are not supported (each "
            "thread would see its own database); use a file, e.g. in a temporary directory"
        )
    return Location("sqlite", filename, options=Options.from_mapping({**query, **overrides}))


def _masked_url(url: str) -> str:
    """A URL for a message with everything between ``//`` and its last ``@`` masked.

    Stricter than `redact`: a password with an unencoded ``/``, ``?`` or ``@`` (which
    ends the user information early for a URL parser) is masked whole, at the cost of
    masking a little more than the credentials in an odd URL.
    """
    scheme, slashes, rest = url.partition("//")
    at = rest.rfind("@")
    if slashes and at >= 0:
        url = f"{scheme}//***{rest[at:]}"
    return shown(redact(url))


def _redis(url: str, overrides: Mapping[str, Any]) -> Location:
    """A ``redis://``, ``rediss://`` or ``unix://`` URL, read as redis-py's ``from_url`` does.

    Messages never quote the URL itself: it may hold the password.
    """
    masked = _masked_url(url)
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        hostname, port = parts.hostname, parts.port
        query = dict(
            parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        )
    except ValueError:
        # Not chained: the parser's message may quote part of the password.
        raise ConfigurationError(
            f"malformed Redis URL {masked}; write 'redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]' "
            "and percent-encode special characters in the user name and password"
        ) from None
    prefix = query.pop("prefix", "") or REDIS_DEFAULT_PREFIX
    db_text = query.pop("db", None)
    tls_options = tuple((key, query.pop(key)) for key in _REDIS_TLS_KEYS if key in query)
    if tls_options and scheme != "rediss":
        raise ConfigurationError(
            f"{', '.join(key for key, _ in tls_options)} in {masked} need a 'rediss://' URL"
        )
    socket_path = None
    if scheme == "unix":
        socket_path = unquote(parts.path)
        if not socket_path or hostname:
            raise ConfigurationError(
                f"cannot read a socket path from {masked}; write "
                "'unix:///path/to/redis.sock?db=N&prefix=PREFIX'"
            )
    else:
        path = parts.path.strip("/")
        if path and db_text is None:
            db_text = path
        elif path and path != db_text:
            raise ConfigurationError(
                f"{masked} names the database twice; give it once, as in 'redis://HOST:PORT/DB'"
            )
    try:
        db = int(db_text) if db_text is not None else 0
    except ValueError:
        db = -1
    if db < 0:
        raise ConfigurationError(
            f"the Redis database in {masked} must be a number (0, 1, ...), not {shown(db_text)}"
        )
    address = RedisAddress(
        host=None if socket_path is not None else hostname or "localhost",
        port=port or 6379,
        socket_path=socket_path,
        db=db,
        prefix=prefix,
        tls=scheme == "rediss",
        username=username,
        password=password,
        tls_options=tls_options,
    )
    options = Options.from_mapping({**query, **overrides})
    return Location("redis", address.display(), options=options, redis=address)
