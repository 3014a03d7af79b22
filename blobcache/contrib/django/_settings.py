"""Reading ``settings.BLOBCACHE``: the aliases, and one `BlobCache` per alias."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core import mail

from blobcache import BlobCache, ConfigurationError
from blobcache.contrib._config import closest, open_cache

#: The keys an alias's settings may have.
ALIAS_KEYS = ("URL", "ROOT", "OPTIONS", "TEST")
#: The keys of an alias's ``TEST`` settings.
TEST_KEYS = ("URL", "ROOT", "OPTIONS")
DEFAULT_ALIAS = "default"

_test_directory: str | None = None
_test_directory_lock = threading.Lock()


def in_test_environment() -> bool:
    """Whether Django's test environment is set up (``manage.py test``, pytest-django).

    ``setup_test_environment()``, which both run, installs ``django.core.mail.outbox``
    (documented: "during test running, each outgoing email is saved in it") and
    ``teardown_test_environment()`` removes it.
    """
    return hasattr(mail, "outbox")


def _as_the_project_defines_it() -> bool:
    """Whether ``settings.BLOBCACHE`` is the settings module's own (not a test's override)."""
    # The environment, as Django's LazySettings reads it: under override_settings,
    # settings.SETTINGS_MODULE is None.
    module = sys.modules.get(os.environ.get("DJANGO_SETTINGS_MODULE") or "")
    if module is None:
        return True
    unset = object()
    return getattr(module, "BLOBCACHE", unset) is getattr(settings, "BLOBCACHE", unset)


def _test_url(alias: str) -> str:
    """A SQLite file for ``alias`` in a directory of this process, removed at exit."""
    global _test_directory
    with _test_directory_lock:
        if _test_directory is None:
            _test_directory = tempfile.mkdtemp(prefix="blobcache-test-")
            atexit.register(shutil.rmtree, _test_directory, ignore_errors=True)
    return "sqlite:///" + str(Path(_test_directory) / f"{quote(alias, safe='')}.db")


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
        _refuse_unknown(values, ALIAS_KEYS, where)
        test = values.get("TEST")
        if test is not None:
            if not isinstance(test, Mapping):
                raise ConfigurationError(
                    f"{where}['TEST'] must be a dict with the keys {', '.join(TEST_KEYS)}, "
                    f"not {type(test).__name__}"
                )
            _refuse_unknown(test, TEST_KEYS, f"{where}['TEST']")
        found[str(alias)] = values
    return found


def _refuse_unknown(values: Mapping[Any, Any], valid: tuple[str, ...], where: str) -> None:
    unknown = sorted(map(str, set(values) - set(valid)))
    if unknown:
        raise ConfigurationError(
            f"{where} has the unknown key {unknown[0]!r}{closest(unknown[0], valid)}; "
            f"the keys are {', '.join(valid)}"
        )


def open_alias(
    alias: str,
    *,
    root: str | None = None,
    testing: bool | None = None,
    check: bool = False,
    **overrides: Any,
) -> BlobCache:
    """A new `BlobCache` for ``alias`` (no request is sent).

    ``root`` overrides ROOT and ``overrides`` the OPTIONS, as a command line gives them.
    In Django's test environment (``testing``; by default `in_test_environment`, unless a
    test set ``BLOBCACHE`` itself with ``override_settings`` or pytest-django's
    ``settings``: it gets what it set), the alias's ``TEST`` settings apply: its URL,
    else a fresh SQLite file of this test run, so tests never write into the real cache;
    its ROOT and OPTIONS, else the alias's.
    ``check`` runs `BlobCache.check` too (a missing directory, a DynamoDB URL without
    a region).

    Raises:
        ConfigurationError: the alias does not exist or its settings are wrong.
    """
    configured = aliases()
    if alias not in configured:
        raise ConfigurationError(
            f"settings.BLOBCACHE has no cache {alias!r}{closest(alias, configured)}; "
            f"its aliases are {', '.join(map(repr, configured))}"
        )
    values = configured[alias]
    where = f"settings.BLOBCACHE[{alias!r}]"
    names = {key.lower(): f"{where}[{key!r}]" for key in TEST_KEYS}
    if testing is None:
        testing = in_test_environment() and _as_the_project_defines_it()
    if testing:
        test: Mapping[str, Any] = values.get("TEST") or {}
        values = {
            "URL": test.get("URL") or _test_url(alias),
            "ROOT": test.get("ROOT", values.get("ROOT")),
            "OPTIONS": test.get("OPTIONS", values.get("OPTIONS")),
        }
        names = {key.lower(): f"{where}['TEST'][{key!r}]" for key in TEST_KEYS}
    return open_cache(
        values.get("URL"),
        root or values.get("ROOT"),
        values.get("OPTIONS"),
        names=names,
        overrides=overrides,
        check=check,
    )
