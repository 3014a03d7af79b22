"""Redis URLs, read as redis-py's from_url reads them: redis://, rediss:// and unix://."""

from __future__ import annotations

from pathlib import Path

import pytest

from blobcache import BlobCache, ConfigurationError
from blobcache._url import RedisAddress, parse_url
from blobcache.testing import redis_server
from tests.helpers import digest_of


def address(url: str) -> RedisAddress:
    location = parse_url(url, {})
    assert location.scheme == "redis"
    assert location.redis is not None
    return location.redis


class TestParsing:
    def test_defaults(self) -> None:
        """Host, port 6379, database 0 and zot's prefix by default; nothing connects."""
        found = address("redis://cache.internal")
        assert (found.host, found.port, found.db, found.prefix, found.tls) == (
            "cache.internal",
            6379,
            0,
            "zot",
            False,
        )
        assert BlobCache.from_url("redis://cache.internal").name == "redis"

    def test_everything_given(self) -> None:
        """User, password (percent-decoded), port, database, prefix and options."""
        location = parse_url(
            "redis://reg%40user:p%3Ass%2Fw@10.0.0.5:6380/4?prefix=registry&read_timeout=2", {}
        )
        found = location.redis
        assert found is not None
        assert (found.username, found.password, found.host, found.port, found.db) == (
            "reg@user",
            "p:ss/w",
            "10.0.0.5",
            6380,
            4,
        )
        assert found.prefix == "registry"
        assert location.options.read_timeout == 2
        assert location.target == "redis://reg%40user@10.0.0.5:6380/4?prefix=registry"

    def test_database_in_the_query(self) -> None:
        """?db=N works as in redis-py; the same number twice is fine, two numbers are not."""
        assert address("redis://h?db=3").db == 3
        assert address("redis://h/3?db=3").db == 3
        with pytest.raises(ConfigurationError, match="names the database twice"):
            address("redis://h/3?db=4")
        for bad in ("redis://h/x", "redis://h/-1", "redis://h?db=one"):
            with pytest.raises(ConfigurationError, match="must be a number"):
                address(bad)

    def test_tls_and_its_options(self) -> None:
        """rediss:// turns TLS on and takes redis-py's ssl_* options; redis:// refuses them."""
        found = address("rediss://h:6390?ssl_cert_reqs=required&ssl_ca_certs=/etc/ca.pem")
        assert found.tls
        assert dict(found.tls_options) == {
            "ssl_cert_reqs": "required",
            "ssl_ca_certs": "/etc/ca.pem",
        }
        assert found.display() == "rediss://h:6390/0?prefix=zot"
        with pytest.raises(ConfigurationError, match="need a 'rediss://' URL"):
            address("redis://h?ssl_ca_certs=/etc/ca.pem")

    def test_unix_socket(self) -> None:
        """unix:///path?db=N&prefix=P, with a password in the authority as redis-py reads it."""
        found = address("unix://:pw@/run/redis/redis.sock?db=2&prefix=z2")
        assert (found.socket_path, found.db, found.prefix, found.password) == (
            "/run/redis/redis.sock",
            2,
            "z2",
            "pw",
        )
        assert found.display() == "unix:///run/redis/redis.sock?db=2&prefix=z2"
        with pytest.raises(ConfigurationError, match="socket path"):
            address("unix://")

    def test_empty_prefix_is_zots_default(self) -> None:
        """As in zot, an empty prefix means 'zot'."""
        assert address("redis://h?prefix=").prefix == "zot"

    def test_unknown_options_are_named(self) -> None:
        """An unknown query key is a ConfigurationError listing the valid options."""
        with pytest.raises(ConfigurationError, match="unknown option\\(s\\) socket_timeout"):
            address("redis://h?socket_timeout=1")


class TestUnixSocket:
    def test_a_cache_over_a_unix_socket(self, tmp_path: Path) -> None:
        """The backend talks to a server through its Unix socket."""
        socket = tmp_path / "redis.sock"
        with redis_server("--unixsocket", str(socket), "--unixsocketperm", "700"):
            with BlobCache.from_url(f"unix://{socket}?db=1&prefix=sock") as cache:
                cache.put(digest_of(1), "/over/socket")
                assert cache.get(digest_of(1)) == "/over/socket"
            with BlobCache.from_url(f"unix://{socket}?db=0&prefix=sock") as other_db:
                assert list(other_db.entries()) == []
