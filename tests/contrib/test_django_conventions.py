"""What a Django user expects: cache and acache, test isolation, manage.py like blobcache."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core import checks, mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.test.utils import setup_test_environment, teardown_test_environment

from blobcache import BlobCache, ConfigurationError
from tests.helpers import backend_of, digest_of
from tests.test_contrib_django import EXAMPLE_PROJECT, setup_django

setup_django()

from blobcache.contrib.django import acache, cache, caches  # noqa: E402
from blobcache.contrib.django._settings import open_alias  # noqa: E402
from blobcache.contrib.django.checks import (  # noqa: E402
    check_setting_names,
    check_settings,
    check_tables,
)

DIGEST = digest_of(1)


def settings_for(url: str, **alias: object) -> dict[str, object]:
    return {"default": {"URL": url, **alias}}


@pytest.fixture
def test_environment() -> Iterator[None]:
    """Django's test environment, as manage.py test and pytest-django set it up."""
    started = not hasattr(mail, "outbox")
    if started:
        setup_test_environment()
    caches.close_all()
    yield
    caches.close_all()
    if started:
        teardown_test_environment()


@pytest.fixture
def outside_tests() -> Iterator[None]:
    """No test environment, as in a server or a management command."""
    saved = mail.__dict__.pop("outbox", None)
    caches.close_all()
    yield
    caches.close_all()
    if saved is not None:
        mail.outbox = saved


class TestDefaultCache:
    def test_cache_is_the_default_alias(self, blobcache_sqlite_url: str) -> None:
        """blobcache.contrib.django.cache is caches['default'], looked up on each use."""
        with override_settings(BLOBCACHE=settings_for(blobcache_sqlite_url)):
            cache.put(DIGEST, "/srv/a")
            assert cache.get(DIGEST) == "/srv/a"
            assert caches["default"].get_all(DIGEST) == ["/srv/a"]
        with BlobCache.from_url(blobcache_sqlite_url) as independent:
            assert independent.get(DIGEST) == "/srv/a"

    def test_acache_is_the_default_alias_for_async_code(self, blobcache_sqlite_url: str) -> None:
        async def use() -> list[str]:
            await acache.put(DIGEST, "/srv/b")
            return await acache.get_all(DIGEST)

        with override_settings(BLOBCACHE=settings_for(blobcache_sqlite_url)):
            assert asyncio.run(use()) == ["/srv/b"]


