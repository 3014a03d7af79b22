"""Replacing duplicate copies under a storage root by hard links to the original."""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Literal

from blobcache._cache import BlobCache, BlobEntry
from blobcache._errors import InvalidPath
from blobcache.maintenance._fs import (
    identity,
    inside,
    is_regular,
    lstat_at,
    open_nofollow,
    parent_dir,
    same_content,
)
from blobcache.maintenance._location import S3Location, StorageLocation, parse_location
from blobcache.maintenance._stored import log

SkipReason = Literal[
    "content_differs",
    "copy_changed",
    "error",
    "missing",
    "not_a_regular_file",
    "original_changed",
    "original_unusable",
    "other_device",
    "outside_root",
    "placeholder",
    "symlink_in_path",
]


@dataclass(frozen=True, slots=True)
class Link:
    """A duplicate copy replaced (or to be replaced) by a hard link to the original.

    .. versionadded:: 0.1
    """

    digest: str
    path: str
    original: str
    size: int


@dataclass(frozen=True, slots=True)
class Skipped:
    """A duplicate path `dedupe` left alone, and why.

    .. versionadded:: 0.1
    """

    digest: str
    path: str
    reason: SkipReason
    #: For ``"error"``: the ``OSError`` met, with its errno.
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class DedupeReport:
    """What `dedupe` linked, or would link in a dry run.

    .. versionadded:: 0.1
    """

    #: Whether files were changed (``False`` for a dry run, which touches none).
    applied: bool
    links: tuple[Link, ...]
    #: Bytes freed, by copies whose last other name went with the link.
    reclaimed_bytes: int
    #: Copies already hard-linked to their original.
    already_linked: int
    skipped: tuple[Skipped, ...]


