"""A zot-shaped bucket on moto's server, with canaries that no command may touch."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import botocore.session
import pytest

from blobcache import BlobCache
from blobcache.maintenance import S3Location, parse_location
from blobcache.testing import LocalBucket
from tests.helpers import CacheFactory

L1 = b"layer one " * 90
L2 = b"layer two " * 45
C1 = b'{"config": true}'
L3 = b"lost layer"
S5 = b"a sha512 blob"
EMPTY = b""

Snapshot = dict[tuple[str, str], tuple[bytes, str]]


def sha256(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def sha512(content: bytes) -> str:
    return "sha512:" + hashlib.sha512(content).hexdigest()


def blob_key(repository: str, digest: str) -> str:
    algorithm, _, encoded = digest.partition(":")
    return f"{repository}/blobs/{algorithm}/{encoded}"


@dataclass
class ZotBucket:
    """The fixture's bucket: ``url`` is the location ``s3://NAME/base``."""

    bucket: LocalBucket
    other: str
    url: str
    client: Any
    canaries: Snapshot = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.bucket.name

    def put(self, key: str, body: bytes, bucket: str | None = None) -> None:
        self.client.put_object(Bucket=bucket or self.name, Key=key, Body=body)

    def read(self, key: str) -> bytes | None:
        try:
            body: bytes = self.client.get_object(Bucket=self.name, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        return body

    def snapshot(self, bucket: str | None = None, prefix: str = "") -> Snapshot:
        """Every object (of a bucket, under a prefix): bytes and ETag."""
        found: Snapshot = {}
        name = bucket or self.name
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=name, Prefix=prefix
        ):
            for raw in page.get("Contents", ()):
                body = self.client.get_object(Bucket=name, Key=raw["Key"])["Body"].read()
                found[(name, raw["Key"])] = (body, raw["ETag"])
        return found

    def canary_state(self) -> Snapshot:
        state = self.snapshot(self.other)
        for prefix in ("base2/", "basement/", "zot/"):
            state.update(self.snapshot(prefix=prefix))
        return state

    def assert_canaries_untouched(self) -> None:
        assert self.canary_state() == self.canaries

    def location(self, **hooks: Callable[..., Any]) -> S3Location:
        """The parsed location, its client built from a session with ``hooks`` registered."""
        session = botocore.session.get_session()
        for event, handler in hooks.items():
            session.register(event.replace("__", "."), handler)
        parsed = parse_location(self.url)
        assert isinstance(parsed, S3Location)
        return S3Location(
            parsed.bucket,
            parsed.root_directory,
            region=parsed.region,
            endpoint_url=parsed.endpoint_url,
            session=session,
        )


#: The fixture's blobs under the root directory ``base``: key -> bytes.
BLOBS = {
    # A placeholder sorting before the content of its digest: never the original.
    blob_key("base/zot/apps", sha256(L1)): EMPTY,
    blob_key("base/zot/library/alpine", sha256(L1)): L1,
    blob_key("base/zot/library/busybox", sha256(L1)): L1,
    blob_key("base/zot/library/alpine", sha256(C1)): C1,
    blob_key("base/zot/library/busybox", sha256(L2)): L2,
    # An OCI image layout beside the registry, sharing a layer.
    blob_key("base/oci/tool", sha256(L2)): L2,
    # The empty blob: content of size 0, twice.
    blob_key("base/zot/apps", sha256(EMPTY)): EMPTY,
    blob_key("base/zot/library/alpine", sha256(EMPTY)): EMPTY,
    # A digest with no content anywhere: only a placeholder.
    blob_key("base/zot/team/web", sha256(L3)): EMPTY,
    blob_key("base/zot/team/web", sha512(S5)): S5,
}
OTHER_FILES = {
    "base/zot/library/alpine/index.json": b'{"schemaVersion": 2}',
    "base/zot/library/alpine/oci-layout": b'{"imageLayoutVersion": "1.0.0"}',
    "base/oci/tool/oci-layout": b'{"imageLayoutVersion": "1.0.0"}',
    "base/zot/library/alpine/blobs/sha256/not-a-digest": b"junk",
}
CANARIES = {
    blob_key("base2/zot/library/alpine", sha256(L1)): L1,
    blob_key("base2/zot/library/busybox", sha256(L1)): L1,
    blob_key("base2/zot/apps", sha256(L1)): EMPTY,
    blob_key("basement/zot/library/alpine", sha256(L1)): L1,
    blob_key("zot/library/alpine", sha256(L1)): L1,
    blob_key("zot/library/busybox", sha256(L1)): EMPTY,
}


def path_of(key: str) -> str:
    """The cache path of a key under ``base/``."""
    assert key.startswith("base/")
    return key[len("base") :]


@pytest.fixture
def zot(blobcache_s3: LocalBucket) -> Iterator[ZotBucket]:
    """A zot registry's bucket under root directory ``base``, with canaries beside it."""
    client = blobcache_s3.client
    other = f"{blobcache_s3.name}-other"
    client.create_bucket(Bucket=other)
    bucket = ZotBucket(blobcache_s3, other, blobcache_s3.url("base"), client)
    writes: list[tuple[str, bytes, str | None]] = [
        (key, body, None) for key, body in {**BLOBS, **OTHER_FILES, **CANARIES}.items()
    ]
    writes += [(key, body, other) for key, body in {**BLOBS, **CANARIES}.items()]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda write: bucket.put(*write), writes))
    bucket.canaries = bucket.canary_state()
    yield bucket
    bucket.assert_canaries_untouched()


@pytest.fixture
def cache(make_cache: CacheFactory) -> BlobCache:
    """A fresh SQLite cache."""
    return make_cache("sqlite")


def fresh_name() -> str:
    return f"missing-{uuid.uuid4().hex}"
