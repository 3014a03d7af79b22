"""The fault proxy of blobcache.testing: each fault does what docs/testing.md says."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from blobcache import StoreUnavailable
from blobcache.testing import FAULTS, FaultProxy, fault_proxy, free_port
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
    # Only a stall should time out: on a busy machine a short timeout could expire before
    # the proxy forwards the request, and the check below could run before it lands.
    timeout = 0.5 if kind == "stall" else 60
    faulty = make_cache("dynalite", url=url, create=False, max_retries=0, read_timeout=timeout)
    blobcache_fault_proxy.stall_seconds = 1.0
    blobcache_fault_proxy.inject(kind, operations=["UpdateItem"])
    with pytest.raises(StoreUnavailable) as raised:
        faulty.put(D, "/a")
    unknown = "may or may not have taken effect" in str(raised.value)
    assert unknown is (kind != "throttle")  # throttling is the one provable refusal
    assert raised.value.outcome_unknown is unknown
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


def resp(*words: str) -> bytes:
    """A Redis command in RESP, as redis-py sends it."""
    encoded = [word.encode() for word in words]
    return b"*%d\r\n" % len(encoded) + b"".join(
        b"$%d\r\n%s\r\n" % (len(word), word) for word in encoded
    )


def ask(port: int, command: bytes) -> bytes:
    """Send one command and read one reply line (enough for these replies), or b"" on a
    reset or closed connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(command)
        reply = b""
        try:
            while not reply.endswith(b"\r\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    return b""
                reply += chunk
        except ConnectionResetError:
            return b""
        return reply


@pytest.fixture
def redis_port() -> Iterator[int]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if ask(port, resp("PING")) == b"+PONG\r\n":
                    break
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


class TestRedisProtocol:
    """In front of Redis, the proxy speaks RESP: the same faults where they make sense."""

    def test_faults_on_resp(self, redis_port: int) -> None:
        with fault_proxy(f"redis://127.0.0.1:{redis_port}") as proxy:
            assert proxy.endpoint.startswith("redis://127.0.0.1:")
            port = int(proxy.endpoint.rsplit(":", 1)[1])
            assert ask(port, resp("SET", "plain", "1")) == b"+OK\r\n"
            proxy.inject("drop_after_apply", operations=["SET"])
            assert ask(port, resp("SET", "dropped", "1")) == b""
            assert ask(redis_port, resp("EXISTS", "dropped")) == b":1\r\n"  # applied
            proxy.inject("throttle", operations=["SET"])
            assert ask(port, resp("SET", "busy", "1")).startswith(b"-BUSY")
            assert ask(redis_port, resp("EXISTS", "busy")) == b":0\r\n"  # not applied
            proxy.inject("reset")
            assert ask(port, resp("SET", "reset", "1")) == b""
            assert ask(redis_port, resp("EXISTS", "reset")) == b":0\r\n"
            assert proxy.injected == {"drop_after_apply": 1, "throttle": 1, "reset": 1}
            with pytest.raises(ValueError, match="unknown fault 'corrupt_body' for resp"):
                proxy.inject("corrupt_body")
