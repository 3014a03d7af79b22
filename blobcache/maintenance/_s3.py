"""The objects of an `S3Location`, through botocore's S3 client, every error translated."""

from __future__ import annotations

import hashlib
import queue
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import botocore.config
import botocore.session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from blobcache._errors import BlobCacheError, ConfigurationError, StoreUnavailable, shorten
from blobcache._threads import interleave
from blobcache.maintenance._location import S3Location

_CHUNK = 1 << 20
#: How many ``/`` levels below the root directory a concurrent listing looks for fan-out.
_SPLIT_DEPTH = 4
#: Threads listing at once, and pages (of up to 1,000 objects) queued between them and
#: the consumer: at most about their sum in memory, whatever the bucket's size.
_LISTERS = 4
_QUEUED_PAGES = 2
#: The largest object one CopyObject request can copy.
MAX_COPY_BYTES = 5 * 1024**3
_MISSING = {"404", "NoSuchKey", "NotFound"}
_CHANGED = {"412", "PreconditionFailed", "409", "ConditionalRequestConflict"}
_DENIED = {
    "403",
    "AccessDenied",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AccountProblem",
}
_BUSY = {"500", "503", "InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout"}
#: The IAM action each request needs, for the message when it is refused.
_ACTIONS = {
    "HeadBucket": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "HeadObject": "s3:GetObject",
    "GetObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CopyObject": "s3:GetObject and s3:PutObject",
}
Outcome = Literal["done", "changed", "missing"]


@dataclass(frozen=True, slots=True)
class S3Object:
    """An object as a listing or a HeadObject shows it."""

    key: str
    size: int
    etag: str


