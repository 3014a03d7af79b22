"""The edges a hostile probe found (issue 13): damaged responses, secrets in URLs, other
applications' files, absurd options, HTML error pages, forged output lines, huge inputs."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from blobcache import (
    BlobCache,
    BlobCacheError,
    ConfigurationError,
    InvalidDigest,
    InvalidPath,
    StoreUnavailable,
)
from blobcache.cli import cli
from blobcache.testing import FaultProxy, fault_proxy
from tests.helpers import (
    REGION,
    CacheFactory,
    backend_of,
    digest_of,
    read_raw,
    record_requests,
    sqlite_connection,
    url_of,
)

D = digest_of(2)
SECRET = "hunter2-s3cr3t"


def run(*args: str, input: str | bytes | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def proxy(dynalite_endpoint: str) -> Iterator[FaultProxy]:
    with fault_proxy(dynalite_endpoint) as running:
        yield running


@pytest.fixture
def proxied(make_cache: CacheFactory, proxy: FaultProxy) -> tuple[BlobCache, BlobCache]:
    """A cache on dynalite, and one on the same table through the fault proxy."""
    direct = make_cache("dynalite")
    url = f"dynamodb:///{backend_of(direct).target}?region={REGION}&endpoint_url={proxy.endpoint}"
    return direct, make_cache("dynalite", url=url, create=False, max_retries=1)


class TestDamagedResponses:
    """A response that fails its CRC32 check never reads as a miss (item 2)."""

    def test_get_and_has_raise_instead_of_missing(
        self, proxied: tuple[BlobCache, BlobCache], proxy: FaultProxy
    ) -> None:
        """Every GetItem answer damaged: get and has raise StoreUnavailable, never
        CacheMiss or False, for an item that exists."""
        direct, faulty = proxied
        direct.put(D, "/a")
        proxy.inject("corrupt_body", operations=["GetItem"], times=100)
        with pytest.raises(StoreUnavailable, match="CRC32"):
            faulty.get(D)
        with pytest.raises(StoreUnavailable, match="CRC32"):
            faulty.has(D, "/a")
        assert proxy.injected["corrupt_body"] == 4  # two calls, each one try and one retry
        proxy.clear()
        assert faulty.get(D) == "/a"

    def test_one_damaged_read_is_retried(
        self, proxied: tuple[BlobCache, BlobCache], proxy: FaultProxy
    ) -> None:
        """A single damaged answer to a read is retried and the read succeeds."""
        direct, faulty = proxied
        direct.put(D, "/a")
        proxy.inject("corrupt_body", operations=["GetItem"])
        assert faulty.get_all(D) == ["/a"]
        assert proxy.injected["corrupt_body"] == 1

    def test_a_damaged_write_answer_is_an_unknown_outcome(
        self, proxied: tuple[BlobCache, BlobCache], proxy: FaultProxy
    ) -> None:
        """The server applied the put; its answer was damaged: StoreUnavailable says the
        outcome is unknown, and the put was sent once."""
        direct, faulty = proxied
        proxy.inject("corrupt_body", operations=["UpdateItem"])
        before = proxy.requests
        with pytest.raises(StoreUnavailable, match="may or may not have taken effect") as raised:
            faulty.put(D, "/a")
        assert raised.value.outcome_unknown is True
        assert proxy.requests - before == 1
        assert read_raw(direct) == {D: ("/a", frozenset({"/a"}))}


class TestHtmlErrorPages:
    """A 500 with an HTML body, as a load balancer sends it, is StoreUnavailable (item 6)."""

    def test_read(self, proxied: tuple[BlobCache, BlobCache], proxy: FaultProxy) -> None:
        _, faulty = proxied
        proxy.inject("error_500_html", times=100)
        with pytest.raises(BlobCacheError) as raised:
            faulty.get(D)
        assert type(raised.value) is StoreUnavailable
        assert raised.value.cause_response_code == "500"

    def test_cli_exit_code(self, proxied: tuple[BlobCache, BlobCache], proxy: FaultProxy) -> None:
        """The command line exits 3 (store unavailable), not 4."""
        _, faulty = proxied
        proxy.inject("error_500_html", times=100)
        result = run("--url", url_of(faulty) + "&max_retries=0", "get", D)
        assert result.exit_code == 3
        assert "unavailable" in result.stderr


class TestSecretsInUrls:
    """Credentials in an endpoint URL are refused and never repeated (item 3)."""

    @pytest.mark.parametrize(
        "url",
        [
            f"dynamodb:///blobs?region={REGION}&endpoint_url=http://admin:{SECRET}@127.0.0.1:1",
            f"dynamodb:///blobs?region={REGION}&endpoint_url=http://{SECRET}@127.0.0.1:1",
            f"dynamodb:///blobs?region={REGION}&endpoint_url=ftp://admin:{SECRET}@h",
            f"dynamodb:///blobs?region={REGION}&endpoint_url=http%3A%2F%2Fadmin%3A{SECRET}%40h",
            f"dynamo:///blobs?endpoint_url=http://admin:{SECRET}@127.0.0.1:1",
            f"dynamodb:///a/b?endpoint_url=http://admin:{SECRET}@127.0.0.1:1",
            f"dynamodb:///blobs?endpoint_url=http://admin:{SECRET}@h&bogus=1",
        ],
    )
    def test_refused_without_echo(self, url: str) -> None:
        with pytest.raises(ConfigurationError) as raised:
            BlobCache.from_url(url)
        assert SECRET not in str(raised.value)

    def test_endpoint_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An endpoint with credentials from botocore's chain is refused at the first
        call, and the secret appears in no message."""
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://admin:{SECRET}@127.0.0.1:1")
        cache = BlobCache.from_url(f"dynamodb:///blobs?region={REGION}")
        with pytest.raises(ConfigurationError) as raised:
            cache.get(D)
        assert SECRET not in str(raised.value)
        assert "credentials" in str(raised.value)

    def test_cli_never_prints_the_secret(self) -> None:
        url = f"dynamodb:///blobs?region={REGION}&endpoint_url=http://admin:{SECRET}@127.0.0.1:1"
        result = run("--url", url, "get", D)
        assert result.exit_code == 2
        assert SECRET not in result.stdout + result.stderr


