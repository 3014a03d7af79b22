"""Maintenance on Redis: stats without DynamoDB's headroom, verify of zot's leftovers,
export/import between backends, the command line on a redis:// URL."""

from __future__ import annotations

import io
import json

import redis
from click.testing import CliRunner

from blobcache import BlobCache, maintenance
from blobcache.cli import cli
from tests.helpers import CacheFactory, backend_of, digest_of, read_raw, url_of

D, E = digest_of(1), digest_of(2)


class TestStats:
    def test_no_headroom_on_redis(self, rcache: BlobCache) -> None:
        """stats counts as on any backend but reports no 400 KB limit or headroom."""
        rcache.put(D, "/a")
        rcache.put(D, "/b")
        rcache.put(E, "/e")
        report = maintenance.stats(rcache)
        assert (report.digests, report.paths) == (2, 3)
        assert report.histogram == ((1, 1), (2, 1))
        assert report.limit_bytes is None
        assert [(item.digest, item.headroom_bytes) for item in report.largest] == [
            (D, None),
            (E, None),
        ]

    def test_cli_stats_shows_no_limit(self, rcache: BlobCache) -> None:
        """The text report names no DynamoDB limit; --json says null."""
        rcache.put(D, "/a")
        runner = CliRunner()
        text = runner.invoke(cli, ["--url", url_of(rcache), "stats"])
        assert text.exit_code == 0, text.output
        assert "1 digest, 1 path" in text.output
        assert "DynamoDB" not in text.output
        assert "headroom" not in text.output
        as_json = json.loads(
            runner.invoke(cli, ["--url", url_of(rcache), "stats", "--json"]).output
        )
        assert as_json["limit_bytes"] is None
        assert as_json["largest"][0]["headroom_bytes"] is None

    def test_sqlite_keeps_its_headroom(self, make_cache: CacheFactory) -> None:
        """The other backends still measure against DynamoDB's limit."""
        cache = make_cache("sqlite")
        cache.put(D, "/a")
        report = maintenance.stats(cache)
        assert report.limit_bytes == 400 * 1024
        assert report.largest[0].headroom_bytes == 400 * 1024 - report.largest[0].bytes


class TestVerify:
    def test_finds_what_zot_can_leave(self, rcache: BlobCache, client: redis.Redis) -> None:
        """A set without original and an original outside its set are reported."""
        backend = backend_of(rcache)
        client.sadd(backend.paths_key(D), "/no-original")
        client.hset(backend.originals_key, E, "/outside")
        client.sadd(backend.paths_key(E), "/inside")
        report = maintenance.verify(rcache)
        kinds = sorted((finding.kind, finding.digest) for finding in report.findings)
        assert ("missing_original", D) in kinds
        assert ("original_not_in_paths", E) in kinds
        assert report.items == 2


class TestMoving:
    def test_export_from_sqlite_import_into_redis(
        self, make_cache: CacheFactory, rcache: BlobCache
    ) -> None:
        """A SQLite cache moves to Redis through JSON Lines, originals kept."""
        source = make_cache("sqlite")
        for n in range(25):
            source.put(digest_of(n), f"/o/{n}")
            source.put(digest_of(n), f"/a/{n}")
        stream = io.StringIO()
        assert maintenance.export_jsonl(source, stream).entries == 25
        report = maintenance.import_jsonl(rcache, stream.getvalue().splitlines())
        assert report.imported == 25
        assert {entry.digest: entry.original for entry in rcache.entries()} == {
            digest_of(n): f"/o/{n}" for n in range(25)
        }
        assert read_raw(rcache)[digest_of(3)] == ("/o/3", frozenset({"/o/3", "/a/3"}))

    def test_cli_export_and_import_on_redis_urls(
        self, rcache: BlobCache, make_cache: CacheFactory
    ) -> None:
        """blobcache export and import take redis:// URLs."""
        rcache.put(D, "/d")
        target = make_cache("redis")
        runner = CliRunner()
        exported = runner.invoke(cli, ["--url", url_of(rcache), "export"])
        assert exported.exit_code == 0
        imported = runner.invoke(cli, ["--url", url_of(target), "import"], input=exported.stdout)
        assert imported.exit_code == 0, imported.output
        assert target.get_all(D) == ["/d"]
