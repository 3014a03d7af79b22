"""Django integration: settings shaped like ``CACHES``, system checks and management commands.

.. code-block:: python

    # settings.py
    INSTALLED_APPS = [..., "blobcache.contrib.django"]
    BLOBCACHE = {"default": {"URL": "sqlite:////var/lib/app/blobcache.db"}}

    # anywhere
    from blobcache.contrib.django import cache, caches
    cache.get(digest)                  # the default alias
    caches["registry"].get(digest)     # any alias
    await acache.get(digest)           # in an async view: off the event loop
"""

from __future__ import annotations

from typing import cast

from django.core.signals import request_finished, setting_changed

from blobcache import AsyncBlobCache, BlobCache
from blobcache.contrib.django._handler import (
    CacheHandler,
    DefaultCache,
    release_on_request_finished,
    reset_on_setting_changed,
)

__all__ = ["CacheHandler", "acache", "cache", "caches"]

#: The project's caches by alias: ``caches["default"]`` is a `blobcache.BlobCache`.
caches = CacheHandler()
#: The default alias's cache, looked up on each use (like ``django.core.cache.cache``).
cache = cast(BlobCache, DefaultCache(caches))
#: The default alias's cache for ``async def`` views: every call runs off the event loop.
acache = AsyncBlobCache(cache)

# Connected at import, not in AppConfig.ready(), so override_settings resets the handles
# even in a project that uses caches without listing the app.
setting_changed.connect(reset_on_setting_changed, dispatch_uid="blobcache.contrib.django")
request_finished.connect(
    release_on_request_finished, dispatch_uid="blobcache.contrib.django.release"
)
