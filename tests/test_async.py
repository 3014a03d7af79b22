"""AsyncBlobCache: the API as coroutines, served by a real ASGI server (uvicorn)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from blobcache import AsyncBlobCache, BlobCache, CacheMiss, InvalidDigest
from blobcache.testing import free_port
from tests.helpers import digest_of

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
DEADLINE = 60.0


class TestAsyncBlobCache:
    def test_every_call(self, blobcache_sqlite_url: str) -> None:
        """Each coroutine does what its BlobCache call does, errors included."""

        async def session() -> None:
            async with AsyncBlobCache.from_url(blobcache_sqlite_url) as cache:
                await cache.create_table()
                for n in range(300):  # more than one batch of entries()
                    await cache.put(digest_of(n), f"/r/{n}")
                await cache.put(digest_of(1), "/r/copy")
                assert await cache.get(digest_of(1)) == "/r/1"
                assert await cache.get_all(digest_of(1)) == ["/r/1", "/r/copy"]
                assert await cache.has(digest_of(1), "/r/copy")
                await cache.delete(digest_of(1), "/r/1")
                assert await cache.get(digest_of(1)) == "/r/copy"
                assert len([entry async for entry in cache.entries()]) == 300
                await cache.put_many([(digest_of(500), "/r/500"), (digest_of(501), "/r/501")])
                found = await cache.get_many([digest_of(500), digest_of(501), digest_of(502)])
                assert found == {digest_of(500): "/r/500", digest_of(501): "/r/501"}
                await cache.delete_many([(digest_of(500), "/r/500"), (digest_of(501), "/r/501")])
                assert await cache.get_many([digest_of(500), digest_of(501)]) == {}
                with pytest.raises(CacheMiss):
                    await cache.get(digest_of(999))
                with pytest.raises(InvalidDigest):
                    await cache.put("sha256:nope", "/r/x")
                assert cache.name == "sqlite"
                assert not cache.uses_relative_paths

        asyncio.run(session())
        with BlobCache.from_url(blobcache_sqlite_url) as cache:
            assert cache.get_all(digest_of(1)) == ["/r/copy"]


class Served:
    """An ASGI app run by uvicorn on a free loopback port, in a thread."""

    def __init__(self, app: ASGIApp) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + DEADLINE
        while not self.server.started:  # a bounded wait for the socket to listen
            assert self.thread.is_alive(), "uvicorn exited"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(DEADLINE)

    def get(self, path: str, timeout: float = DEADLINE) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}{path}", timeout=timeout
            ) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()


async def reply(send: Send, body: bytes, status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


class TestUnderAnASGIServer:
    @pytest.fixture
    def database(self, tmp_path: Path) -> Path:
        path = tmp_path / "served.db"
        with BlobCache.from_url(f"sqlite:///{path}") as cache:
            cache.create_table()
        return path

    def test_a_blocked_call_does_not_block_the_event_loop(self, database: Path) -> None:
        """While a put waits for SQLite's write lock, the same server answers other requests.

        The test holds the write lock itself, so the put cannot finish until it lets go:
        a ping answered meanwhile proves the wait happens off the event loop.
        """
        cache = AsyncBlobCache.from_url(f"sqlite:///{database}", busy_timeout=DEADLINE * 2)
        put_started = threading.Event()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                return
            if scope["path"] == "/put":
                put_started.set()
                await cache.put(digest_of(1), "/r/a")
                await reply(send, b"stored")
            else:
                await reply(send, b"pong")

        holder = sqlite3.connect(database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        answers: list[tuple[int, bytes]] = []
        with Served(app) as served:
            putter = threading.Thread(target=lambda: answers.append(served.get("/put")))
            putter.start()
            assert put_started.wait(DEADLINE)
            assert served.get("/ping") == (200, b"pong")
            assert putter.is_alive()  # still waiting for the lock the test holds
            holder.execute("COMMIT")
            putter.join(DEADLINE)
        holder.close()
        assert answers == [(200, b"stored")]
        with BlobCache.from_url(f"sqlite:///{database}") as check:
            assert check.get(digest_of(1)) == "/r/a"

    def test_django_async_view(self, database: Path) -> None:
        """The Django example's async view (acache) answers under uvicorn."""
        from tests.test_contrib_django import setup_django

        setup_django()
        from django.core.asgi import get_asgi_application
        from django.test import override_settings

        with BlobCache.from_url(f"sqlite:///{database}") as cache:
            cache.put(digest_of(1), "/r/a")
        configured = {"default": {"URL": f"sqlite:///{database}"}}
        with override_settings(BLOBCACHE=configured), Served(get_asgi_application()) as served:
            status, body = served.get(f"/async/blobs/{digest_of(1)}")
            missed, _ = served.get(f"/async/blobs/{digest_of(2)}")
        assert (status, json.loads(body)["paths"]) == (200, ["/r/a"])
        assert missed == 404
