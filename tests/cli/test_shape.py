"""The command line's shape: where options go, which commands may create a store, wording."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from blobcache import BlobCache, cli
from blobcache.testing import free_port
from tests.helpers import digest_of

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "registry"
DIGEST = digest_of(1)


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli.cli, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def missing(tmp_path: Path) -> Path:
    """A SQLite file name nobody created: a typo in --url."""
    return tmp_path / "typo.db"


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A created, empty SQLite cache."""
    url = f"sqlite:///{tmp_path / 'cache.db'}"
    with BlobCache.from_url(url) as cache:
        cache.create_table()
    return url


READ_ONLY = [
    ["stats"],
    ["verify"],
    ["prune"],
    ["prune", "--yes"],
    ["export"],
    ["migrate"],
    ["get", DIGEST],
    ["paths", DIGEST],
    ["has", DIGEST, "/r/a"],
    ["delete", DIGEST, "/r/a"],
    ["dedupe", "ROOT"],
]


class TestMissingStore:
    @pytest.mark.parametrize("args", READ_ONLY, ids=lambda args: " ".join(args))
    def test_commands_that_only_read_refuse_it(
        self, missing: Path, tmp_path: Path, args: list[str]
    ) -> None:
        """A mistyped --url is exit 2 naming the file, not '0 digests': nothing is created."""
        args = [str(tmp_path) if arg == "ROOT" else arg for arg in args]
        result = run("--url", f"sqlite:///{missing}", *args)
        assert result.exit_code == cli.EXIT_USAGE == 2
        assert result.stdout == ""
        assert result.stderr == (
            f"blobcache: error: SQLite database '{missing}' does not exist; create it with "
            "cache.create_table() or 'blobcache create-table --url URL'\n"
        )
        assert not missing.exists()

    @pytest.mark.parametrize(
        "args",
        [["create-table"], ["put", DIGEST, "/r/a"], ["index", "REGISTRY"], ["import"]],
        ids=lambda args: args[0],
    )
    def test_commands_that_write_create_it(
        self, missing: Path, tmp_path: Path, args: list[str]
    ) -> None:
        """create-table, put, index and import may create the store."""
        registry = shutil.copytree(EXAMPLE, tmp_path / "registry")
        args = [str(registry) if arg == "REGISTRY" else arg for arg in args]
        result = run("--url", f"sqlite:///{missing}", *args, input="")
        assert result.exit_code == 0, result.stderr
        assert missing.exists()


class TestOptionPlacement:
    def test_url_and_root_before_or_after_the_command(self, url: str, tmp_path: Path) -> None:
        """--url and --root mean the same on either side of the command name."""
        root = str(tmp_path / "root")
        assert run("--root", root, "put", "--url", url, DIGEST, f"{root}/a").exit_code == 0
        with BlobCache.from_url(url) as cache:
            assert cache.get(DIGEST) == "a"  # stored relative to the root
        assert run("get", "--url", url, "--root", root, DIGEST).stdout == f"{root}/a\n"
        assert run("--url", url, "--root", root, "get", DIGEST).stdout == f"{root}/a\n"

    def test_command_level_url_wins(self, url: str, tmp_path: Path) -> None:
        """--url after the command name overrides the one before it."""
        other = f"sqlite:///{tmp_path / 'other.db'}"
        assert run("--url", other, "put", "--url", url, DIGEST, "/r/a").exit_code == 0
        assert run("--url", url, "get", DIGEST).stdout == "/r/a\n"

    @pytest.mark.parametrize("where", ["before", "after"])
    def test_verbose_anywhere(self, where: str) -> None:
        """-v after the command name shows the traceback as -v before it does."""
        unreachable = (
            f"dynamodb:///t?region=us-east-1&endpoint_url=http://127.0.0.1:{free_port()}"
            "&max_retries=0&connect_timeout=0.5"
        )
        args = ["-v", "stats"] if where == "before" else ["stats", "-v"]
        result = run("--url", unreachable, *args)
        assert result.exit_code == cli.EXIT_UNAVAILABLE
        assert "Traceback" in result.stderr

    def test_cache_is_for_hosts_only(self, url: str) -> None:
        """--cache (a Flask bind, a Django alias) is a usage error on the standalone command."""
        result = run("--cache", "other", "--url", url, "stats")
        assert result.exit_code == 2
        assert "--cache names a cache of a Flask app or Django project" in result.stderr
        assert "--cache" not in run("--help").stdout