class Bucket:
    """The objects under one `S3Location`; refuses any key outside it."""

    def __init__(self, location: S3Location, *, workers: int = 8) -> None:
        self.location = location
        session = location.session or botocore.session.get_session()
        config = botocore.config.Config(
            connect_timeout=10,
            read_timeout=60,
            retries={"max_attempts": 5, "mode": "standard"},
            max_pool_connections=max(10, 2 * workers),
            s3={"addressing_style": location.addressing_style},
        )
        try:
            self.client: Any = session.create_client(
                "s3",
                region_name=location.region,
                endpoint_url=location.endpoint_url,
                config=config,
            )
        except BotoCoreError as exc:
            raise ConfigurationError(f"cannot set up an S3 client for {location}: {exc}") from exc
        # botocore before late 2024 has no If-Match on PutObject: then only the re-check holds.
        put = self.client.meta.service_model.operation_model("PutObject")
        self.conditional_put = "IfMatch" in put.input_shape.members

    def check(self) -> None:
        """Fail clearly now if the bucket is missing or these credentials may not list it."""
        self._call("HeadBucket", None, Bucket=self.location.bucket)

    def objects(self, workers: int = 1) -> Iterator[S3Object]:
        """Every object under the root directory, page by page.

        With one worker, in key order. With more, the root directory is split
        at its first ``/`` levels (down to where it fans out, such as the
        repositories) and the parts are listed concurrently, pages handed
        over through a bounded queue: the order is then arbitrary, and memory
        stays bounded by a few pages (queued, and one per lister thread).
        """
        if workers <= 1:
            for page, _ in self._pages(self.location.prefix, None):
                yield from page
            return
        # Down to where the listing fans out; objects met on the way are streamed.
        prefixes = [self.location.prefix]
        for _ in range(_SPLIT_DEPTH):
            if len(prefixes) != 1:
                break
            below: list[str] = []
            for page, common in self._pages(prefixes[0], "/"):
                yield from page
                below.extend(common)
            prefixes = below
        yield from self._concurrently(prefixes, workers)

    def _pages(
        self, prefix: str, delimiter: str | None
    ) -> Iterator[tuple[list[S3Object], list[str]]]:
        """``(objects, common prefixes)`` of each page of a listing."""
        arguments: dict[str, Any] = {"Bucket": self.location.bucket, "Prefix": prefix}
        if delimiter:
            arguments["Delimiter"] = delimiter
        while True:
            page = self._call("ListObjectsV2", None, **arguments)
            found = [
                S3Object(raw["Key"], int(raw["Size"]), raw.get("ETag", ""))
                for raw in page.get("Contents", ())
                if raw["Key"].startswith(self.location.prefix)
            ]
            yield found, [raw["Prefix"] for raw in page.get("CommonPrefixes", ())]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            arguments["ContinuationToken"] = token

    def _concurrently(self, prefixes: list[str], workers: int) -> Iterator[S3Object]:
        todo: queue.SimpleQueue[str] = queue.SimpleQueue()
        for prefix in prefixes:
            todo.put(prefix)

        def lister() -> Iterator[list[S3Object]]:
            while True:
                try:
                    prefix = todo.get_nowait()
                except queue.Empty:
                    return
                for page, _ in self._pages(prefix, None):
                    yield page

        listers = [lister] * min(workers, _LISTERS, len(prefixes))
        # Few pages in flight: listers parse on the GIL and can outrun the consumer.
        for page in interleave(listers, buffer=_QUEUED_PAGES, name="blobcache-list"):
            yield from page

    def head(self, key: str, etag: str | None = None) -> S3Object | None:
        """The object at ``key``; ``None`` if there is none (or, with ``etag``, another one)."""
        arguments: dict[str, Any] = {"IfMatch": etag} if etag else {}
        raw = self._call(
            "HeadObject",
            key,
            _MISSING | _CHANGED,
            Bucket=self.location.bucket,
            Key=key,
            **arguments,
        )
        if isinstance(raw, _Failed):
            return None
        found = S3Object(key, int(raw["ContentLength"]), raw.get("ETag", ""))
        return None if etag and found.etag != etag else found

    def digest(self, found: S3Object, algorithm: str) -> str | None:
        """The digest of the object's content, streamed; ``None`` if it changed or went.

        Read with ``If-Match`` on its ETag, so the bytes hashed are those of
        the object checked. An algorithm hashlib lacks gives ``None`` too.
        """
        try:
            hasher = hashlib.new(algorithm)
        except ValueError:
            return None
        raw = self._call(
            "GetObject",
            found.key,
            _MISSING | _CHANGED,
            Bucket=self.location.bucket,
            Key=found.key,
            IfMatch=found.etag,
        )
        if isinstance(raw, _Failed):
            return None
        body = raw["Body"]
        try:
            while chunk := body.read(_CHUNK):
                hasher.update(chunk)
        except BotoCoreError as exc:
            raise StoreUnavailable(f"reading {self._where(found.key)} failed: {exc}") from exc
        finally:
            body.close()
        return f"{algorithm}:{hasher.hexdigest()}"

    def put_placeholder(self, copy: S3Object) -> Outcome:
        """Replace ``copy`` by a zero-byte object, only while it is still the object checked.

        The write carries ``If-Match`` on the copy's ETag, so a server that
        honours conditional writes (AWS S3, moto's server) refuses it if the
        copy was rewritten since; a lost response retried after success is
        told apart by the placeholder it finds.
        """
        condition = {"IfMatch": copy.etag} if self.conditional_put else {}
        raw = self._call(
            "PutObject",
            copy.key,
            _MISSING | _CHANGED,
            Bucket=self.location.bucket,
            Key=copy.key,
            Body=b"",
            **condition,
        )
        if not isinstance(raw, _Failed):
            return "done"
        if raw.code in _MISSING:
            return "missing"
        now = self.head(copy.key)
        return "done" if now is not None and now.size == 0 else "changed"

    def copy(self, source: S3Object, target: S3Object) -> Outcome:
        """Copy ``source``'s content over ``target`` server-side, if ``source`` is unchanged.

        ``CopySourceIfMatch`` pins the source's ETag; the target is the
        caller's to re-check right before (CopyObject's own ``If-Match`` is
        not honoured by every S3-compatible server).
        """
        self._inside(source.key)
        raw = self._call(
            "CopyObject",
            target.key,
            _MISSING | _CHANGED,
            Bucket=self.location.bucket,
            Key=target.key,
            CopySource={"Bucket": self.location.bucket, "Key": source.key},
            CopySourceIfMatch=source.etag,
        )
        if not isinstance(raw, _Failed):
            return "done"
        return "missing" if raw.code in _MISSING else "changed"

    def close(self) -> None:
        """Release the client's connections."""
        self.client.close()

    def _where(self, key: str | None) -> str:
        if key is None:
            return f"bucket {self.location.bucket!r}"
        return shorten(f"s3://{self.location.bucket}/{key}")

    def _inside(self, key: str) -> None:
        # The one gate every object request passes: no key outside the location, ever.
        if self.location.path_of(key) is None:
            raise AssertionError(f"refusing to touch {key!r}, outside {self.location}")

    def _call(
        self,
        operation: str,
        key: str | None,
        tolerate: frozenset[str] | set[str] = frozenset(),
        **arguments: Any,
    ) -> Any:
        """Send one request; an error whose code is in ``tolerate`` comes back as `_Failed`."""
        if key is not None:
            self._inside(key)
        method = getattr(self.client, _snake(operation))
        try:
            return method(**arguments)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in tolerate:
                return _Failed(code)
            raise self._translate(operation, key, exc) from exc
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise ConfigurationError(
                f"no usable AWS credentials for {self.location}: {exc}; set them in the "
                "environment, a profile or an instance role"
            ) from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(
                f"S3 is unreachable ({operation} on {self._where(key)}): {exc}; check the "
                "endpoint and the network"
            ) from exc

    def _translate(self, operation: str, key: str | None, exc: ClientError) -> BlobCacheError:
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), error.get("Message", "")
        where = self._where(key)
        if code == "NoSuchBucket" or (operation == "HeadBucket" and code in _MISSING):
            return ConfigurationError(
                f"bucket {self.location.bucket!r} does not exist; check the location "
                f"{self.location} (and its region and endpoint_url)",
                cause=exc,
            )
        if code in _DENIED:
            return ConfigurationError(
                f"S3 refused {operation} on {where} ({code}: {message}); the credentials "
                f"need {_ACTIONS.get(operation, 's3:*')} on the location",
                cause=exc,
            )
        if code in _BUSY:
            return StoreUnavailable(
                f"S3 kept failing {operation} on {where} ({code}) after retries; retry later",
                cause=exc,
            )
        return BlobCacheError(f"S3 {operation} on {where} failed ({code}: {message})", cause=exc)


@dataclass(frozen=True, slots=True)
class _Failed:
    """A request refused with an error code the caller expects."""

    code: str


def _snake(operation: str) -> str:
    return "".join(f"_{char.lower()}" if char.isupper() else char for char in operation).lstrip("_")
