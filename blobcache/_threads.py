"""Several producers on threads of their own, consumed as one stream in bounded memory."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class _Failure:
    """A producer's error, carried to the consumer and raised there."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Done:
    """A producer finished."""


class _Handoff(Generic[T]):
    def __init__(self, buffer: int) -> None:
        self.items: queue.Queue[T | _Failure | _Done] = queue.Queue(buffer)
        self.stop = threading.Event()

    def put(self, item: T | _Failure | _Done) -> bool:
        """Hand ``item`` over; ``False`` once the consumer has stopped reading."""
        # Never block for good: the consumer may have stopped reading.
        while not self.stop.is_set():
            try:
                self.items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run(self, produce: Callable[[], Iterable[T]]) -> None:
        try:
            for item in produce():
                if not self.put(item):
                    return
        except BaseException as exc:  # raised by the consumer
            self.put(_Failure(exc))
        finally:
            self.put(_Done())


def interleave(
    producers: Sequence[Callable[[], Iterable[T]]], *, buffer: int, name: str
) -> Iterator[T]:
    """Run each producer on a thread of its own; yield what they produce, as it comes.

    At most ``buffer`` items wait between the producers and the consumer. A
    producer's error is raised here. When the consumer stops or fails, the
    producers stop at their next item, and are joined before this returns.
    """
    handoff: _Handoff[T] = _Handoff(buffer)
    threads = [
        threading.Thread(target=handoff.run, args=(produce,), daemon=True, name=f"{name}-{n}")
        for n, produce in enumerate(producers)
    ]
    for thread in threads:
        thread.start()
    try:
        running = len(threads)
        while running:
            item = handoff.items.get()
            if isinstance(item, _Done):
                running -= 1
            elif isinstance(item, _Failure):
                raise item.error
            else:
                yield item
    finally:
        handoff.stop.set()
        for thread in threads:
            thread.join()