class TestFindingsOnce:
    @pytest.fixture
    def stale(self, url: str) -> str:
        """A cache with one path that has no file behind it."""
        with BlobCache.from_url(url) as cache:
            cache.put(DIGEST, "/nonexistent/blob")
        return url

    def test_verify_prints_each_finding_once(self, stale: str) -> None:
        """The report on stdout says it; no WARNING log line repeats it on stderr."""
        result = run("--url", stale, "verify")
        assert result.exit_code == 1
        assert result.stdout.count("/nonexistent/blob") == 1
        assert result.stderr == ""

    def test_prune_prints_each_finding_once(self, stale: str) -> None:
        result = run("--url", stale, "prune")
        assert result.stdout.count("/nonexistent/blob") == 1
        assert result.stderr == ""

    def test_verbose_still_shows_the_log(self, stale: str) -> None:
        """-v asks for the logs, the finding's included."""
        assert "inconsistency_found" in run("--url", stale, "verify", "-v").stderr


class TestWording:
    def test_singular_counts(self, url: str, tmp_path: Path) -> None:
        """One of a thing is singular: 1 digest, 1 entry, 1 stale path."""
        run("--url", url, "put", DIGEST, "/nonexistent/blob")
        assert run("--url", url, "stats").stdout.startswith("1 digest, 1 path\n")
        assert run("--url", url, "export").stderr == "exported 1 entry\n"
        assert run("--url", url, "verify").stdout.endswith("1 item, 1 path, 1 finding\n")
        assert run("--url", url, "prune").stdout.endswith(
            "1 stale path would be removed (dry run; --yes removes them)\n"
        )
        assert run("--url", url, "prune", "--yes").stdout.endswith("1 stale path removed\n")
        line = json.dumps({"digest": digest_of(2), "paths": ["/r/b"]})
        imported = run("--url", url, "import", input=line + "\n")
        assert imported.stdout == "1 entry imported from 1 line, 0 bad lines\n"

    def test_plural_counts(self, url: str) -> None:
        run("--url", url, "put", digest_of(1), "/r/a")
        run("--url", url, "put", digest_of(2), "/r/b")
        assert run("--url", url, "stats").stdout.startswith("2 digests, 2 paths\n")
        assert run("--url", url, "export").stderr == "exported 2 entries\n"

    def test_index_and_dedupe_sentences(self, tmp_path: Path) -> None:
        """index and dedupe read as sentences: 'copy would be linked', not 'copies would link'."""
        url = f"sqlite:///{tmp_path / 'c.db'}"
        registry = str(shutil.copytree(EXAMPLE, tmp_path / "registry"))
        indexed = run("--url", url, "index", registry).stdout
        assert indexed.startswith("16 blobs, 12 digests, 4 duplicate copies (3 zero-byte")
        dry = run("--url", url, "dedupe", registry).stdout.splitlines()[-1]
        assert dry.startswith("1 copy would be linked, 148 B to reclaim")


class TestNames:
    def test_exit_codes_say_what_they_mean(self) -> None:
        """Exit 1 is findings (and a miss), not 'found'; the names are the public surface."""
        assert (cli.EXIT_OK, cli.EXIT_FINDINGS, cli.EXIT_MISS) == (0, 1, 1)
        assert (cli.EXIT_USAGE, cli.EXIT_UNAVAILABLE, cli.EXIT_FAILED) == (2, 3, 4)
        assert not hasattr(cli, "EXIT_FOUND")

    def test_all_lists_the_public_names(self) -> None:
        assert sorted(cli.__all__) == cli.__all__
        assert {"cli", "main", "HostedGroup", "EXIT_MISS"} <= set(cli.__all__)
        assert all(hasattr(cli, name) for name in cli.__all__)

    def test_commands_take_no_unused_url_and_root(self) -> None:
        """--url/--root are handled once, not passed to every command function."""
        for name, command in cli.cli.commands.items():
            assert command.callback is not None
            parameters = command.callback.__wrapped__.__code__.co_varnames  # type: ignore[attr-defined]
            assert not {"url", "root"} & set(parameters), name
