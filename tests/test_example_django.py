"""The Django example project, through Django's test client, on SQLite and dynalite."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client, override_settings

from blobcache import BlobCache
from tests.test_contrib_django import setup_django

setup_django()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def client(example_cache_url: str, store: Path) -> Iterator[Client]:
    configured = {"default": {"URL": example_cache_url, "ROOT": store}}
    with override_settings(BLOBCACHE=configured, BLOBSHELF_STORE=store):
        yield Client()


class TestUpload:
    def test_copies_are_stored_once_and_located(
        self, client: Client, store: Path, example_cache_url: str
    ) -> None:
        """The first upload writes content; a copy only adds a path; locate lists both."""
        first = client.put(
            "/files/library/alpine/layer", b"blob", content_type="application/octet-stream"
        )
        second = client.put(
            "/files/team/app/layer", b"blob", content_type="application/octet-stream"
        )

        assert (first.status_code, first.json()["stored"]) == (201, True)
        assert (second.status_code, second.json()["stored"]) == (200, False)
        assert (store / "library/alpine/layer").read_bytes() == b"blob"
        assert not (store / "team/app/layer").exists()
        located = client.get(f"/blobs/{sha256(b'blob')}")
        assert located.json() == {
            "digest": sha256(b"blob"),
            "original": str(store / "library/alpine/layer"),
            "paths": [str(store / "library/alpine/layer"), str(store / "team/app/layer")],
        }
        with BlobCache.from_url(example_cache_url, root=store) as cache:
            assert cache.get(sha256(b"blob")) == str(store / "library/alpine/layer")

    def test_a_name_outside_the_store_is_refused(self, client: Client, store: Path) -> None:
        """A name that climbs out of the store gets 400 and nothing is written."""
        response = client.put("/files/a/../../x", b"x", content_type="application/octet-stream")
        assert response.status_code == 400
        assert not store.exists()

    def test_only_put_uploads(self, client: Client) -> None:
        """GET on an upload URL is 405: uploads change state, so they need PUT."""
        assert client.get("/files/x").status_code == 405


class TestLocate:
    def test_unknown_digest_is_404(self, client: Client) -> None:
        """A digest never uploaded answers 404."""
        response = client.get(f"/blobs/sha256:{'cd' * 32}")
        assert response.status_code == 404
        assert "never uploaded" in response.json()["error"]

    def test_malformed_digest_is_400(self, client: Client) -> None:
        """A string that is not an OCI digest answers 400 with blobcache's explanation."""
        response = client.get("/blobs/sha256:NOTHEX")
        assert response.status_code == 400
        assert "invalid digest" in response.json()["error"]
