"""Upload a blob under a name; ask where a digest lives."""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from blobcache import CacheMiss, InvalidDigest, InvalidPath
from blobcache.contrib.django import acache, caches


@csrf_exempt  # an API for tools such as curl, not a form
@require_http_methods(["PUT"])
def upload(request: HttpRequest, name: str) -> JsonResponse:
    """Store the body under ``name`` unless the same content is already stored.

    The first upload of some content writes it and becomes the digest's
    original; a later upload of the same content under another name writes
    nothing and is recorded as one more path of that digest.
    """
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts:
        return JsonResponse({"error": f"name {name!r} must stay inside the store"}, status=400)
    data = request.body
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    cache = caches["default"]
    target = settings.BLOBSHELF_STORE / relative
    try:
        original = cache.get(digest)
        stored = False
    except CacheMiss:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        original, stored = str(target), True
    try:
        cache.put(digest, str(target))
    except InvalidPath as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse(
        {"digest": digest, "path": str(target), "stored": stored, "original": original},
        status=201 if stored else 200,
    )


@require_GET
def locate(request: HttpRequest, digest: str) -> JsonResponse:
    """Where ``digest`` lives: its original and every path recorded for it."""
    try:
        paths = caches["default"].get_all(digest)
    except InvalidDigest as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except CacheMiss:
        return JsonResponse({"error": f"{digest} was never uploaded"}, status=404)
    return JsonResponse({"digest": digest, "original": paths[0], "paths": paths})


async def alocate(request: HttpRequest, digest: str) -> HttpResponse:
    """`locate` as an async view: the cache call runs off the event loop.

    No ``require_GET``: Django's view decorators take async views only from 5.0 on.
    """
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    try:
        paths = await acache.get_all(digest)
    except InvalidDigest as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except CacheMiss:
        return JsonResponse({"error": f"{digest} was never uploaded"}, status=404)
    return JsonResponse({"digest": digest, "original": paths[0], "paths": paths})
