"""System checks, with stable ids.

========================  ==========  ========================================================
id                        when        what
========================  ==========  ========================================================
``blobcache.E001``        always      ``settings.BLOBCACHE`` is not shaped like ``CACHES``
``blobcache.E002``        always      an alias's URL, ROOT or OPTIONS is wrong, its SQLite
                                      file's directory or ROOT does not exist, or its
                                      DynamoDB URL has no region
``blobcache.W002``        always      a setting named like ``BLOBCACHE`` (``BLOBCACHE_URL``,
                                      ``BLOBCACHES``) that blobcache does not read
``blobcache.W001``        --deploy    ``settings.BLOBCACHE`` is unset: the location depends
                                      on ``$BLOBCACHE_URL`` or the per-user data directory
``blobcache.E003``        --deploy    an alias's table or SQLite file does not exist (a
                                      mistyped path, or create-table not run yet)
``blobcache.E004``        --deploy    an alias's store cannot be reached or read
========================  ==========  ========================================================

The checks that run on every ``manage.py`` call read settings only; the ones
tagged deploy (``manage.py check --deploy``) send one read per alias.
"""

from __future__ import annotations

import difflib
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from blobcache import BlobCacheError, CacheMiss, ConfigurationError, TableNotFound
from blobcache.contrib.django._settings import aliases, is_configured, open_alias

_SETTING = "BLOBCACHE"

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
            # In the test environment, the TEST settings the tests will use.
            open_alias(alias, check=True)
        except ConfigurationError as exc:
            errors.append(Error(str(exc), obj=f"BLOBCACHE[{alias!r}]", id="blobcache.E002"))
    return errors


def check_setting_names(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Static: no setting is a misspelt ``BLOBCACHE`` (``BLOBCACHE_URL``, ``BLOBCACHES``)."""
    found: list[CheckMessage] = []
    for name in sorted(dir(settings)):
        if not name.isupper() or name == _SETTING:
            continue
        if name.startswith(_SETTING) or difflib.get_close_matches(name, [_SETTING], cutoff=0.8):
            found.append(
                Warning(
                    f"settings.{name} is not read by blobcache; did you mean {_SETTING!r}?",
                    hint="Configure caches as BLOBCACHE = {'default': {'URL': ...}}.",
                    obj=f"settings.{name}",
                    id="blobcache.W002",
                )
            )
    return found


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
            # must_exist: a mistyped SQLite path is reported, not created as an empty cache.
            cache = open_alias(alias, testing=False, must_exist=True)
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
