"""The Flask extension: init_app, configuration keys and their errors, the command group."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
import pytest
from flask import Flask

from blobcache import BlobCache, ConfigurationError
from blobcache.contrib.flask import FlaskBlobCache, get_cache
from tests.helpers import digest_of, dynamodb_client


def make_app(**config: Any) -> Flask:
    app = Flask("test_app")
    app.config.update(config)
    return app


class TestInitApp:
    def test_registers_the_apps_cache_in_extensions(self, blobcache_sqlite_url: str) -> None:
        """init_app registers the app's BlobCache in app.extensions; writes reach its URL."""
        app = make_app(BLOBCACHE_URL=blobcache_sqlite_url)
        extension = FlaskBlobCache()
        extension.init_app(app)

        cache = app.extensions["blobcache"]
        assert isinstance(cache, BlobCache)
        with app.app_context():
            assert extension.cache is cache
            extension.cache.put(digest_of(1), "/srv/a")
        with BlobCache.from_url(blobcache_sqlite_url) as independent:
            assert independent.get_all(digest_of(1)) == ["/srv/a"]

    def test_constructor_with_app_calls_init_app(self, blobcache_sqlite_url: str) -> None:
        """FlaskBlobCache(app) registers at once, like Flask-SQLAlchemy's SQLAlchemy(app)."""
        app = make_app(BLOBCACHE_URL=blobcache_sqlite_url)
        FlaskBlobCache(app)
        assert get_cache(app).name == "sqlite"

    def test_one_extension_serves_several_apps(self, tmp_path: Path) -> None:
        """Each app registered with one extension gets its own cache; the extension keeps no app."""
        extension = FlaskBlobCache()
        first = make_app(BLOBCACHE_URL=f"sqlite:///{tmp_path / 'first.db'}")
        second = make_app(BLOBCACHE_URL=f"sqlite:///{tmp_path / 'second.db'}")
        extension.init_app(first)
        extension.init_app(second)

        with first.app_context():
            extension.cache.put(digest_of(1), "/first")
        with second.app_context():
            extension.cache.put(digest_of(1), "/second")
            assert extension.cache.get(digest_of(1)) == "/second"
        with first.app_context():
            assert extension.cache.get_all(digest_of(1)) == ["/first"]
        assert vars(extension) == {}

    def test_sets_defaults_in_config(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """Unset keys get their defaults in app.config; no URL means $BLOBCACHE_URL."""
        monkeypatch.setenv("BLOBCACHE_URL", f"sqlite:///{tmp_path / 'env.db'}")
        app = make_app()
        extension = FlaskBlobCache(app)

        assert app.config["BLOBCACHE_URL"] is None
        assert app.config["BLOBCACHE_ROOT"] is None
        assert app.config["BLOBCACHE_OPTIONS"] == {}
        with app.app_context():
            extension.cache.put(digest_of(2), "/from/env")
        with BlobCache.from_url(f"sqlite:///{tmp_path / 'env.db'}") as independent:
            assert independent.get(digest_of(2)) == "/from/env"

    def test_root_and_options_reach_the_cache(self, tmp_path: Path) -> None:
        """BLOBCACHE_ROOT turns on relative-path mode; BLOBCACHE_OPTIONS sets Options fields."""
        (tmp_path / "registry").mkdir()
        app = make_app(
            BLOBCACHE_URL=f"sqlite:///{tmp_path / 'c.db'}",
            BLOBCACHE_ROOT=tmp_path / "registry",
            BLOBCACHE_OPTIONS={"busy_timeout": "2.5", "synchronous": "normal"},
        )
        FlaskBlobCache(app)
        cache = get_cache(app)

        assert cache.root == str(tmp_path / "registry")
        assert cache.options.busy_timeout == 2.5
        assert cache.options.synchronous == "NORMAL"
        cache.put(digest_of(3), str(tmp_path / "registry" / "a" / "blob"))
        assert cache.get(digest_of(3)) == str(tmp_path / "registry" / "a" / "blob")

    def test_works_against_dynalite(self, blobcache_dynalite_url: str) -> None:
        """The extension serves a DynamoDB table on a real local server as well."""
        app = make_app(BLOBCACHE_URL=blobcache_dynalite_url)
        extension = FlaskBlobCache(app)
        with app.app_context():
            extension.cache.put(digest_of(4), "/one")
            extension.cache.put(digest_of(4), "/two")
            assert extension.cache.name == "dynamodb"
            assert extension.cache.get_all(digest_of(4)) == ["/one", "/two"]


class TestConfigurationErrors:
    @pytest.mark.parametrize(
        ("config", "blamed", "fix"),
        [
            ({"BLOBCACHE_URL": 42}, "app.config['BLOBCACHE_URL']", "must be a cache URL string"),
            (
                {"BLOBCACHE_URL": "memcached://localhost/0"},
                "app.config['BLOBCACHE_URL']",
                "use 'sqlite:///FILE'",
            ),
            (
                {"BLOBCACHE_URL": "dynamodb:///t?region=x&read_timeout=soon"},
                "app.config['BLOBCACHE_URL']",
                "read_timeout must be a number",
            ),
            ({"BLOBCACHE_ROOT": 3.5}, "app.config['BLOBCACHE_ROOT']", "must be a directory path"),
            (
                {"BLOBCACHE_OPTIONS": "read_timeout=2"},
                "app.config['BLOBCACHE_OPTIONS']",
                "must be a dict",
            ),
            (
                {"BLOBCACHE_OPTIONS": {"read_timout": 2}},
                "app.config['BLOBCACHE_OPTIONS']",
                "valid options are",
            ),
            (
                {"BLOBCACHE_OPTIONS": {"max_attempts": 0}},
                "app.config['BLOBCACHE_OPTIONS']",
                "max_attempts must be a positive integer",
            ),
        ],
    )
    def test_bad_value_fails_at_init_app_naming_the_key(
        self, tmp_path: Path, config: dict[str, Any], blamed: str, fix: str
    ) -> None:
        """A bad BLOBCACHE_* value raises ConfigurationError at init_app, naming key and fix."""
        app = make_app(**{"BLOBCACHE_URL": f"sqlite:///{tmp_path / 'c.db'}", **config})
        with pytest.raises(ConfigurationError) as caught:
            FlaskBlobCache().init_app(app)

        assert blamed in str(caught.value)
        assert fix in str(caught.value)
        assert "blobcache" not in app.extensions
        assert "blobcache" not in app.cli.commands
        assert os.listdir(tmp_path) == []

    def test_init_app_twice_on_one_app_is_refused(self, blobcache_sqlite_url: str) -> None:
        """A second init_app on the same app raises instead of replacing the first cache."""
        app = make_app(BLOBCACHE_URL=blobcache_sqlite_url)
        FlaskBlobCache(app)
        first = app.extensions["blobcache"]
        with pytest.raises(ConfigurationError, match="already registered"):
            FlaskBlobCache().init_app(app)
        assert app.extensions["blobcache"] is first


class TestWithoutInitApp:
    def test_cache_says_to_call_init_app(self) -> None:
        """Reaching the cache of an app that never ran init_app says what was forgotten."""
        app = make_app()
        extension = FlaskBlobCache()
        with (
            app.app_context(),
            pytest.raises(ConfigurationError, match="Did you forget to call init_app"),
        ):
            extension.cache  # noqa: B018

    def test_get_cache_of_another_app_says_to_call_init_app(
        self, blobcache_sqlite_url: str
    ) -> None:
        """get_cache(app) checks that app, not whichever one is current."""
        registered = make_app(BLOBCACHE_URL=blobcache_sqlite_url)
        FlaskBlobCache(registered)
        with registered.app_context(), pytest.raises(ConfigurationError, match="'other'"):
            get_cache(Flask("other"))

    def test_outside_an_app_context_is_flasks_error(self) -> None:
        """Without an app context, Flask's own 'Working outside of application context' shows."""
        with pytest.raises(RuntimeError, match="application context"):
            FlaskBlobCache().cache  # noqa: B018


class TestCommandGroup:
    def test_mounts_the_standalone_commands(self, blobcache_sqlite_url: str) -> None:
        """init_app mounts 'flask blobcache' with exactly the standalone CLI's commands."""
        from blobcache.cli import cli

        app = make_app(BLOBCACHE_URL=blobcache_sqlite_url)
        FlaskBlobCache(app)
        group = app.cli.commands["blobcache"]
        assert isinstance(group, click.Group)
        assert group.commands == cli.commands

    def test_commands_use_the_apps_cache(self, blobcache_sqlite_url: str, tmp_path: Path) -> None:
        """'flask blobcache stats/export' read the cache of BLOBCACHE_URL, not $BLOBCACHE_URL."""
        app = make_app(BLOBCACHE_URL=blobcache_sqlite_url)
        extension = FlaskBlobCache(app)
        with app.app_context():
            extension.cache.put(digest_of(7), "/a")
            extension.cache.put(digest_of(7), "/b")
        runner = app.test_cli_runner()

        result = runner.invoke(args=["blobcache", "stats", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["digests"] == 1
        assert json.loads(result.output)["paths"] == 2

        exported = runner.invoke(args=["blobcache", "export", "-o", str(tmp_path / "out.jsonl")])
        assert exported.exit_code == 0, exported.output
        assert digest_of(7) in (tmp_path / "out.jsonl").read_text()

    def test_create_table_on_dynalite(
        self, blobcache_dynalite_endpoint: str, blobcache_fake_aws: None
    ) -> None:
        """'flask blobcache create-table' creates the app's table; then the app can write."""
        url = f"dynamodb:///flask-{os.getpid()}-{id(self)}?region=us-east-1&endpoint_url={blobcache_dynalite_endpoint}"
        app = make_app(BLOBCACHE_URL=url)
        extension = FlaskBlobCache(app)

        result = app.test_cli_runner().invoke(args=["blobcache", "create-table"])
        assert result.exit_code == 0, result.output
        assert "table ready" in result.output
        with app.app_context():
            extension.cache.put(digest_of(8), "/x")
            assert extension.cache.get(digest_of(8)) == "/x"

    def test_create_table_options_apply_to_the_apps_table(
        self, blobcache_dynalite_endpoint: str, blobcache_fake_aws: None
    ) -> None:
        """create-table's --billing-mode and capacities go over the app's own configuration."""
        table = f"flask-prov-{os.getpid()}-{id(self)}"
        url = f"dynamodb:///{table}?region=us-east-1&endpoint_url={blobcache_dynalite_endpoint}"
        app = make_app(BLOBCACHE_URL=url, BLOBCACHE_OPTIONS={"read_timeout": 5})
        extension = FlaskBlobCache(app)

        result = app.test_cli_runner().invoke(
            args=[
                "blobcache",
                "create-table",
                "--billing-mode",
                "provisioned",
                "--read-capacity",
                "3",
                "--write-capacity",
                "4",
                "--wait",
                "5",
            ]
        )
        assert result.exit_code == 0, result.output
        with app.app_context():
            client = dynamodb_client(extension.cache)
        throughput = client.describe_table(TableName=table)["Table"]["ProvisionedThroughput"]
        assert (throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]) == (3, 4)

    def test_url_option_still_wins(self, blobcache_sqlite_url: str, tmp_path: Path) -> None:
        """--url on the command line overrides the app's BLOBCACHE_URL."""
        other = f"sqlite:///{tmp_path / 'other.db'}"
        with BlobCache.from_url(other) as cache:
            cache.put(digest_of(9), "/other")
        app = make_app(BLOBCACHE_URL=blobcache_sqlite_url)
        FlaskBlobCache(app)

        result = app.test_cli_runner().invoke(
            args=["blobcache", "--url", other, "get", digest_of(9)]
        )
        assert result.exit_code == 0, result.output
        assert result.output.strip() == "/other"
        miss = app.test_cli_runner().invoke(args=["blobcache", "get", digest_of(9)])
        assert miss.exit_code == 1
