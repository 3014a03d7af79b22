"""The blobcache command line, through click's runner and as a real subprocess."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from blobcache import BlobCache, ItemTooLarge, maintenance
from blobcache.cli import cli
from blobcache.testing import free_port
from tests.helpers import CacheFactory, blob, digest_of, put_raw, read_raw, url_of

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "registry"


def run(*args: str, input: str | bytes | None = None) -> Result:
    """Invoke the command line in-process; stdout and stderr stay apart."""
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A fresh SQLite cache URL."""
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    """A private copy of examples/registry."""
    return Path(shutil.copytree(EXAMPLE, tmp_path / "registry"))


def stored(url: str) -> dict[str, tuple[str | None, frozenset[str]]]:
    """The raw items behind ``url`` (an empty store reads as no items)."""
    with BlobCache.from_url(url) as cache:
        cache.create_table()
        return read_raw(cache)


class TestSingleDigestCommands:
    def test_put_get_paths_has_delete(self, url: str) -> None:
        """The single-digest commands record, read and forget paths, with exit codes."""
        digest = digest_of(1)
        assert run("--url", url, "create-table").exit_code == 0
        assert run("--url", url, "put", digest, "/r/a").exit_code == 0
        assert run("put", "--url", url, digest, "/r/b").exit_code == 0
        assert run("--url", url, "get", digest).stdout == "/r/a\n"
        assert run("--url", url, "paths", digest).stdout == "/r/a\n/r/b\n"
        assert json.loads(run("--url", url, "paths", "--json", digest).stdout)["paths"] == [
            "/r/a",
            "/r/b",
        ]
        assert run("--url", url, "has", digest, "/r/b").exit_code == 0
        assert run("--url", url, "has", digest, "/r/c").exit_code == 1
        assert run("--url", url, "delete", digest, "/r/a").exit_code == 0
        assert stored(url) == {digest: ("/r/b", frozenset({"/r/b"}))}

    def test_miss_exits_1_with_one_line(self, url: str) -> None:
        """get of an unknown digest prints one error line on stderr and exits 1."""
        assert run("--url", url, "create-table").exit_code == 0
        result = run("--url", url, "get", digest_of(9))
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1
        assert "no cache entry" in result.stderr

    def test_bad_digest_exits_2_and_writes_nothing(self, url: str) -> None:
        """An invalid digest is a usage error: exit 2, no traceback, nothing stored."""
        result = run("--url", url, "put", "sha256:NOPE", "/r/a")
        assert result.exit_code == 2
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith("blobcache: error: invalid digest")
        assert stored(url) == {}

    def test_bad_url_exits_2(self) -> None:
        """An unsupported URL is a configuration error: exit 2."""
        result = run("--url", "ftp://nowhere", "stats")
        assert result.exit_code == 2
        assert "unsupported cache URL" in result.stderr

    def test_unreachable_backend_exits_3_and_verbose_shows_traceback(self) -> None:
        """A DynamoDB endpoint nobody listens on exits 3; -v adds the traceback."""
        url = (
            f"dynamodb:///t?region=us-east-1&endpoint_url=http://127.0.0.1:{free_port()}"
            "&max_retries=0&connect_timeout=0.5"
        )
        quiet = run("--url", url, "stats")
        assert quiet.exit_code == 3
        assert "Traceback" not in quiet.stderr
        loud = run("-v", "--url", url, "stats")
        assert loud.exit_code == 3
        assert "Traceback" in loud.stderr

    @pytest.mark.parametrize(
        "error",
        [
            OSError(errno.EACCES, os.strerror(errno.EACCES), "/srv/registry"),
            ItemTooLarge(digest_of(1), 100),
        ],
    )
    def test_other_failures_exit_4(
        self, url: str, monkeypatch: pytest.MonkeyPatch, error: Exception
    ) -> None:
        """A file system error or an item past the size limit is a failure (exit 4), one
        line on stderr, not "inconsistencies found" (exit 1)."""

        def fail(*args: Any, **kwargs: Any) -> Any:
            raise error

        monkeypatch.setattr(maintenance, "stats", fail)
        result = run("--url", url, "stats")
        assert result.exit_code == 4
        assert result.stderr.startswith("blobcache: error:")
        assert result.stderr.count("\n") == 1


