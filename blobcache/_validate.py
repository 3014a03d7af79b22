"""Parsing of digests and paths at the API boundary; everything past it is trusted."""

from __future__ import annotations

import os
import posixpath
import re

from blobcache._errors import ConfigurationError, InvalidDigest, InvalidPath

# OCI image-spec descriptor grammar: algorithm ":" encoded.
_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_LOWER_HEX = re.compile(r"[a-f0-9]+")
# Registered algorithms and the exact hex length of their encoded part.
_REGISTERED = {"sha256": 64, "sha512": 128}
# DynamoDB caps a partition key at 2048 bytes; the grammar is ASCII-only.
MAX_DIGEST_LENGTH = 2048
MAX_PATH_BYTES = 4096


_SHA256 = re.compile(r"sha256:[a-f0-9]{64}")


def parse_digest(digest: object) -> str:
    """Return ``digest`` unchanged if it is a valid OCI digest, else raise `InvalidDigest`."""
    if type(digest) is str and _SHA256.fullmatch(digest):  # the digest nearly every call has
        return digest
    if not isinstance(digest, str):
        raise InvalidDigest(digest, f"expected str, got {type(digest).__name__}")
    if len(digest) > MAX_DIGEST_LENGTH:
        raise InvalidDigest(digest, f"longer than {MAX_DIGEST_LENGTH} characters")
    if _DIGEST.fullmatch(digest) is None:
        raise InvalidDigest(digest, "does not match the OCI digest grammar")
    algorithm, _, encoded = digest.partition(":")
    length = _REGISTERED.get(algorithm)
    if length is not None and (len(encoded) != length or not _LOWER_HEX.fullmatch(encoded)):
        raise InvalidDigest(digest, f"{algorithm} needs exactly {length} lowercase hex characters")
    return digest


def parse_path(path: object) -> str:
    """Return ``path`` unchanged if it can be stored, else raise `InvalidPath`."""
    if not isinstance(path, str):
        raise InvalidPath(path, f"expected str, got {type(path).__name__}")
    if not path:
        raise InvalidPath(path, "empty")
    if "\x00" in path:
        raise InvalidPath(path, "contains a NUL character")
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidPath(path, "not valid UTF-8 (undecodable bytes from the filesystem?)") from exc
    if size > MAX_PATH_BYTES:
        raise InvalidPath(path, f"{size} bytes encoded, the limit is {MAX_PATH_BYTES}")
    return path


class PathMapper:
    """Maps caller paths to stored paths and back.

    Without a root, paths are stored as given. With one, they are stored
    relative to it with POSIX separators and returned absolute again, so a
    storage tree can move without rewriting the cache.
    """

    def __init__(self, root: str | os.PathLike[str] | None) -> None:
        if root is not None and (not isinstance(root, str | os.PathLike) or not os.fspath(root)):
            raise ConfigurationError(
                f"root must be a non-empty directory path (str or os.PathLike), not {root!r}"
            )
        self.root = None if root is None else os.path.abspath(os.fspath(root))

    def to_stored(self, path: object) -> str:
        """Validate ``path`` and return the form kept in the store."""
        path = parse_path(path)
        if self.root is None:
            return path
        joined = os.path.normpath(os.path.join(self.root, path))
        try:
            relative = os.path.relpath(joined, self.root)
        except ValueError as exc:  # another drive on Windows
            raise InvalidPath(path, f"not inside root {self.root!r}") from exc
        if (
            relative == os.curdir
            or relative == os.pardir
            or relative.startswith(os.pardir + os.sep)
        ):
            raise InvalidPath(path, f"not inside root {self.root!r}")
        return parse_path(relative.replace(os.sep, posixpath.sep))

    def to_public(self, stored: str) -> str:
        """Turn a stored path back into the caller's form."""
        if self.root is None:
            return stored
        return os.path.join(self.root, *stored.split(posixpath.sep))
