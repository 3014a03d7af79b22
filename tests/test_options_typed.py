"""Typed `from_url` options and the ``must_exist`` option that refuses a missing store."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from blobcache import BlobCache, Options, OptionsDict, TableNotFound
from tests.helpers import digest_of


class TestOptionsDict:
    def test_keys_are_exactly_the_options_fields(self) -> None:
        """OptionsDict cannot drift from Options: a field added to one must be added to the
        other (with the same type), or this fails."""
        hints = typing.get_type_hints(OptionsDict)
        fields = {field.name: field.type for field in dataclasses.fields(Options)}
        assert set(hints) == set(fields)
        option_hints = typing.get_type_hints(Options)
        assert {name: hints[name] for name in fields} == {
            name: option_hints[name] for name in fields
        }

    def test_from_url_declares_them(self) -> None:
        """from_url's ``**options`` are Unpack[OptionsDict], which editors and mypy read."""
        hint = typing.get_type_hints(BlobCache.from_url)["options"]
        assert hint == typing.Unpack[OptionsDict]


class TestMustExist:
    def test_missing_sqlite_file_is_refused_and_not_created(self, tmp_path: Path) -> None:
        """With must_exist a read of a missing file raises TableNotFound naming it, and
        leaves no file behind."""
        target = tmp_path / "typo.db"
        cache = BlobCache.from_url(f"sqlite:///{target}", must_exist=True)
        with cache, pytest.raises(TableNotFound, match=r"SQLite database '.*typo\.db' does not"):
            cache.get(digest_of(1))
        assert not target.exists()

    def test_existing_file_without_schema_is_refused(self, tmp_path: Path) -> None:
        """An existing file that is not (yet) a blobcache database is not silently set up."""
        target = tmp_path / "empty.db"
        target.touch()
        cache = BlobCache.from_url(f"sqlite:///{target}", must_exist=True)
        with cache, pytest.raises(TableNotFound):
            next(cache.entries())
        assert target.stat().st_size == 0

    def test_create_table_still_creates(self, tmp_path: Path) -> None:
        """create_table is the one call that creates a store even with must_exist."""
        url = f"sqlite:///{tmp_path / 'new.db'}"
        with BlobCache.from_url(url, must_exist=True) as cache:
            cache.create_table()
            cache.put(digest_of(1), "/a")
        with BlobCache.from_url(url, must_exist=True) as cache:
            assert cache.get(digest_of(1)) == "/a"

    def test_default_still_creates_on_first_use(self, tmp_path: Path) -> None:
        """Without the option, the first use creates file and schema, as before."""
        with BlobCache.from_url(f"sqlite:///{tmp_path / 'fresh.db'}") as cache:
            cache.put(digest_of(1), "/a")
        assert (tmp_path / "fresh.db").exists()
