"""What a Flask user expects of an extension: binds, get_or_404, teardown, early errors."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from blobcache import BlobCache, ConfigurationError
from blobcache.contrib.flask import FlaskBlobCache, UnknownSettingWarning, get_cache
from tests.helpers import backend_of, digest_of


def make_app(**config: Any) -> Flask:
    app = Flask("conventions")
    app.config.update(config)
    return app


class TestUnknownSettings:
    def test_misspelt_key_is_warned_with_the_closest_name(self, blobcache_sqlite_url: str) -> None:
        """BLOBCACHE_URI is not silently ignored: the warning names BLOBCACHE_URL."""
        app = make_app(BLOBCACHE_URL=blobcache_sqlite_url, BLOBCACHE_URI="sqlite:///x.db")
        with pytest.warns(UnknownSettingWarning) as caught:
            FlaskBlobCache(app)
        [warning] = caught
        assert "'BLOBCACHE_URI' (did you mean 'BLOBCACHE_URL'?)" in str(warning.message)

    def test_known_keys_warn_nothing(self, blobcache_sqlite_url: str) -> None:
        app = make_app(BLOBCACHE_URL=blobcache_sqlite_url, BLOBCACHE_OPTIONS={}, OTHER_KEY=1)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            FlaskBlobCache(app)


class TestStartUpErrors:
    def test_sqlite_file_in_a_missing_directory(self, tmp_path: Path) -> None:
        """init_app fails, naming the key and the directory, instead of the first request."""
        url = f"sqlite:///{tmp_path / 'absent' / 'blobcache.db'}"
        with pytest.raises(ConfigurationError, match=r"app.config\['BLOBCACHE_URL'\]: .*absent"):
            FlaskBlobCache(make_app(BLOBCACHE_URL=url))
        assert not (tmp_path / "absent").exists()

    def test_dynamodb_without_region(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """dynamodb:///t with no region in the URL nor in botocore's chain fails at init_app."""
        monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
        monkeypatch.delenv("AWS_REGION", raising=False)
        with pytest.raises(ConfigurationError, match="has no region"):
            FlaskBlobCache(make_app(BLOBCACHE_URL="dynamodb:///t"))

    def test_root_that_does_not_exist(self, blobcache_sqlite_url: str, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError, match=r"BLOBCACHE_ROOT'\]: .* not an existing"):
            FlaskBlobCache(
                make_app(BLOBCACHE_URL=blobcache_sqlite_url, BLOBCACHE_ROOT=tmp_path / "no")
            )


class TestBinds:
    def test_several_caches_per_app(self, tmp_path: Path) -> None:
        """BLOBCACHE_BINDS adds named caches, each its own store, like SQLALCHEMY_BINDS."""
        (tmp_path / "root").mkdir()
        app = make_app(
            BLOBCACHE_URL=f"sqlite:///{tmp_path / 'main.db'}",
            BLOBCACHE_BINDS={
                "archive": f"sqlite:///{tmp_path / 'archive.db'}",
                "rooted": {"URL": f"sqlite:///{tmp_path / 'r.db'}", "ROOT": tmp_path / "root"},
            },
        )
        extension = FlaskBlobCache(app)
        with app.app_context():
            extension.binds["archive"].put(digest_of(1), "/archived")
            extension.cache.put(digest_of(1), "/main")
            assert get_cache(bind="rooted").uses_relative_paths
            assert sorted(extension.binds) == ["archive", "rooted"]
        with BlobCache.from_url(f"sqlite:///{tmp_path / 'archive.db'}") as archive:
            assert archive.get_all(digest_of(1)) == ["/archived"]
        with BlobCache.from_url(f"sqlite:///{tmp_path / 'main.db'}") as main:
            assert main.get_all(digest_of(1)) == ["/main"]

    def test_unknown_bind_names_the_closest(self, blobcache_sqlite_url: str) -> None:
        app = make_app(BLOBCACHE_BINDS={"archive": blobcache_sqlite_url})
        FlaskBlobCache(app)
        with pytest.raises(ConfigurationError, match=r"'archiv' \(did you mean 'archive'\?\)"):
            get_cache(app, bind="archiv")

    def test_bad_bind_key_fails_at_init_app(self, blobcache_sqlite_url: str) -> None:
        app = make_app(BLOBCACHE_BINDS={"archive": {"LOCATION": blobcache_sqlite_url}})
        with pytest.raises(ConfigurationError, match=r"'LOCATION' \(did you mean 'URL'\?\)"):
            FlaskBlobCache(app)

    def test_flask_blobcache_cache_option(self, tmp_path: Path) -> None:
        """flask blobcache --cache BIND runs a command on that bind, before or after the name."""
        archive = f"sqlite:///{tmp_path / 'archive.db'}"
        app = make_app(
            BLOBCACHE_URL=f"sqlite:///{tmp_path / 'main.db'}", BLOBCACHE_BINDS={"archive": archive}
        )
        FlaskBlobCache(app)
        runner = app.test_cli_runner()
        put = runner.invoke(args=["blobcache", "--cache", "archive", "put", digest_of(1), "/a"])
        assert put.exit_code == 0, put.output
        got = runner.invoke(args=["blobcache", "get", "--cache", "archive", digest_of(1)])
        assert got.stdout == "/a\n"
        with BlobCache.from_url(archive) as cache:
            assert cache.get(digest_of(1)) == "/a"


