"""blobshelf for Flask: store each uploaded blob once, record copies as paths, locate digests.

Run it with ``flask --app blobshelf_app run`` in this directory; see README.md.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from flask import Flask, current_app, request

from blobcache import CacheMiss, InvalidDigest, InvalidPath
from blobcache.contrib.flask import FlaskBlobCache

HERE = Path(__file__).resolve().parent
blobcache = FlaskBlobCache()


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The application factory: defaults, then the environment, then ``config``."""
    app = Flask(__name__)
    store = Path(os.environ.get("BLOBSHELF_STORE") or HERE / "store")
    app.config.update(
        BLOBSHELF_STORE=store,
        BLOBCACHE_URL=os.environ.get("BLOBCACHE_URL") or f"sqlite:///{HERE / 'blobcache.db'}",
        BLOBCACHE_ROOT=store,
    )
    app.config.update(config or {})
    # init_app checks that the root exists, so the store is made before it.
    Path(app.config["BLOBSHELF_STORE"]).mkdir(parents=True, exist_ok=True)
    blobcache.init_app(app)
    app.add_url_rule("/files/<path:name>", view_func=upload, methods=["PUT"])
    app.add_url_rule("/blobs/<digest>", view_func=locate, methods=["GET"])
    return app


def upload(name: str) -> tuple[dict[str, Any], int]:
    """Store the body under ``name`` unless the same content is already stored.

    The first upload of some content writes it and becomes the digest's
    original; a later upload of the same content under another name writes
    nothing and is recorded as one more path of that digest.
    """
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts:
        return {"error": f"name {name!r} must stay inside the store"}, 400
    data = request.get_data()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    target = Path(current_app.config["BLOBSHELF_STORE"]) / relative
    try:
        original = blobcache.cache.get(digest)
        stored = False
    except CacheMiss:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        original, stored = str(target), True
    try:
        blobcache.cache.put(digest, str(target))
    except InvalidPath as exc:
        return {"error": str(exc)}, 400
    body = {"digest": digest, "path": str(target), "stored": stored, "original": original}
    return body, 201 if stored else 200


def locate(digest: str) -> tuple[dict[str, Any], int]:
    """Where ``digest`` lives: its original and every path recorded for it."""
    try:
        paths = blobcache.cache.get_all(digest)
    except InvalidDigest as exc:
        return {"error": str(exc)}, 400
    except CacheMiss:
        return {"error": f"{digest} was never uploaded"}, 404
    return {"digest": digest, "original": paths[0], "paths": paths}, 200
