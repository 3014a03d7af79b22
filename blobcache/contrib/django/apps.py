"""The Django application config of blobcache's integration."""

from __future__ import annotations

from django.apps import AppConfig


class BlobCacheConfig(AppConfig):
    """Registers blobcache's system checks; add ``"blobcache.contrib.django"`` to INSTALLED_APPS.

    .. versionadded:: 0.1
    """

    name = "blobcache.contrib.django"
    label = "blobcache"
    verbose_name = "blobcache"

    def ready(self) -> None:
        """Register the system checks (static ones always, the table check with ``--deploy``)."""
        from django.core import checks

        from blobcache.contrib.django import checks as blobcache_checks

        checks.register(blobcache_checks.check_settings, "blobcache")
        checks.register(blobcache_checks.check_setting_names, "blobcache")
        checks.register(blobcache_checks.check_deploy_settings, "blobcache", deploy=True)
        checks.register(blobcache_checks.check_tables, "blobcache", deploy=True)
