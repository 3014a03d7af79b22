"""The pytest plugin ``blobcache.testing``: cheap to load, and fixtures that work elsewhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from blobcache import BlobCache
from tests.helpers import digest_of, read_raw

pytest_plugins = ["pytester"]

HEAVY = ("pynamodb", "botocore", "moto", "flask", "django", "click", "pytest")


class TestImport:
    def test_import_loads_nothing_heavy(self) -> None:
        """Importing the plugin outside pytest loads no AWS, web-framework or pytest module."""
        probe = f"import sys, blobcache.testing; print([m for m in {HEAVY!r} if m in sys.modules])"
        result = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == "[]"

    def test_imports_without_pytest(self, tmp_path: Path) -> None:
        """With pytest unimportable, the module still imports and its launchers remain."""
        blocker = tmp_path / "pytest.py"
        blocker.write_text("raise ModuleNotFoundError(\"No module named 'pytest'\")\n")
        probe = "import blobcache.testing as t; print(t.pytest, callable(t.dynalite))"
        result = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONPATH": str(tmp_path)},
        )
        assert result.stdout.strip() == "None True"


class TestFixtures:
    def test_sqlite_fixture_is_a_fresh_created_cache(self, blobcache_sqlite: BlobCache) -> None:
        """blobcache_sqlite is empty, created and writable."""
        assert blobcache_sqlite.name == "sqlite"
        assert list(blobcache_sqlite.entries()) == []
        blobcache_sqlite.put(digest_of(1), "/a")
        assert read_raw(blobcache_sqlite) == {digest_of(1): ("/a", frozenset({"/a"}))}

    @pytest.mark.parametrize("kind", ["dynalite", "moto"])
    def test_server_fixtures_give_a_fresh_table(
        self, request: pytest.FixtureRequest, kind: str
    ) -> None:
        """blobcache_dynalite / blobcache_moto are empty created tables on a real server."""
        cache: BlobCache = request.getfixturevalue(f"blobcache_{kind}")
        assert cache.name == "dynamodb"
        assert list(cache.entries()) == []
        cache.put(digest_of(2), "/b")
        assert read_raw(cache) == {digest_of(2): ("/b", frozenset({"/b"}))}

    def test_url_fixture_names_the_cache_fixtures_table(
        self, blobcache_dynalite_url: str, blobcache_dynalite: BlobCache
    ) -> None:
        """In one test, an app configured with the URL fixture sees the cache fixture's writes."""
        blobcache_dynalite.put(digest_of(3), "/c")
        with BlobCache.from_url(blobcache_dynalite_url) as app_side:
            assert app_side.get_all(digest_of(3)) == ["/c"]


class TestInAnotherProject:
    def test_fixtures_work_in_a_project_without_our_conftest(
        self, pytester: pytest.Pytester
    ) -> None:
        """A project that only installs blobcache gets the fixtures from the entry point."""
        pytester.makepyfile(
            """
            def test_cache(blobcache_sqlite):
                blobcache_sqlite.put("sha256:" + "a" * 64, "/x")
                assert blobcache_sqlite.get("sha256:" + "a" * 64) == "/x"

            def test_url(blobcache_sqlite_url):
                assert blobcache_sqlite_url.startswith("sqlite:///")
            """
        )
        result = pytester.runpytest_subprocess("-p", "no:randomly")
        result.assert_outcomes(passed=2)

    def test_fixture_names_do_not_clash_with_the_suites(self, pytester: pytest.Pytester) -> None:
        """Every plugin fixture starts with blobcache_, so none shadows a project's own."""
        result = pytester.runpytest_subprocess("--fixtures", "-p", "no:randomly")
        lines = result.stdout.str().splitlines()
        start = next(i for i, line in enumerate(lines) if "from blobcache.testing" in line)
        section = lines[start + 1 :]
        section = section[
            : next(i for i, line in enumerate(section) if line.startswith(("-", "=")))
        ]
        names = [line.split()[0] for line in section if line and not line.startswith(" ")]
        assert names
        assert all(name.startswith("blobcache_") for name in names), names
