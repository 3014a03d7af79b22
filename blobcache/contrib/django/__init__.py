"""Django integration: settings shaped like ``CACHES``, system checks and management commands.

.. code-block:: python

    # settings.py
    INSTALLED_APPS = [..., "blobcache.contrib.django"]
    BLOBCACHE = {"default": {"URL": "sqlite:////var/lib/app/blobcache.db"}}

    # anywhere
    from blobcache.contrib.django import caches
    caches["default"].get(digest)
"""

from __future__ import annotations

from django.core.signals import setting_changed

from blobcache.contrib.django._handler import CacheHandler, reset_on_setting_changed

__all__ = ["CacheHandler", "caches"]

#: The project's caches by alias: ``caches["default"]`` is a `blobcache.BlobCache`.
caches = CacheHandler()

# Connected at import, not in AppConfig.ready(), so override_settings resets the handles
# even in a project that uses caches without listing the app.
setting_changed.connect(reset_on_setting_changed, dispatch_uid="blobcache.contrib.django")
