"""A linearizability checker for cache histories, per digest (Wing & Gong, with Lowe's
memoisation, as in Porcupine).

A history is a list of `Op`: what was called (``put``, ``delete``, ``get_all``, ``has``,
``get``), with what, what it returned, and when it was invoked and completed (one clock:
``time.monotonic_ns`` is system-wide on Linux, so threads and processes share it). A write
that raised `StoreUnavailable` saying its outcome is unknown is *indeterminate*: it may or
may not have taken effect, at any instant after its invocation, even after it returned (a
stalled request lands late); it gets an infinite completion time and no result to match.
Every other call that raised is recorded as having done nothing (dropped), which holds
blobcache to its promise that such a call changed nothing.

The history is linearizable when some order of the calls, each placed at one instant
between its invocation and its completion, gives every determinate call the result the
sequential cache (`step`) gives. Each digest is its own object, so histories are checked
per digest (P-compositionality).
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from blobcache import BlobCache, CacheMiss, StoreUnavailable

#: One digest's state in the sequential model: (original, paths), or None for no entry.
State = tuple[str, frozenset[str]] | None


class _Unknown(enum.Enum):
    UNKNOWN = "?"


#: A result that was never seen (an indeterminate call): any result matches. An enum
#: member, so it survives pickling from a worker process as the same object.
UNKNOWN = _Unknown.UNKNOWN
MISS = "<miss>"
#: What the message of a write that may or may not have taken effect says (docs/usage.md).
UNKNOWN_OUTCOME = "may or may not have taken effect"


@dataclass(frozen=True)
class Op:
    """One call as a client saw it. ``result`` is `UNKNOWN` for an indeterminate call."""

    kind: str
    digest: str
    path: str | None
    result: Any
    call: float
    ret: float
    client: str = ""

    def __str__(self) -> str:
        result = "?" if self.result is UNKNOWN else repr(self.result)
        ret = "inf" if math.isinf(self.ret) else f"{self.ret:.0f}"
        path = f" {self.path}" if self.path is not None else ""
        return f"[{self.call:.0f}..{ret}] {self.client} {self.kind}{path} -> {result}"


def step(state: State, op: Op) -> tuple[bool, State]:
    """The sequential cache: whether ``op``'s result fits ``state``, and the state after."""
    if op.kind == "put":
        assert op.path is not None
        if state is None:
            return True, (op.path, frozenset([op.path]))
        return True, (state[0], state[1] | {op.path})
    if op.kind == "delete":
        assert op.path is not None
        if state is None or op.path not in state[1]:
            return True, state
        remaining = state[1] - {op.path}
        if not remaining:
            return True, None
        original = state[0] if state[0] != op.path else min(remaining)
        return True, (original, remaining)
    if op.result is UNKNOWN:
        return True, state
    if op.kind == "get_all":
        if state is None:
            return op.result == MISS, state
        expected = [state[0], *sorted(state[1] - {state[0]})]
        return op.result == expected, state
    if op.kind == "get":
        return op.result == (MISS if state is None else state[0]), state
    if op.kind == "has":
        assert op.path is not None
        return op.result == (state is not None and op.path in state[1]), state
    raise ValueError(f"unknown operation {op.kind!r}")


@dataclass
class _Entry:
    op: Op | None
    is_call: bool
    id: int
    match: _Entry | None = None
    prev: _Entry | None = None
    next: _Entry | None = None


@dataclass
class Verdict:
    """The outcome for one digest: ``ok`` (``None``: the search ran out of its time
    budget, undecided), and when not ok, the calls around the failure."""

    digest: str
    ok: bool | None
    operations: int
    stuck_at: list[Op] = field(default_factory=list)

    def __str__(self) -> str:
        if self.ok:
            return f"{self.digest}: linearizable ({self.operations} calls)"
        if self.ok is None:
            return f"{self.digest}: undecided within the time budget ({self.operations} calls)"
        lines = "\n  ".join(map(str, self.stuck_at))
        return (
            f"{self.digest}: NOT linearizable ({self.operations} calls); no order fits "
            f"these calls (the longest linearizable prefix ends before them):\n  {lines}"
        )


