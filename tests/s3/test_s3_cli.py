"""The command line over an S3 location: index, verify --storage, prune --storage, dedupe,
restore."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from blobcache import BlobCache
from blobcache.cli import cli
from blobcache.testing import LocalBucket
from tests.helpers import read_raw
from tests.s3.conftest import L1, L3, ZotBucket, blob_key, fresh_name, path_of, sha256

BUSYBOX = blob_key("base/zot/library/busybox", sha256(L1))


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_index_verify_dedupe_restore_prune(zot: ZotBucket, tmp_path: Path) -> None:
    """The S3 workflow end to end, with the exit codes an operator scripts against."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"

    indexed = run("--url", url, "index", zot.url, "--json")
    assert indexed.exit_code == 0, indexed.output
    assert json.loads(indexed.stdout)["recorded"] == 10

    checked = run("--url", url, "verify", "--storage", zot.url)
    assert checked.exit_code == 1
    assert "BROKEN PULLS: 1 original(s)" in checked.stderr
    assert sha256(L3) in checked.stderr
    assert "placeholder_original" in checked.stdout

    dry = run("--url", url, "dedupe", zot.url)
    assert dry.exit_code == 0, dry.output
    assert "2 copies would replace" in dry.stdout
    assert zot.read(BUSYBOX) == L1
    applied = run("--url", url, "dedupe", zot.url, "--yes", "--workers", "2")
    assert "2 copies replaced" in applied.stdout
    assert zot.read(BUSYBOX) == b""

    restored = run("--url", url, "restore", zot.url, "--yes", "--json")
    assert restored.exit_code == 0, restored.output
    document = json.loads(restored.stdout)
    assert len(document["restored"]) == 3
    assert zot.read(BUSYBOX) == L1

    zot.client.delete_object(Bucket=zot.name, Key=BUSYBOX)
    pruned = run("--url", url, "prune", "--storage", zot.url, "--yes")
    assert pruned.exit_code == 0, pruned.output
    assert f"removed: {sha256(L1)} {path_of(BUSYBOX)}" in pruned.stdout
    with BlobCache.from_url(url) as cache:
        assert path_of(BUSYBOX) not in read_raw(cache)[sha256(L1)][1]


def test_missing_bucket_exits_2(blobcache_s3: LocalBucket, tmp_path: Path) -> None:
    """A bucket that is not there: one line on stderr, exit 2, for every command."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    location = blobcache_s3.url("base").replace(blobcache_s3.name, fresh_name(), 1)
    for args in (
        ("index", location),
        ("verify", "--storage", location),
        ("prune", "--storage", location),
        ("dedupe", location),
        ("restore", location),
    ):
        result = run("--url", url, *args)
        assert result.exit_code == 2, (args, result.output)
        assert "does not exist" in result.stderr


def test_bad_location_exits_2(tmp_path: Path) -> None:
    """A malformed location or credentials in it: exit 2, and the secret is not echoed."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    result = run("--url", url, "index", "s3://AKIAXXX:s3cr3t@bucket/base")
    assert result.exit_code == 2
    assert "s3cr3t" not in result.stderr
    missing = run("--url", url, "index", str(tmp_path / "nowhere"))
    assert missing.exit_code == 2
    assert "not a directory" in missing.stderr


def test_storage_option_takes_a_directory_too(tmp_path: Path) -> None:
    """verify --storage DIR looks paths up under DIR, as the cache's --root would."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    registry = tmp_path / "registry"
    (registry / "r" / "blobs" / "sha256").mkdir(parents=True)
    kept = registry / "r" / "blobs" / "sha256" / sha256(L1)[7:]
    kept.write_bytes(L1)
    assert run("--url", url, "index", str(registry)).exit_code == 0
    kept.unlink()

    checked = run("--url", url, "verify", "--storage", str(registry))
    elsewhere = run("--url", url, "verify", "--storage", str(tmp_path / "other"))

    assert checked.exit_code == 1
    assert f"missing_path: {sha256(L1)} {kept}" in checked.stdout
    assert elsewhere.exit_code == 0
    assert "1 paths not checked" in elsewhere.stdout
