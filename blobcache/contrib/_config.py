"""From a framework's configuration (URL, root, options) to a checked `BlobCache`."""

from __future__ import annotations

import difflib
import os
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from blobcache import BlobCache, ConfigurationError, Options


class UnknownSettingWarning(UserWarning):
    """A ``BLOBCACHE_*`` setting that blobcache does not read: most likely a typo.

    .. versionadded:: 0.1
    """


# What users of other libraries write for a key of ours (Django's CACHES says LOCATION).
_FAMILIAR = {"LOCATION": "URL", "URI": "URL", "PATH": "URL", "DSN": "URL"}


def closest(name: str, valid: Iterable[str]) -> str:
    """``" (did you mean 'X'?)"`` for the valid name closest to ``name``, else ``""``."""
    valid = list(valid)
    suffix = name.rsplit("_", 1)[-1]
    prefix = name[: len(name) - len(suffix)]
    familiar = prefix + _FAMILIAR.get(suffix, "\0")
    found = (
        [familiar] if familiar in valid else difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    )
    return f" (did you mean {found[0]!r}?)" if found else ""


def warn_unknown(names: Iterable[str], valid: Iterable[str], where: str) -> None:
    """Warn once per name of ``names`` that is not in ``valid``, naming the closest valid one."""
    valid = sorted(valid)
    for name in sorted(set(names) - set(valid)):
        warnings.warn(
            f"{where} has an unknown setting {name!r}{closest(name, valid)}, which blobcache "
            f"ignores; the settings are {', '.join(valid)}",
            UnknownSettingWarning,
            stacklevel=3,
        )


def open_cache(
    url: object,
    root: object,
    options: object,
    *,
    names: Mapping[str, str],
    overrides: Mapping[str, Any] | None = None,
    check: bool = False,
) -> BlobCache:
    """Validate one cache's settings and open it (no request is sent).

    Args:
        url, root, options: the setting values exactly as the application wrote them.
        names: how the application spells each setting (``{"url": "app.config[...]", ...}``),
            so every error points at the line to fix.
        overrides: options a command line gave, over the configured ones.
        check: also run `BlobCache.check` (a missing SQLite directory or root, a
            DynamoDB table without a region), as integrations do at start-up.

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
        cache = BlobCache.from_url(url or None, root=root or None, **typed)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{_culprit(typed, names)}: {exc}", cause=exc.cause) from exc
    if check:
        if cache.root is not None and not os.path.isdir(cache.root):
            raise ConfigurationError(
                f"{names['root']}: {cache.root!r} is not an existing directory; create it, "
                "or fix the setting"
            )
        try:
            cache.check()
        except ConfigurationError as exc:
            raise ConfigurationError(f"{names['url']}: {exc}", cause=exc.cause) from exc
    return cache


def _culprit(options: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """The setting to blame: the options if they are wrong on their own, else the URL."""
    try:
        Options.from_mapping(options)
    except ConfigurationError:
        return names["options"]
    return names["url"]
