"""verify and prune against S3 objects: HeadObject only, nothing outside the location."""

from __future__ import annotations

from typing import Any

from blobcache import BlobCache
from blobcache.maintenance import index, prune, verify
from tests.helpers import read_raw
from tests.s3.conftest import L1, L3, ZotBucket, blob_key, path_of, sha256

ALPINE = blob_key("base/zot/library/alpine", sha256(L1))
BUSYBOX = blob_key("base/zot/library/busybox", sha256(L1))
APPS = blob_key("base/zot/apps", sha256(L1))
LOST = blob_key("base/zot/team/web", sha256(L3))


class TestVerifyOnS3:
    def test_a_zot_bucket_reports_only_its_lost_content(
        self, zot: ZotBucket, cache: BlobCache
    ) -> None:
        """A placeholder whose digest has no content anywhere is a placeholder original: a
        broken pull, reported loudly; nothing else is wrong."""
        index(cache, zot.url)

        report = verify(cache, root=zot.url)

        assert not report.ok
        assert [(f.kind, f.digest, f.path) for f in report.findings] == [
            ("placeholder_original", sha256(L3), path_of(LOST))
        ]
        assert report.placeholder_originals == report.findings
        assert "no recorded path holds the content" in report.findings[0].detail
        assert (report.items, report.paths, report.unchecked) == (6, 10, 0)

    def test_stale_paths_and_placeholder_original_with_content_elsewhere(
        self, zot: ZotBucket, cache: BlobCache
    ) -> None:
        """A deleted object is a stale path; an original that is a placeholder while another
        path holds the content says where the content is and how to restore it."""
        cache.put(sha256(L1), path_of(APPS))  # as a zot that wrote the placeholder first
        index(cache, zot.url)
        zot.client.delete_object(Bucket=zot.name, Key=BUSYBOX)

        report = verify(cache, root=zot.url, workers=3)

        kinds = {(f.kind, f.path) for f in report.findings if f.digest == sha256(L1)}
        assert kinds == {
            ("missing_path", path_of(BUSYBOX)),
            ("placeholder_original", path_of(APPS)),
        }
        (loud,) = [f for f in report.placeholder_originals if f.digest == sha256(L1)]
        assert path_of(ALPINE) in loud.detail
        assert "restore" in loud.detail

    def test_paths_outside_the_location_are_unchecked_and_never_requested(
        self, zot: ZotBucket, cache: BlobCache
    ) -> None:
        """A path with '..', a relative path or one with an empty component maps to no key:
        counted as unchecked, no request sent for it."""
        index(cache, zot.url)
        escaping = ["/zot/../../base2/zot/library/alpine/blobs/sha256/x", "zot/relative", "//zot/x"]
        for path in escaping:
            cache.put(sha256(L1), path)
        requested: list[str] = []

        def record(params: dict[str, Any], **kwargs: Any) -> None:
            requested.append(params["Key"])

        location = zot.location(**{"before-parameter-build__s3__HeadObject": record})
        report = verify(cache, root=location)

        assert report.unchecked == 3
        assert requested
        assert all(key.startswith("base/") and ".." not in key for key in requested)
        assert not [f for f in report.findings if f.path in escaping]


class TestPruneOnS3:
    def test_forgets_stale_paths_only_and_never_writes_objects(
        self, zot: ZotBucket, cache: BlobCache
    ) -> None:
        """Dry run lists the stale path; apply forgets it; no object is written or deleted;
        unchecked paths stay; a second run finds nothing."""
        index(cache, zot.url)
        cache.put(sha256(L1), "zot/relative")
        zot.client.delete_object(Bucket=zot.name, Key=BUSYBOX)
        objects, entries = zot.snapshot(), read_raw(cache)

        dry = prune(cache, root=zot.url)

        assert [(s.digest, s.path) for s in dry.stale] == [(sha256(L1), path_of(BUSYBOX))]
        assert read_raw(cache) == entries

        applied = prune(cache, root=zot.url, apply=True, workers=2)

        assert applied.applied
        assert applied.stale == dry.stale
        assert set(cache.get_all(sha256(L1))) == {path_of(ALPINE), path_of(APPS), "zot/relative"}
        assert zot.snapshot() == objects
        assert prune(cache, root=zot.url, apply=True).stale == ()

    def test_an_object_back_before_the_delete_keeps_its_entry(
        self, zot: ZotBucket, cache: BlobCache
    ) -> None:
        """The stale path is looked up again right before its delete: an object written
        back meanwhile keeps its entry."""
        index(cache, zot.url)
        zot.client.delete_object(Bucket=zot.name, Key=BUSYBOX)
        heads: list[str] = []

        def put_back_after_verify(params: dict[str, Any], **kwargs: Any) -> None:
            heads.append(params["Key"])
            # verify heads every path once (10); the re-check comes after.
            if len(heads) == 11:
                zot.put(BUSYBOX, L1)

        location = zot.location(**{"before-parameter-build__s3__HeadObject": put_back_after_verify})
        report = prune(cache, root=location, apply=True, workers=1)

        assert (report.stale, report.reappeared) == ((), 1)
        assert path_of(BUSYBOX) in cache.get_all(sha256(L1))