def foreign_database(path: Path, version: int = 0) -> bytes:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        connection.execute("INSERT INTO users (name) VALUES ('ada')")
        connection.execute(f"PRAGMA user_version = {version}")
    connection.close()
    return path.read_bytes()


class TestForeignSQLiteFiles:
    """Another application's database is refused and left exactly as it was (item 4)."""

    @pytest.mark.parametrize("version", [0, 1, 7])
    def test_refused_untouched(self, tmp_path: Path, version: int) -> None:
        path = tmp_path / "app.db"
        before = foreign_database(path, version)
        cache = BlobCache.from_url(f"sqlite:///{path}")
        for call in (cache.create_table, lambda: cache.put(D, "/a"), lambda: cache.get(D)):
            with pytest.raises(ConfigurationError, match="not a blobcache database"):
                call()
        cache.close()
        assert path.read_bytes() == before
        assert sorted(os.listdir(tmp_path)) == ["app.db"]  # no -wal, no -shm
        with sqlite3.connect(path) as connection:
            tables = connection.execute("SELECT name FROM sqlite_master").fetchall()
            assert tables == [("users",)]
            assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        connection.close()

    def test_empty_file_becomes_a_cache(self, tmp_path: Path) -> None:
        """An empty file (a fresh name) is still made into a cache."""
        path = tmp_path / "new.db"
        path.touch()
        with BlobCache.from_url(f"sqlite:///{path}") as cache:
            cache.put(D, "/a")
            assert cache.get(D) == "/a"


class TestAbsurdOptions:
    """Options that would pass and misbehave later are refused up front (item 5)."""

    @pytest.mark.parametrize(
        ("url", "option"),
        [
            ("sqlite:///x.db?read_timeout=inf", "read_timeout"),
            ("sqlite:///x.db?connect_timeout=nan", "connect_timeout"),
            ("sqlite:///x.db?busy_timeout=2147484", "busy_timeout"),
            ("sqlite:///x.db?max_pool_connections=10000000", "max_pool_connections"),
            ("sqlite:///x.db?max_backoff=inf", "max_backoff"),
            ("sqlite:///x.db?max_retries=1000000000", "max_retries"),
            ("dynamodb:///blobs?region=no%20such%20region", "region"),
            ("dynamodb:///blobs?region=us-east-1/../x", "region"),
        ],
    )
    def test_refused(self, tmp_path: Path, url: str, option: str) -> None:
        with pytest.raises(ConfigurationError, match=option):
            BlobCache.from_url(url)
        assert not (tmp_path / "x.db").exists()

    def test_region_from_the_environment(
        self, make_cache: CacheFactory, monkeypatch: pytest.MonkeyPatch, dynalite_endpoint: str
    ) -> None:
        """A bad region from the environment is a ConfigurationError at the first call,
        not StoreUnavailable."""
        monkeypatch.setenv("AWS_DEFAULT_REGION", "no such region")
        url = f"dynamodb:///blobs?endpoint_url={dynalite_endpoint}"
        cache = make_cache("dynalite", url=url, create=False)
        with pytest.raises(BlobCacheError) as raised:
            cache.get(D)
        assert type(raised.value) is ConfigurationError
        assert "region" in str(raised.value)

    def test_largest_busy_timeout_works(self, tmp_path: Path) -> None:
        """The largest accepted busy_timeout still waits (it does not overflow)."""
        url = f"sqlite:///{tmp_path / 'c.db'}?busy_timeout=2147483"
        with BlobCache.from_url(url) as cache:
            cache.put(D, "/a")
            connection = sqlite_connection(cache)
            # SQLite reports its busy timeout in milliseconds; an overflow would read < 0.
            assert connection.execute("PRAGMA busy_timeout").fetchone()[0] == 2_147_483_000


