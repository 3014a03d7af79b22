"""URLs of the blobshelf example project."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [path("", include("blobshelf.urls"))]
