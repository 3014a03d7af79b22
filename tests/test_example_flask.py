"""The Flask example application, through Flask's test client, on SQLite and dynalite."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from blobcache import BlobCache

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "flask_app"))
import blobshelf_app  # type: ignore[import-not-found]


@pytest.fixture
def client(example_cache_url: str, store: Path) -> Iterator[FlaskClient]:
    app = blobshelf_app.create_app(
        {
            "TESTING": True,
            "BLOBCACHE_URL": example_cache_url,
            "BLOBCACHE_ROOT": store,
            "BLOBSHELF_STORE": store,
        }
    )
    yield app.test_client()
    app.extensions["blobcache"].close()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class TestUpload:
    def test_first_upload_is_stored_and_becomes_the_original(
        self, client: FlaskClient, store: Path, example_cache_url: str
    ) -> None:
        """The first upload of some content writes it and records it as the original."""
        response = client.put("/files/library/alpine/layer", data=b"layer one")

        assert response.status_code == 201
        assert response.json == {
            "digest": sha256(b"layer one"),
            "path": str(store / "library/alpine/layer"),
            "stored": True,
            "original": str(store / "library/alpine/layer"),
        }
        assert (store / "library/alpine/layer").read_bytes() == b"layer one"
        with BlobCache.from_url(example_cache_url, root=store) as cache:
            assert cache.get_all(sha256(b"layer one")) == [str(store / "library/alpine/layer")]

    def test_a_copy_is_recorded_as_a_path_and_not_stored_again(
        self, client: FlaskClient, store: Path
    ) -> None:
        """Uploading the same content under another name writes nothing, adds a path."""
        client.put("/files/library/alpine/layer", data=b"same bytes")
        response = client.put("/files/team/app/layer", data=b"same bytes")

        assert response.status_code == 200
        assert response.json is not None
        assert response.json["stored"] is False
        assert response.json["original"] == str(store / "library/alpine/layer")
        assert not (store / "team/app/layer").exists()
        located = client.get(f"/blobs/{sha256(b'same bytes')}")
        assert located.json == {
            "digest": sha256(b"same bytes"),
            "original": str(store / "library/alpine/layer"),
            "paths": [str(store / "library/alpine/layer"), str(store / "team/app/layer")],
        }

    def test_a_name_outside_the_store_is_refused(self, client: FlaskClient, store: Path) -> None:
        """A name that climbs out of the store gets 400 and nothing is written anywhere."""
        response = client.put("/files/a/../../escape", data=b"x")

        assert response.status_code == 400
        assert "inside the store" in response.json["error"]  # type: ignore[index]
        assert list(store.iterdir()) == []  # the store exists (made at start-up), and is empty
        assert client.get(f"/blobs/{sha256(b'x')}").status_code == 404


class TestLocate:
    def test_unknown_digest_is_404(self, client: FlaskClient) -> None:
        """A digest never uploaded answers 404 with a message."""
        response = client.get(f"/blobs/sha256:{'ab' * 32}")
        assert response.status_code == 404
        assert "never uploaded" in response.json["error"]  # type: ignore[index]

    def test_malformed_digest_is_400(self, client: FlaskClient) -> None:
        """A string that is not an OCI digest answers 400 with blobcache's explanation."""
        response = client.get("/blobs/sha256:NOTHEX")
        assert response.status_code == 400
        assert "invalid digest" in response.json["error"]  # type: ignore[index]
