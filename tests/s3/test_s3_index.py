"""index on S3: the objects under a root directory become cache entries, as on disk."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from blobcache import BlobCache, ConfigurationError
from blobcache.maintenance import index
from blobcache.testing import LocalBucket
from tests.helpers import CacheFactory, read_raw
from tests.s3.conftest import (
    BLOBS,
    C1,
    EMPTY,
    L1,
    L2,
    L3,
    S5,
    ZotBucket,
    blob_key,
    fresh_name,
    path_of,
    sha256,
    sha512,
)


def expected_entries() -> dict[str, tuple[str, frozenset[str]]]:
    def paths(digest: str) -> frozenset[str]:
        return frozenset(path_of(key) for key in BLOBS if key.endswith(digest.partition(":")[2]))

    return {
        sha256(L1): (path_of(blob_key("base/zot/library/alpine", sha256(L1))), paths(sha256(L1))),
        sha256(L2): (path_of(blob_key("base/oci/tool", sha256(L2))), paths(sha256(L2))),
        sha256(C1): (path_of(blob_key("base/zot/library/alpine", sha256(C1))), paths(sha256(C1))),
        sha256(EMPTY): (path_of(blob_key("base/zot/apps", sha256(EMPTY))), paths(sha256(EMPTY))),
        sha256(L3): (path_of(blob_key("base/zot/team/web", sha256(L3))), paths(sha256(L3))),
        sha512(S5): (path_of(blob_key("base/zot/team/web", sha512(S5))), paths(sha512(S5))),
    }


class TestIndexOnS3:
    def test_records_every_blob_at_its_cache_path(self, zot: ZotBucket, cache: BlobCache) -> None:
        """Each blob object is recorded at ``/`` + its key below the root directory; content
        becomes the original even where a placeholder sorts first; the empty blob is content."""
        report = index(cache, zot.url)

        assert read_raw(cache) == expected_entries()
        assert report.root == f"s3://{zot.name}/base"
        assert (report.blobs, report.digests, report.duplicates) == (10, 6, 4)
        assert (report.placeholders, report.without_content) == (2, 1)
        assert report.reclaimable_bytes == len(L1) + len(L2)
        assert (report.recorded, report.skipped, report.mismatches) == (10, 1, ())

    def test_into_a_dynamodb_cache(self, zot: ZotBucket, make_cache: CacheFactory) -> None:
        """The job the DynamoDB backend exists for: a zot bucket indexed into a table."""
        table = make_cache("dynalite")

        report = index(table, zot.url)

        assert read_raw(table) == expected_entries()
        assert report.recorded == 10

    def test_rerun_changes_nothing(self, zot: ZotBucket, cache: BlobCache) -> None:
        """A second index over the same bucket leaves the cache as it was."""
        first = index(cache, zot.url)
        before = read_raw(cache)

        second = index(cache, zot.url, workers=1)

        assert read_raw(cache) == before
        assert second == first

    def test_never_touches_objects(self, zot: ZotBucket, cache: BlobCache) -> None:
        """index only lists (and with verify_digests reads): every object stays as it was."""
        before = zot.snapshot()

        index(cache, zot.url, verify_digests=True)

        assert zot.snapshot() == before

    def test_verify_digests_leaves_out_mismatches(self, zot: ZotBucket, cache: BlobCache) -> None:
        """An object whose bytes do not hash to its name is reported and not recorded."""
        wrong = blob_key("base/zot/library/busybox", sha256(L1))
        zot.put(wrong, b"x" * len(L1))

        report = index(cache, zot.url, verify_digests=True, workers=3)

        assert [(m.path, m.expected) for m in report.mismatches] == [(path_of(wrong), sha256(L1))]
        assert report.mismatches[0].actual == sha256(b"x" * len(L1))
        assert path_of(wrong) not in cache.get_all(sha256(L1))
        assert report.recorded == 9

    def test_relative_path_mode(self, zot: ZotBucket, make_cache: CacheFactory) -> None:
        """With a cache root, paths are stored relative to it and given back absolute."""
        rooted = make_cache("sqlite", root="/zot")

        report = index(rooted, zot.url)

        alpine = path_of(blob_key("base/zot/library/alpine", sha256(L1)))
        assert rooted.get(sha256(L1)) == alpine
        assert read_raw(rooted)[sha256(L1)][0] == alpine.removeprefix("/zot/")
        # The OCI layout lies outside the cache's root: not recordable, so skipped.
        assert report.skipped == 1 + 1

    def test_whole_bucket_maps_keys_to_slash_key(
        self, blobcache_s3: LocalBucket, cache: BlobCache
    ) -> None:
        """Without a root directory, the cache path is ``/`` + the key."""
        key = blob_key("zot/r", sha256(L1))
        blobcache_s3.client.put_object(Bucket=blobcache_s3.name, Key=key, Body=L1)

        index(cache, blobcache_s3.url())

        assert cache.get_all(sha256(L1)) == [f"/{key}"]

    def test_a_deep_root_directory_lists_only_below_it(
        self, zot: ZotBucket, cache: BlobCache
    ) -> None:
        """A root directory down to one repository (one prefix at every level of the
        split): only its blobs, at paths relative to it."""
        report = index(cache, zot.bucket.url("base/zot/library/alpine"), workers=4)

        assert cache.get_all(sha256(L1)) == ["/blobs/sha256/" + sha256(L1)[7:]]
        assert (report.blobs, report.digests, report.skipped) == (3, 3, 1)

    def test_progress_reaches_the_total(self, zot: ZotBucket, cache: BlobCache) -> None:
        """progress(done, total) ends at the number of digests."""
        calls: list[tuple[int, int]] = []

        index(cache, zot.url, progress=lambda done, total: calls.append((done, total)))

        assert calls[-1] == (6, 6)

    def test_lists_in_pages(self, blobcache_s3: LocalBucket, cache: BlobCache) -> None:
        """Listings past one page (1,000 keys) are followed to the end."""

        def put(n: int) -> None:
            content = f"blob {n}".encode()
            blobcache_s3.client.put_object(
                Bucket=blobcache_s3.name,
                Key=blob_key(f"base/r{n % 7}", sha256(content)),
                Body=content,
            )

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(put, range(1100)))

        report = index(cache, blobcache_s3.url("base"), workers=4)

        assert (report.blobs, report.digests, report.recorded) == (1100, 1100, 1100)


class TestIndexErrors:
    def test_missing_bucket_is_a_clear_error(
        self, blobcache_s3: LocalBucket, cache: BlobCache
    ) -> None:
        """A bucket that does not exist: ConfigurationError naming it; nothing recorded."""
        url = blobcache_s3.url().replace(blobcache_s3.name, fresh_name(), 1)

        with pytest.raises(ConfigurationError, match="does not exist"):
            index(cache, url)

        assert read_raw(cache) == {}

    def test_denied_request_names_the_iam_action(self, zot: ZotBucket, cache: BlobCache) -> None:
        """S3 refusing the listing (a fault moto cannot produce): a ConfigurationError that
        names the IAM action, and nothing recorded."""

        def deny(**kwargs: Any) -> Any:
            class Denied:
                status_code = 403

            error = {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}
            return Denied(), {**error, "ResponseMetadata": {"HTTPStatusCode": 403}}

        location = zot.location(**{"before-call__s3__ListObjectsV2": deny})

        with pytest.raises(ConfigurationError, match="s3:ListBucket"):
            index(cache, location)

        assert read_raw(cache) == {}

    def test_a_denied_page_of_a_concurrent_listing_stops_the_run(
        self, zot: ZotBucket, cache: BlobCache
    ) -> None:
        """A listing thread refused midway: its error reaches the caller, no thread is left
        waiting, and nothing is recorded."""
        calls: list[dict[str, Any]] = []

        def deny_after_the_split(params: dict[str, Any], **kwargs: Any) -> Any:
            calls.append(params)
            if "Delimiter" in params:
                return None

            class Denied:
                status_code = 403

            error = {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}
            return Denied(), {**error, "ResponseMetadata": {"HTTPStatusCode": 403}}

        location = zot.location(**{"before-call__s3__ListObjectsV2": deny_after_the_split})

        with pytest.raises(ConfigurationError, match="ListObjectsV2"):
            index(cache, location, workers=4)

        assert any("Delimiter" not in params for params in calls)
        assert read_raw(cache) == {}


class TestConcurrentListing:
    def test_lists_the_same_objects_as_one_worker(self, zot: ZotBucket) -> None:
        """Split at the fan-out and listed on several threads: exactly the objects one
        sequential listing finds, siblings of the root directory excluded."""
        from blobcache.maintenance._s3 import Bucket

        bucket = Bucket(zot.location(), workers=4)
        try:
            sequential = list(bucket.objects())
            concurrent = sorted(bucket.objects(4), key=lambda found: found.key)
        finally:
            bucket.close()

        assert concurrent == sequential
        assert [found.key for found in sequential] == sorted(found.key for found in sequential)
        assert all(found.key.startswith("base/") for found in sequential)
        assert len(sequential) == len(BLOBS) + 4