class TestRequestEnd:
    def test_request_finished_releases_the_threads_connections(
        self, blobcache_sqlite_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """As Django closes its database connections when a request ends, the request's
        thread gives back what it holds of each open cache (BlobCache.release)."""
        from django.test import Client

        with override_settings(BLOBCACHE=settings_for(blobcache_sqlite_url)):
            opened = caches["default"]
            released: list[int] = []
            release = opened.release

            def counting_release() -> None:
                released.append(threading.get_ident())
                release()

            monkeypatch.setattr(opened, "release", counting_release)
            assert Client().get(f"/blobs/{DIGEST}").status_code == 404
        assert released == [threading.get_ident()]


class TestIsolationInTests:
    def test_the_projects_cache_is_replaced_in_tests(self, test_environment: None) -> None:
        """Under the test environment, the project's own BLOBCACHE opens a throwaway file."""
        target = backend_of(caches["default"]).target
        assert "blobcache-test-" in target
        assert target.endswith("default.db")
        path = os.path.join(cache.root or "/", "test-only")
        cache.put(DIGEST, path)
        assert cache.get(DIGEST) == path

    def test_the_projects_cache_outside_tests(self, outside_tests: None) -> None:
        """Outside tests, the same alias is the configured file (nothing is written here)."""
        from django.conf import settings

        configured = settings.BLOBCACHE["default"]["URL"].removeprefix("sqlite:///")
        assert backend_of(caches["default"]).target == os.path.abspath(configured)

    def test_override_settings_wins_in_tests(
        self, test_environment: None, blobcache_sqlite_url: str
    ) -> None:
        """A test that sets BLOBCACHE itself gets what it set, not the TEST replacement."""
        with override_settings(BLOBCACHE=settings_for(blobcache_sqlite_url)):
            cache.put(DIGEST, "/mine")
        with BlobCache.from_url(blobcache_sqlite_url) as independent:
            assert independent.get(DIGEST) == "/mine"

    def test_test_key_chooses_the_test_store(self, tmp_path: Path) -> None:
        """An alias's TEST URL, ROOT and OPTIONS apply in tests, falling back to the alias's."""
        (tmp_path / "root").mkdir()
        configured = settings_for(
            f"sqlite:///{tmp_path / 'real.db'}",
            ROOT=str(tmp_path / "root"),
            OPTIONS={"busy_timeout": 7},
            TEST={"URL": f"sqlite:///{tmp_path / 'test.db'}"},
        )
        with override_settings(BLOBCACHE=configured):
            opened = open_alias("default", testing=True)
        assert backend_of(opened).target == str(tmp_path / "test.db")
        assert opened.root == str(tmp_path / "root")
        assert opened.options.busy_timeout == 7

    def test_misspelt_test_key(self, tmp_path: Path) -> None:
        configured = settings_for(f"sqlite:///{tmp_path / 'x.db'}", TEST={"URI": "sqlite:///y"})
        with (
            override_settings(BLOBCACHE=configured),
            pytest.raises(
                ConfigurationError,
                match=r"\['TEST'\] has the unknown key 'URI' \(did you mean 'URL'",
            ),
        ):
            open_alias("default")


def copy_of_example(tmp_path: Path) -> Path:
    project = Path(shutil.copytree(EXAMPLE_PROJECT, tmp_path / "project"))
    for leftover in ("store", "blobcache.db"):
        shutil.rmtree(project / leftover, ignore_errors=True)
        (project / leftover).unlink(missing_ok=True) if (project / leftover).is_file() else None
    return project


def project_env(project: Path, real: Path) -> dict[str, str]:
    return {
        **os.environ,
        "BLOBCACHE_URL": f"sqlite:///{real}",
        "BLOBSHELF_STORE": str(project / "store"),
        "DJANGO_SETTINGS_MODULE": "blobshelf_site.settings",
        "PYTHONPATH": str(project),
    }


TEST_MODULE = """
from django.test import SimpleTestCase

from blobcache.contrib.django import cache


class Writes(SimpleTestCase):
    def test_put(self):
        cache.put("sha256:" + "1" * 64, "written/by/a/test")
        self.assertTrue(cache.get("sha256:" + "1" * 64).endswith("/written/by/a/test"))
"""


class TestTestRunners:
    def test_manage_py_test_never_writes_the_real_cache(self, tmp_path: Path) -> None:
        """Django's test runner: a SimpleTestCase that writes goes to a throwaway file."""
        project = copy_of_example(tmp_path)
        (project / "blobshelf" / "tests.py").write_text(TEST_MODULE)
        real = tmp_path / "real.db"
        result = subprocess.run(
            [sys.executable, "manage.py", "test", "blobshelf"],
            cwd=project,
            env=project_env(project, real),
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "Ran 1 test" in result.stderr
        assert not real.exists()

    def test_pytest_django_never_writes_the_real_cache(self, tmp_path: Path) -> None:
        """pytest with pytest-django: the same isolation, no configuration."""
        project = copy_of_example(tmp_path)
        (project / "test_writes.py").write_text(TEST_MODULE)
        real = tmp_path / "real.db"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:randomly",
                "-p",
                "no:cacheprovider",
                "--rootdir",
                str(project),
                "test_writes.py",
            ],
            cwd=project,
            env=project_env(project, real),
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 passed" in result.stdout
        assert not real.exists()


class TestManagePy:
    """manage.py blobcache as a real process: blobcache's output, options and exit codes."""

    @pytest.fixture
    def project(self, tmp_path: Path) -> Path:
        return copy_of_example(tmp_path)

    def manage(self, project: Path, real: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", "blobcache", *args],
            cwd=project,
            env=project_env(project, real),
            capture_output=True,
            text=True,
            check=False,
        )

    def test_output_options_and_errors(self, project: Path, tmp_path: Path) -> None:
        real = tmp_path / "real.db"
        gone = str(project / "store" / "nonexistent" / "blob")
        with BlobCache.from_url(f"sqlite:///{real}", root=project / "store") as seeded:
            seeded.put(DIGEST, gone)

        exported = self.manage(project, real, "export")
        assert exported.returncode == 0, exported.stderr
        assert exported.stdout.startswith("{")  # no blank line first
        assert exported.stderr == "exported 1 entry\n"

        # --url before the command, --cache after it, --json: one document, one line.
        other = tmp_path / "other.db"
        shutil.copy(real, other)
        stats = self.manage(project, real, "--url", f"sqlite:///{other}", "stats", "--json")
        assert stats.stdout.count("\n") == 1
        assert json.loads(stats.stdout)["digests"] == 1
        by_alias = self.manage(project, real, "stats", "--cache", "default", "--json")
        assert json.loads(by_alias.stdout)["digests"] == 1
        # Django's own --settings is Django's (applied before the command runs), not click's.
        with_settings = self.manage(
            project, real, "--settings", "blobshelf_site.settings", "stats", "--json"
        )
        assert json.loads(with_settings.stdout)["digests"] == 1

        # -v after the command is blobcache's verbosity, not Django's.
        verbose = self.manage(project, real, "verify", "-v")
        assert verbose.returncode == 1
        assert "inconsistency_found" in verbose.stderr
        assert verbose.stdout.count("nonexistent/blob") == 1

        # One error line, and the exit code of the command.
        typo = self.manage(project, real, "--url", f"sqlite:///{tmp_path / 'typo.db'}", "stats")
        assert typo.returncode == 2
        assert typo.stderr.count("\n") == 1
        assert "'python manage.py blobcache create-table" in typo.stderr
        assert "CommandError" not in typo.stderr

    @pytest.mark.parametrize("how", ["--help", "help"])
    def test_help_lists_every_command(self, project: Path, tmp_path: Path, how: str) -> None:
        """'manage.py blobcache --help' and 'manage.py help blobcache' show click's help."""
        if how == "help":
            listed = subprocess.run(
                [sys.executable, "manage.py", "help", "blobcache"],
                cwd=project,
                env=project_env(project, tmp_path / "real.db"),
                capture_output=True,
                text=True,
                check=False,
            ).stdout
        else:
            listed = self.manage(project, tmp_path / "real.db", "--help").stdout
        for name in ("get", "put", "paths", "has", "delete", "dedupe", "verify", "export"):
            assert f"  {name} " in listed, name
        assert "settings.BLOBCACHE[ALIAS]['URL']" in " ".join(listed.split())


class TestCallCommand:
    def test_single_digest_commands(self, blobcache_sqlite_url: str, tmp_path: Path) -> None:
        """put, get, paths, has, delete and dedupe, as flask blobcache has them."""
        out = io.StringIO()
        with override_settings(BLOBCACHE=settings_for(blobcache_sqlite_url)):
            call_command("blobcache", "put", DIGEST, "/a", stdout=out)
            call_command("blobcache", "put", DIGEST, "/b", stdout=out)
            call_command("blobcache", "get", DIGEST, stdout=out)
            call_command("blobcache", "paths", "--json", DIGEST, stdout=out)
            call_command("blobcache", "has", DIGEST, "/b", stdout=out)
            call_command("blobcache", "delete", DIGEST, "/a", stdout=out)
            call_command("blobcache", "dedupe", str(tmp_path), stdout=out)
            with pytest.raises(CommandError) as missed:
                call_command("blobcache", "has", DIGEST, "/a", stdout=out)
        lines = out.getvalue().splitlines()
        assert lines[:3] == [
            "/a",
            json.dumps({"digest": DIGEST, "original": "/a", "paths": ["/a", "/b"]}),
            "yes",
        ]
        assert "" not in lines
        assert missed.value.returncode == 1
        with BlobCache.from_url(blobcache_sqlite_url) as independent:
            assert independent.get_all(DIGEST) == ["/b"]


class TestChecks:
    def test_missing_sqlite_directory_is_e002(self, tmp_path: Path) -> None:
        configured = settings_for(f"sqlite:///{tmp_path / 'absent' / 'c.db'}")
        with override_settings(BLOBCACHE=configured):
            [error] = check_settings()
        assert error.id == "blobcache.E002"
        assert "absent" in error.msg
        assert "does not exist" in error.msg

    def test_dynamodb_without_region_is_e002(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
        monkeypatch.delenv("AWS_REGION", raising=False)
        with override_settings(BLOBCACHE=settings_for("dynamodb:///t")):
            [error] = check_settings()
        assert error.id == "blobcache.E002"
        assert "has no region" in error.msg

    def test_missing_root_is_e002(self, blobcache_sqlite_url: str, tmp_path: Path) -> None:
        configured = settings_for(blobcache_sqlite_url, ROOT=str(tmp_path / "nowhere"))
        with override_settings(BLOBCACHE=configured):
            [error] = check_settings()
        assert "['ROOT']" in error.msg

    def test_misspelt_setting_name_is_w002(self) -> None:
        with override_settings(BLOBCACHE_URL="sqlite:///x.db", BLOBCACHES={}):
            found = {message.obj: message for message in check_setting_names()}
        assert set(found) == {"settings.BLOBCACHE_URL", "settings.BLOBCACHES"}
        assert all(message.id == "blobcache.W002" for message in found.values())
        assert "did you mean 'BLOBCACHE'" in found["settings.BLOBCACHES"].msg

    def test_deploy_check_tells_a_mistyped_sqlite_path(self, tmp_path: Path) -> None:
        """check --deploy reports a SQLite file that does not exist, and does not create it."""
        typo = tmp_path / "blobcahe.db"
        with override_settings(BLOBCACHE=settings_for(f"sqlite:///{typo}")):
            [error] = check_tables()
            registered = checks.run_checks(include_deployment_checks=True, tags=["blobcache"])
        assert error.id == "blobcache.E003"
        assert str(typo) in error.msg
        assert "E003" in [message.id.split(".")[-1] for message in registered]
        assert not typo.exists()

    def test_deploy_check_passes_on_a_created_cache(self, blobcache_sqlite_url: str) -> None:
        with override_settings(BLOBCACHE=settings_for(blobcache_sqlite_url)):
            assert check_tables() == []
