"""Reading ``settings.BLOBCACHE``: the aliases, and one `BlobCache` per alias."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings

from blobcache import BlobCache, ConfigurationError
from blobcache.contrib._settings import open_cache

#: The keys an alias's settings may have.
ALIAS_KEYS = ("URL", "ROOT", "OPTIONS")
DEFAULT_ALIAS = "default"


def is_configured() -> bool:
    """Whether the project defines ``settings.BLOBCACHE`` at all."""
    return hasattr(settings, "BLOBCACHE")


def aliases() -> dict[str, Mapping[str, Any]]:
    """Every alias of ``settings.BLOBCACHE`` with its settings, checked for shape only.

    Without the setting, one ``default`` alias with no settings: ``$BLOBCACHE_URL``,
    else the per-user SQLite file, as `BlobCache.from_url` does.

    Raises:
        ConfigurationError: the setting is not shaped like ``CACHES``.
    """
    configured: object = getattr(settings, "BLOBCACHE", {DEFAULT_ALIAS: {}})
    if not isinstance(configured, Mapping):
        raise ConfigurationError(
            "settings.BLOBCACHE must be a dict of aliases, such as "
            "{'default': {'URL': 'sqlite:////var/lib/app/blobcache.db'}}, "
            f"not {type(configured).__name__}"
        )
    if DEFAULT_ALIAS not in configured:
        raise ConfigurationError(
            "settings.BLOBCACHE must define a 'default' cache; add "
            "'default': {'URL': ...} next to "
            f"{', '.join(map(repr, configured)) or 'nothing'}"
        )
    found: dict[str, Mapping[str, Any]] = {}
    for alias, values in configured.items():
        where = f"settings.BLOBCACHE[{alias!r}]"
        if not isinstance(values, Mapping):
            raise ConfigurationError(
                f"{where} must be a dict with the keys URL, ROOT and OPTIONS, "
                f"not {type(values).__name__}"
            )
        unknown = sorted(map(str, set(values) - set(ALIAS_KEYS)))
        if unknown:
            raise ConfigurationError(
                f"{where} has unknown key(s) {', '.join(unknown)}; "
                f"the keys are {', '.join(ALIAS_KEYS)}"
            )
        found[str(alias)] = values
    return found


def open_alias(alias: str, *, root: str | None = None, **overrides: Any) -> BlobCache:
    """A new `BlobCache` for ``alias`` (no I/O until first use).

    ``root`` overrides ROOT and ``overrides`` the OPTIONS, as a command line gives them.

    Raises:
        ConfigurationError: the alias does not exist or its settings are wrong.
    """
    configured = aliases()
    if alias not in configured:
        raise ConfigurationError(
            f"settings.BLOBCACHE has no cache {alias!r}; its aliases are "
            f"{', '.join(map(repr, configured))}"
        )
    values = configured[alias]
    where = f"settings.BLOBCACHE[{alias!r}]"
    return open_cache(
        values.get("URL"),
        root or values.get("ROOT"),
        values.get("OPTIONS"),
        names={key.lower(): f"{where}[{key!r}]" for key in ALIAS_KEYS},
        overrides=overrides,
    )
