"""Where the blobs are: a local directory or an S3 bucket, parsed once at the boundary."""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from blobcache._errors import ConfigurationError, shorten, shown
from blobcache._url import _has_credentials, _is_http_url, _shown_url

_S3_KEYS = ("region", "endpoint_url", "addressing_style")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# Loose on purpose: buckets created before 2018 in us-east-1 may hold capitals and underscores.
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


@dataclass(frozen=True, slots=True)
class LocalDirectory:
    """A storage root on the local file system.

    .. versionadded:: 0.1
    """

    #: The absolute path of the directory.
    path: str

    def __str__(self) -> str:
        return self.path


@dataclass(frozen=True, slots=True)
class S3Location:
    """``s3://BUCKET[/ROOTDIRECTORY]``: the objects under a root directory of a bucket.

    The cache path ``P`` of a blob is the object key
    ``(ROOTDIRECTORY.rstrip("/") + P).lstrip("/")``, as zot's S3 storage
    driver maps them; nothing outside ``BUCKET/ROOTDIRECTORY/`` is ever
    read, written or deleted. Credentials come from botocore's usual chain.

    .. versionadded:: 0.1
    """

    bucket: str
    #: The root directory inside the bucket, without leading or trailing ``/`` (may be empty).
    root_directory: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    #: The addressing style of botocore's S3 client, ``"auto"``, ``"path"`` or ``"virtual"``.
    addressing_style: str = "auto"
    #: The botocore session to create the client from (a new one if not given).
    session: Any = field(default=None, compare=False, repr=False)

    @property
    def prefix(self) -> str:
        """The key prefix every object of the location starts with (``""`` for a whole bucket)."""
        return f"{self.root_directory}/" if self.root_directory else ""

    def key_of(self, path: str) -> str | None:
        """The object key of cache path ``path``, or ``None`` if it maps to no key of ours.

        Only absolute, normalised paths map: a relative path, a ``..`` or
        ``.`` component, an empty component or a trailing ``/`` could name
        an object outside the location (or none), so it is never touched.
        """
        if not path.startswith("/") or path.startswith("//") or path == "/":
            return None
        if posixpath.normpath(path) != path or "\x00" in path:
            return None
        return f"{self.root_directory}{path}" if self.root_directory else path[1:]

    def path_of(self, key: str) -> str | None:
        """The cache path of object ``key``, or ``None`` if the key lies outside the location."""
        if not key.startswith(self.prefix) or len(key) == len(self.prefix):
            return None
        path = "/" + key[len(self.prefix) :]
        return path if self.key_of(path) == key else None

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.root_directory}".rstrip("/")


#: A parsed storage location.
StorageLocation = LocalDirectory | S3Location


def parse_location(location: str | os.PathLike[str] | StorageLocation) -> StorageLocation:
    """Parse a storage location: a directory, or ``s3://BUCKET[/ROOTDIRECTORY][?...]``.

    A parsed location is returned as it is.

    Raises:
        ConfigurationError: a malformed ``s3://`` URL, an unknown scheme, or
            credentials in the URL.

    .. versionadded:: 0.1
    """
    if isinstance(location, LocalDirectory | S3Location):
        return location
    if not isinstance(location, str | os.PathLike):
        raise ConfigurationError(
            f"a storage location is a directory or an s3:// URL, not {type(location).__name__}"
        )
    text = os.fspath(location)
    if not isinstance(text, str) or not text:
        raise ConfigurationError("a storage location must be a non-empty directory or s3:// URL")
    if text[:5].lower() == "s3://":
        return _s3(text)
    if _SCHEME.match(text):
        raise ConfigurationError(
            f"unsupported storage location scheme {shown(text.split('://')[0])}; "
            "give a directory or s3://BUCKET[/ROOTDIRECTORY]"
        )
    return LocalDirectory(os.path.abspath(text))


def _s3(url: str) -> S3Location:
    if _has_credentials(url):
        # Never echo the URL: it holds a secret.
        raise ConfigurationError(
            "credentials do not belong in an s3:// location; use botocore's usual chain "
            "(environment, profile, instance role)"
        )
    try:
        parts = urlsplit(url)
        host = parts.netloc
    except ValueError as exc:
        raise ConfigurationError(f"malformed s3:// location {_shown_url(url)}: {exc}") from exc
    if not _BUCKET.fullmatch(host):
        raise ConfigurationError(
            f"cannot read a bucket name from {_shown_url(url)}; write 's3://BUCKET[/ROOTDIRECTORY]'"
        )
    root = parts.path.strip("/")
    if root and any(part in ("", ".", "..") for part in root.split("/")):
        raise ConfigurationError(
            f"the root directory in {_shown_url(url)} has an empty, '.' or '..' component"
        )
    try:
        query = dict(
            parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        )
    except ValueError as exc:
        raise ConfigurationError(f"malformed query string in {_shown_url(url)}") from exc
    unknown = sorted(set(query) - set(_S3_KEYS))
    if unknown:
        raise ConfigurationError(
            f"unknown s3:// location option(s) {shorten(', '.join(unknown))}; "
            f"valid ones are {', '.join(_S3_KEYS)}"
        )
    endpoint = query.get("endpoint_url") or None
    if endpoint is not None:
        if _has_credentials(endpoint):
            raise ConfigurationError(
                "credentials do not belong in endpoint_url; use botocore's usual chain"
            )
        if not _is_http_url(endpoint):
            raise ConfigurationError(
                "endpoint_url must be an http(s) URL with a host, such as "
                f"'http://127.0.0.1:9000', not {_shown_url(endpoint)} "
                "(percent-encode it in the location)"
            )
    style = query.get("addressing_style") or "auto"
    if style not in ("auto", "path", "virtual"):
        raise ConfigurationError(
            f"addressing_style must be auto, path or virtual, not {shown(style)}"
        )
    return S3Location(
        host,
        root,
        region=query.get("region") or None,
        endpoint_url=endpoint,
        addressing_style=style,
    )


def s3_url(location: S3Location) -> str:
    """The ``s3://`` URL that parses back to ``location`` (without its session)."""
    options = {
        "region": location.region,
        "endpoint_url": location.endpoint_url,
        "addressing_style": location.addressing_style,
    }
    query = "&".join(
        f"{name}={quote(value, safe='')}"
        for name, value in options.items()
        if value and value != "auto"
    )
    return str(location) + (f"?{query}" if query else "")
