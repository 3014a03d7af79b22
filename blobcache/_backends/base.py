"""What a storage backend provides, and the cache semantics shared by all of them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol


class Item(NamedTuple):
    """The stored state of one digest: its original and every path, the original included.

    A named tuple rather than a frozen dataclass: one is built per read, and
    tuples build several times faster.
    """

    original: str
    paths: frozenset[str]

    @classmethod
    def tolerant(cls, original: str | None, paths: Iterable[str]) -> Item | None:
        """Read an item however another writer left it.

        zot may keep the original outside the set and a crash in zot can
        leave an item with no original; an item with no path at all reads as
        absent.
        """
        members = frozenset(paths)
        if original is None:
            if not members:
                return None
            original = min(members)
        return cls(original, members | {original})

    def without(self, path: str) -> Item | None:
        """The item after deleting ``path``: ``None`` once no path is left.

        When the original goes, the smallest remaining path (code-point
        order) takes its place, so every backend promotes the same path.
        """
        remaining = self.paths - {path}
        if not remaining:
            return None
        original = self.original if self.original != path else min(remaining)
        return Item(original, remaining)


@dataclass(frozen=True, slots=True)
class Removal:
    """What a delete did, for the caller's log."""

    removed: bool
    promoted: str | None = None
    item_removed: bool = False

    @classmethod
    def between(cls, before: Item, after: Item | None) -> Removal:
        """Describe the change from ``before`` to ``after``."""
        if after is None:
            return cls(removed=True, item_removed=True)
        promoted = after.original if after.original != before.original else None
        return cls(removed=True, promoted=promoted)


@dataclass(frozen=True, slots=True)
class StoredItem:
    """One stored item exactly as found, for maintenance: it may break the invariants.

    ``legacy_paths`` is the seed's old ``BlobPath`` set; ``original`` is
    ``None`` where the item has none and ``paths`` is empty for a key-only item.
    """

    digest: str
    original: str | None
    paths: frozenset[str]
    legacy_paths: frozenset[str] = frozenset()


class Backend(Protocol):
    """A store that keeps `Item`\\ s by digest. Inputs are already validated."""

    #: The backend's name: "dynamodb", "sqlite" or "redis" (which ``rediss``/``unix`` URLs open).
    name: str
    #: What messages call the store: a table name, a database file, or a Redis URL
    #: without its password.
    target: str

    @property
    def log_fields(self) -> Mapping[str, str]:
        """Fields bound to every log line of a cache on this backend (``backend``, ``table``)."""

    def create_table(self) -> bool:
        """Create the table or schema if missing; return whether it was created."""

    def put(self, digest: str, path: str) -> None:
        """Add ``path``; the first path of a digest becomes its original."""

    def get(self, digest: str) -> Item | None:
        """The item for ``digest``, or ``None``."""

    def delete(self, digest: str, path: str) -> Removal:
        """Remove ``path``, promoting or removing the item as `Item.without` says."""

    def put_many(self, pairs: Sequence[tuple[str, str]]) -> None:
        """`put` every pair: the pairs of one digest in the order given, digests in any order.

        One batch of at most ``Options.batch_size`` pairs; the final state is that
        of the loop of `put` calls. Not atomic across digests: on failure, some
        pairs may have been written and a re-run is safe.
        """

    def get_many(self, digests: Sequence[str]) -> dict[str, Item]:
        """The item of every digest that has one; misses are absent (duplicates allowed)."""

    def delete_many(self, pairs: Sequence[tuple[str, str]]) -> list[Removal]:
        """`delete` every pair as `put_many` puts them; one `Removal` per pair, in order."""

    def scan(self) -> Iterator[tuple[str, Item]]:
        """Every item, streamed."""

    def scan_stored(self, segments: int = 1) -> Iterator[StoredItem]:
        """Every stored item as found, broken or legacy ones included, streamed."""

    def migrate_legacy(self, digest: str, legacy: frozenset[str]) -> bool:
        """Fold the legacy path set of ``digest`` into the current layout; ``False`` if it lost."""

    def close(self) -> None:
        """Release connections."""

    def release(self) -> None:
        """Give back what the calling thread holds (its SQLite connection); cheap, idempotent."""

    def check(self) -> None:
        """Raise `ConfigurationError` for a mistake visible without a request."""