def check_digest(
    digest: str, history: Iterable[Op], initial: State = None, budget: float | None = None
) -> Verdict:
    """Whether the calls on one digest are linearizable (Lowe's WGL search); the search
    gives up, undecided, after ``budget`` seconds."""
    deadline = math.inf if budget is None else time.monotonic() + budget
    ops = [op for op in history if op.digest == digest]
    events: list[tuple[float, int, int]] = []
    for n, op in enumerate(ops):
        # At equal times a call sorts before a return: more overlap, never a false alarm.
        events.append((op.call, 0, n))
        events.append((op.ret, 1, n))
    events.sort()
    head = _Entry(None, False, -1)
    calls: dict[int, _Entry] = {}
    last = head
    for _, is_return, n in events:
        event = _Entry(ops[n], not is_return, n)
        if is_return:
            calls[n].match = event
        else:
            calls[n] = event
        last.next, event.prev, last = event, last, event

    def lift(entry: _Entry) -> None:
        for node in (entry, entry.match):
            assert node is not None
            assert node.prev is not None
            node.prev.next = node.next
            if node.next is not None:
                node.next.prev = node.prev

    def unlift(entry: _Entry) -> None:
        for node in (entry.match, entry):
            assert node is not None
            assert node.prev is not None
            node.prev.next = node
            if node.next is not None:
                node.next.prev = node

    state: State = initial
    linearized = 0
    seen: set[tuple[int, State]] = set()
    stack: list[tuple[_Entry, State]] = []
    best, stuck = -1, list[Op]()
    entry: _Entry | None = head.next
    steps = 0
    while head.next is not None:
        assert entry is not None
        steps += 1
        if steps % 10_000 == 0 and time.monotonic() > deadline:
            return Verdict(digest, None, len(ops))
        if entry.is_call:
            assert entry.op is not None
            ok, after = step(state, entry.op)
            if ok:
                key = (linearized | 1 << entry.id, after)
                if key not in seen:
                    seen.add(key)
                    stack.append((entry, state))
                    state, linearized = after, key[0]
                    lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
            continue
        # A return whose call is not linearized yet: back up.
        if len(stack) > best:
            best, stuck = len(stack), _window(head)
        if not stack:
            return Verdict(digest, False, len(ops), stuck)
        top, state = stack.pop()
        linearized &= ~(1 << top.id)
        unlift(top)
        entry = top.next
    return Verdict(digest, True, len(ops))


def _window(head: _Entry, size: int = 8) -> list[Op]:
    """The first calls still to place: where the search got stuck."""
    found: list[Op] = []
    entry = head.next
    while entry is not None and len(found) < size:
        if entry.is_call and entry.op is not None:
            found.append(entry.op)
        entry = entry.next
    return found


def check(
    history: Iterable[Op],
    initial: Callable[[str], State] | None = None,
    budget: float | None = None,
) -> list[Verdict]:
    """Check every digest of ``history``; ``initial`` gives a digest's state before it."""
    by_digest: dict[str, list[Op]] = {}
    for op in history:
        by_digest.setdefault(op.digest, []).append(op)
    return [
        check_digest(digest, ops, initial(digest) if initial else None, budget)
        for digest, ops in sorted(by_digest.items())
    ]


def assert_linearizable(history: Iterable[Op], **kwargs: Any) -> list[Verdict]:
    """Fail with the offending calls unless every digest's history is linearizable."""
    verdicts = check(history, **kwargs)
    bad = [verdict for verdict in verdicts if verdict.ok is not True]
    assert not bad, "\n".join(map(str, bad))
    return verdicts


# -- recording ---------------------------------------------------------------------------------


@dataclass
class Recorder:
    """Records the calls a client makes on a cache, with invocation and completion times."""

    cache: BlobCache
    client: str = ""
    history: list[Op] = field(default_factory=list)

    @contextmanager
    def _timed(self, kind: str, digest: str, path: str | None) -> Iterator[list[Any]]:
        box: list[Any] = []
        started = time.monotonic_ns()
        try:
            yield box
        except StoreUnavailable as exc:
            # The documented promise, checked: only a write whose error says its outcome is
            # unknown may have taken effect; any other failed call must have changed nothing.
            if kind in ("put", "delete") and exc.outcome_unknown:
                assert UNKNOWN_OUTCOME in str(exc), "the message must say so too"  # noqa: PT017
                self.history.append(Op(kind, digest, path, UNKNOWN, started, math.inf, self.client))
            raise
        finished = time.monotonic_ns()
        result = box[0] if box else None
        self.history.append(Op(kind, digest, path, result, started, finished, self.client))

    def put(self, digest: str, path: str) -> None:
        with self._timed("put", digest, path):
            self.cache.put(digest, path)

    def delete(self, digest: str, path: str) -> None:
        with self._timed("delete", digest, path):
            self.cache.delete(digest, path)

    def get_all(self, digest: str) -> list[str] | str:
        with self._timed("get_all", digest, None) as box:
            try:
                box.append(self.cache.get_all(digest))
            except CacheMiss:
                box.append(MISS)
        result: list[str] | str = box[0]
        return result

    def get(self, digest: str) -> str:
        with self._timed("get", digest, None) as box:
            try:
                box.append(self.cache.get(digest))
            except CacheMiss:
                box.append(MISS)
        result: str = box[0]
        return result

    def has(self, digest: str, path: str) -> bool:
        with self._timed("has", digest, path) as box:
            box.append(self.cache.has(digest, path))
        result: bool = box[0]
        return result
