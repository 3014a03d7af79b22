"""Validate every entry of a bulk call before the first batch goes out, in flat memory.

A bulk call must reject a bad entry before anything is written, yet consume a
generator of millions of entries without holding them. So:

- a `Sequence` (a list, a tuple) is already in memory: it is validated in
  one pass that keeps nothing, then read again batch by batch (each batch
  validated again, which costs far less than the store and also catches a
  sequence changed in between);
- any other iterable is validated as it is read; if it ends within one
  batch, that batch is all there is; otherwise the validated entries are
  spooled, a batch per zlib-compressed chunk, to an anonymous temporary file
  (`tempfile.TemporaryFile`, in ``$TMPDIR``, gone when closed), and replayed
  from there batch by batch once the input is exhausted.

Memory is one batch either way; the disk holds the compressed stored form of
the input (about a third of its size: paths repeat their digest and prefix).
"""

from __future__ import annotations

import itertools
import struct
import tempfile
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import IO

#: Turns the entry at a position into its validated, stored form, or raises.
Parse = Callable[[int, object], tuple[str, ...]]

# NUL separates the fields of the spooled records: no digest or path contains one.
_SEPARATOR = "\x00"
_HEADER = struct.Struct("<II")  # compressed bytes, entries


Batches = Generator[list[tuple[str, ...]], None, None]


def batches(entries: Iterable[object], parse: Parse, batch_size: int) -> Batches:
    """Validate every entry with ``parse``, then yield them in batches of ``batch_size``.

    Nothing is yielded until every entry has been validated: a bad entry raises
    from the first ``next()``. Close the generator (or exhaust it) to remove
    the spool file at once.
    """
    if isinstance(entries, Sequence):
        yield from _sequence_batches(entries, parse, batch_size)
        return
    validated = (parse(position, entry) for position, entry in enumerate(entries))
    first = list(itertools.islice(validated, batch_size + 1))
    if len(first) <= batch_size:
        if first:
            yield first
        return
    with tempfile.TemporaryFile(prefix="blobcache-bulk-") as spool:
        count = 0
        for chunk in _chunks(itertools.chain(first, validated), batch_size):
            text = _SEPARATOR.join(field for entry in chunk for field in entry)
            payload = zlib.compress(text.encode("utf-8"), 1)
            spool.write(_HEADER.pack(len(payload), len(chunk)))
            spool.write(payload)
            count += len(chunk)
        del first
        spool.seek(0)
        yield from _replay(spool, count)


def _sequence_batches(
    entries: Sequence[object], parse: Parse, batch_size: int
) -> Iterator[list[tuple[str, ...]]]:
    for position, entry in enumerate(entries):
        parse(position, entry)
    # Iterated again rather than sliced: a Sequence need not support slices.
    yield from _chunks(
        (parse(position, entry) for position, entry in enumerate(entries)), batch_size
    )


def _chunks(items: Iterator[tuple[str, ...]], size: int) -> Iterator[list[tuple[str, ...]]]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def _replay(spool: IO[bytes], count: int) -> Iterator[list[tuple[str, ...]]]:
    replayed = 0
    while replayed < count:
        size, entries = _HEADER.unpack(spool.read(_HEADER.size))
        fields = zlib.decompress(spool.read(size)).decode("utf-8").split(_SEPARATOR)
        arity = len(fields) // entries
        yield [tuple(fields[n : n + arity]) for n in range(0, len(fields), arity)]
        replayed += entries
