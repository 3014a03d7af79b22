"""The DynamoDB backend: `BlobRecord`'s table, written with conditional requests."""

from __future__ import annotations

import functools
import random
import threading
import time
from binascii import crc32
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar
from urllib.parse import urlsplit

import botocore.config
import botocore.session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    InvalidRegionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from blobcache._backends.base import Item, Removal, StoredItem
from blobcache._errors import (
    BlobCacheError,
    ConfigurationError,
    ItemTooLarge,
    StoreUnavailable,
    TableNotFound,
    shorten,
)
from blobcache._model import DIGEST, LEGACY_PATHS, ORIGINAL, PATHS, key_schema
from blobcache._options import Options
from blobcache._threads import interleave
from blobcache._url import Location, redact

#: The placeholders every expression uses for `BlobRecord`'s attributes.
_NAMES = {"#orig": ORIGINAL, "#paths": PATHS}
#: Refusals DynamoDB sends before it applies anything: resending is safe, even a write.
_THROTTLED = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceededException",
}
#: Transport failures that prove the request never left this host (no connection was made).
#: Exact types: a subclass such as SSLError can happen after the request was sent.
_NEVER_SENT = (EndpointConnectionError, ConnectTimeoutError)
#: Seconds of the first pause between transport retries, doubling, with full jitter
#: (botocore's legacy DynamoDB policy), and the most one pause may last.
_RETRY_BASE = 0.05
_RETRY_CAP = 5.0
_DENIED = {
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
    "ExpiredTokenException",
}
AttributeMap = dict[str, Any]
#: BatchGetItem takes at most this many keys per request.
BATCH_GET_KEYS = 100
_T = TypeVar("_T")
_R = TypeVar("_R")


_SESSION_LOCK = threading.Lock()


@functools.cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


class CorruptResponse(BotoCoreError):  # type: ignore[misc]
    """A DynamoDB response whose body does not match its ``x-amz-crc32`` header."""

    fmt = (
        "a response from {endpoint_url} failed its CRC32 check (header {expected}, body "
        "{actual}): it was damaged on the way"
    )


def _check_crc32(http_response: Any, **_: Any) -> None:
    """Refuse a response damaged in transit, which botocore would parse as an empty answer.

    botocore only retries on a mismatch and, once its attempts are spent, hands the
    damaged response back: a GetItem would then read as a miss.
    """
    expected = http_response.headers.get("x-amz-crc32")
    if expected is None:
        return
    actual = crc32(http_response.content) & 0xFFFFFFFF
    if str(actual) != expected.strip():
        raise CorruptResponse(
            endpoint_url=redact(str(http_response.url)), expected=expected, actual=actual
        )


class _ConditionFailed(Exception):
    """A conditional write lost; ``item`` is the item the server saw, if it said."""

    def __init__(self, item: AttributeMap | None) -> None:
        self.item = item


def stored_item(attributes: AttributeMap) -> StoredItem:
    """A DynamoDB item's attributes as stored, in zot's layout (plus the legacy set)."""
    return StoredItem(
        attributes[DIGEST]["S"],
        attributes.get(ORIGINAL, {}).get("S"),
        frozenset(attributes.get(PATHS, {}).get("SS", ())),
        frozenset(attributes.get(LEGACY_PATHS, {}).get("SS", ())),
    )


def decode(attributes: AttributeMap | None) -> Item | None:
    """Read a DynamoDB item's attributes tolerantly (see `Item.tolerant`)."""
    if not attributes:
        return None
    item = stored_item(attributes)
    return Item.tolerant(item.original, item.paths)


def _state_condition(attributes: AttributeMap) -> tuple[str, dict[str, Any]]:
    """A condition that holds only while the item is exactly as ``attributes`` show it."""
    clauses, values = [], {}
    for placeholder, attribute in _NAMES.items():
        if attribute in attributes:
            clauses.append(f"{placeholder} = :was{placeholder[1:]}")
            values[f":was{placeholder[1:]}"] = attributes[attribute]
        else:
            clauses.append(f"attribute_not_exists({placeholder})")
    return " AND ".join(clauses), values


def open_location(location: Location) -> DynamoDBBackend:
    """The backend for a ``dynamodb:///TABLE?region=...`` URL."""
    return DynamoDBBackend(
        location.target,
        region=location.region,
        endpoint_url=location.endpoint_url,
        options=location.options,
    )


