"""The public surface: what ``blobcache`` exports, and the types mypy sees for it.

The ``assert_type`` calls are checked by ``mypy --strict`` (run by ``make typing``),
so a change to a public signature fails the type check as well as the test.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import assert_type

import pytest

import blobcache
from blobcache import BlobCache, BlobEntry, BlobRecord, Options


class TestExports:
    def test_all_is_sorted_and_complete(self) -> None:
        """__all__ lists exactly the public names, sorted, and each one resolves."""
        assert blobcache.__all__ == sorted(blobcache.__all__)
        for name in blobcache.__all__:
            assert getattr(blobcache, name) is not None

    @pytest.mark.parametrize(
        ("statement", "absent"),
        [
            # The SQLite side never pays for PynamoDB and botocore.
            ("from blobcache import BlobCache", ["pynamodb", "botocore"]),
            # The pytest plugin, loaded in every run of every project that installs
            # blobcache, loads neither those nor structlog.
            ("import blobcache.testing", ["pynamodb", "botocore", "structlog"]),
        ],
    )
    def test_imports_stay_light(self, statement: str, absent: list[str]) -> None:
        """Heavy dependencies load only when the code that needs them runs."""
        script = f"import sys\n{statement}\nprint(*[name in sys.modules for name in {absent!r}])"
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["False"] * len(absent)

    def test_public_types(self, tmp_path: Path) -> None:
        """The documented signatures hold, at run time and for mypy."""
        cache = BlobCache.from_url(f"sqlite:///{tmp_path / 'api.db'}", root=tmp_path)
        digest = "sha256:" + "0" * 64
        assert_type(cache.name, str)
        assert_type(cache.uses_relative_paths, bool)
        assert_type(cache.options, Options)
        assert_type(cache.create_table(), None)
        assert_type(cache.put(digest, "a"), None)
        assert_type(cache.get(digest), str)
        assert_type(cache.get_all(digest), list[str])
        assert_type(cache.has(digest, "a"), bool)
        entries = cache.entries()
        assert_type(entries, Iterator[BlobEntry])
        (entry,) = entries
        assert_type(entry.paths, frozenset[str])
        assert entry == BlobEntry(digest, str(tmp_path / "a"), frozenset({str(tmp_path / "a")}))
        assert_type(cache.delete(digest, "a"), None)
        assert issubclass(BlobRecord.bind("t", region="r"), BlobRecord)
        cache.close()
