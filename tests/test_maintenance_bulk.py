"""import and migrate through the bulk calls: batches, and the all-or-nothing line kept."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from blobcache.maintenance import export_jsonl, import_jsonl, migrate
from tests.helpers import (
    ALL_BACKENDS,
    DYNAMODB_BACKENDS,
    CacheFactory,
    assert_invariants,
    backend_of,
    digest_of,
    put_raw,
    read_raw,
)


class TestImportInBatches:
    @pytest.mark.parametrize("kind", ALL_BACKENDS)
    def test_round_trip_across_batches(
        self, make_cache: CacheFactory, kind: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An export imported in batches of 4 paths reproduces the source exactly, and the
        paths reach the backend through put_many, never more than a batch at a time."""
        source = make_cache(kind)
        for n in range(10):
            for copy in ("m", "a", "z")[: 1 + n % 3]:
                source.put(digest_of(n), f"/r/{copy}/{n}")
        out = io.StringIO()
        export_jsonl(source, out)

        target = make_cache(kind, batch_size=4)
        backend = backend_of(target)
        real, batches = backend.put_many, []

        def counting(pairs: Any) -> None:
            batches.append(len(pairs))
            real(pairs)

        monkeypatch.setattr(backend, "put_many", counting)
        report = import_jsonl(target, io.StringIO(out.getvalue()))
        assert (report.lines, report.imported, report.bad_line_count) == (10, 10, 0)
        assert read_raw(target) == read_raw(source)
        assert sum(batches) == 19
        assert max(batches) <= 4

    @pytest.mark.parametrize("kind", DYNAMODB_BACKENDS[:1])
    def test_line_past_the_item_limit_in_a_batch(self, make_cache: CacheFactory, kind: str) -> None:
        """A line that fills its item up, amid good lines of the same batch, is reported and
        leaves nothing (paths its item had before stay); every other line goes in."""
        cache = make_cache(kind)
        paths = [f"/r/{n:03d}/" + "x" * 3900 for n in range(120)]
        cache.put(digest_of(1), paths[5])  # already there: must survive the take-back
        lines = [
            json.dumps({"digest": digest_of(2), "paths": ["/r/two", "/r/two-b"]}),
            json.dumps({"digest": digest_of(1), "paths": paths}),
            "{not json",
            json.dumps({"digest": digest_of(3), "paths": ["/r/three"]}),
            json.dumps({"digest": digest_of(1), "paths": [paths[5], "/r/short"]}),
        ]
        report = import_jsonl(cache, io.StringIO("\n".join(lines) + "\n"))
        assert [bad.line for bad in report.bad_lines] == [2, 3]
        assert "400 KB" in report.bad_lines[0].error
        assert (report.imported, report.bad_line_count) == (3, 2)
        assert cache.get_all(digest_of(1)) == [paths[5], "/r/short"]
        assert cache.get_all(digest_of(2)) == ["/r/two", "/r/two-b"]
        assert cache.get(digest_of(3)) == "/r/three"
        assert_invariants(read_raw(cache))


class TestMigrateInBatches:
    @pytest.mark.parametrize("kind", DYNAMODB_BACKENDS)
    def test_legacy_items_across_batches_and_workers(
        self, make_cache: CacheFactory, kind: str
    ) -> None:
        """Legacy items converted 7 at a time on 4 workers: each exactly once, the smallest
        legacy path the original; current items are left alone."""
        cache = make_cache(kind, batch_size=7, workers=4)
        for n in range(30):
            put_raw(cache, digest_of(n), BlobPath={f"/legacy/{n}/b", f"/legacy/{n}/a"})
        cache.put(digest_of(99), "/current")
        report = migrate(cache)
        assert (report.items, report.migrated, report.raced) == (31, 30, 0)
        stored = read_raw(cache)
        assert_invariants(stored)
        assert stored[digest_of(7)] == ("/legacy/7/a", frozenset({"/legacy/7/a", "/legacy/7/b"}))
        assert stored[digest_of(99)] == ("/current", frozenset({"/current"}))
        assert migrate(cache).migrated == 0