class DynamoDBBackend:
    """Keeps items in a DynamoDB table in zot's layout.

    `BlobRecord` gives every name and the key schema; requests go through a
    botocore client configured from `Options`, because the conditional writes
    need what PynamoDB does not offer (see `BlobRecord`).
    """

    name = "dynamodb"

    def __init__(
        self, table: str, *, region: str | None, endpoint_url: str | None, options: Options
    ) -> None:
        self.target = table
        self.log_fields = {"backend": self.name, "table": table}
        self.region = region
        self.endpoint_url = endpoint_url
        self.options = options
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The botocore DynamoDB client, created on first use (it resolves credentials)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._call(self._create_client)
        return self._client

    def _create_client(self) -> Any:
        config = botocore.config.Config(
            connect_timeout=self.options.connect_timeout,
            read_timeout=self.options.read_timeout,
            # botocore never resends: it would resend a write whose response was lost, and
            # the write could take effect twice. `_call` retries what is safe to retry.
            retries={"total_max_attempts": 1, "mode": "standard"},
            # A bulk call keeps ``workers`` requests in flight on this one client.
            max_pool_connections=max(self.options.max_pool_connections, self.options.workers),
        )
        # One botocore session per process: loading the service model costs ~150 ms,
        # a client from a warm session ~5 ms. Sessions are not safe for concurrent
        # client creation, hence the lock.
        with _SESSION_LOCK:
            client = _session().create_client(
                "dynamodb", region_name=self.region, endpoint_url=self.endpoint_url, config=config
            )
        # The endpoint may come from AWS_ENDPOINT_URL_DYNAMODB or a profile; credentials
        # in it would reach every error message botocore writes.
        endpoint = urlsplit(client.meta.endpoint_url)
        if endpoint.username is not None or endpoint.password is not None:
            client.close()
            raise ConfigurationError(
                "the DynamoDB endpoint URL carries credentials (user:password@); remove them "
                "and give credentials through botocore's chain (environment, profile, role)"
            )
        client.meta.events.register("after-call.dynamodb", _check_crc32)
        return client

    # -- requests ---------------------------------------------------------------------------

    def _call(
        self, request: Callable[[], Any], digest: str | None = None, *, write: bool = False
    ) -> Any:
        """Run one botocore request, retrying what is safe, translating failures.

        A read is retried after any transient failure, up to ``max_retries`` times. A
        write is resent only when it provably had no effect: no connection could be
        made, or DynamoDB refused it by throttling. After any other failure (timeout,
        reset, lost or damaged response, a 5xx) the write may have been applied; a
        resend could apply it a second time after other writers changed the item, so
        it raises `StoreUnavailable` saying the outcome is unknown.
        """
        attempt = 0
        while True:
            try:
                return request()
            except ClientError as exc:
                failure: BotoCoreError | ClientError = exc
                code = exc.response.get("Error", {}).get("Code", "")
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                if code in _THROTTLED:
                    unapplied = True
                elif isinstance(status, int) and status >= 500:
                    unapplied = False
                else:
                    raise self._translate(exc, digest) from exc
            except (NoRegionError, NoCredentialsError, PartialCredentialsError) as exc:
                raise ConfigurationError(
                    f"cannot reach DynamoDB table {self.target!r}: {exc}; set a region "
                    "(?region=... in the URL, or AWS_DEFAULT_REGION) and credentials "
                    "(environment, profile or instance role)",
                    cause=exc,
                ) from exc
            except InvalidRegionError as exc:
                raise ConfigurationError(
                    f"{exc}; give a region name such as 'us-east-1'", cause=exc
                ) from exc
            except BotoCoreError as exc:
                failure = exc
                unapplied = type(exc) in _NEVER_SENT
            if (write and not unapplied) or attempt >= self.options.max_retries:
                unknown = write and not unapplied
                raise self._unavailable(failure, attempt, unknown=unknown) from failure
            attempt += 1
            time.sleep(random.uniform(0, min(_RETRY_BASE * 2**attempt, _RETRY_CAP)))

    def _unavailable(
        self, exc: BotoCoreError | ClientError, retries: int, *, unknown: bool
    ) -> StoreUnavailable:
        """The error for a request that failed for good; ``unknown``: a write may have applied."""
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            what = f"{error.get('Code', '')}: {error.get('Message', '')}".strip(": ")
            what = f"DynamoDB answered {what or 'an error'}"
        else:
            what = str(exc)
        what = shorten(redact(what))
        if unknown:
            message = (
                f"a write to DynamoDB table {self.target!r} failed after it was sent ({what}); "
                "it may or may not have taken effect, and was not resent, since a resend "
                "could apply it twice: read the item to see, and repeat the call if needed"
            )
        else:
            message = (
                f"DynamoDB table {self.target!r} is unavailable after {retries} "
                f"retr{'y' if retries == 1 else 'ies'} ({what}); nothing was changed; check "
                "the endpoint and network, retry later, or raise connect_timeout/"
                "read_timeout/max_retries"
            )
        return StoreUnavailable(message, cause=exc, outcome_unknown=unknown)

    def _translate(self, exc: ClientError, digest: str | None) -> BlobCacheError:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), shorten(str(error.get("Message", "")))
        if code == "ResourceNotFoundException":
            return TableNotFound(self.target, cause=exc)
        if code in _DENIED:
            return ConfigurationError(
                f"DynamoDB refused the credentials for table {self.target!r} ({code}: "
                f"{message}); check the AWS credentials and the IAM policy",
                cause=exc,
            )
        if code == "ValidationException" and "key element does not match the schema" in message:
            return ConfigurationError(self._schema_message(), cause=exc)
        if code == "ValidationException" and "maximum allowed size" in message and digest:
            item = self.get(digest)
            return ItemTooLarge(digest, len(item.paths) if item else 0, cause=exc)
        return BlobCacheError(
            f"DynamoDB rejected a request on table {self.target!r}: {code}: {message}", cause=exc
        )

    def _schema_message(self) -> str:
        return (
            f"table {self.target!r} does not have blobcache's key schema (hash key "
            f"{DIGEST!r} of type S, no range key); point the URL at a blobcache or zot "
            "cache table"
        )

    def _update(
        self,
        digest: str,
        expression: str,
        values: dict[str, Any],
        condition: str | None = None,
        names: dict[str, str] = _NAMES,
    ) -> None:
        """One UpdateItem; a failed condition raises `_ConditionFailed` with the old item."""
        request: dict[str, Any] = {
            "TableName": self.target,
            "Key": {DIGEST: {"S": digest}},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if condition is not None:
            request["ConditionExpression"] = condition
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        self._conditional(lambda: self.client.update_item(**request), digest)

    def _conditional(self, request: Callable[[], Any], digest: str) -> None:
        try:
            self._call(request, digest, write=True)
        except BlobCacheError as exc:
            cause = exc.cause
            if isinstance(cause, ClientError) and (
                cause.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
            ):
                raise _ConditionFailed(cause.response.get("Item")) from None
            raise

    def _get_attributes(self, digest: str) -> AttributeMap | None:
        response = self._call(
            lambda: self.client.get_item(
                TableName=self.target,
                Key={DIGEST: {"S": digest}},
                ConsistentRead=self.options.consistent_read,
            ),
            digest,
        )
        item: AttributeMap | None = response.get("Item")
        return item

    # -- the backend protocol ---------------------------------------------------------------

    def create_table(self) -> bool:
        """Create the table unless it exists; wait until it is ACTIVE."""
        try:
            description = self._call(lambda: self.client.describe_table(TableName=self.target))
        except TableNotFound:
            description = None
        created = False
        if description is None:
            created = self._create()
        self._wait_active()
        if not created:
            self._check_schema(description or self._describe())
        return created

    def _create(self) -> bool:
        request: dict[str, Any] = {
            "TableName": self.target,
            **key_schema(),
            "BillingMode": self.options.billing_mode,
        }
        if self.options.billing_mode == "PROVISIONED":
            request["ProvisionedThroughput"] = {
                "ReadCapacityUnits": self.options.read_capacity,
                "WriteCapacityUnits": self.options.write_capacity,
            }
        try:
            self._call(lambda: self.client.create_table(**request))
        except BlobCacheError as exc:
            # Another process created it between our DescribeTable and CreateTable.
            if exc.cause_response_code == "ResourceInUseException":
                return False
            raise
        return True

    def _describe(self) -> AttributeMap:
        response: AttributeMap = self._call(
            lambda: self.client.describe_table(TableName=self.target)
        )
        return response

    def _wait_active(self) -> None:
        deadline = time.monotonic() + self.options.table_wait_timeout
        delay = 0.05
        while self._describe()["Table"].get("TableStatus") != "ACTIVE":
            if time.monotonic() > deadline:
                raise StoreUnavailable(
                    f"table {self.target!r} did not become ACTIVE within "
                    f"{self.options.table_wait_timeout} s; check it in the console, or raise "
                    "table_wait_timeout"
                )
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _check_schema(self, description: AttributeMap) -> None:
        table, expected = description["Table"], key_schema()
        keys = {key["AttributeName"]: key["KeyType"] for key in table.get("KeySchema", [])}
        types = {
            attribute["AttributeName"]: attribute["AttributeType"]
            for attribute in table.get("AttributeDefinitions", [])
        }
        wanted_keys = {key["AttributeName"]: key["KeyType"] for key in expected["KeySchema"]}
        if keys != wanted_keys or any(
            types.get(wanted["AttributeName"]) != wanted["AttributeType"]
            for wanted in expected["AttributeDefinitions"]
        ):
            raise ConfigurationError(self._schema_message())

    def put(self, digest: str, path: str) -> None:
        """One UpdateItem: set the original if absent and add the path to the set.

        The condition costs no request; it fails only on an item another writer left
        with an original but no path set, or paths but no original. Such an item
        is repaired as this path joins: the original every reader already saw (the
        smallest path, if none was stored) is written down, inside the set.
        """
        try:
            self._update(
                digest,
                "SET #orig = if_not_exists(#orig, :path) ADD #paths :paths",
                {":path": {"S": path}, ":paths": {"SS": [path]}},
                "attribute_exists(#orig) AND attribute_exists(#paths) "
                "OR attribute_not_exists(#orig) AND attribute_not_exists(#paths)",
            )
        except _ConditionFailed as failed:

            def add(item: Item | None) -> Item:
                if item is None:
                    return Item(path, frozenset([path]))
                return Item(item.original, item.paths | {path})

            self._rewrite(digest, failed.item, add, f"recording {path!r} for {digest!r}")

    def get(self, digest: str) -> Item | None:
        """One GetItem, consistent unless the options say otherwise."""
        return decode(self._get_attributes(digest))

    def delete(self, digest: str, path: str) -> Removal:
        """Remove ``path`` without ever leaving an item with no path.

        The common case, a path that is neither the original nor the last
        one, is a single conditional DELETE from the set. Anything else reads
        the item (from the failed condition where the server returns it) and
        writes the whole new state, conditional on the state it read, retrying
        while it keeps losing races.
        """
        try:
            self._update(
                digest,
                "DELETE #paths :paths",
                {":paths": {"SS": [path]}, ":path": {"S": path}, ":one": {"N": "1"}},
                "contains(#paths, :path) AND #orig <> :path AND size(#paths) > :one",
            )
            return Removal(removed=True)
        except _ConditionFailed as failed:
            seen = failed.item

        def remove(item: Item | None) -> Item | None:
            return item.without(path) if item is not None and path in item.paths else item

        before, after = self._rewrite(digest, seen, remove, f"deleting {path!r} of {digest!r}")
        if before is None or after == before:
            return Removal(removed=False)
        return Removal.between(before, after)

    def _rewrite(
        self,
        digest: str,
        seen: AttributeMap | None,
        change: Callable[[Item | None], Item | None],
        what: str,
    ) -> tuple[Item | None, Item | None]:
        """Apply ``change`` to the item as read, writing only if nobody changed it since.

        ``seen`` is the item as a failed condition returned it, or ``None`` if the
        server did not say (dynalite), in which case it is read. Returns the item
        before and after; retries with back-off while other writers win.
        """
        for attempt in range(self.options.max_attempts):
            if seen is None:
                seen = self._get_attributes(digest) or {}
            before = decode(seen)
            after = change(before)
            if after == before:
                return before, after
            try:
                self._replace(digest, seen, after)
                return before, after
            except _ConditionFailed as failed:
                seen = failed.item
                self._back_off(attempt)
        raise StoreUnavailable(
            f"gave up {what} after {self.options.max_attempts} attempts: other writers "
            "kept changing the item; retry, or raise max_attempts"
        )

    def _replace(self, digest: str, seen: AttributeMap, after: Item | None) -> None:
        """Write ``after`` (or remove the item) only if it is still exactly as ``seen``."""
        condition, values = _state_condition(seen)
        if after is None:
            self._conditional(
                lambda: self.client.delete_item(
                    TableName=self.target,
                    Key={DIGEST: {"S": digest}},
                    ConditionExpression=condition,
                    ExpressionAttributeNames=_NAMES,
                    ExpressionAttributeValues=values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                ),
                digest,
            )
            return
        values.update({":orig": {"S": after.original}, ":paths": {"SS": sorted(after.paths)}})
        self._update(digest, "SET #orig = :orig, #paths = :paths", values, condition)

    def _back_off(self, attempt: int) -> None:
        # Full jitter: puts never back off, so a losing delete waits for a lull in the
        # writes to its digest rather than for the other deleters.
        ceiling = min(self.options.backoff * 2**attempt, self.options.max_backoff)
        time.sleep(random.uniform(0, ceiling))

    def put_many(self, pairs: Sequence[tuple[str, str]]) -> None:
        """`put` each digest's paths: the same conditional UpdateItem, as conditions cannot
        be batched, carrying all the paths the batch has for that digest.

        One request per digest rather than per pair: its first path becomes the
        original if the item has none, and the others join the set, which is the
        loop's final state. An item that would pass 400 KB falls back to one
        put per path, so it fills up and raises `ItemTooLarge` exactly where the
        loop would. Different digests go concurrently on ``Options.workers``
        threads sharing this backend's client and its connection pool.
        """
        groups: dict[str, list[str]] = {}
        for digest, path in pairs:
            groups.setdefault(digest, []).append(path)
        self._fan_out(lambda group: self._put_paths(*group), groups.items())

    def _put_paths(self, digest: str, paths: list[str]) -> None:
        """`put` of several paths of one digest, in one UpdateItem."""
        if len(paths) == 1:
            self.put(digest, paths[0])
            return
        members = list(dict.fromkeys(paths))
        try:
            self._update(
                digest,
                "SET #orig = if_not_exists(#orig, :path) ADD #paths :paths",
                {":path": {"S": paths[0]}, ":paths": {"SS": members}},
                "attribute_exists(#orig) AND attribute_exists(#paths) "
                "OR attribute_not_exists(#orig) AND attribute_not_exists(#paths)",
            )
        except _ConditionFailed as failed:

            def add(item: Item | None) -> Item:
                if item is None:
                    return Item(paths[0], frozenset(members))
                return Item(item.original, item.paths | frozenset(members))

            self._rewrite(digest, failed.item, add, f"recording {len(members)} paths of {digest!r}")
        except ItemTooLarge:
            for path in paths:  # already-added paths are no-ops; raises where the loop would
                self.put(digest, path)

    def delete_many(self, pairs: Sequence[tuple[str, str]]) -> list[Removal]:
        """`delete` each pair, digests concurrently as `put_many` does."""
        return self._per_digest(pairs, self.delete)

    def get_many(self, digests: Sequence[str]) -> dict[str, Item]:
        """BatchGetItem requests of 100 keys, on ``Options.workers`` threads.

        Reads are consistent unless the options say otherwise; keys the server
        leaves unprocessed (throttling, its 16 MB response limit) are asked
        again with back-off, giving up after ``max_attempts`` rounds that make
        no progress.
        """
        wanted = list(dict.fromkeys(digests))
        chunks = [
            wanted[start : start + BATCH_GET_KEYS]
            for start in range(0, len(wanted), BATCH_GET_KEYS)
        ]
        found: dict[str, Item] = {}
        for items in self._fan_out(self._batch_get, chunks):
            found.update(items)
        return found

    def _batch_get(self, digests: list[str]) -> dict[str, Item]:
        found: dict[str, Item] = {}
        request: dict[str, Any] = {
            "Keys": [{DIGEST: {"S": digest}} for digest in digests],
            "ConsistentRead": self.options.consistent_read,
        }
        stalled = 0
        while True:
            items = {self.target: request}
            response = self._call(lambda: self.client.batch_get_item(RequestItems=items))  # noqa: B023 -- called at once
            for attributes in response.get("Responses", {}).get(self.target, ()):
                item = decode(attributes)
                if item is not None:
                    found[attributes[DIGEST]["S"]] = item
            left = response.get("UnprocessedKeys", {}).get(self.target, {}).get("Keys")
            if not left:
                return found
            stalled = stalled + 1 if len(left) == len(request["Keys"]) else 0
            if stalled >= self.options.max_attempts:
                raise StoreUnavailable(
                    f"DynamoDB left {len(left)} keys of a BatchGetItem on table "
                    f"{self.target!r} unprocessed {stalled} times in a row; retry later, or "
                    "raise max_attempts"
                )
            request = {**request, "Keys": left}
            self._back_off(stalled)

    def _per_digest(
        self, pairs: Sequence[tuple[str, str]], action: Callable[[str, str], _R]
    ) -> list[_R]:
        """Run ``action`` on every pair: each digest's pairs in order, digests concurrently.

        Returns the results in the order of ``pairs``. The first failure stops
        the digests not yet started and is raised once those running are done.
        """
        groups: dict[str, list[int]] = {}
        for position, (digest, _) in enumerate(pairs):
            groups.setdefault(digest, []).append(position)
        results: list[Any] = [None] * len(pairs)

        def run(positions: list[int]) -> None:
            for position in positions:
                results[position] = action(*pairs[position])

        for _ in self._fan_out(run, groups.values()):
            pass
        return results

    def _fan_out(self, task: Callable[[_T], _R], inputs: Iterable[_T]) -> list[_R]:
        """``task`` on every input, at most ``Options.workers`` at a time; results in order."""
        inputs = list(inputs)
        workers = min(self.options.workers, len(inputs))
        if workers <= 1:
            return [task(one) for one in inputs]
        with ThreadPoolExecutor(workers, thread_name_prefix="blobcache-bulk") as pool:
            futures: list[Future[_R]] = [pool.submit(task, one) for one in inputs]
            _, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:
                future.cancel()
        for future in futures:
            error = None if future.cancelled() else future.exception()
            if error is not None:
                raise error
        return [future.result() for future in futures]

    def scan(self) -> Iterator[tuple[str, Item]]:
        """Every item, one Scan page at a time; items with no path are skipped."""
        for stored in self._scan_segment(None):
            item = Item.tolerant(stored.original, stored.paths)
            if item is not None:
                yield stored.digest, item

    def scan_stored(self, segments: int = 1) -> Iterator[StoredItem]:
        """Every item as stored, key-only and legacy items included.

        With ``segments`` > 1, a parallel Scan: one thread per segment feeding a
        bounded queue, so memory stays constant however large the table.
        """
        if segments <= 1:
            yield from self._scan_segment(None)
            return
        yield from interleave(
            [functools.partial(self._scan_segment, (n, segments)) for n in range(segments)],
            buffer=1000,
            name="blobcache-scan",
        )

    def _scan_segment(self, segment: tuple[int, int] | None) -> Iterator[StoredItem]:
        request: dict[str, Any] = {
            "TableName": self.target,
            "ConsistentRead": self.options.consistent_read,
        }
        if segment is not None:
            request["Segment"], request["TotalSegments"] = segment
        if self.options.page_size is not None:
            request["Limit"] = self.options.page_size
        while True:
            page = self._call(lambda: self.client.scan(**request))
            for attributes in page.get("Items", ()):
                if "S" not in attributes.get(DIGEST, {}):
                    raise ConfigurationError(self._schema_message())
                yield stored_item(attributes)
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def migrate_legacy(self, digest: str, legacy: frozenset[str]) -> bool:
        """Fold a legacy ``BlobPath`` set into the current layout in one conditional write.

        The smallest legacy path becomes the original unless the item has one.
        The condition pins the legacy set as read, so a concurrent writer or a
        second migrator makes this a no-op (returns ``False``) rather than a
        lost update; an interruption leaves either the old or the new item.
        """
        try:
            self._update(
                digest,
                "SET #orig = if_not_exists(#orig, :orig) ADD #paths :legacy REMOVE #legacy",
                {
                    ":orig": {"S": min(legacy)},
                    ":legacy": {"SS": sorted(legacy)},
                    ":was": {"SS": sorted(legacy)},
                },
                "#legacy = :was",
                names={**_NAMES, "#legacy": LEGACY_PATHS},
            )
        except _ConditionFailed:
            return False
        return True

    def release(self) -> None:
        """Nothing to give back: the HTTP connection pool is shared by every thread."""

    def check(self) -> None:
        """A region must come from the URL or botocore's chain (AWS_DEFAULT_REGION, profile)."""
        if self.region is None and _session().get_config_variable("region") is None:
            raise ConfigurationError(
                f"DynamoDB table {self.target!r} has no region: add ?region=REGION to the URL, "
                "or set AWS_DEFAULT_REGION"
            )

    def close(self) -> None:
        """Close the HTTP connection pool."""
        if self._client is not None:
            self._client.close()
