"""The Django integration: settings, caches by alias, override_settings, checks, commands."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import django
import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from blobcache import BlobCache, ConfigurationError
from tests.helpers import digest_of

EXAMPLE_PROJECT = Path(__file__).resolve().parents[1] / "examples" / "django_project"


def setup_django() -> None:
    """Configure Django once per process with the example project's settings."""
    if str(EXAMPLE_PROJECT) not in sys.path:
        sys.path.insert(0, str(EXAMPLE_PROJECT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "blobshelf_site.settings")
    django.setup()


setup_django()

from blobcache.contrib.django import caches  # noqa: E402
from blobcache.contrib.django.checks import (  # noqa: E402
    check_deploy_settings,
    check_settings,
    check_tables,
)


def settings_for(url: str, **alias: Any) -> dict[str, Any]:
    return {"default": {"URL": url, **alias}}


def ids(messages: list[checks.CheckMessage]) -> list[str]:
    return [message.id for message in messages]


class TestCaches:
    def test_default_alias_opens_the_configured_url(self, blobcache_sqlite_url: str) -> None:
        """caches['default'] is a BlobCache on settings.BLOBCACHE['default']['URL']."""
        with override_settings(BLOBCACHE=settings_for(blobcache_sqlite_url)):
            caches["default"].put(digest_of(1), "/srv/a")
            assert isinstance(caches["default"], BlobCache)
            assert caches["default"] is caches["default"]
        with BlobCache.from_url(blobcache_sqlite_url) as independent:
            assert independent.get(digest_of(1)) == "/srv/a"

    def test_aliases_are_separate_caches(self, tmp_path: Path) -> None:
        """Each alias has its own store, ROOT and OPTIONS."""
        configured = {
            "default": {"URL": f"sqlite:///{tmp_path / 'a.db'}"},
            "registry": {
                "URL": f"sqlite:///{tmp_path / 'b.db'}",
                "ROOT": str(tmp_path),
                "OPTIONS": {"busy_timeout": 3},
            },
        }
        with override_settings(BLOBCACHE=configured):
            caches["registry"].put(digest_of(2), str(tmp_path / "x"))
            assert caches["registry"].uses_relative_paths
            assert caches["registry"].options.busy_timeout == 3
            assert not caches["default"].uses_relative_paths
            assert [entry.digest for entry in caches["default"].entries()] == []
            assert caches["registry"].get(digest_of(2)) == str(tmp_path / "x")

    def test_override_settings_switches_the_cache(self, tmp_path: Path) -> None:
        """Changing BLOBCACHE (override_settings) drops old handles; lookups see new settings."""
        first, second = f"sqlite:///{tmp_path / '1.db'}", f"sqlite:///{tmp_path / '2.db'}"
        with override_settings(BLOBCACHE=settings_for(first)):
            caches["default"].put(digest_of(3), "/first")
            with override_settings(BLOBCACHE=settings_for(second)):
                caches["default"].put(digest_of(3), "/second")
                assert caches["default"].get_all(digest_of(3)) == ["/second"]
            assert caches["default"].get_all(digest_of(3)) == ["/first"]

    def test_threads_share_one_handle_without_piling_up(self, blobcache_sqlite_url: str) -> None:
        """One handle per alias serves every thread (a BlobCache is thread-safe), so a
        thread per request does not open a cache per request."""
        seen: list[BlobCache] = []
        with override_settings(BLOBCACHE=settings_for(blobcache_sqlite_url)):
            for _ in range(20):
                thread = threading.Thread(target=lambda: seen.append(caches["default"]))
                thread.start()
                thread.join()
            assert {id(cache) for cache in seen} == {id(caches["default"])}
            assert caches.all() == [caches["default"]]

    def test_unset_setting_means_the_library_default(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """Without settings.BLOBCACHE, 'default' is $BLOBCACHE_URL as in BlobCache.from_url()."""
        monkeypatch.setenv("BLOBCACHE_URL", f"sqlite:///{tmp_path / 'env.db'}")
        with override_settings():
            from django.conf import settings

            del settings.BLOBCACHE
            caches.close_all()
            caches["default"].put(digest_of(4), "/env")
        caches.close_all()
        with BlobCache.from_url(f"sqlite:///{tmp_path / 'env.db'}") as independent:
            assert independent.get(digest_of(4)) == "/env"

    def test_works_against_dynalite(self, blobcache_dynalite_url: str) -> None:
        """An alias on a DynamoDB table served by a real local server."""
        with override_settings(BLOBCACHE=settings_for(blobcache_dynalite_url)):
            caches["default"].put(digest_of(5), "/d")
            assert caches["default"].name == "dynamodb"
            assert caches["default"].get(digest_of(5)) == "/d"


BAD_SETTINGS = [
    pytest.param(["default"], "must be a dict of aliases", id="not-a-dict"),
    pytest.param({"other": {}}, "must define a 'default' cache", id="no-default"),
    pytest.param({"default": "sqlite:///x.db"}, "must be a dict with the keys", id="alias-str"),
    pytest.param(
        {"default": {"LOCATION": "x"}},
        "unknown key 'LOCATION' (did you mean 'URL'?)",
        id="unknown-key",
    ),
]
BAD_ALIASES = [
    pytest.param({"URL": 7}, "['URL'] must be a cache URL string", id="url-type"),
    pytest.param({"URL": "mysql://db/x"}, "['URL']: unsupported cache URL", id="url-scheme"),
    pytest.param({"ROOT": 1}, "['ROOT'] must be a directory path", id="root-type"),
    pytest.param({"OPTIONS": [1]}, "['OPTIONS'] must be a dict", id="options-type"),
    pytest.param({"OPTIONS": {"nope": 1}}, "['OPTIONS']: unknown option(s) nope", id="option"),
    pytest.param(
        {"OPTIONS": {"billing_mode": "free"}}, "billing_mode must be PAY_PER_REQUEST", id="value"
    ),
]


class TestConfigurationErrors:
    @pytest.mark.parametrize(("configured", "message"), BAD_SETTINGS)
    def test_malformed_setting_raises_and_is_check_e001(
        self, configured: object, message: str
    ) -> None:
        """A BLOBCACHE not shaped like CACHES raises on lookup and is reported as E001."""
        with override_settings(BLOBCACHE=configured):
            with pytest.raises(ConfigurationError) as caught:
                caches["default"]
            assert message in str(caught.value)
            found = check_settings()
        assert ids(found) == ["blobcache.E001"]
        assert message in found[0].msg

    @pytest.mark.parametrize(("alias", "message"), BAD_ALIASES)
    def test_bad_alias_settings_raise_and_are_check_e002(
        self, tmp_path: Path, alias: dict[str, Any], message: str
    ) -> None:
        """A wrong URL, ROOT or OPTIONS raises naming the setting, and is reported as E002."""
        configured = {"default": {"URL": f"sqlite:///{tmp_path / 'c.db'}", **alias}}
        with override_settings(BLOBCACHE=configured):
            with pytest.raises(ConfigurationError) as caught:
                caches["default"]
            assert "settings.BLOBCACHE['default']" in str(caught.value)
            assert message in str(caught.value)
            found = check_settings()
        assert ids(found) == ["blobcache.E002"]
        assert found[0].obj == "BLOBCACHE['default']"
        assert os.listdir(tmp_path) == []

    def test_unknown_alias_names_the_known_ones(self, blobcache_sqlite_url: str) -> None:
        """caches['missing'] says which aliases exist."""
        with (
            override_settings(BLOBCACHE=settings_for(blobcache_sqlite_url)),
            pytest.raises(
                ConfigurationError, match="no cache 'missing'; its aliases are 'default'"
            ),
        ):
            caches["missing"]


class TestChecks:
    def test_good_settings_pass_every_check(self, blobcache_sqlite_url: str) -> None:
        """A valid, created cache gives no message from any check."""
        with override_settings(BLOBCACHE=settings_for(blobcache_sqlite_url)):
            assert check_settings() + check_deploy_settings() + check_tables() == []

    def test_static_checks_send_no_request(self) -> None:
        """The default checks only read settings: an unreachable endpoint passes them."""
        url = "dynamodb:///t?region=us-east-1&endpoint_url=http://127.0.0.1:9&connect_timeout=0.2"
        with override_settings(BLOBCACHE=settings_for(url)):
            assert checks.run_checks() == []

    def test_unset_setting_is_deploy_warning_w001(self) -> None:
        """Without settings.BLOBCACHE, check --deploy warns that the location is implicit."""
        with override_settings():
            from django.conf import settings

            del settings.BLOBCACHE
            found = check_deploy_settings()
        assert ids(found) == ["blobcache.W001"]

    def test_missing_table_is_deploy_error_e003(
        self, blobcache_dynalite_endpoint: str, blobcache_fake_aws: None
    ) -> None:
        """check --deploy reports a missing table as E003, with the command that creates it."""
        url = (
            f"dynamodb:///never-created?region=us-east-1&endpoint_url={blobcache_dynalite_endpoint}"
        )
        with override_settings(BLOBCACHE=settings_for(url)):
            found = checks.run_checks(include_deployment_checks=True, tags=["blobcache"])
        assert ids(found) == ["blobcache.E003"]
        assert "never-created" in found[0].msg
        assert "create-table" in (found[0].hint or "")

    def test_unreachable_store_is_deploy_error_e004(self) -> None:
        """check --deploy reports a store it cannot reach as E004."""
        url = (
            "dynamodb:///t?region=us-east-1&endpoint_url=http://127.0.0.1:9"
            "&connect_timeout=0.2&max_retries=0"
        )
        with override_settings(BLOBCACHE=settings_for(url)):
            found = check_tables()
        assert ids(found) == ["blobcache.E004"]
        assert "cannot read the cache" in found[0].msg

    def test_checks_are_registered_with_their_tags(self) -> None:
        """The app registers the static check always and the table check for --deploy only."""
        registry = checks.registry.registry
        assert check_settings in registry.get_checks(include_deployment_checks=False)
        assert check_tables not in registry.get_checks(include_deployment_checks=False)
        assert check_tables in registry.get_checks(include_deployment_checks=True)
        assert "blobcache" in registry.tags_available()


class TestManagementCommand:
    def test_create_table_then_stats_on_dynalite(
        self,
        blobcache_dynalite_endpoint: str,
        blobcache_fake_aws: None,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """'blobcache create-table' creates the alias's table; 'stats --json' then reads it."""
        url = f"dynamodb:///django-{uuid.uuid4().hex}?region=us-east-1&endpoint_url={blobcache_dynalite_endpoint}"
        with override_settings(BLOBCACHE=settings_for(url)):
            call_command("blobcache", "create-table")
            assert "table ready" in capsys.readouterr().out
            caches["default"].put(digest_of(10), "/a")
            caches["default"].put(digest_of(10), "/b")
            call_command("blobcache", "stats", "--json", "--top", "1")
        report = json.loads(capsys.readouterr().out)
        assert (report["digests"], report["paths"]) == (1, 2)

    def test_output_goes_to_call_commands_streams(self, blobcache_sqlite_url: str) -> None:
        """call_command(stdout=..., stderr=...) receives the command's output and errors."""
        out, err = io.StringIO(), io.StringIO()
        with override_settings(BLOBCACHE=settings_for(blobcache_sqlite_url)):
            caches["default"].put(digest_of(11), "/a")
            call_command("blobcache", "stats", "--json", stdout=out, stderr=err)
            report = json.loads(out.getvalue())
            assert (report["digests"], report["paths"]) == (1, 1)
            bad = "\n".join(["{not json", ""])
            source = Path(blobcache_sqlite_url.removeprefix("sqlite:///")).with_name("in.jsonl")
            source.write_text(bad)
            with pytest.raises(CommandError):
                call_command("blobcache", "import", str(source), stdout=out, stderr=err)
            assert "line 1: not JSON" in err.getvalue()

    def test_cache_option_picks_the_alias(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--cache ALIAS runs the command on that alias, not on 'default'."""
        configured = {
            "default": {"URL": f"sqlite:///{tmp_path / 'a.db'}"},
            "other": {"URL": f"sqlite:///{tmp_path / 'b.db'}"},
        }
        with override_settings(BLOBCACHE=configured):
            caches["other"].put(digest_of(11), "/other")
            caches["default"].create_table()
            call_command("blobcache", "--cache", "other", "export", "-o", str(tmp_path / "o.jsonl"))
            call_command("blobcache", "export", "-o", str(tmp_path / "d.jsonl"))
        assert digest_of(11) in (tmp_path / "o.jsonl").read_text()
        default_export = tmp_path / "d.jsonl"
        assert not default_export.exists() or default_export.read_text() == ""

    def test_import_and_verify(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """'import FILE' records entries; 'verify' then exits non-zero for paths with no file."""
        source = tmp_path / "in.jsonl"
        existing = tmp_path / "blob"
        existing.write_bytes(b"x")
        source.write_text(
            json.dumps({"digest": digest_of(12), "paths": [str(existing), "/gone/blob"]}) + "\n"
        )
        with override_settings(BLOBCACHE=settings_for(f"sqlite:///{tmp_path / 'c.db'}")):
            call_command("blobcache", "import", str(source))
            assert caches["default"].get_all(digest_of(12)) == [str(existing), "/gone/blob"]
            with pytest.raises(CommandError) as caught:
                call_command("blobcache", "verify")
        assert caught.value.returncode == 1
        assert "/gone/blob" in capsys.readouterr().out

    def test_prune_yes_forgets_stale_paths(self, tmp_path: Path) -> None:
        """'prune --yes' removes cached paths with no file behind them; a dry run keeps them."""
        kept = tmp_path / "kept"
        kept.write_bytes(b"k")
        with override_settings(BLOBCACHE=settings_for(f"sqlite:///{tmp_path / 'c.db'}")):
            caches["default"].put(digest_of(13), str(kept))
            caches["default"].put(digest_of(13), str(tmp_path / "gone"))
            with pytest.raises(CommandError):
                call_command("blobcache", "prune")
            assert len(caches["default"].get_all(digest_of(13))) == 2
            call_command("blobcache", "prune", "--yes")
            assert caches["default"].get_all(digest_of(13)) == [str(kept)]

    def test_bad_alias_is_a_command_error(self, capsys: pytest.CaptureFixture[str]) -> None:
        """An unknown alias fails with blobcache's message and the usage exit status 2."""
        with pytest.raises(CommandError) as caught:
            call_command("blobcache", "--cache", "nope", "stats")
        assert caught.value.returncode == 2
        assert "no cache 'nope'" in capsys.readouterr().err