def dedupe(
    cache: BlobCache,
    root: str | os.PathLike[str] | StorageLocation,
    *,
    apply: bool = False,
    verify_digests: bool = False,
    workers: int = 8,
) -> DedupeReport:
    """Replace each duplicate copy under ``root`` by a hard link (or S3 placeholder).

    As zot does on local storage. A dry run unless ``apply``. Only regular
    files inside ``root`` are touched, found without following any symbolic
    link (a symlink anywhere on the way skips the path); a copy on another
    device than its original, a zero-byte placeholder and a copy whose bytes
    differ from the original are skipped and reported. Each copy is replaced
    atomically: the original is linked to a temporary name beside the copy,
    which is then renamed over it, so the path always names a complete file.
    An original or copy swapped for another file while it is compared is
    skipped (``original_changed``, ``copy_changed``), and so is a copy the
    file system refuses to link or replace (``error``, with the ``OSError`` in
    ``detail``); the run goes on.

    On S3 (``s3://BUCKET[/ROOTDIRECTORY]``), as zot does with dedupe on,
    each full duplicate copy is replaced by a zero-byte placeholder object:
    only after HeadObject shows the original exists with content and the
    copy's size (with ``verify_digests``, after reading and hashing both),
    and only while the copy is still the object checked: re-checked with
    ``If-Match`` right before, and written with ``If-Match`` on its ETag,
    so a server that honours conditional writes (AWS S3, moto's server)
    refuses a copy rewritten in between. A `Link` is then a copy replaced
    by a placeholder, ``already_linked`` counts copies that are
    placeholders already, and the empty blob is left alone. Digests are
    handled on ``workers`` threads.

    Args:
        cache: the cache that says which paths share a digest.
        root: the storage root (a directory, an ``s3://`` URL or a parsed
            location); paths outside it are never touched.
        apply: link for real; without it nothing on disk changes.
        verify_digests: on S3, hash both objects before replacing a copy
            (locally the bytes are always compared).
        workers: S3 digests handled concurrently.

    Returns:
        A `DedupeReport`.

    Raises:
        InvalidPath: ``root`` is not a directory.

    .. versionadded:: 0.1
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers!r}")
    location = parse_location(root)
    if isinstance(location, S3Location):
        from blobcache.maintenance._s3_dedupe import dedupe_s3

        return dedupe_s3(cache, location, apply, verify_digests, workers)
    top = location.path
    if not os.path.isdir(top):
        raise InvalidPath(top, "not a directory; give the storage root to deduplicate")
    links: list[Link] = []
    skipped: list[Skipped] = []
    already = 0
    # Copies to unlink per inode, to count bytes only when an inode's last name goes.
    inodes: dict[tuple[int, int, int], tuple[int, int, int]] = {}
    for entry in cache.entries():
        for outcome in _dedupe_entry(top, entry, apply):
            if isinstance(outcome, Skipped):
                skipped.append(outcome)
            elif outcome is None:
                already += 1
            else:
                link, inode, nlink = outcome
                links.append(link)
                count, _, size = inodes.get(inode, (0, nlink, link.size))
                inodes[inode] = (count + 1, nlink, size)
    reclaimed = sum(size for count, nlink, size in inodes.values() if count >= nlink)
    if apply:
        log.info("dedupe_finished", root=top, linked=len(links), reclaimed_bytes=reclaimed)
    return DedupeReport(apply, tuple(links), reclaimed, already, tuple(skipped))


_Outcome = Skipped | None | tuple[Link, tuple[int, int, int], int]


def _dedupe_entry(top: str, entry: BlobEntry, apply: bool) -> Iterator[_Outcome]:
    copies = sorted(entry.paths - {entry.original})
    if not copies:
        return
    original = inside(top, entry.original)
    with ExitStack() as stack:
        source = None
        if original is not None:
            try:
                source_dir, source_name = stack.enter_context(parent_dir(top, original))
                source_status = lstat_at(source_dir, source_name)
                if is_regular(source_status) and source_status.st_size > 0:
                    source_fd = open_nofollow(source_name, source_dir)
                    stack.callback(os.close, source_fd)
                    if identity(os.fstat(source_fd)) == identity(source_status):
                        source = (source_dir, source_name, source_status, source_fd)
            except OSError:
                source = None
        for path in copies:
            if source is None:
                yield Skipped(entry.digest, path, "original_unusable")
                continue
            yield _dedupe_copy(top, entry, path, source, apply)


def _dedupe_copy(
    top: str,
    entry: BlobEntry,
    path: str,
    source: tuple[int, str, os.stat_result, int],
    apply: bool,
) -> _Outcome:
    _, _, source_status, source_fd = source
    target = inside(top, path)
    if target is None:
        return Skipped(entry.digest, path, "outside_root")
    try:
        with parent_dir(top, target) as (directory, name):
            status = lstat_at(directory, name)
            if not is_regular(status):
                return Skipped(entry.digest, path, "not_a_regular_file")
            if identity(status) == identity(source_status):
                return None
            if status.st_dev != source_status.st_dev:
                return Skipped(entry.digest, path, "other_device")
            if status.st_size == 0:
                return Skipped(entry.digest, path, "placeholder")
            if status.st_size != source_status.st_size:
                return Skipped(entry.digest, path, "content_differs")
            # Held open until the rename, so the copy's inode number cannot be reused.
            copy_fd = open_nofollow(name, directory)
            try:
                if identity(os.fstat(copy_fd)) != identity(status):
                    return Skipped(entry.digest, path, "copy_changed")
                if not same_content(source_fd, copy_fd):
                    return Skipped(entry.digest, path, "content_differs")
                if apply:
                    changed = _replace_with_link(source, status, directory, name)
                    if changed is not None:
                        return Skipped(entry.digest, path, changed)
                    log.info(
                        "copy_linked", digest=entry.digest, path=target, original=entry.original
                    )
            finally:
                os.close(copy_fd)
            link = Link(entry.digest, target, entry.original, status.st_size)
            return link, identity(status), status.st_nlink
    except FileNotFoundError:
        return Skipped(entry.digest, path, "missing")
    except OSError as exc:
        # O_NOFOLLOW refuses a symlinked directory on the way with ELOOP (or ENOTDIR).
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            return Skipped(entry.digest, path, "symlink_in_path")
        # One unlinkable copy (EACCES, EXDEV across bind mounts, EMLINK, EROFS...)
        # must not stop the run.
        return Skipped(entry.digest, path, "error", str(exc))


def _replace_with_link(
    source: tuple[int, str, os.stat_result, int],
    status: os.stat_result,
    directory: int,
    name: str,
) -> Literal["original_changed", "copy_changed"] | None:
    """Link the original to a temporary name beside ``name``, then rename it over ``name``.

    ``os.link`` works on names, not on the descriptors compared, so both
    names are checked again afterwards: the link must be the compared
    original, and ``name`` still the compared copy; if either was swapped
    meanwhile, nothing is replaced and the reason is returned.
    """
    source_dir, source_name, source_status, _ = source
    # A fixed-length name, so a copy whose name is near NAME_MAX still fits.
    temporary = f".blobcache-{uuid.uuid4().hex}"
    os.link(
        source_name, temporary, src_dir_fd=source_dir, dst_dir_fd=directory, follow_symlinks=False
    )
    replaced = False
    try:
        if identity(lstat_at(directory, temporary)) != identity(source_status):
            return "original_changed"
        if identity(lstat_at(directory, name)) != identity(status):
            return "copy_changed"
        os.replace(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)
        replaced = True
        return None
    finally:
        if not replaced:
            os.unlink(temporary, dir_fd=directory)
