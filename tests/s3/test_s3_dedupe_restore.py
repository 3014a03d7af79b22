"""dedupe on S3 (copies become zero-byte placeholders) and restore (the content goes back)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from blobcache import BlobCache, ConfigurationError
from blobcache.maintenance import dedupe, index, restore
from tests.helpers import CacheFactory, read_raw
from tests.s3.conftest import BLOBS, EMPTY, L1, L2, L3, ZotBucket, blob_key, path_of, sha256

ALPINE = blob_key("base/zot/library/alpine", sha256(L1))
BUSYBOX = blob_key("base/zot/library/busybox", sha256(L1))
APPS = blob_key("base/zot/apps", sha256(L1))
OCI_L2 = blob_key("base/oci/tool", sha256(L2))
BUSYBOX_L2 = blob_key("base/zot/library/busybox", sha256(L2))
LOST = blob_key("base/zot/team/web", sha256(L3))


def require_if_match(zot: ZotBucket) -> None:
    """Skip where botocore or moto predates If-Match on PutObject (the floors of tox -e min)."""
    model = zot.client.meta.service_model.operation_model("PutObject")
    if "IfMatch" not in model.input_shape.members:
        pytest.skip("this botocore has no If-Match on PutObject; dedupe relies on its re-check")
    key = "base/if-match-probe"
    zot.put(key, b"probe")
    try:
        zot.client.put_object(Bucket=zot.name, Key=key, Body=b"", IfMatch='"0000"')
    except zot.client.exceptions.ClientError:
        return
    finally:
        zot.client.delete_object(Bucket=zot.name, Key=key)
    pytest.skip("this moto ignores If-Match on PutObject; dedupe relies on its re-check")


class TestDedupeOnS3:
    def test_dry_run_changes_nothing(self, zot: ZotBucket, cache: BlobCache) -> None:
        """Without apply: the copies that would become placeholders and the bytes, no write."""
        index(cache, zot.url)
        objects, entries = zot.snapshot(), read_raw(cache)

        report = dedupe(cache, zot.url)

        assert not report.applied
        assert {(link.path, link.original, link.size) for link in report.links} == {
            (path_of(BUSYBOX), path_of(ALPINE), len(L1)),
            (path_of(BUSYBOX_L2), path_of(OCI_L2), len(L2)),
        }
        assert report.reclaimed_bytes == len(L1) + len(L2)
        assert (report.already_linked, report.skipped) == (1, ())
        assert zot.snapshot() == objects
        assert read_raw(cache) == entries

    def test_apply_replaces_copies_by_placeholders(self, zot: ZotBucket, cache: BlobCache) -> None:
        """Each full copy becomes a zero-byte object; originals keep their bytes; the cache
        is unchanged; a second run finds only placeholders."""
        index(cache, zot.url)
        entries = read_raw(cache)

        report = dedupe(cache, zot.url, apply=True, verify_digests=True, workers=2)

        assert report.applied
        assert len(report.links) == 2
        assert zot.read(BUSYBOX) == b""
        assert zot.read(BUSYBOX_L2) == b""
        assert zot.read(ALPINE) == L1
        assert zot.read(OCI_L2) == L2
        assert read_raw(cache) == entries
        again = dedupe(cache, zot.url, apply=True)
        assert (again.links, again.already_linked, again.reclaimed_bytes) == ((), 3, 0)

    def test_copies_that_differ_or_lack_an_original_are_skipped(
        self, zot: ZotBucket, cache: BlobCache
    ) -> None:
        """Another size is content_differs; same size but other bytes only with
        verify_digests; a missing original skips its copies; nothing changes."""
        index(cache, zot.url)
        zot.put(BUSYBOX, b"y" * len(L1))
        zot.client.delete_object(Bucket=zot.name, Key=OCI_L2)
        objects = zot.snapshot()

        hashed = dedupe(cache, zot.url, apply=True, verify_digests=True)

        reasons = {(s.path, s.reason) for s in hashed.skipped}
        assert reasons == {
            (path_of(BUSYBOX), "content_differs"),
            (path_of(BUSYBOX_L2), "original_unusable"),
        }
        assert hashed.links == ()
        assert zot.snapshot() == objects
        zot.put(BUSYBOX, b"short")
        sized = dedupe(cache, zot.url)
        assert (path_of(BUSYBOX), "content_differs") in {(s.path, s.reason) for s in sized.skipped}

    def test_a_placeholder_original_keeps_every_copy(
        self, zot: ZotBucket, cache: BlobCache
    ) -> None:
        """Where the original is itself a placeholder, the copies are the content's only
        holders: none is replaced."""
        cache.put(sha256(L1), path_of(APPS))
        index(cache, zot.url)

        report = dedupe(cache, zot.url, apply=True)

        skipped = {(s.path, s.reason) for s in report.skipped}
        assert skipped == {
            (path_of(ALPINE), "original_unusable"),
            (path_of(BUSYBOX), "original_unusable"),
        }
        assert zot.read(ALPINE) == zot.read(BUSYBOX) == L1

    def test_conditional_write_skips_a_copy_rewritten_before_the_put(
        self, zot: ZotBucket, cache: BlobCache
    ) -> None:
        """A copy rewritten after every check, just before the PutObject: the server refuses
        the write (If-Match on the ETag), the copy is skipped and keeps its new bytes."""
        require_if_match(zot)
        index(cache, zot.url)
        rewritten = b"z" * len(L1)

        def rewrite(params: dict[str, Any], **kwargs: Any) -> None:
            if params["Key"] == BUSYBOX:
                zot.put(BUSYBOX, rewritten)

        location = zot.location(**{"before-parameter-build__s3__PutObject": rewrite})
        report = dedupe(cache, location, apply=True)

        assert (path_of(BUSYBOX), "copy_changed") in {(s.path, s.reason) for s in report.skipped}
        assert path_of(BUSYBOX) not in {link.path for link in report.links}
        assert zot.read(BUSYBOX) == rewritten
        assert zot.read(BUSYBOX_L2) == b""

    def test_recheck_skips_a_copy_rewritten_after_the_check(
        self, zot: ZotBucket, cache: BlobCache
    ) -> None:
        """A copy rewritten between the check and the re-check is skipped too (for servers
        that ignore If-Match on writes)."""
        index(cache, zot.url)
        rewritten = b"w" * len(L1)

        def rewrite(params: dict[str, Any], **kwargs: Any) -> None:
            if params["Key"] == BUSYBOX and "IfMatch" in params:
                zot.put(BUSYBOX, rewritten)

        location = zot.location(**{"before-parameter-build__s3__HeadObject": rewrite})
        report = dedupe(cache, location, apply=True, workers=1)

        assert (path_of(BUSYBOX), "copy_changed") in {(s.path, s.reason) for s in report.skipped}
        assert zot.read(BUSYBOX) == rewritten

    def test_the_server_honours_if_match_on_put_object(self, zot: ZotBucket) -> None:
        """What the conditional replacement relies on: moto's server refuses a PutObject
        whose If-Match names another ETag (AWS S3 does too)."""
        require_if_match(zot)
        client = zot.client
        with pytest.raises(client.exceptions.ClientError, match="PreconditionFailed"):
            client.put_object(Bucket=zot.name, Key=BUSYBOX, Body=b"", IfMatch='"0000"')
        assert zot.read(BUSYBOX) == L1


class TestNeverOutside:
    def test_escaping_paths_are_skipped_and_never_requested(
        self, zot: ZotBucket, cache: BlobCache
    ) -> None:
        """Cached copies with '..' or relative paths, pointing at the canaries: skipped as
        outside_root by dedupe and restore, no request names them (the fixture checks the
        canaries stay byte-identical)."""
        index(cache, zot.url)
        escaping = [
            "/zot/../../base2/zot/library/busybox/blobs/sha256/" + sha256(L1)[7:],
            "base2/zot/apps/blobs/sha256/" + sha256(L1)[7:],
        ]
        for path in escaping:
            cache.put(sha256(L1), path)
        keys: list[str] = []

        def record(params: dict[str, Any], **kwargs: Any) -> None:
            keys.append(params.get("Key", ""))

        location = zot.location(
            **{
                "before-parameter-build__s3__HeadObject": record,
                "before-parameter-build__s3__PutObject": record,
                "before-parameter-build__s3__CopyObject": record,
            }
        )
        deduped = dedupe(cache, location, apply=True)
        restored = restore(cache, location, apply=True)

        for report in (deduped, restored):
            outside = {s.path for s in report.skipped if s.reason == "outside_root"}
            assert outside == set(escaping)
        assert keys
        assert all(key.startswith("base/") for key in keys)
        assert not [key for key in keys if ".." in key]


class TestRestoreOnS3:
    def test_a_placeholder_rewritten_before_the_copy_is_skipped(
        self, zot: ZotBucket, cache: BlobCache
    ) -> None:
        """A placeholder that got other bytes between the check and the copy is left as it
        is now."""
        index(cache, zot.url)
        rewritten = b"pushed again"

        def rewrite(params: dict[str, Any], **kwargs: Any) -> None:
            if params["Key"] == APPS and "IfMatch" in params:
                zot.put(APPS, rewritten)

        location = zot.location(**{"before-parameter-build__s3__HeadObject": rewrite})
        report = restore(cache, location, apply=True, workers=1)

        assert (path_of(APPS), "copy_changed") in {(s.path, s.reason) for s in report.skipped}
        assert zot.read(APPS) == rewritten

    def test_dry_run_then_apply_fills_every_placeholder(
        self, zot: ZotBucket, cache: BlobCache
    ) -> None:
        """Each placeholder of a digest with content gets that content by CopyObject; a
        digest with no content anywhere is skipped; the empty blob is left alone."""
        index(cache, zot.url)
        dedupe(cache, zot.url, apply=True)
        objects = zot.snapshot()

        dry = restore(cache, zot.url)

        planned = {(item.path, item.source, item.size) for item in dry.restored}
        assert planned == {
            (path_of(APPS), path_of(ALPINE), len(L1)),
            (path_of(BUSYBOX), path_of(ALPINE), len(L1)),
            (path_of(BUSYBOX_L2), path_of(OCI_L2), len(L2)),
        }
        assert [(s.path, s.reason) for s in dry.skipped] == [(path_of(LOST), "original_unusable")]
        assert dry.restored_bytes == 2 * len(L1) + len(L2)
        assert zot.snapshot() == objects

        applied = restore(cache, zot.url, apply=True, verify_digests=True, workers=3)

        assert applied.applied
        assert applied.restored == dry.restored
        assert zot.read(APPS) == zot.read(BUSYBOX) == L1
        assert zot.read(BUSYBOX_L2) == L2
        assert zot.read(LOST) == b""
        assert restore(cache, zot.url, apply=True).restored == ()

    def test_repairs_a_placeholder_original(self, zot: ZotBucket, cache: BlobCache) -> None:
        """An original that is a placeholder gets the content of another path."""
        cache.put(sha256(L1), path_of(APPS))
        index(cache, zot.url)

        report = restore(cache, zot.url, apply=True)

        assert (path_of(APPS), path_of(ALPINE)) in {(r.path, r.source) for r in report.restored}
        assert zot.read(APPS) == L1

    def test_refuses_a_local_directory(self, cache: BlobCache, tmp_path: Path) -> None:
        """On disk dedupe makes hard links: restore says so instead of guessing."""
        with pytest.raises(ConfigurationError, match="s3://"):
            restore(cache, tmp_path)


class TestRoundTrip:
    def test_index_dedupe_restore_index_gives_back_cache_and_bytes(
        self, zot: ZotBucket, make_cache: CacheFactory
    ) -> None:
        """From a registry with dedupe off (every copy full), index -> dedupe -> restore ->
        index gives the same cache, fresh or re-indexed, and the same bytes everywhere."""
        zot.client.delete_object(Bucket=zot.name, Key=APPS)
        before = {key: body for (_, key), (body, _) in zot.snapshot(prefix="base/").items()}
        first = make_cache("sqlite")
        index(first, zot.url)
        entries = read_raw(first)

        deduped = dedupe(first, zot.url, apply=True)
        assert zot.read(BUSYBOX) == b""
        assert len(deduped.links) == 2
        restored = restore(first, zot.url, apply=True)
        assert {item.path for item in restored.restored} == {link.path for link in deduped.links}
        second = make_cache("sqlite")
        index(second, zot.url)
        index(first, zot.url)

        assert read_raw(second) == read_raw(first) == entries
        after = {key: body for (_, key), (body, _) in zot.snapshot(prefix="base/").items()}
        assert after == before
        assert before[LOST] == BLOBS[LOST] == EMPTY
