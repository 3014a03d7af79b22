"""`BlobCache`, the repository: validation, path mapping and logging over a backend."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Unpack, cast

from blobcache import _bulk
from blobcache._backends import open_backend
from blobcache._backends.base import Backend, Item, Removal
from blobcache._errors import CacheMiss, ConfigurationError, InvalidDigest, InvalidPath
from blobcache._logging import get_logger
from blobcache._options import Options, OptionsDict
from blobcache._url import parse_url
from blobcache._validate import PathMapper, parse_digest


@dataclass(frozen=True, slots=True)
class BlobEntry:
    """One digest as `BlobCache.entries` yields it: its original and every path.

    .. versionadded:: 0.1
    """

    digest: str
    original: str
    paths: frozenset[str]


class BlobCache:
    """The dedupe cache: maps each digest to its original path and every path.

    Build one with `BlobCache.from_url`. A cache is safe to share between
    threads; it validates every digest and path before it sends anything.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        backend: Backend,
        *,
        root: str | os.PathLike[str] | None = None,
        options: Options | None = None,
    ) -> None:
        self._backend = backend
        self._paths = PathMapper(root)
        self.options = options or Options()
        self._log = get_logger(f"blobcache.{backend.name}", **backend.log_fields)

    @classmethod
    def from_url(
        cls,
        url: str | None = None,
        *,
        root: str | os.PathLike[str] | None = None,
        **options: Unpack[OptionsDict],
    ) -> BlobCache:
        """Open the cache at ``url``.

        Args:
            url: ``dynamodb:///TABLE?region=...[&endpoint_url=...]``,
                ``sqlite:///relative.db`` / ``sqlite:////absolute.db``, or
                ``redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=zot]``
                (``rediss://`` for TLS, ``unix:///path.sock?db=N``). Without
                one, ``$BLOBCACHE_URL``, else a SQLite file in the per-user data
                directory.
            root: store paths relative to this directory (relative-path mode).
            options: any `Options` field, overriding the URL's query (typed by
                `OptionsDict`, so a misspelt name is a type error).

        Raises:
            ConfigurationError: the URL or an option is wrong.
        """
        location = parse_url(url, options)
        return cls(open_backend(location), root=root, options=location.options)

    @property
    def name(self) -> str:
        """The backend's name, its URL scheme (``"dynamodb"``, ``"sqlite"`` or ``"redis"``,
        which ``rediss://`` and ``unix://`` URLs open too)."""
        return self._backend.name

    @property
    def uses_relative_paths(self) -> bool:
        """Whether a root was given, so paths are stored relative to it."""
        return self._paths.root is not None

    @property
    def root(self) -> str | None:
        """The absolute root of relative-path mode, or ``None``."""
        return self._paths.root

    def create_table(self) -> None:
        """Create the table (DynamoDB) or schema (SQLite) if it does not exist yet.

        Idempotent and safe to run from several processes at once.
        """
        if self._backend.create_table():
            self._log.info("table_created")

    def put(self, digest: str, path: str) -> None:
        """Record ``path`` for ``digest``; the first path recorded becomes the original.

        Raises:
            InvalidDigest, InvalidPath: before anything is sent.
            ItemTooLarge: the item would pass DynamoDB's 400 KB limit; nothing changed.
        """
        digest, stored = parse_digest(digest), self._paths.to_stored(path)
        self._backend.put(digest, stored)
        self._log.info("blob_put", digest=digest, path=stored)

    def get(self, digest: str) -> str:
        """The original path of ``digest``.

        Raises:
            CacheMiss: the digest has no entry.
        """
        return self._paths.to_public(self._read(digest).original)

    def get_all(self, digest: str) -> list[str]:
        """Every path of ``digest``: the original first, then the others sorted.

        Raises:
            CacheMiss: the digest has no entry.
        """
        item = self._read(digest)
        ordered = [item.original, *sorted(item.paths - {item.original})]
        return [self._paths.to_public(path) for path in ordered]

    def has(self, digest: str, path: str) -> bool:
        """Whether ``path`` is recorded for ``digest``."""
        digest, stored = parse_digest(digest), self._paths.to_stored(path)
        item = self._backend.get(digest)
        found = item is not None and stored in item.paths
        self._log.debug("blob_checked", digest=digest, path=stored, found=found)
        return found

    def delete(self, digest: str, path: str) -> None:
        """Forget ``path``; an unknown digest or path is a no-op.

        If ``path`` was the original, the smallest remaining path becomes the
        original; if it was the last path, the entry goes.
        """
        digest, stored = parse_digest(digest), self._paths.to_stored(path)
        self._log_removal(digest, stored, self._backend.delete(digest, stored))

    def put_many(self, pairs: Iterable[tuple[str, str]]) -> None:
        """`put` every ``(digest, path)`` pair: the same final state as the loop of `put`.

        The pairs of one digest are applied in the order given (the first path
        given for a new digest becomes its original); different digests may be
        applied concurrently. Every digest and path is validated before anything
        is sent. The pairs go to the store in batches of ``Options.batch_size``
        (one transaction each on SQLite; on DynamoDB one conditional UpdateItem
        per digest of a batch, ``Options.workers`` of them in flight), so any
        iterable, a generator of millions of pairs included, runs in the memory
        of one batch: a list or tuple is validated in place,
        and any other iterable is validated as it is read, spooled compressed to
        an anonymous temporary file, and replayed from there.

        Not atomic across digests: if the store fails midway, some pairs are
        recorded and others not; running the same call again is safe.

        Raises:
            InvalidDigest, InvalidPath: an entry is bad; ``error.position`` is its
                0-based index, and nothing was written.
            ItemTooLarge, StoreUnavailable, BlobCacheError: as `put`, midway.

        .. versionadded:: 0.1
        """
        with self._batches(pairs, self._pair) as batches:
            for batch in map(_as_pairs, batches):
                self._backend.put_many(batch)
                for digest, stored in batch:
                    self._log.info("blob_put", digest=digest, path=stored)

    def get_many(self, digests: Iterable[str]) -> dict[str, str]:
        """The original path of every digest that has an entry; misses are absent.

        Every digest is validated before anything is sent (`InvalidDigest` names
        the position of a bad one). The digests are read in batches of
        ``Options.batch_size``: one query per batch on SQLite, BatchGetItem
        requests of 100 keys on ``Options.workers`` threads on DynamoDB. The
        result holds one entry per hit, so memory grows with the hits only.

        .. versionadded:: 0.1
        """
        if isinstance(digests, str):
            raise InvalidDigest(digests, "get_many takes an iterable of digests, not one digest")
        found: dict[str, str] = {}
        public = self._paths.to_public
        size = self.options.batch_size
        with contextlib.ExitStack() as stack:
            batches: Iterable[list[str]]
            if isinstance(digests, Sequence):  # validated once, in place, then sliced
                valid = [_checked(position, digest) for position, digest in enumerate(digests)]
                batches = (valid[start : start + size] for start in range(0, len(valid), size))
            else:
                spooled = stack.enter_context(self._batches(digests, _digest))
                batches = ([digest for (digest,) in batch] for batch in spooled)
            for batch in batches:
                items = self._backend.get_many(batch)
                if self._paths.root is None:  # stored paths are the public ones
                    found.update({digest: item.original for digest, item in items.items()})
                else:
                    found.update((digest, public(item.original)) for digest, item in items.items())
                self._log.debug("blobs_read", digests=len(batch), found=len(items))
        return found

    def delete_many(self, pairs: Iterable[tuple[str, str]]) -> None:
        """`delete` every ``(digest, path)`` pair: the same final state as the loop of `delete`.

        Validation, order, batching, memory and failure behave as in `put_many`;
        unknown digests and paths are no-ops, as in `delete`.

        Raises:
            InvalidDigest, InvalidPath: an entry is bad; ``error.position`` is its
                0-based index, and nothing was written.

        .. versionadded:: 0.1
        """
        with self._batches(pairs, self._pair) as batches:
            for batch in map(_as_pairs, batches):
                removals = self._backend.delete_many(batch)
                for (digest, stored), removal in zip(batch, removals, strict=True):
                    self._log_removal(digest, stored, removal)

    def _batches(
        self, entries: Iterable[Any], parse: _bulk.Parse
    ) -> contextlib.closing[_bulk.Batches]:
        """Validated batches; closing them removes the spool file at once, even on failure."""
        return contextlib.closing(_bulk.batches(entries, parse, self.options.batch_size))

    def _pair(self, position: int, entry: object) -> tuple[str, str]:
        """``entry`` as a validated, stored-form ``(digest, path)`` pair."""
        try:
            digest, path = cast("tuple[object, object]", entry)
        except (TypeError, ValueError):
            raise InvalidDigest(
                entry, "expected a (digest, path) pair", position=position
            ) from None
        try:
            return parse_digest(digest), self._paths.to_stored(path)
        except InvalidDigest as exc:
            raise InvalidDigest(exc.digest, exc.reason, position=position) from None
        except InvalidPath as exc:
            raise InvalidPath(exc.path, exc.reason, position=position) from None

    def _log_removal(self, digest: str, stored: str, removal: Removal) -> None:
        if not removal.removed:
            self._log.debug("blob_delete_missed", digest=digest, path=stored)
            return
        self._log.info("blob_deleted", digest=digest, path=stored)
        if removal.promoted is not None:
            self._log.info("original_promoted", digest=digest, path=removal.promoted)
        if removal.item_removed:
            self._log.info("item_removed", digest=digest)

    def entries(self) -> Iterator[BlobEntry]:
        """Every entry of the cache, streamed page by page (not a snapshot)."""
        public = self._paths.to_public
        for digest, item in self._backend.scan():
            yield BlobEntry(digest, public(item.original), frozenset(map(public, item.paths)))

    def check(self) -> None:
        """Raise `ConfigurationError` for a mistake found without sending a request.

        A SQLite file whose directory does not exist, a DynamoDB table with no region
        (neither in the URL nor from botocore's chain), a root that is not a directory.
        Integrations call it at start-up, so the mistake stops the application there
        rather than at its first request.

        .. versionadded:: 0.1
        """
        self._backend.check()
        if self.root is not None and not os.path.isdir(self.root):
            raise ConfigurationError(
                f"root {self.root!r} is not an existing directory; create it, or fix the root"
            )

    def release(self) -> None:
        """Give back the connection the calling thread holds, if any (SQLite).

        Cheaper than `close`: other threads keep theirs. Frameworks call it when a
        request ends. The cache stays usable.

        .. versionadded:: 0.1
        """
        self._backend.release()

    def close(self) -> None:
        """Release connections; the cache reopens them if used again."""
        self._backend.close()

    def __enter__(self) -> BlobCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        root = f", root={self.root!r}" if self.root else ""
        return f"<BlobCache {self.name} {self._backend.target!r}{root}>"

    def _read(self, digest: str) -> Item:
        digest = parse_digest(digest)
        item = self._backend.get(digest)
        if item is None:
            self._log.debug("blob_missed", digest=digest)
            raise CacheMiss(digest)
        self._log.debug("blob_read", digest=digest, path=item.original)
        return item


def _checked(position: int, digest: object) -> str:
    try:
        return parse_digest(digest)
    except InvalidDigest as exc:
        raise InvalidDigest(exc.digest, exc.reason, position=position) from None


def _digest(position: int, entry: object) -> tuple[str]:
    return (_checked(position, entry),)


def _as_pairs(batch: list[tuple[str, ...]]) -> list[tuple[str, str]]:
    return cast("list[tuple[str, str]]", batch)
