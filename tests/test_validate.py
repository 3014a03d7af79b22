"""Digest and path parsing at the boundary, and relative-path mapping."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from blobcache import ConfigurationError, InvalidDigest, InvalidPath
from blobcache._validate import PathMapper, parse_digest, parse_path


class TestParseDigest:
    @pytest.mark.parametrize(
        "digest",
        [
            "sha256:" + hashlib.sha256(b"").hexdigest(),
            "sha512:" + hashlib.sha512(b"x").hexdigest(),
            "blake3:" + "a" * 64,
            "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
            "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
        ],
    )
    def test_valid_digests_pass_unchanged(self, digest: str) -> None:
        """Registered digests of the right length, and other algorithms that follow the
        OCI grammar, are returned as given."""
        assert parse_digest(digest) == digest

    @pytest.mark.parametrize(
        ("digest", "reason"),
        [
            ("key1", "grammar"),
            ("sha256:", "grammar"),
            ("sha256:" + "A" * 64, "64 lowercase hex"),
            ("sha256:" + "a" * 63, "64 lowercase hex"),
            ("sha512:" + "a" * 127, "128 lowercase hex"),
            ("sha256:" + "a" * 64 + "\n", "grammar"),
            ("Sha256:" + "a" * 64, "grammar"),
            ("sha256::" + "a" * 64, "grammar"),
            ("x:" + "a" * 3000, "longer than"),
            (None, "expected str, got NoneType"),
            (b"sha256:abc", "expected str, got bytes"),
        ],
    )
    def test_invalid_digests_say_why(self, digest: object, reason: str) -> None:
        """Each bad digest raises InvalidDigest whose message gives the reason and the form."""
        with pytest.raises(InvalidDigest, match="expected 'algorithm:encoded'") as caught:
            parse_digest(digest)
        assert reason in str(caught.value)
        assert caught.value.digest == digest


class TestParsePath:
    def test_limits(self) -> None:
        """A path is a non-empty str without NUL, valid UTF-8, at most 4,096 bytes."""
        assert parse_path("/a") == "/a"
        assert parse_path("x" * 4096) == "x" * 4096
        for bad, reason in [
            ("", "empty"),
            ("a\x00", "NUL"),
            ("\udcff", "UTF-8"),
            ("é" * 2049, "4098 bytes"),
            (Path("/a"), "expected str"),
        ]:
            with pytest.raises(InvalidPath, match=reason):
                parse_path(bad)


class TestPathMapper:
    @pytest.mark.parametrize("root", ["", 42, b"/bytes"])
    def test_bad_root_is_a_configuration_error(self, root: object) -> None:
        """A root that is not a non-empty path raises ConfigurationError, not TypeError."""
        with pytest.raises(ConfigurationError, match="root must be a non-empty directory"):
            PathMapper(root)  # type: ignore[arg-type]

    def test_without_root_paths_are_kept(self) -> None:
        """With no root, paths are stored and returned exactly as given."""
        mapper = PathMapper(None)
        assert mapper.to_stored("relative/../odd") == "relative/../odd"
        assert mapper.to_public("x") == "x"

    def test_root_mode_round_trip(self, tmp_path: Path) -> None:
        """Absolute paths inside root and relative ones both store as normalised POSIX
        paths relative to root, and come back absolute."""
        mapper = PathMapper(tmp_path)
        assert mapper.to_stored(str(tmp_path / "a" / "b")) == "a/b"
        assert mapper.to_stored("a/./c/../b") == "a/b"
        assert mapper.to_public("a/b") == os.path.join(tmp_path, "a", "b")

    def test_root_is_made_absolute(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A relative root is resolved against the working directory once, at construction."""
        monkeypatch.chdir(tmp_path)
        mapper = PathMapper("registry")
        monkeypatch.chdir("/")
        assert mapper.root == str(tmp_path / "registry")

    @pytest.mark.parametrize("path", ["..", "../x", "a/../../x", "/elsewhere", ".", ""])
    def test_escapes_are_refused(self, tmp_path: Path, path: str) -> None:
        """Paths that leave the root, or name the root itself, raise InvalidPath."""
        with pytest.raises(InvalidPath):
            PathMapper(tmp_path / "root").to_stored(path)

    def test_sibling_with_common_prefix_is_outside(self, tmp_path: Path) -> None:
        """'/srv/registry2' is not inside '/srv/registry' although it shares a prefix."""
        with pytest.raises(InvalidPath, match="not inside root"):
            PathMapper(tmp_path / "registry").to_stored(str(tmp_path / "registry2" / "x"))
