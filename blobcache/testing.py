"""Local servers and pytest fixtures for testing code that uses blobcache.

Installed as a pytest plugin (entry point ``blobcache``). The servers are real
servers on free loopback ports: dynalite (from npm, installed into ``.tools/``
on first use), moto's standalone server (``moto[server]``) and ``redis-server``
(from the operating system's package, in a temporary directory); moto's server also
serves S3 (`blobcache_s3` gives a fresh bucket).
`FaultProxy` stands between a cache and a server and injects faults (resets,
stalls, 500s, throttling, lost or damaged responses) on demand.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

# Standard library only, like the rest of this module; re-exported for applications.
from blobcache._fault_proxy import FAULTS as FAULTS
from blobcache._fault_proxy import RESP_FAULTS as RESP_FAULTS
from blobcache._fault_proxy import FaultProxy as FaultProxy
from blobcache._fault_proxy import fault_proxy as fault_proxy

# The launchers, the fault proxy and their constants; the fixtures (blobcache_*) reach
# tests through pytest's plugin entry point, not by import.
__all__ = [
    "DYNALITE_VERSION",
    "FAKE_CREDENTIALS",
    "FAULTS",
    "LOCAL_REGION",
    "RESP_FAULTS",
    "FaultProxy",
    "dynalite",
    "dynalite_script",
    "fault_proxy",
    "free_port",
    "moto_server",
    "tools_dir",
]

#: Fake credentials for local servers: they accept any, but botocore insists on some.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
DYNALITE_VERSION = "4"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tools_dir() -> Path:
    """Where npm packages for tests go: ``$BLOBCACHE_TOOLS_DIR``, else ``./.tools``."""
    return Path(os.environ.get("BLOBCACHE_TOOLS_DIR") or Path.cwd() / ".tools")


def dynalite_script() -> Path:
    """The path of dynalite's ``cli.js``, installing dynalite with npm when missing."""
    script = tools_dir() / "node_modules" / "dynalite" / "cli.js"
    if not script.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("dynalite is missing and npm is not on PATH; install Node.js")
        tools_dir().mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(tools_dir()),
                f"dynalite@{DYNALITE_VERSION}",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return script


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"local server exited with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"local server did not listen on port {port} within {timeout} s")


