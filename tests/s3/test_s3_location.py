"""Storage locations: parsed once, mapping cache paths to keys only inside the location."""

from __future__ import annotations

from pathlib import Path

import pytest

from blobcache import ConfigurationError
from blobcache.maintenance import LocalDirectory, S3Location, parse_location
from blobcache.maintenance._location import s3_url


class TestParseLocation:
    @pytest.mark.parametrize(
        ("url", "bucket", "root"),
        [
            ("s3://bucket", "bucket", ""),
            ("s3://bucket/", "bucket", ""),
            ("s3://bucket/base", "bucket", "base"),
            ("s3://bucket/base/deeper/", "bucket", "base/deeper"),
            ("S3://bucket/base", "bucket", "base"),
        ],
    )
    def test_bucket_and_root_directory(self, url: str, bucket: str, root: str) -> None:
        """The bucket and the root directory, without leading or trailing slashes."""
        location = parse_location(url)
        assert isinstance(location, S3Location)
        assert (location.bucket, location.root_directory) == (bucket, root)

    def test_query_options_and_round_trip(self) -> None:
        """region and a percent-encoded endpoint_url are read; s3_url writes them back."""
        url = "s3://b/base?region=eu-west-1&endpoint_url=http%3A%2F%2F127.0.0.1%3A9000"
        location = parse_location(url)
        assert location == S3Location(
            "b", "base", region="eu-west-1", endpoint_url="http://127.0.0.1:9000"
        )
        assert isinstance(location, S3Location)
        assert parse_location(s3_url(location)) == location
        assert str(location) == "s3://b/base"

    def test_a_directory_and_a_parsed_location(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Anything else is a local directory, made absolute; a parsed location passes."""
        monkeypatch.chdir(tmp_path)
        assert parse_location("registry") == LocalDirectory(str(tmp_path / "registry"))
        assert parse_location(tmp_path) == LocalDirectory(str(tmp_path))
        parsed = S3Location("b")
        assert parse_location(parsed) is parsed

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("s3://", "bucket name"),
            ("s3://b/a/../c", "'..'"),
            ("s3://b/a//c", "empty"),
            ("s3://b?colour=red", "unknown"),
            ("s3://b?endpoint_url=ftp%3A%2F%2Fhost", "endpoint_url"),
            ("s3://b?addressing_style=sideways", "addressing_style"),
            ("gs://b/base", "unsupported"),
        ],
    )
    def test_malformed_locations(self, url: str, message: str) -> None:
        """A malformed location is a ConfigurationError that says what is wrong."""
        with pytest.raises(ConfigurationError, match=message):
            parse_location(url)

    @pytest.mark.parametrize(
        "url",
        [
            "s3://AKIDEXAMPLE:hunter2secret@bucket/base",
            "s3://b?endpoint_url=http%3A%2F%2Fuser%3Ahunter2secret%40host",
        ],
    )
    def test_credentials_are_refused_and_never_echoed(self, url: str) -> None:
        """Credentials in the location are refused; the message does not repeat them."""
        with pytest.raises(ConfigurationError, match="credentials") as raised:
            parse_location(url)
        assert "hunter2secret" not in str(raised.value)


class TestKeyMapping:
    @pytest.mark.parametrize(
        ("root", "path", "key"),
        [
            (
                "base",
                "/zot/library/alpine/blobs/sha256/ab",
                "base/zot/library/alpine/blobs/sha256/ab",
            ),
            ("", "/zot/r/blobs/sha256/ab", "zot/r/blobs/sha256/ab"),
            ("base/deeper", "/zot/x", "base/deeper/zot/x"),
        ],
    )
    def test_zot_s3_driver_mapping(self, root: str, path: str, key: str) -> None:
        """key = (ROOTDIRECTORY.rstrip('/') + P).lstrip('/'), and back."""
        location = S3Location("b", root)
        assert location.key_of(path) == key
        assert location.path_of(key) == path

    @pytest.mark.parametrize(
        "path", ["relative/x", "/a/../b", "/a/./b", "//a", "/a//b", "/a/", "/", "/a\x00b"]
    )
    def test_paths_that_could_leave_the_location_map_to_nothing(self, path: str) -> None:
        """Relative, dotted, doubled or trailing slashes: no key, so never touched."""
        assert S3Location("b", "base").key_of(path) is None

    @pytest.mark.parametrize("key", ["base2/zot/x", "basement/x", "zot/x", "base/", "base/a//b"])
    def test_keys_outside_the_root_directory_have_no_path(self, key: str) -> None:
        """A sibling prefix ('base2/', 'basement/') is not under 'base/'."""
        assert S3Location("b", "base").path_of(key) is None
