"""Public names: each module's ``__all__``, and errors named as callers import them."""

from __future__ import annotations

import traceback
from types import ModuleType

import pytest

import blobcache
import blobcache.maintenance
import blobcache.testing
from blobcache import BlobCacheError, CacheMiss

ERRORS = [
    getattr(blobcache, name)
    for name in blobcache.__all__
    if isinstance(getattr(blobcache, name), type)
    and issubclass(getattr(blobcache, name), BlobCacheError)
]


def _ruff_order(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps ``__all__`` in: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


# blobcache's own __all__ is checked in test_public_api.
@pytest.mark.parametrize("module", [blobcache.maintenance, blobcache.testing])
def test_all_is_sorted_and_resolves(module: ModuleType) -> None:
    """``__all__`` is sorted and every name in it exists."""
    assert module.__all__ == sorted(module.__all__, key=_ruff_order)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


def test_every_error_is_exported() -> None:
    """All eight errors of the tree are public."""
    assert sorted(error.__name__ for error in ERRORS) == [
        "BlobCacheError",
        "CacheMiss",
        "ConfigurationError",
        "InvalidDigest",
        "InvalidPath",
        "ItemTooLarge",
        "StoreUnavailable",
        "TableNotFound",
    ]


@pytest.mark.parametrize("error", ERRORS, ids=lambda error: error.__name__)
def test_errors_carry_their_public_name(error: type[BlobCacheError]) -> None:
    """An error names the module callers import it from, not the private one defining it."""
    assert error.__module__ == "blobcache"
    assert getattr(blobcache, error.__name__) is error


def test_traceback_names_the_public_error() -> None:
    """A traceback's last line reads ``blobcache.CacheMiss: ...``."""
    try:
        raise CacheMiss("sha256:" + "0" * 64)
    except CacheMiss as exc:
        (line,) = traceback.format_exception_only(exc)
    assert line.startswith("blobcache.CacheMiss: no cache entry for digest 'sha256:")