class TestHostileOutput:
    """Stored paths cannot forge output lines; error messages stay short (item 7)."""

    def test_verify_escapes_control_characters(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'c.db'}"
        forged = f"/gone\nmissing_path: {digest_of(9)} /forged: no file\x1b[2K"
        with BlobCache.from_url(url) as cache:
            cache.put(D, forged)
        result = run("--url", url, "verify")
        lines = result.stdout.splitlines()
        assert len(lines) == 2  # one finding and the summary
        assert "\\n" in lines[0]
        assert "\\x1b" in lines[0]
        assert "\x1b" not in result.stdout
        assert not any(line.startswith("missing_path: sha256:" + "0" * 63 + "9") for line in lines)
        # --json keeps the path exactly.
        document = json.loads(run("--url", url, "verify", "--json").stdout)
        assert [finding["path"] for finding in document["findings"]] == [forged]

    def test_get_and_paths_escape_control_characters(self, tmp_path: Path) -> None:
        """A stored path with a newline is one escaped line in get's and paths' text
        output, so it cannot pass for a second path; --json keeps it exact."""
        url = f"sqlite:///{tmp_path / 'c.db'}"
        forged = "/a\n/forged"
        with BlobCache.from_url(url) as cache:
            cache.put(D, forged)
            cache.put(D, "/b")
        got = run("--url", url, "get", D).stdout.splitlines()
        assert got == ["/a\\n/forged"]
        listed = run("--url", url, "paths", D).stdout.splitlines()
        assert listed == ["/a\\n/forged", "/b"]
        document = json.loads(run("--url", url, "paths", D, "--json").stdout)
        assert document["paths"] == [forged, "/b"]

    @pytest.mark.parametrize(
        "call",
        [
            lambda cache: cache.get("sha256:" + "x" * 10_000_000),
            lambda cache: cache.put(digest_of(1), "/" + "p" * 10_000_000),
            lambda cache: cache.put(digest_of(1), b"\xff" * 1_000_000),
        ],
        ids=["digest", "path", "bytes"],
    )
    def test_errors_repeat_only_a_prefix(self, make_cache: CacheFactory, call: Any) -> None:
        cache = make_cache("sqlite")
        with pytest.raises((InvalidDigest, InvalidPath)) as raised:
            call(cache)
        message = str(raised.value)
        assert len(message) < 1000
        assert "characters" in message or "bytes" in message

    def test_huge_urls_and_options(self) -> None:
        for url in (
            "nosuch:///" + "u" * 1_000_000,
            "sqlite:///x.db?" + "k" * 1_000_000 + "=1",
            "sqlite:///x.db?max_retries=" + "9" * 1_000_000 + "x",
            "dynamodb:///" + "t" * 1_000_000 + "?region=us-east-1",
            "dynamodb:///blobs?region=" + "r" * 1_000_000,
        ):
            with pytest.raises(ConfigurationError) as raised:
                BlobCache.from_url(url)
            assert len(str(raised.value)) < 2000

    def test_huge_import_line(self, tmp_path: Path) -> None:
        """A 4 MB bad import line makes a short complaint, not megabytes of stderr."""
        url = f"sqlite:///{tmp_path / 'c.db'}"
        line = json.dumps({"digest": "sha256:" + "z" * 4_000_000, "paths": ["/a"]})
        result = run("--url", url, "import", input=line + "\n")
        assert result.exit_code == 1
        assert len(result.stderr) < 2000


class TestSilentEndpoint:
    """The request budget under timeouts: a write is sent once, a read up to
    1 + max_retries times (this replaces test_dynamodb's two-sends expectation for put)."""

    @pytest.mark.parametrize(("call", "sends", "unknown"), [("put", 1, True), ("get", 3, False)])
    def test_sends(self, make_cache: CacheFactory, call: str, sends: int, unknown: bool) -> None:
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(16)
            port = listener.getsockname()[1]
            url = f"dynamodb:///blobs?region={REGION}&endpoint_url=http://127.0.0.1:{port}"
            cache = make_cache("dynalite", url=url, create=False, read_timeout=0.3, max_retries=2)
            sent = record_requests(cache)
            with pytest.raises(StoreUnavailable) as raised:
                cache.put(D, "/a") if call == "put" else cache.get(D)
        assert len(sent) == sends
        assert raised.value.outcome_unknown is unknown
