"""stats, and JSON Lines export and import."""

from __future__ import annotations

import io
import json

from blobcache import BlobCache
from blobcache.maintenance import export_jsonl, import_jsonl, stats
from blobcache.maintenance._stored import MAX_ITEM_BYTES
from tests.helpers import CacheFactory, digest_of, read_raw


class TestStats:
    def test_counts_histogram_and_largest(self, cache: BlobCache) -> None:
        """Digests, paths, copies per digest and the largest items with their headroom."""
        for n in range(3):
            cache.put(digest_of(1), f"/r/{n}")
        cache.put(digest_of(2), "/r/a")
        cache.put(digest_of(3), "/r/b")

        report = stats(cache, top=1)

        assert (report.digests, report.paths) == (3, 5)
        assert report.histogram == ((1, 2), (3, 1))
        (largest,) = report.largest
        size = len("Digest") + 71 + len("OriginalBlobPath") + 4 + len("DuplicateBlobPath") + 12
        assert (largest.digest, largest.paths, largest.bytes) == (digest_of(1), 3, size)
        # zot's Redis layout has no item limit, so no headroom there.
        headroom = None if cache.name == "redis" else MAX_ITEM_BYTES - size
        assert largest.headroom_bytes == headroom

    def test_empty_cache(self, make_cache: CacheFactory) -> None:
        """An empty cache counts zero everywhere."""
        report = stats(make_cache("sqlite"))
        assert (report.digests, report.paths, report.histogram, report.largest) == (0, 0, (), ())


class TestJsonLines:
    def test_round_trip(self, cache: BlobCache, make_cache: CacheFactory) -> None:
        """An export imported into an empty cache reproduces every item, originals included."""
        cache.put(digest_of(1), "/r/z")
        cache.put(digest_of(1), "/r/a")
        cache.put(digest_of(2), "/r/b")
        out = io.StringIO()
        assert export_jsonl(cache, out).entries == 2
        lines = out.getvalue().splitlines()
        assert sorted(json.loads(line)["digest"] for line in lines) == [digest_of(1), digest_of(2)]

        target = make_cache("sqlite")
        report = import_jsonl(target, io.StringIO(out.getvalue()))
        assert (report.lines, report.imported, report.bad_line_count) == (2, 2, 0)
        assert read_raw(target) == read_raw(cache)
        import_jsonl(target, io.StringIO(out.getvalue()))
        assert read_raw(target) == read_raw(cache)

    def test_bad_lines_are_reported_and_write_nothing(self, make_cache: CacheFactory) -> None:
        """Each bad line is named by number; nothing from it is written; good lines go in."""
        cache = make_cache("sqlite")
        good = {"digest": digest_of(1), "original": "/r/a", "paths": ["/r/a"]}
        lines = [
            json.dumps(good),
            "{not json",
            json.dumps({"digest": "sha256:XYZ", "original": "/r/b", "paths": ["/r/b"]}),
            json.dumps({"digest": digest_of(2), "original": "/r/c", "paths": ["/r/c", ""]}),
            json.dumps({"digest": digest_of(3), "original": "/r/x", "paths": ["/r/d"]}),
            "",
            json.dumps([1, 2]),
        ]

        report = import_jsonl(cache, io.StringIO("\n".join(lines) + "\n"))

        assert [bad.line for bad in report.bad_lines] == [2, 3, 4, 5, 7]
        assert report.bad_line_count == 5
        assert "not JSON" in report.bad_lines[0].error
        assert "invalid digest" in report.bad_lines[1].error
        assert read_raw(cache) == {digest_of(1): ("/r/a", frozenset({"/r/a"}))}
