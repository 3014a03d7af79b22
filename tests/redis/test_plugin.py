"""The pytest plugin's Redis side: fresh caches on a local redis-server, cleaned up after."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from blobcache import BlobCache
from blobcache.testing import REDIS_INSTALL_HINT, RedisServer, redis_server
from tests.helpers import digest_of, read_raw


class TestRedisFixtures:
    def test_blobcache_redis_is_fresh_and_shares_its_url(
        self, blobcache_redis: BlobCache, blobcache_redis_url: str
    ) -> None:
        """The cache is empty and writable; a cache opened on the URL sees the same items."""
        assert blobcache_redis.name == "redis"
        assert list(blobcache_redis.entries()) == []
        blobcache_redis.put(digest_of(1), "/a")
        with BlobCache.from_url(blobcache_redis_url) as again:
            assert again.get(digest_of(1)) == "/a"
        assert read_raw(blobcache_redis) == {digest_of(1): ("/a", frozenset({"/a"}))}

    def test_each_cache_has_its_own_prefix(
        self, blobcache_redis_url: str, blobcache_redis_server: RedisServer
    ) -> None:
        """Tests share the session's server but never each other's keys."""
        assert blobcache_redis_url.startswith(blobcache_redis_server.url)
        assert "prefix=test-" in blobcache_redis_url


class TestLauncher:
    def test_missing_redis_server_says_how_to_install_it(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without redis-server on PATH the error names the package to install."""
        monkeypatch.setenv("PATH", str(tmp_path))
        with pytest.raises(RuntimeError, match="apt-get install redis-server") as caught:
            RedisServer(tmp_path)
        assert str(caught.value) == REDIS_INSTALL_HINT

    def test_the_server_and_its_directory_go_afterwards(self) -> None:
        """redis_server() stops the process and removes its temporary directory."""
        with redis_server() as server:
            process, directory = server.process, server.directory
            assert process is not None
            assert process.poll() is None
            assert directory.is_dir()
        assert process.poll() is not None
        assert not directory.exists()

    def test_importing_the_plugin_loads_no_redis_client(self) -> None:
        """blobcache.testing imports redis-py only when a test uses a Redis cache."""
        probe = "import sys, blobcache.testing; print('redis' in sys.modules)"
        result = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == "False"
