"""Errors on Redis: each maps to the blobcache error a caller can act on, and the
password never shows (repr, messages, chained causes, logs, the command line)."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import redis
from click.testing import CliRunner

from blobcache import (
    BlobCache,
    BlobCacheError,
    ConfigurationError,
    StoreUnavailable,
)
from blobcache._url import parse_url
from blobcache.cli import cli
from blobcache.testing import RedisServer, free_port, redis_server
from tests.helpers import digest_of

D = digest_of(3)
PASSWORD = "s3cr3t-Pa55/w@rd"
SECRET_MARKERS = (PASSWORD, quote(PASSWORD, safe=""), "s3cr3t")


@pytest.fixture(scope="module")
def guarded() -> Iterator[RedisServer]:
    """A redis-server that wants a password, and has a user 'app' limited to 'app:*' keys."""
    with redis_server("--requirepass", PASSWORD) as server:
        admin = redis.Redis(port=server.port, password=PASSWORD)
        admin.acl_setuser(
            "app",
            enabled=True,
            passwords=[f"+{PASSWORD}"],
            keys=["app:*"],
            commands=["+@all"],
        )
        admin.close()
        yield server


def url(server: RedisServer, password: str = PASSWORD, user: str = "", query: str = "") -> str:
    return f"redis://{user}:{quote(password, safe='')}@127.0.0.1:{server.port}/0{query}"


def assert_no_secret(text: str) -> None:
    for marker in SECRET_MARKERS:
        assert marker not in text


def everything_about(error: BaseException) -> str:
    """The message, the traceback and every chained cause, as -v would print them."""
    return "".join(traceback.format_exception(error))


class TestSecrets:
    def test_repr_and_target_hide_the_password(self, guarded: RedisServer) -> None:
        """The cache, its location and its backend show the URL without the password."""
        cache = BlobCache.from_url(url(guarded, user="app"))
        assert (
            repr(cache) == f"<BlobCache redis 'redis://app@127.0.0.1:{guarded.port}/0?prefix=zot'>"
        )
        assert_no_secret(repr(parse_url(url(guarded), {})))
        assert_no_secret(repr(cache._backend.__dict__))  # no cached URL either
        cache.close()

    def test_a_working_cache_logs_no_password(
        self, guarded: RedisServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Every log line of a session (DEBUG included) is free of the password."""
        caplog.set_level(logging.DEBUG, logger="blobcache")
        with BlobCache.from_url(url(guarded, query="?prefix=logs")) as cache:
            cache.put(D, "/a")
            assert cache.get(D) == "/a"
            cache.delete(D, "/a")
            assert_no_secret(repr(cache._backend.__dict__))  # the live pool included
        assert caplog.records
        assert_no_secret(caplog.text)

    def test_wrong_password_is_a_configuration_error_without_it(self, guarded: RedisServer) -> None:
        """A refused password raises ConfigurationError; neither it nor the right one shows."""
        cache = BlobCache.from_url(url(guarded, password="wrong-" + PASSWORD))
        with pytest.raises(ConfigurationError, match="refused the credentials") as caught:
            cache.get(D)
        assert_no_secret(everything_about(caught.value))
        assert isinstance(caught.value.cause, redis.exceptions.AuthenticationError)

    def test_no_password_is_a_configuration_error(self, guarded: RedisServer) -> None:
        """A server that wants a password and got none says so."""
        with pytest.raises(ConfigurationError, match="credentials"):
            BlobCache.from_url(f"redis://127.0.0.1:{guarded.port}/0").put(D, "/p")

    def test_malformed_urls_never_quote_the_password(self) -> None:
        """URL errors show the URL with the credentials masked, and chain nothing."""
        for bad in (
            f"redis://:{PASSWORD}@host:port/0",  # an unencoded '/' moves the rest into the path
            f"redis://:{quote(PASSWORD)}@host/x",
            f"redis://:{quote(PASSWORD)}@host/0?prefix=p&nonsense=1",
            f"rediss+sentinel://:{quote(PASSWORD)}@host",
        ):
            with pytest.raises(ConfigurationError) as caught:
                BlobCache.from_url(bad)
            assert_no_secret(everything_about(caught.value))

    def test_cli_json_and_verbose_errors_hide_the_password(self, guarded: RedisServer) -> None:
        """blobcache --json output and -v tracebacks never print the password."""
        good, bad = url(guarded, query="?prefix=cli"), url(guarded, password="nope-s3cr3t")
        runner = CliRunner()
        put = runner.invoke(cli, ["--url", good, "put", D, "/cli"])
        assert put.exit_code == 0, put.output
        stats = runner.invoke(cli, ["-vv", "--url", good, "stats", "--json"])
        assert stats.exit_code == 0
        assert '"digests": 1' in stats.output
        assert_no_secret(stats.output)
        failed = runner.invoke(cli, ["-vv", "--url", bad, "get", D])
        assert failed.exit_code != 0
        assert "refused the credentials" in failed.output
        assert "Traceback" in failed.output
        assert_no_secret(failed.output)