class TestViews:
    @pytest.fixture
    def app(self, blobcache_sqlite_url: str) -> Flask:
        app = make_app(BLOBCACHE_URL=blobcache_sqlite_url)
        extension = FlaskBlobCache(app)

        @app.get("/blobs/<digest>")
        def locate(digest: str) -> dict[str, Any]:
            return {"original": extension.get_or_404(digest)}

        @app.get("/paths/<digest>")
        def paths(digest: str) -> dict[str, Any]:
            return {"paths": extension.get_all_or_404(digest)}

        return app

    def test_get_or_404(self, app: Flask) -> None:
        """A miss is a 404 (not a 500), a malformed digest a 400, a hit the original."""
        with app.app_context():
            get_cache().put(digest_of(1), "/a")
            get_cache().put(digest_of(1), "/b")
        client = app.test_client()
        assert client.get(f"/blobs/{digest_of(1)}").json == {"original": "/a"}
        assert client.get(f"/paths/{digest_of(1)}").json == {"paths": ["/a", "/b"]}
        missed = client.get(f"/blobs/{digest_of(2)}")
        assert missed.status_code == 404
        assert b"no cache entry" in missed.data
        assert client.get(f"/paths/{digest_of(2)}").status_code == 404
        assert client.get("/blobs/sha256:nope").status_code == 400

    def test_teardown_releases_the_request_threads_connection(
        self, app: Flask, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Each request's end calls BlobCache.release on the thread that served it, and
        that thread then holds no SQLite connection."""
        cache = app.extensions["blobcache"]
        released: list[int] = []
        release = cache.release

        def counting_release() -> None:
            released.append(threading.get_ident())
            release()

        monkeypatch.setattr(cache, "release", counting_release)
        client = app.test_client()
        with app.app_context():
            cache.put(digest_of(1), "/a")
        assert client.get(f"/blobs/{digest_of(1)}").status_code == 200
        assert released == [threading.get_ident()] * 2
        assert _held_by_this_thread(cache) is None


def _held_by_this_thread(cache: BlobCache) -> object:
    """The SQLite connection the calling thread holds, if the backend keeps one per thread."""
    local = getattr(backend_of(cache), "_local", None)
    return getattr(local, "connection", None)


class TestFlaskCommandLine:
    @pytest.fixture
    def app(self, tmp_path: Path) -> Flask:
        app = make_app(BLOBCACHE_URL=f"sqlite:///{tmp_path / 'app.db'}")
        FlaskBlobCache(app)
        return app

    def test_help_names_the_apps_configuration(self, app: Flask) -> None:
        """--url's help says it defaults to the app's BLOBCACHE_URL, not $BLOBCACHE_URL."""
        for args in (["blobcache", "--help"], ["blobcache", "verify", "--help"]):
            text = " ".join(app.test_cli_runner().invoke(args=args).stdout.split())
            assert "default: the app's BLOBCACHE_URL" in text
            assert "$BLOBCACHE_URL" not in text
            assert "--cache NAME" in text

    def test_hints_name_flask_blobcache(self, app: Flask) -> None:
        """verify's advice and error hints say 'flask blobcache ...', the command to type."""
        runner = app.test_cli_runner()
        missing = runner.invoke(args=["blobcache", "stats"])
        assert missing.exit_code == 2
        assert "'flask blobcache create-table" in missing.stderr
        runner.invoke(args=["blobcache", "put", digest_of(1), "/nonexistent/blob"])
        found = runner.invoke(args=["blobcache", "verify"])
        assert "'flask blobcache prune --yes' forgets it" in found.stdout
        assert "'blobcache prune" not in found.stdout
