"""The fault proxy of blobcache.testing: each fault does what docs/testing.md says."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from blobcache import StoreUnavailable
from blobcache.testing import FAULTS, FaultProxy
from tests.helpers import REGION, CacheFactory, backend_of, digest_of

pytest_plugins = ["pytester"]

D = digest_of(5)
DOCS = Path(__file__).resolve().parent.parent / "docs" / "testing.md"


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_each_fault_applies_the_write_or_not_as_documented(
    make_cache: CacheFactory, blobcache_fault_proxy: FaultProxy, kind: str
) -> None:
    """A put hit by the fault raises StoreUnavailable; the server has the path exactly
    when the fault forwards the request (a stall forwards it late)."""
    direct = make_cache("dynalite")
    url = (
        f"dynamodb:///{backend_of(direct).target}?region={REGION}"
        f"&endpoint_url={blobcache_fault_proxy.endpoint}"
    )
    faulty = make_cache("dynalite", url=url, create=False, max_retries=0, read_timeout=0.5)
    blobcache_fault_proxy.stall_seconds = 1.0
    blobcache_fault_proxy.inject(kind, operations=["UpdateItem"])
    with pytest.raises(StoreUnavailable) as raised:
        faulty.put(D, "/a")
    unknown = "may or may not have taken effect" in str(raised.value)
    assert unknown is (kind != "throttle")  # throttling is the one provable refusal
    deadline = time.monotonic() + 30
    while kind == "stall" and not direct.has(D, "/a") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert direct.has(D, "/a") is FAULTS[kind]
    assert blobcache_fault_proxy.injected == {kind: 1}


def test_unknown_fault_is_refused(blobcache_fault_proxy: FaultProxy) -> None:
    with pytest.raises(ValueError, match="unknown fault 'gremlins'"):
        blobcache_fault_proxy.inject("gremlins")


def test_the_documented_example_runs(pytester: pytest.Pytester) -> None:
    """The fault-proxy example of docs/testing.md passes in a project of its own."""
    section = DOCS.read_text().split("## Testing how your application handles faults", 1)[1]
    (example,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    pytester.makepyfile(test_example=example)
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1)
