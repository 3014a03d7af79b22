"""An HTTP proxy that injects the faults a real network and a real DynamoDB produce."""

from __future__ import annotations

import json
import random
import select
import socket
import struct
import threading
from binascii import crc32
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

#: Every fault the proxy injects, and whether the server has applied the request by then.
FAULTS: dict[str, bool] = {
    # The connection is reset before the request is forwarded: nothing applied.
    "reset": False,
    # The request is held for ``stall_seconds``, then forwarded (the client has
    # usually given up by then): applied late, after the call returned.
    "stall": True,
    # A 500 with DynamoDB's JSON error body, after the server applied the request.
    "error_500_json": True,
    # A 500 with an HTML body, as a load balancer sends it, after the server applied it.
    "error_500_html": True,
    # DynamoDB's ThrottlingException (a 400), instead of forwarding: nothing applied.
    "throttle": False,
    # The server applies the request; its response is dropped and the connection reset.
    "drop_after_apply": True,
    # The response's headers and half its body arrive, then the connection closes.
    "cut_body": True,
    # The response arrives whole but one byte of its body is changed in transit.
    "corrupt_body": True,
}

#: The faults that make sense on Redis's protocol (RESP): it has no status codes and no
#: checksum (a changed byte is a different answer, which only TLS can prevent), and a
#: "throttle" is a ``-BUSY`` reply, which Redis sends without running the command.
RESP_FAULTS = ("reset", "stall", "throttle", "drop_after_apply", "cut_body")
_RESP_BUSY = b"-BUSY Redis is busy running a script (injected)\r\n"

_THROTTLE_BODY = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
        "message": "Rate of requests exceeds the allowed throughput.",
    }
).encode()
_ERROR_500_JSON = json.dumps(
    {
        "__type": "com.amazon.coral.availability#InternalServerError",
        "message": "Internal server error (injected)",
    }
).encode()
_ERROR_500_HTML = (
    b"<html><head><title>500 Internal Server Error</title></head>"
    b"<body><h1>500 Internal Server Error</h1></body></html>"
)


@dataclass
class _Planned:
    kind: str
    times: int
    operations: frozenset[str] | None
    on_fault: Callable[[], None] | None


@dataclass
class _Random:
    rate: float
    kinds: tuple[str, ...]
    operations: frozenset[str] | None
    rng: random.Random


@dataclass
class _Message:
    head: bytes
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    #: The DynamoDB operation (``UpdateItem``) or the Redis command (``EVALSHA``).
    operation: str = ""


