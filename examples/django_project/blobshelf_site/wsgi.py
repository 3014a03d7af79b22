"""WSGI entry point of the blobshelf example project."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "blobshelf_site.settings")
application = get_wsgi_application()
