"""Filesystem access that stays inside a root and never follows a symbolic link."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager

_CHUNK = 1 << 20
#: Digests of the empty blob: a zero-byte file with one of these names holds its content.
EMPTY_DIGESTS = frozenset(
    f"{name}:{hashlib.new(name, b'').hexdigest()}" for name in ("sha256", "sha512")
)


def inside(root: str, path: str) -> str | None:
    """``path`` normalised if it is absolute and lexically inside ``root``, else ``None``.

    A relative path is refused: without a root to anchor it, it means
    whatever the current directory makes of it.
    """
    if not os.path.isabs(path):
        return None
    normal = os.path.normpath(path)
    root = os.path.normpath(os.path.abspath(root))
    if normal == root or not normal.startswith(root.rstrip(os.sep) + os.sep):
        return None
    return normal


@contextmanager
def parent_dir(root: str, path: str) -> Iterator[tuple[int, str]]:
    """Open the directory holding ``path`` (inside ``root``) without following any symlink.

    Yields ``(dir_fd, name)``. Each component below ``root`` is opened with
    ``O_NOFOLLOW`` relative to its parent, so a symlink swapped into the tree
    raises `OSError` instead of leading elsewhere.
    """
    root = os.path.normpath(os.path.abspath(root))
    parts = os.path.relpath(path, root).split(os.sep)
    flags = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            child = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = child
        yield fd, parts[-1]
    finally:
        os.close(fd)


def lstat_at(dir_fd: int, name: str) -> os.stat_result:
    """``lstat`` of ``name`` in ``dir_fd``."""
    return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)


def is_regular(status: os.stat_result) -> bool:
    """Whether ``status`` describes a regular file (not a symlink, device or directory)."""
    return stat.S_ISREG(status.st_mode)


def identity(status: os.stat_result) -> tuple[int, int, int]:
    """Which file ``status`` describes, whatever its name now: device, inode and type.

    An inode number freed by an unlink can be reused at once, by a FIFO as
    well as by a file; the type tells those apart, and holding the file open
    keeps its number from being reused at all.
    """
    return status.st_dev, status.st_ino, stat.S_IFMT(status.st_mode)


def open_nofollow(name: str, dir_fd: int | None = None) -> int:
    """Open ``name`` read-only, refusing a symlink.

    Non-blocking, so a FIFO swapped in for a file cannot hang the open; the
    caller compares `identity` of the open file with what it expected.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    return os.open(name, flags, dir_fd=dir_fd)


def hash_file(path: str, algorithm: str) -> str | None:
    """The digest of the file at ``path``, or ``None`` if hashlib lacks ``algorithm``."""
    try:
        hasher = hashlib.new(algorithm)
    except ValueError:
        return None
    fd = open_nofollow(path)
    with os.fdopen(fd, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            hasher.update(chunk)
    return f"{algorithm}:{hasher.hexdigest()}"


def same_content(first: int, second: int) -> bool:
    """Whether two open files hold the same bytes, read in chunks."""
    with os.fdopen(os.dup(first), "rb") as a, os.fdopen(os.dup(second), "rb") as b:
        a.seek(0)
        b.seek(0)
        while True:
            left, right = a.read(_CHUNK), b.read(_CHUNK)
            if left != right:
                return False
            if not left:
                return True
