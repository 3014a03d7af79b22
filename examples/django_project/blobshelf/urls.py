"""URLs of the blobshelf app."""

from __future__ import annotations

from django.urls import path

from blobshelf import views

urlpatterns = [
    path("files/<path:name>", views.upload, name="upload"),
    path("blobs/<str:digest>", views.locate, name="locate"),
    path("async/blobs/<str:digest>", views.alocate, name="alocate"),
]
