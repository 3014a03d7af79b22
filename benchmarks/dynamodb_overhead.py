"""How much time blobcache adds to each DynamoDB request, measured against raw botocore on dynalite.

Run it from the repository root::

    .venv/bin/python benchmarks/dynamodb_overhead.py [--rounds 15] [--calls 40]

It starts an in-memory dynalite, then in each round times ``--calls`` puts,
gets and deletes through `BlobCache` and the same UpdateItem / GetItem
requests sent by a raw botocore client to the same server, alternating which
side goes first. It prints the median time per call of each side and their
ratio (blobcache / raw). Both clients skip botocore's parameter validation,
as blobcache's own does, so the ratio is blobcache's validation, logging and
bookkeeping, not botocore's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import botocore.config
import botocore.session

from blobcache import BlobCache
from blobcache.testing import FAKE_CREDENTIALS, dynalite

REGION = "us-east-1"
NAMES = {"#orig": "OriginalBlobPath", "#paths": "DuplicateBlobPath"}


def digest_of(n: int) -> str:
    return "sha256:" + f"{n:064x}"


def per_call(action: Callable[[int], object], calls: int) -> float:
    """Seconds per call of ``action(0) ... action(calls - 1)``."""
    started = time.perf_counter()
    for n in range(calls):
        action(n)
    return (time.perf_counter() - started) / calls


class AttributeMap:
    """The requests blobcache sends for put, get and a plain delete, sent by hand."""

    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table = client, table

    def put(self, digest: str, path: str) -> None:
        self.client.update_item(
            TableName=self.table,
            Key={"Digest": {"S": digest}},
            UpdateExpression="SET #orig = if_not_exists(#orig, :path) ADD #paths :paths",
            ExpressionAttributeNames=NAMES,
            ExpressionAttributeValues={":path": {"S": path}, ":paths": {"SS": [path]}},
        )

    def get(self, digest: str) -> str:
        item = self.client.get_item(
            TableName=self.table, Key={"Digest": {"S": digest}}, ConsistentRead=True
        )["Item"]
        original: str = item["OriginalBlobPath"]["S"]
        return original

    def delete(self, digest: str, path: str) -> None:
        self.client.update_item(
            TableName=self.table,
            Key={"Digest": {"S": digest}},
            UpdateExpression="DELETE #paths :paths",
            ConditionExpression=(
                "contains(#paths, :path) AND #orig <> :path AND size(#paths) > :one"
            ),
            ExpressionAttributeNames=NAMES,
            ExpressionAttributeValues={
                ":paths": {"SS": [path]},
                ":path": {"S": path},
                ":one": {"N": "1"},
            },
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )


def actions(call: str, target: Any, digest: str, tag: str) -> Callable[[int], object]:
    """The n-th call of one kind on one side: paths ``{tag}{n}``, put then deleted."""
    if call == "get":
        return lambda n: target.get(digest)
    method = getattr(target, call)
    return lambda n: method(digest, f"{tag}{n}")


def run(endpoint: str, rounds: int, calls: int) -> dict[str, tuple[float, float]]:
    """Median seconds per call, (blobcache, raw), for put, get and delete."""
    table = f"bench-{uuid.uuid4().hex}"
    cache = BlobCache.from_url(f"dynamodb:///{table}?region={REGION}&endpoint_url={endpoint}")
    cache.create_table()
    client = botocore.session.get_session().create_client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=endpoint,
        config=botocore.config.Config(parameter_validation=False),
    )
    raw = AttributeMap(client, table)
    # Every delete removes a path that is neither the original nor the last: one request.
    for digest in (digest_of(1), digest_of(2)):
        cache.put(digest, "/original")
    samples: dict[str, list[list[float]]] = {"put": [[], []], "get": [[], []], "delete": [[], []]}
    for round_ in range(rounds):
        # Each side has its own digest; the side that goes first alternates per round.
        sides: list[tuple[int, str, Any]] = [(0, digest_of(1), cache), (1, digest_of(2), raw)]
        if round_ % 2:
            sides.reverse()
        for call in ("put", "get", "delete"):
            for side, digest, target in sides:
                action = actions(call, target, digest, f"/r{round_}/")
                samples[call][side].append(per_call(action, calls))
    # Both sides did the same work: every path put in the rounds is deleted again.
    for digest in (digest_of(1), digest_of(2)):
        if cache.get_all(digest) != ["/original"]:
            raise RuntimeError(f"benchmark left {cache.get_all(digest)} for {digest}")
    cache.close()
    client.close()
    return {
        name: (statistics.median(ours), statistics.median(theirs))
        for name, (ours, theirs) in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")
    parser.add_argument("--calls", type=int, default=40, help="calls per round (default 40)")
    args = parser.parse_args()
    for key, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    with dynalite() as endpoint:
        results = run(endpoint, args.rounds, args.calls)
    print(f"median per call over {args.rounds} rounds of {args.calls} calls, dynalite")
    print(f"{'call':<8}{'blobcache':>12}{'raw botocore':>15}{'ratio':>8}")
    for name, (ours, theirs) in results.items():
        print(f"{name:<8}{ours * 1e3:>10.3f}ms{theirs * 1e3:>13.3f}ms{ours / theirs:>8.2f}")


if __name__ == "__main__":
    main()