class TestErrorMapping:
    def test_refused_connection_is_store_unavailable(self) -> None:
        """Nothing listening: StoreUnavailable after the retries, with the cause kept."""
        cache = BlobCache.from_url(
            f"redis://:{quote(PASSWORD, safe='')}@127.0.0.1:{free_port()}/0",
            max_retries=1,
            backoff=0.001,
            max_backoff=0.002,
        )
        with pytest.raises(StoreUnavailable, match="unavailable after 1 retries") as caught:
            cache.put(D, "/p")
        assert isinstance(caught.value.cause, redis.exceptions.ConnectionError)
        assert_no_secret(everything_about(caught.value))

    def test_a_user_without_access_to_the_prefix(self, guarded: RedisServer) -> None:
        """An ACL user kept off the prefix's keys gets a ConfigurationError naming the fix."""
        cache = BlobCache.from_url(url(guarded, user="app", query="?prefix=zot"))
        with pytest.raises(ConfigurationError, match="'zot:\\*' keys"):
            cache.create_table()
        allowed = BlobCache.from_url(url(guarded, user="app", query="?prefix=app"))
        allowed.create_table()
        allowed.put(D, "/app")
        assert allowed.get(D) == "/app"

    def test_a_user_denied_info_still_works(self, guarded: RedisServer) -> None:
        """INFO (the cluster check) denied by the ACL: the cache works all the same."""
        admin = redis.Redis(port=guarded.port, password=PASSWORD)
        admin.acl_setuser(
            "noinfo",
            enabled=True,
            passwords=[f"+{PASSWORD}"],
            keys=["ni:*"],
            commands=["+@all", "-info"],
        )
        admin.close()
        with BlobCache.from_url(url(guarded, user="noinfo", query="?prefix=ni")) as cache:
            cache.put(D, "/ok")
            assert cache.get(D) == "/ok"

    def test_create_table_checks_and_creates_nothing(self, guarded: RedisServer) -> None:
        """create_table talks to the server and leaves no key behind."""
        with BlobCache.from_url(url(guarded, query="?prefix=probe")) as cache:
            cache.create_table()
            admin = redis.Redis(port=guarded.port, password=PASSWORD)
            assert admin.keys("probe:*") == []
            admin.close()

    def test_read_only_replica_refuses_writes_clearly(self) -> None:
        """Writes to a replica raise ConfigurationError saying to use the primary; reads work."""
        with (
            redis_server() as primary,
            redis_server("--replicaof", "127.0.0.1", str(primary.port)) as replica,
        ):
            writer = BlobCache.from_url(f"{primary.url}/0")
            writer.put(D, "/primary")
            reader = BlobCache.from_url(f"{replica.url}/0")
            # Replication is asynchronous: WAIT until the replica has acknowledged
            # the write (bounded: the replica may still be syncing at first).
            source = redis.Redis(port=primary.port)
            assert any(source.wait(1, 1000) >= 1 for _ in range(60))
            source.close()
            assert reader.get(D) == "/primary"
            with pytest.raises(ConfigurationError, match="read-only replica"):
                reader.put(D, "/replica")
            with pytest.raises(ConfigurationError, match="read-only replica"):
                reader.create_table()
            writer.close()
            reader.close()

    def test_a_full_server_is_store_unavailable(self) -> None:
        """Past maxmemory with noeviction, writes are refused: StoreUnavailable, reads work."""
        with redis_server("--maxmemory-policy", "noeviction") as server:
            cache = BlobCache.from_url(f"{server.url}/0")
            cache.put(D, "/before")
            plain = redis.Redis(port=server.port)
            plain.config_set("maxmemory", 1)
            with pytest.raises(StoreUnavailable, match="memory limit") as caught:
                cache.put(D, "/after")
            assert isinstance(caught.value.cause, redis.exceptions.OutOfMemoryError)
            plain.config_set("maxmemory", 0)
            assert cache.get_all(D) == ["/before"]
            plain.close()
            cache.close()

    def test_a_replica_cut_off_from_its_primary_is_store_unavailable(self) -> None:
        """MASTERDOWN (a stale replica that will not serve) is a retry-later, not a cluster."""
        with redis_server(
            "--replicaof", "127.0.0.1", str(free_port()), "--replica-serve-stale-data", "no"
        ) as replica:
            cache = BlobCache.from_url(f"{replica.url}/0", max_retries=0)
            with pytest.raises(StoreUnavailable, match="Link with MASTER is down"):
                cache.get(D)
            cache.close()

    def test_cluster_endpoint_is_refused(self) -> None:
        """A Redis Cluster node is refused with a ConfigurationError before anything is sent."""
        # The cluster bus defaults to port + 10000, which may not exist: give it its own.
        with redis_server("--cluster-enabled", "yes", "--cluster-port", str(free_port())) as node:
            cache = BlobCache.from_url(f"{node.url}/0")
            with pytest.raises(ConfigurationError, match="Redis Cluster") as caught:
                cache.put(D, "/p")
            assert "single Redis server" in str(caught.value)
            with pytest.raises(ConfigurationError, match="Redis Cluster"):
                cache.get(D)
            plain = redis.Redis(port=node.port)
            assert plain.dbsize() == 0
            plain.close()

    def test_errors_are_blobcache_errors(self) -> None:
        """No redis-py exception escapes unwrapped (the root catches them all)."""
        cache = BlobCache.from_url(f"redis://127.0.0.1:{free_port()}", max_retries=0)
        with pytest.raises(BlobCacheError):
            list(cache.entries())
