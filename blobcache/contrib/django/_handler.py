"""`caches`: per-thread `BlobCache` handles by alias, like ``django.core.cache.caches``."""

from __future__ import annotations

import threading
from typing import Any

from asgiref.local import Local

from blobcache import BlobCache
from blobcache.contrib.django._settings import open_alias


class CacheHandler:
    """Per-alias `BlobCache` handles, opened on first use in each thread.

    ``caches["default"]`` reads ``settings.BLOBCACHE`` at first use, never at
    import. Changing the setting (``override_settings`` in tests) closes every
    handle, so the next lookup sees the new settings.

    .. versionadded:: 0.1
    """

    def __init__(self) -> None:
        # Like django.core.cache.caches: a handle per thread (and per asyncio task group),
        # so nothing one request does to its connections leaks into another's.
        self._local = Local()
        self._lock = threading.Lock()
        self._opened: list[BlobCache] = []

    def __getitem__(self, alias: str) -> BlobCache:
        """The handle for ``alias`` in this thread.

        Raises:
            ConfigurationError: the alias does not exist or its settings are wrong.
        """
        handles = self._handles()
        cache = handles.get(alias)
        if cache is None:
            cache = handles[alias] = open_alias(alias)
            with self._lock:
                self._opened.append(cache)
        return cache

    def all(self) -> list[BlobCache]:
        """The handles this thread has opened so far."""
        return list(self._handles().values())

    def close_all(self) -> None:
        """Close every handle of every thread; each reopens on next use."""
        with self._lock:
            opened, self._opened = self._opened, []
        for cache in opened:
            cache.close()
        self._local = Local()

    def _handles(self) -> dict[str, BlobCache]:
        handles: dict[str, BlobCache] | None = getattr(self._local, "handles", None)
        if handles is None:
            handles = self._local.handles = {}
        return handles


def reset_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    """``setting_changed`` receiver: forget every handle when ``BLOBCACHE`` changes."""
    if setting == "BLOBCACHE":
        from blobcache.contrib.django import caches

        caches.close_all()