class TestMaintenanceCommands:
    def test_index_then_stats(self, url: str, registry: Path) -> None:
        """index records the example tree; stats --json counts it."""
        indexed = run("--url", url, "index", "--json", str(registry))
        assert indexed.exit_code == 0, indexed.stderr
        report = json.loads(indexed.stdout)
        assert (report["blobs"], report["digests"], report["placeholders"]) == (16, 12, 3)
        counted = json.loads(run("--url", url, "stats", "--json").stdout)
        assert (counted["digests"], counted["paths"]) == (12, 16)
        assert counted["histogram"] == [[1, 10], [2, 1], [4, 1]]

    def test_verify_and_prune(self, url: str, registry: Path) -> None:
        """A deleted blob makes verify exit 1; prune is a dry run until --yes."""
        run("--url", url, "index", str(registry))
        assert run("--url", url, "verify").exit_code == 0
        victim = next((registry / "team/web/blobs/sha256").iterdir())
        victim.unlink()
        found = run("--url", url, "verify", "--jsonl")
        assert found.exit_code == 1
        assert [json.loads(line)["kind"] for line in found.stdout.splitlines()] == ["missing_path"]
        before = stored(url)
        dry = run("--url", url, "prune")
        assert dry.exit_code == 1
        assert "would remove" in dry.stdout
        assert stored(url) == before
        applied = run("--url", url, "prune", "--yes", "--json")
        assert applied.exit_code == 0
        assert json.loads(applied.stdout)["stale"][0]["path"] == str(victim)
        assert run("--url", url, "verify").exit_code == 0

    def test_dedupe_dry_run_then_apply(self, url: str, registry: Path) -> None:
        """dedupe changes no file without --yes, then hard-links the duplicate copy."""
        run("--url", url, "index", str(registry))
        copy = (
            registry
            / "library/busybox/blobs/sha256"
            / ("af993d58a298109ce764fd3f5f36ddd74c23433412443d7990414ffde90ea10a")
        )
        inode = copy.stat().st_ino
        dry = run("--url", url, "dedupe", "--json", str(registry))
        assert json.loads(dry.stdout)["reclaimed_bytes"] == 148
        assert copy.stat().st_ino == inode
        applied = run("--url", url, "dedupe", "--yes", str(registry))
        assert applied.exit_code == 0
        assert "1 copy linked" in applied.stdout
        assert copy.stat().st_nlink == 2

    def test_export_import(self, url: str, registry: Path, tmp_path: Path) -> None:
        """export writes JSON Lines that import reproduces; a bad line exits 1 with its number."""
        run("--url", url, "index", str(registry))
        exported = run("--url", url, "export")
        assert len(exported.stdout.splitlines()) == 12
        other = f"sqlite:///{tmp_path / 'other.db'}"
        imported = run("--url", other, "import", input=exported.stdout + "oops\n")
        assert imported.exit_code == 1
        assert "line 13:" in imported.stderr
        assert stored(other) == stored(url)

    def test_migrate(self, make_cache: CacheFactory) -> None:
        """migrate converts legacy items written raw to dynalite."""
        cache = make_cache("dynalite")
        put_raw(cache, digest_of(1), BlobPath={"/r/a"})
        url = url_of(cache)
        result = run("--url", url, "migrate", "--segments", "2", "--json")
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["migrated"] == 1
        assert read_raw(cache) == {digest_of(1): ("/r/a", frozenset({"/r/a"}))}

    def test_relative_path_mode(self, tmp_path: Path, url: str) -> None:
        """--root stores paths relative to the root."""
        digest, _ = blob(tmp_path / "root", "r", b"x")
        assert (
            run(
                "--url", url, "--root", str(tmp_path / "root"), "index", str(tmp_path / "root")
            ).exit_code
            == 0
        )
        relative = "r/blobs/sha256/" + digest.removeprefix("sha256:")
        assert stored(url) == {digest: (relative, frozenset({relative}))}

    def test_verify_and_prune_under_root_leave_absolute_paths(
        self, url: str, tmp_path: Path
    ) -> None:
        """With --root, paths the table holds absolute are not checked, and prune --yes
        neither removes nor claims to remove them."""
        root = tmp_path / "registry"
        digest, path = blob(root, "repo", b"x")
        assert run("--url", url, "put", digest, path).exit_code == 0
        before = stored(url)

        checked = run("--url", url, "--root", str(root), "verify")
        pruned = run("--url", url, "--root", str(root), "prune", "--yes")

        assert checked.exit_code == 0
        assert "1 path not checked on disk" in checked.stdout
        assert pruned.exit_code == 0
        assert pruned.stdout == "0 stale paths removed\n"
        assert stored(url) == before