@contextmanager
def _serve(command: list[str], port: int, timeout: float = 60.0) -> Iterator[str]:
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **FAKE_CREDENTIALS},
    )
    try:
        _wait_for_port(port, process, timeout)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def dynalite() -> Iterator[str]:
    """Run an in-memory dynalite on a free port; yields its endpoint URL.

    Tables become ACTIVE at once; the 400 KB item limit is enforced.
    """
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("dynalite needs Node.js: node is not on PATH")
    port = free_port()
    command = [
        node,
        str(dynalite_script()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--createTableMs",
        "0",
        "--deleteTableMs",
        "0",
        "--updateTableMs",
        "0",
    ]
    with _serve(command, port) as endpoint:
        yield endpoint


@contextmanager
def moto_server() -> Iterator[str]:
    """Run moto's standalone server on a free port; yields its endpoint URL."""
    port = free_port()
    with _serve(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port
    ) as endpoint:
        yield endpoint


#: What to do when ``redis-server`` is missing.
REDIS_INSTALL_HINT = (
    "redis-server is not on PATH; install it with 'apt-get install redis-server' "
    "(Debian, Ubuntu), 'dnf install redis' or 'brew install redis'"
)


class RedisServer:
    """A ``redis-server`` on a free loopback port, keeping its files in ``directory``.

    `stop` and `start` again keep the port and the directory, so a test can
    kill the server mid-run and bring it back with what it had persisted.
    """

    def __init__(self, directory: Path, *config: str) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError(REDIS_INSTALL_HINT)
        self.executable = executable
        self.directory = directory
        self.port = free_port()
        #: Extra configuration directives, as ``redis-server`` takes them on its command line.
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT``, with no database or prefix."""
        return f"redis://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it accepts connections."""
        command = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--logfile", str(self.directory / "redis.log"),
            "--daemonize", "no",
            "--save", "",
            "--appendonly", "no",
            *self.config,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            _wait_for_port(self.port, self.process, timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server: SIGTERM (it saves what it persists), or SIGKILL with ``kill``."""
        process, self.process = self.process, None
        if process is None:
            return
        if kill:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def redis_server(*config: str) -> Iterator[RedisServer]:
    """Run ``redis-server`` on a free port in a temporary directory; stop and remove it after.

    ``config`` are extra directives (``"--appendonly", "yes"``); by default the
    server persists nothing.
    """
    with tempfile.TemporaryDirectory(prefix="blobcache-redis-") as directory:
        server = RedisServer(Path(directory), *config)
        server.start()
        try:
            yield server
        finally:
            server.stop()


def _redis_cache_url(server: RedisServer) -> str:
    """A fresh cache on ``server``: database 0, a prefix of its own."""
    return f"{server.url}/0?prefix=test-{uuid.uuid4().hex}"


# -- pytest fixtures -------------------------------------------------------------------------
#
# This module is loaded in every pytest run of every project that installs blobcache, so the
# fixtures below import nothing beyond the standard library until a test asks for them, and
# the module still imports without pytest (the launchers above work on their own).

# Entry-point plugins load after pytest itself; an ordinary import outside a test run
# (a script using the launchers) should neither pay for pytest nor need it installed.
if "pytest" in sys.modules:
    import pytest
else:
    pytest = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from blobcache import BlobCache

#: Region used for tables on the local servers; any name works there.
LOCAL_REGION = "us-east-1"


def _local_table_url(endpoint: str) -> str:
    return f"dynamodb:///test-{uuid.uuid4().hex}?region={LOCAL_REGION}&endpoint_url={endpoint}"


@dataclass(frozen=True)
class LocalBucket:
    """A fresh, empty bucket on the local moto server, as the ``blobcache_s3`` fixture gives it.

    ``client`` is an independent botocore S3 client on the same server, to fill
    and read the bucket without going through blobcache.
    """

    name: str
    endpoint_url: str
    region: str
    client: Any

    def url(self, root_directory: str = "") -> str:
        """The ``s3://`` storage location of the bucket (under ``root_directory``)."""
        root = f"/{root_directory.strip('/')}" if root_directory.strip("/") else ""
        endpoint = quote(self.endpoint_url, safe="")
        return f"s3://{self.name}{root}?region={self.region}&endpoint_url={endpoint}"


def _created(url: str) -> str:
    from blobcache import BlobCache

    with BlobCache.from_url(url) as cache:
        cache.create_table()
    return url


if pytest is not None:

    @pytest.fixture
    def blobcache_fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
        """Fake AWS credentials for this test, and no instance-metadata lookups.

        Local servers accept any credentials, but botocore insists on some; this keeps
        a developer's real ones out of requests to a throwaway server.
        """
        for key, value in FAKE_CREDENTIALS.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    @pytest.fixture(scope="session")
    def blobcache_dynalite_endpoint() -> Iterator[str]:
        """The endpoint URL of a dynalite server started once for the test session."""
        with dynalite() as endpoint:
            yield endpoint

    @pytest.fixture(scope="session")
    def blobcache_moto_endpoint() -> Iterator[str]:
        """The endpoint URL of a moto server started once for the test session."""
        if importlib.util.find_spec("moto") is None:
            raise RuntimeError(
                "blobcache_moto needs moto's server; install it with pip install 'moto[server]'"
            )
        with moto_server() as endpoint:
            yield endpoint

    @pytest.fixture(scope="session")
    def blobcache_redis_server() -> Iterator[RedisServer]:
        """A ``redis-server`` started once for the test session (fails saying how to install it)."""
        with redis_server() as server:
            yield server

    @pytest.fixture
    def blobcache_redis_url(blobcache_redis_server: RedisServer) -> str:
        """The URL of a fresh cache on the session's Redis server: a key prefix of its own."""
        return _created(_redis_cache_url(blobcache_redis_server))

    @pytest.fixture
    def blobcache_redis(blobcache_redis_url: str) -> Iterator[BlobCache]:
        """A throwaway, empty cache on a local redis-server."""
        from blobcache import BlobCache

        with BlobCache.from_url(blobcache_redis_url) as cache:
            yield cache

    @pytest.fixture
    def blobcache_sqlite_url(tmp_path: Path) -> str:
        """The URL of a fresh SQLite cache file in the test's temporary directory."""
        return _created(f"sqlite:///{tmp_path / 'blobcache.db'}")

    @pytest.fixture
    def blobcache_dynalite_url(blobcache_dynalite_endpoint: str, blobcache_fake_aws: None) -> str:
        """The URL of a fresh, created table on the session's dynalite server."""
        return _created(_local_table_url(blobcache_dynalite_endpoint))

    @pytest.fixture
    def blobcache_moto_url(blobcache_moto_endpoint: str, blobcache_fake_aws: None) -> str:
        """The URL of a fresh, created table on the session's moto server."""
        return _created(_local_table_url(blobcache_moto_endpoint))

    @pytest.fixture
    def blobcache_s3(
        blobcache_moto_endpoint: str, blobcache_fake_aws: None
    ) -> Iterator[LocalBucket]:
        """A fresh, empty bucket on the session's moto server (``moto[server,s3]``).

        The same server as the DynamoDB fixtures'; ``bucket.url("base")`` is its
        storage location for the maintenance commands.
        """
        import botocore.session

        client = botocore.session.get_session().create_client(
            "s3", region_name=LOCAL_REGION, endpoint_url=blobcache_moto_endpoint
        )
        name = f"test-{uuid.uuid4().hex}"
        client.create_bucket(Bucket=name)
        try:
            yield LocalBucket(name, blobcache_moto_endpoint, LOCAL_REGION, client)
        finally:
            client.close()

    @pytest.fixture
    def blobcache_sqlite(blobcache_sqlite_url: str) -> Iterator[BlobCache]:
        """A throwaway, empty, created cache on SQLite."""
        from blobcache import BlobCache

        with BlobCache.from_url(blobcache_sqlite_url) as cache:
            yield cache

    @pytest.fixture
    def blobcache_dynalite(blobcache_dynalite_url: str) -> Iterator[BlobCache]:
        """A throwaway, empty, created cache on a local dynalite server."""
        from blobcache import BlobCache

        with BlobCache.from_url(blobcache_dynalite_url) as cache:
            yield cache

    @pytest.fixture
    def blobcache_moto(blobcache_moto_url: str) -> Iterator[BlobCache]:
        """A throwaway, empty, created cache on a local moto server."""
        from blobcache import BlobCache

        with BlobCache.from_url(blobcache_moto_url) as cache:
            yield cache

    @pytest.fixture
    def blobcache_fault_proxy(blobcache_dynalite_endpoint: str) -> Iterator[FaultProxy]:
        """A `FaultProxy` in front of the session's dynalite, injecting nothing until told."""
        with fault_proxy(blobcache_dynalite_endpoint) as proxy:
            yield proxy

    @pytest.fixture
    def blobcache_faulty_dynalite_url(
        blobcache_fault_proxy: FaultProxy, blobcache_fake_aws: None
    ) -> str:
        """The URL of a fresh, created table reached through `blobcache_fault_proxy`.

        Transport retries are off (``max_retries=0``) so each injected fault reaches the
        caller; add your own options to the URL as needed.
        """
        return _created(_local_table_url(blobcache_fault_proxy.endpoint)) + "&max_retries=0"