class FaultProxy:
    """A loopback proxy in front of ``upstream`` that injects faults on demand.

    ``upstream`` is an ``http://`` server (DynamoDB's protocol: every fault of `FAULTS`)
    or a ``redis://`` one (RESP: the faults of `RESP_FAULTS`). Point a cache at
    `endpoint`; every request is forwarded unchanged unless a fault is due, one request
    at a time per connection. Faults are planned (`inject`: the next matching requests)
    or random (`inject_randomly`: a share of the matching requests, seeded). `injected`
    counts what was injected. Requests are matched by their operation: the DynamoDB
    operation from the ``X-Amz-Target`` header (``"UpdateItem"``...), or the Redis
    command (``"EVALSHA"``...).

    .. versionadded:: 0.2
    """

    def __init__(self, upstream: str, *, stall_seconds: float = 2.0) -> None:
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", "redis") or not parts.hostname:
            raise ValueError(
                f"the fault proxy forwards to an http:// or redis:// URL, not {upstream!r}"
            )
        #: ``"http"`` (DynamoDB and other HTTP/1.1 servers) or ``"resp"`` (Redis).
        self.protocol = "http" if parts.scheme == "http" else "resp"
        #: The faults this proxy can inject on its protocol.
        self.faults = tuple(FAULTS) if self.protocol == "http" else RESP_FAULTS
        self.upstream = (parts.hostname, parts.port or (80 if parts.scheme == "http" else 6379))
        self.stall_seconds = stall_seconds
        self._lock = threading.Lock()
        self._planned: list[_Planned] = []
        self._random: _Random | None = None
        self._injected: Counter[str] = Counter()
        self._requests = 0
        self._closed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._connections: set[socket.socket] = set()
        host, port = self._listener.getsockname()[:2]
        #: The URL to connect to instead of ``upstream`` (``endpoint_url`` for DynamoDB).
        self.endpoint = f"{parts.scheme}://{host}:{port}"
        self._thread = threading.Thread(target=self._accept, daemon=True, name="fault-proxy")
        self._thread.start()

    # -- planning -----------------------------------------------------------------------------

    def inject(
        self,
        kind: str,
        *,
        times: int = 1,
        operations: Collection[str] | None = None,
        on_fault: Callable[[], None] | None = None,
    ) -> None:
        """Inject ``kind`` into the next ``times`` requests for ``operations`` (all if None).

        ``on_fault`` runs in the proxy when the fault strikes, after the server applied
        the request where the fault applies it: a test can act at that very moment
        (another client's call, say) to build an exact interleaving.
        """
        self._check(kind)
        with self._lock:
            self._planned.append(
                _Planned(kind, times, frozenset(operations) if operations else None, on_fault)
            )

    def inject_randomly(
        self,
        rate: float,
        kinds: Collection[str] | None = None,
        *,
        operations: Collection[str] | None = None,
        seed: int = 0,
    ) -> None:
        """Inject one of ``kinds`` (all this protocol's) into a ``rate`` share of requests."""
        kinds = self.faults if kinds is None else tuple(kinds)
        for kind in kinds:
            self._check(kind)
        with self._lock:
            self._random = _Random(
                rate,
                tuple(kinds),
                frozenset(operations) if operations else None,
                random.Random(seed),
            )

    def clear(self) -> None:
        """Stop injecting: forget planned and random faults (the counts stay)."""
        with self._lock:
            self._planned.clear()
            self._random = None

    @property
    def injected(self) -> Counter[str]:
        """How many faults of each kind were injected so far."""
        with self._lock:
            return Counter(self._injected)

    @property
    def requests(self) -> int:
        """How many requests reached the proxy so far."""
        with self._lock:
            return self._requests

    def close(self) -> None:
        """Stop listening and close every connection."""
        self._closed.set()
        with suppress(OSError):
            # Wakes the accept() blocked in the proxy's thread (close alone does not).
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            _close(connection)
        self._thread.join(timeout=10)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check(self, kind: str) -> None:
        if kind not in self.faults:
            raise ValueError(
                f"unknown fault {kind!r} for {self.protocol}; known faults: "
                f"{', '.join(self.faults)}"
            )

    def _choose(self, operation: str) -> _Planned | None:
        with self._lock:
            self._requests += 1
            for planned in self._planned:
                if planned.operations is None or operation in planned.operations:
                    planned.times -= 1
                    if planned.times <= 0:
                        self._planned.remove(planned)
                    self._injected[planned.kind] += 1
                    return planned
            chance = self._random
            matches = chance is not None and (
                chance.operations is None or operation in chance.operations
            )
            if chance is not None and matches and chance.rng.random() < chance.rate:
                kind = chance.rng.choice(chance.kinds)
                self._injected[kind] += 1
                return _Planned(kind, 1, None, None)
        return None

    # -- serving ------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._connections.add(client)
            threading.Thread(
                target=self._serve, args=(client,), daemon=True, name="fault-proxy-conn"
            ).start()

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        reader = _Reader(client, self.protocol)
        try:
            while not self._closed.is_set():
                request = reader.message(is_request=True)
                if request is None:
                    return
                planned = self._choose(request.operation)
                kind = planned.kind if planned else None
                if kind == "reset":
                    self._strike(planned)
                    _reset(client)
                    return
                if kind == "throttle":
                    self._strike(planned)
                    client.sendall(
                        _RESP_BUSY
                        if self.protocol == "resp"
                        else _response(400, "application/x-amz-json-1.0", _THROTTLE_BODY)
                    )
                    continue
                if kind == "stall" and self._closed.wait(self.stall_seconds):
                    return
                upstream, response = self._forward(upstream, request)
                if kind is not None:
                    self._strike(planned)
                if kind is None or kind == "stall":
                    client.sendall(response.head + response.body)
                elif kind == "drop_after_apply":
                    _reset(client)
                    return
                elif kind == "error_500_json":
                    client.sendall(_response(500, "application/x-amz-json-1.0", _ERROR_500_JSON))
                elif kind == "error_500_html":
                    client.sendall(_response(500, "text/html", _ERROR_500_HTML))
                elif kind == "cut_body":
                    client.sendall(response.head + response.body[: len(response.body) // 2])
                    _close(client)
                    return
                elif kind == "corrupt_body":
                    body = bytearray(response.body) or bytearray(b" ")
                    body[0] ^= 0x5A
                    client.sendall(response.head + bytes(body))
        except OSError:
            return
        finally:
            with self._lock:
                self._connections.discard(client)
            _close(client)
            if upstream is not None:
                _close(upstream)

    def _strike(self, planned: _Planned | None) -> None:
        if planned is not None and planned.on_fault is not None:
            planned.on_fault()

    def _forward(
        self, upstream: socket.socket | None, request: _Message
    ) -> tuple[socket.socket | None, _Message]:
        """Send ``request`` upstream once and read the answer.

        A kept connection the server has closed is replaced before sending, never
        after: the proxy itself must not resend a request the server may have applied.
        """
        if upstream is not None and _is_dropped(upstream):
            _close(upstream)
            upstream = None
        if upstream is None:
            upstream = socket.create_connection(self.upstream, timeout=60)
        upstream.sendall(request.head + request.body)
        response = _Reader(upstream, self.protocol).message(is_request=False)
        if response is None:
            raise OSError("the upstream server closed the connection without answering")
        if response.headers.get("connection", "").lower() == "close":
            _close(upstream)
            upstream = None
        return upstream, response


class _Reader:
    """Reads HTTP/1.1 messages (Content-Length or chunked bodies) off a socket."""

    def __init__(self, sock: socket.socket, protocol: str = "http") -> None:
        self.sock = sock
        self.protocol = protocol
        self.buffer = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise OSError("connection closed mid-message")
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            if not self._fill():
                raise OSError("connection closed mid-message")
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def message(self, *, is_request: bool) -> _Message | None:
        if self.protocol == "resp":
            return self._resp_message()
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                if self.buffer:
                    raise OSError("connection closed mid-message")
                return None
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                body += self._take(size)
                self._take(2)
                if size == 0:
                    break
            # Re-framed with a length, so a cut or corrupted body keeps its headers honest.
            lines = [
                line
                for line in head.split(b"\r\n")
                if not line.lower().startswith(b"transfer-encoding")
            ]
            head = b"\r\n".join([*lines, b"Content-Length: %d" % len(body)])
        else:
            body = self._take(int(headers.get("content-length", "0")))
        operation = headers.get("x-amz-target", "").rsplit(".", 1)[-1]
        return _Message(head + b"\r\n\r\n", body, headers, operation)

    def _resp_message(self) -> _Message | None:
        """One RESP2/RESP3 value, raw; for a command, its name is the operation."""
        if not self.buffer and not self._fill():
            return None
        raw, words = self._resp_value()
        operation = words[0].decode("latin-1").upper() if words else ""
        return _Message(b"", raw, {}, operation)

    def _resp_value(self) -> tuple[bytes, list[bytes]]:
        line = self._line()
        kind, rest = line[:1], line[1:]
        raw = line + b"\r\n"
        words: list[bytes] = []
        if kind in (b"$", b"=", b"!") and int(rest) >= 0:
            data = self._take(int(rest) + 2)
            raw += data
            words.append(data[:-2])
        elif kind in (b"*", b"~", b">", b"%", b"|") and int(rest) > 0:
            count = int(rest) * (2 if kind in (b"%", b"|") else 1)
            for _ in range(count):
                element, inner = self._resp_value()
                raw += element
                words += inner[:1]
            if kind == b"|":  # an attribute precedes the value it describes
                value, inner = self._resp_value()
                raw += value
        elif kind not in b"+-:_,#(*$~>%|=!":
            words = line.split()  # an inline command
        return raw, words


def _response(status: int, content_type: str, body: bytes) -> bytes:
    reason = {400: "Bad Request", 500: "Internal Server Error"}[status]
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nx-amz-crc32: {crc32(body) & 0xFFFFFFFF}\r\n"
        "x-amzn-RequestId: injected\r\n\r\n"
    ).encode() + body


def _is_dropped(sock: socket.socket) -> bool:
    """Whether the peer has closed a kept connection (readable, with nothing to read)."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST rather than a FIN: the peer sees "connection reset"."""
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    _close(sock)


def _close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.close()


@contextmanager
def fault_proxy(upstream: str, *, stall_seconds: float = 2.0) -> Iterator[FaultProxy]:
    """Run a `FaultProxy` in front of ``upstream`` for the duration of the block.

    .. versionadded:: 0.2
    """
    proxy = FaultProxy(upstream, stall_seconds=stall_seconds)
    try:
        yield proxy
    finally:
        proxy.close()