class TestImport:
    def test_undecodable_line_is_a_bad_line(self, url: str) -> None:
        """A line that is not UTF-8 is reported with its number; the other lines go in."""
        good = [json.dumps({"digest": digest_of(n), "paths": [f"/r/{n}"]}).encode() for n in (1, 2)]
        result = run("--url", url, "import", input=b"\n".join([good[0], b"\xff\xfe", good[1]]))
        assert result.exit_code == 1
        assert "line 2: not UTF-8" in result.stderr
        assert set(stored(url)) == {digest_of(1), digest_of(2)}

    def test_deeply_nested_line_is_a_bad_line(self, url: str) -> None:
        """A line nested too deeply for the JSON parser is reported, not a traceback."""
        good = json.dumps({"digest": digest_of(1), "paths": ["/r/1"]})
        result = run("--url", url, "import", input="[" * 100_000 + "\n" + good + "\n")
        assert result.exit_code == 1
        assert "line 1: JSON nested too deeply" in result.stderr
        assert set(stored(url)) == {digest_of(1)}

    def test_line_past_the_item_limit_leaves_nothing(self, make_cache: CacheFactory) -> None:
        """A line whose item fills up on DynamoDB is a bad line, and the paths it added
        before the limit are taken back (paths the item had before stay); the next line
        still goes in."""
        cache = make_cache("dynalite")
        url = url_of(cache)
        paths = [f"/r/{n:03d}/" + "x" * 3900 for n in range(120)]
        cache.put(digest_of(1), paths[5])  # already there: must survive the rollback
        lines = [
            json.dumps({"digest": digest_of(1), "paths": paths}),
            json.dumps({"digest": digest_of(2), "paths": ["/r/fine"]}),
        ]

        result = run("--url", url, "import", "--json", input="\n".join(lines) + "\n")

        assert result.exit_code == 1
        report = json.loads(result.stdout)
        [bad] = report["bad_lines"]
        assert bad["line"] == 1
        assert "400 KB" in bad["error"]
        assert cache.get_all(digest_of(1)) == [paths[5]]
        assert cache.get_all(digest_of(2)) == ["/r/fine"]
        assert report["imported"] == 1


class TestSubprocess:
    def test_main_path_as_a_real_process(self, tmp_path: Path, registry: Path) -> None:
        """python -m blobcache index, then the console script's stats, over a fresh SQLite file."""
        url = f"sqlite:///{tmp_path / 'proc.db'}"
        env = {**os.environ, "BLOBCACHE_URL": url}
        indexed = subprocess.run(
            [sys.executable, "-m", "blobcache", "index", str(registry)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert indexed.returncode == 0, indexed.stderr
        assert indexed.stdout.startswith("16 blobs, 12 digests, 4 duplicate copies")
        script = Path(sys.executable).parent / "blobcache"
        counted = subprocess.run(
            [str(script), "stats", "--json"], capture_output=True, text=True, env=env, check=False
        )
        assert counted.returncode == 0, counted.stderr
        assert json.loads(counted.stdout)["digests"] == 12
