"""Settings of the blobshelf example: blobcache in relative-path mode over the upload store."""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "blobshelf-example-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]

INSTALLED_APPS = ["blobcache.contrib.django", "blobshelf"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "blobshelf_site.urls"
WSGI_APPLICATION = "blobshelf_site.wsgi.application"
ASGI_APPLICATION = "blobshelf_site.asgi.application"
DATABASES: dict[str, dict[str, str]] = {}  # blobcache is the only store this app needs
USE_TZ = True

#: Where uploaded content is written; every path in the cache lies inside it.
BLOBSHELF_STORE = Path(os.environ.get("BLOBSHELF_STORE") or BASE_DIR / "store")
# blobcache's system checks want ROOT to exist (a typo there is caught at start-up).
BLOBSHELF_STORE.mkdir(parents=True, exist_ok=True)

BLOBCACHE = {
    "default": {
        "URL": os.environ.get("BLOBCACHE_URL") or f"sqlite:///{BASE_DIR / 'blobcache.db'}",
        "ROOT": BLOBSHELF_STORE,
        "OPTIONS": {"read_timeout": 5},
    }
}
