"""Maintenance of a cache: rebuild, check, repair and inspect it, and move it as JSON Lines.

Each operation takes a `blobcache.BlobCache` (and, where it walks or checks
blobs, a storage location: a directory or ``s3://BUCKET[/ROOTDIRECTORY]``)
and returns a small frozen report; the ``blobcache`` command line and the
framework integrations call these functions and only render their reports.
"""

from __future__ import annotations

from blobcache.maintenance._dedupe import DedupeReport, Link, Skipped, dedupe
from blobcache.maintenance._index import DigestMismatch, IndexReport, index
from blobcache.maintenance._jsonl import (
    BadLine,
    ExportReport,
    ImportReport,
    export_jsonl,
    import_jsonl,
)
from blobcache.maintenance._location import (
    LocalDirectory,
    S3Location,
    StorageLocation,
    parse_location,
)
from blobcache.maintenance._migrate import MigrateReport, migrate
from blobcache.maintenance._prune import PruneReport, StalePath, prune
from blobcache.maintenance._s3_dedupe import Restored, RestoreReport, restore
from blobcache.maintenance._stats import ItemSize, Stats, stats
from blobcache.maintenance._verify import Finding, VerifyReport, verify

__all__ = [
    "BadLine",
    "DedupeReport",
    "DigestMismatch",
    "ExportReport",
    "Finding",
    "ImportReport",
    "IndexReport",
    "ItemSize",
    "Link",
    "LocalDirectory",
    "MigrateReport",
    "PruneReport",
    "RestoreReport",
    "Restored",
    "S3Location",
    "Skipped",
    "StalePath",
    "Stats",
    "StorageLocation",
    "VerifyReport",
    "dedupe",
    "export_jsonl",
    "import_jsonl",
    "index",
    "migrate",
    "parse_location",
    "prune",
    "restore",
    "stats",
    "verify",
]
