"""Logging: structlog events routed to stdlib ``blobcache.*`` loggers, never configured by us."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import structlog

from blobcache import BlobCache
from tests.helpers import CacheFactory, backend_of, digest_of

D = digest_of(1)


class TestEvents:
    def test_writes_log_at_info_with_fields(self, cache: BlobCache, tmp_path: Path) -> None:
        """put and delete log blob_put, blob_deleted, original_promoted and item_removed at
        INFO, bound with digest, path and the backend (and table on DynamoDB)."""
        with _capture("blobcache", logging.INFO) as records:
            cache.put(D, "/a")
            cache.put(D, "/b")
            cache.delete(D, "/a")
            cache.delete(D, "/b")
        got = [(r.levelno, fields(r)) for r in records]
        assert [fields["event"] for _, fields in got] == [
            "blob_put",
            "blob_put",
            "blob_deleted",
            "original_promoted",
            "blob_deleted",
            "item_removed",
        ]
        assert all(level == logging.INFO for level, _ in got)
        assert (got[0][1]["digest"], got[0][1]["path"]) == (D, "/a")
        assert got[3][1]["path"] == "/b"
        assert all(fields["backend"] == cache.name for _, fields in got)
        if cache.name == "dynamodb":
            assert all(fields["table"] == backend_of(cache).target for _, fields in got)
        assert {r.name for r in records} == {f"blobcache.{cache.name}"}

    def test_reads_log_at_debug_only(self, cache: BlobCache) -> None:
        """get, get_all and has log at DEBUG: nothing at INFO."""
        cache.put(D, "/a")
        with _capture("blobcache", logging.INFO) as info:
            cache.get(D)
            cache.has(D, "/a")
        assert info == []
        with _capture("blobcache", logging.DEBUG) as debug:
            cache.get_all(D)
            cache.has(D, "/a")
        assert [fields(r)["event"] for r in debug] == ["blob_read", "blob_checked"]

    def test_table_created_is_logged(self, make_cache: CacheFactory) -> None:
        """create_table logs table_created when it creates, and not when it exists."""
        cache = make_cache("sqlite", create=False)
        with _capture("blobcache", logging.INFO) as records:
            cache.create_table()
            cache.create_table()
        assert [fields(r)["event"] for r in records] == ["table_created"]

    def test_plain_formatter_renders_key_values(self, cache: BlobCache) -> None:
        """With a plain logging.Formatter an event reads as 'event key=value ...'."""
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        with _capture("blobcache", logging.INFO, handler):
            cache.put(D, "/a")
        line = stream.getvalue().strip()
        assert line.startswith("INFO blob_put ")
        assert f"digest='{D}'" in line
        assert "path='/a'" in line

    def test_processor_formatter_gets_structured_fields(self, cache: BlobCache) -> None:
        """An application rendering through structlog's ProcessorFormatter gets every field."""
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(processor=structlog.processors.JSONRenderer())
        )
        with _capture("blobcache", logging.INFO, handler):
            cache.put(D, "/a")
        event = json.loads(stream.getvalue())
        assert event["event"] == "blob_put"
        assert (event["digest"], event["path"], event["backend"]) == (D, "/a", cache.name)


class TestQuietByDefault:
    def test_unconfigured_application_gets_no_output(self, tmp_path: Path) -> None:
        """An application that configured neither logging nor structlog sees nothing on
        stdout or stderr from normal use."""
        script = (
            "from blobcache import BlobCache\n"
            f"c = BlobCache.from_url('sqlite:///{tmp_path}/q.db')\n"
            f"c.create_table(); c.put('{D}', '/a'); c.get('{D}'); c.delete('{D}', '/a')\n"
        )
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert (done.stdout, done.stderr) == ("", "")

    def test_globally_configured_structlog_does_not_capture_us(self, tmp_path: Path) -> None:
        """Even if the application points structlog's default logger at stdout, blobcache's
        events go to stdlib logging, not to stdout."""
        script = (
            "import structlog\n"
            "structlog.configure(logger_factory=structlog.PrintLoggerFactory())\n"
            "from blobcache import BlobCache\n"
            f"c = BlobCache.from_url('sqlite:///{tmp_path}/q.db')\n"
            f"c.put('{D}', '/a')\n"
        )
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout == ""

    def test_no_secret_in_any_log_line(
        self, make_cache: CacheFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With DEBUG on, no blobcache log line carries the AWS secret key."""
        secret = "Zm9vYmFyc2VjcmV0LW5ldmVyLWxvZ2dlZA"
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
        stream = io.StringIO()
        with _capture("blobcache", logging.DEBUG, logging.StreamHandler(stream)):
            cache = make_cache("dynalite")
            cache.put(D, "/a")
            cache.get_all(D)
            cache.delete(D, "/a")
        assert "blob_put" in stream.getvalue()
        assert secret not in stream.getvalue()


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structlog event dict a blobcache record carries as its message."""
    assert isinstance(record.msg, dict)
    return dict(record.msg)


class _capture:
    """Attach a handler to a logger for the duration of a block; yields its records."""

    def __init__(self, name: str, level: int, handler: logging.Handler | None = None) -> None:
        self.logger = logging.getLogger(name)
        self.level = level
        self.records: list[logging.LogRecord] = []
        self.extra = handler

    def __enter__(self) -> list[logging.LogRecord]:
        self.saved = self.logger.level
        self.logger.setLevel(self.level)
        self.collector = _Collector(self.records)
        self.logger.addHandler(self.collector)
        if self.extra is not None:
            self.logger.addHandler(self.extra)
        return self.records

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self.collector)
        if self.extra is not None:
            self.logger.removeHandler(self.extra)
        self.logger.setLevel(self.saved)


class _Collector(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
