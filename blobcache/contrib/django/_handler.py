"""`caches`: `BlobCache` handles by alias, like ``django.core.cache.caches``."""

from __future__ import annotations

import threading
from typing import Any

from blobcache import BlobCache
from blobcache.contrib.django._settings import DEFAULT_ALIAS, in_test_environment, open_alias


class CacheHandler:
    """Per-alias `BlobCache` handles, opened on first use and shared by every thread.

    ``caches["default"]`` reads ``settings.BLOBCACHE`` at first use, never at
    import. A `BlobCache` is safe to share between threads and tasks (SQLite
    gives each thread its own connection), so one handle per alias serves the
    whole process; changing the setting (``override_settings`` in tests)
    closes them, so the next lookup sees the new settings. In Django's test
    environment an alias opens its ``TEST`` settings (see `open_alias`), and a
    handle opened before the environment was set up is not reused there.

    .. versionadded:: 0.1
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handles: dict[tuple[str, bool], BlobCache] = {}

    def __getitem__(self, alias: str) -> BlobCache:
        """The handle for ``alias``.

        Raises:
            ConfigurationError: the alias does not exist or its settings are wrong.
        """
        key = (alias, in_test_environment())
        cache = self._handles.get(key)
        if cache is None:
            with self._lock:
                cache = self._handles.get(key)
                if cache is None:
                    cache = self._handles[key] = open_alias(alias)
        return cache

    def all(self) -> list[BlobCache]:
        """The handles opened so far."""
        with self._lock:
            return list(self._handles.values())

    def release_all(self) -> None:
        """Give back the connections the calling thread holds (`BlobCache.release`).

        Connected to ``request_finished``, as Django closes its database connections
        at the end of a request.
        """
        for cache in self.all():
            cache.release()

    def close_all(self) -> None:
        """Close every handle; the next lookup of an alias opens it anew."""
        with self._lock:
            handles, self._handles = self._handles, {}
        for cache in handles.values():
            cache.close()


def release_on_request_finished(**kwargs: Any) -> None:
    """``request_finished`` receiver: the request's thread gives back its connections."""
    from blobcache.contrib.django import caches

    caches.release_all()


def reset_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    """``setting_changed`` receiver: forget every handle when ``BLOBCACHE`` changes."""
    if setting == "BLOBCACHE":
        from blobcache.contrib.django import caches

        caches.close_all()


class DefaultCache:
    """``caches["default"]`` looked up on each use, like ``django.core.cache.cache``.

    Every attribute is the default alias's `BlobCache`'s, so it follows
    ``override_settings`` and the test environment.

    .. versionadded:: 0.1
    """

    def __init__(self, handler: CacheHandler) -> None:
        self._handler = handler

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handler[DEFAULT_ALIAS], name)

    def __repr__(self) -> str:
        return f"<DefaultCache of {DEFAULT_ALIAS!r}>"
