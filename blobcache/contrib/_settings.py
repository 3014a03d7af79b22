"""From a framework's URL, root and options settings to a `BlobCache`, or to a clear error."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from blobcache import BlobCache, ConfigurationError, Options


def open_cache(
    url: object,
    root: object,
    options: object,
    *,
    names: Mapping[str, str],
    overrides: Mapping[str, Any] | None = None,
) -> BlobCache:
    """Validate one cache's settings and open it (no I/O happens until first use).

    Args:
        url, root, options: the setting values exactly as the application wrote them.
        names: how the application spells each setting (``{"url": "app.config[...]", ...}``),
            so every error points at the line to fix.
        overrides: options a command line gave, over the configured ones.

    Raises:
        ConfigurationError: a value has the wrong type, or the URL or an option is wrong.
    """
    if url is not None and not isinstance(url, str):
        raise ConfigurationError(
            f"{names['url']} must be a cache URL string such as 'sqlite:////var/lib/app/"
            f"blobcache.db' or 'dynamodb:///TABLE?region=REGION', not {type(url).__name__}"
        )
    if root is not None and not isinstance(root, str | os.PathLike):
        raise ConfigurationError(
            f"{names['root']} must be a directory path (str or pathlib.Path) or None, "
            f"not {type(root).__name__}"
        )
    if options is None:
        options = {}
    if not isinstance(options, Mapping) or not all(isinstance(key, str) for key in options):
        raise ConfigurationError(
            f"{names['options']} must be a dict of option names to values, such as "
            f"{{'read_timeout': 2}}, not {type(options).__name__}"
        )
    typed: Mapping[str, Any] = {**options, **(overrides or {})}
    try:
        return BlobCache.from_url(url or None, root=root or None, **typed)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{_culprit(typed, names)}: {exc}", cause=exc.cause) from exc


def _culprit(options: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """The setting to blame: the options if they are wrong on their own, else the URL."""
    try:
        Options.from_mapping(options)
    except ConfigurationError:
        return names["options"]
    return names["url"]
