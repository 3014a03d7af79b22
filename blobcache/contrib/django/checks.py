"""System checks, with stable ids.

========================  ==========  ========================================================
id                        when        what
========================  ==========  ========================================================
``blobcache.E001``        always      ``settings.BLOBCACHE`` is not shaped like ``CACHES``
``blobcache.E002``        always      an alias's URL, ROOT or OPTIONS is wrong
``blobcache.W001``        --deploy    ``settings.BLOBCACHE`` is unset: the location depends
                                      on ``$BLOBCACHE_URL`` or the per-user data directory
``blobcache.E003``        --deploy    an alias's table does not exist
``blobcache.E004``        --deploy    an alias's store cannot be reached or read
========================  ==========  ========================================================

The checks that run on every ``manage.py`` call read settings only; the ones
tagged deploy (``manage.py check --deploy``) send one read per alias.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Warning

from blobcache import BlobCacheError, CacheMiss, ConfigurationError, TableNotFound
from blobcache.contrib.django._settings import aliases, is_configured, open_alias

# A well-formed digest nobody stores: reading it costs one request and changes nothing.
_PROBE_DIGEST = "sha256:" + "0" * 64


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Static: ``settings.BLOBCACHE`` is well shaped and every alias opens (no I/O)."""
    try:
        names = aliases()
    except ConfigurationError as exc:
        return [Error(str(exc), hint="See settings.BLOBCACHE in the docs.", id="blobcache.E001")]
    errors: list[CheckMessage] = []
    for alias in names:
        try:
            open_alias(alias)
        except ConfigurationError as exc:
            errors.append(Error(str(exc), obj=f"BLOBCACHE[{alias!r}]", id="blobcache.E002"))
    return errors


def check_deploy_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Deploy: the project says where its cache lives instead of relying on defaults."""
    if is_configured():
        return []
    return [
        Warning(
            "settings.BLOBCACHE is not set, so the cache is $BLOBCACHE_URL or a SQLite "
            "file in the per-user data directory of whoever runs the server",
            hint="Set BLOBCACHE = {'default': {'URL': ...}} in your settings.",
            id="blobcache.W001",
        )
    ]


def check_tables(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Deploy: every alias's table exists and answers a read."""
    try:
        names = aliases()
    except ConfigurationError:
        return []  # blobcache.E001 already reports it
    errors: list[CheckMessage] = []
    for alias in names:
        try:
            cache = open_alias(alias)
        except ConfigurationError:
            continue  # blobcache.E002 already reports it
        obj = f"BLOBCACHE[{alias!r}]"
        try:
            cache.get(_PROBE_DIGEST)
        except CacheMiss:
            pass
        except TableNotFound as exc:
            errors.append(
                Error(
                    str(exc),
                    hint=f"Run: python manage.py blobcache create-table --cache {alias}",
                    obj=obj,
                    id="blobcache.E003",
                )
            )
        except BlobCacheError as exc:
            errors.append(Error(f"cannot read the cache: {exc}", obj=obj, id="blobcache.E004"))
        finally:
            cache.close()
    return errors
