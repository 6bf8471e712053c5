"""The HTTP side of the emulator: a threaded http.server that speaks for an `App`.

    server = EmulatorServer(("127.0.0.1", 0), app)
    threading.Thread(target=server.serve_forever, daemon=True).start()

HTTP/1.1 with keep-alive; JSON bodies carry Content-Length, SSE and JSON lines are sent with
chunked transfer encoding. An unpaced stream goes out in a single write; paced streams write
each delta when it is due. Clients that hang up mid-response are dropped silently.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
import traceback
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from .app import App, DropOut, Incoming, JsonOut, LinesOut, Outgoing, StreamOut, random_id
from .errors import DEFAULT_MESSAGES, error_body
from .generation import encode_frame
from .platform_routes import handle_platform
from .platforms import STREAM_EXCEPTIONS, exception_frame
from .platforms import match as platform_route

__all__ = ["EmulatorServer"]

_DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
_REASONS = {529: "Overloaded", 413: "Payload Too Large"}
_PING = b'event: ping\ndata: {"type": "ping"}\n\n'
# A frame cut off in the middle of its JSON, for the "malformed" fault.
_MALFORMED = (
    b"event: content_block_delta\n"
    b'data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_d\n\n'
)
# A 16-byte event-stream message with a wrong prelude CRC.
_BAD_CRC = b"\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
_DROP = object()  # marks where a "drop" fault closes the connection
_LINES_CHUNK = 64 * 1024


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "claude-magics-emulator"
    sys_version = ""
    # Headers and body often go out in separate small writes: without this, Nagle's algorithm
    # and delayed ACKs can add ~40 ms to each response.
    disable_nagle_algorithm = True
    timeout = 300  # idle keep-alive connections are closed after five minutes
    server: EmulatorServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log lines http.server writes to stderr."""

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    # ------------------------------------------------------------------ reading

    def _read_body(self, limit: int) -> tuple[bytes, bool]:
        """The request body, and whether it was over ``limit`` (then it is read and dropped)."""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            parts: list[bytes] = []
            size = 0
            while True:
                line = self.rfile.readline(65537)
                length = int(line.split(b";")[0].strip() or b"0", 16)
                if length == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data = self.rfile.read(length)
                self.rfile.readline(3)
                size += length
                if size <= limit:
                    parts.append(data)
            return (b"", True) if size > limit else (b"".join(parts), False)
        length = int(self.headers.get("content-length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        if length <= limit:
            return self.rfile.read(length), False
        remaining = length
        while remaining > 0:
            got = self.rfile.read(min(remaining, 1 << 20))
            if not got:
                break
            remaining -= len(got)
        return b"", True

    def _dispatch(self) -> None:
        app = self.server.app
        split = urlsplit(self.path)
        try:
            body, oversized = self._read_body(app.body_limit(split.path))
        except ValueError:
            self.close_connection = True
            payload = orjson.dumps(
                error_body("invalid_request_error", "Malformed request body framing", None)
            )
            headers = {"content-type": "application/json", "request-id": random_id("req_")}
            self._send_head(400, headers, len(payload))
            self.wfile.write(payload)
            return
        received: dict[str, str] = {}
        for name, value in self.headers.items():
            name = name.lower()
            # A header sent more than once is one comma-separated list (anthropic-beta may
            # be repeated, one beta each, as the API allows).
            received[name] = f"{received[name]},{value}" if name in received else value
        request = Incoming(
            method=self.command,
            path=split.path,
            query=dict(parse_qsl(split.query)),
            headers=received,
            body=body,
            oversized=oversized,
        )
        admitted = app.enter_flight(request.path)
        try:
            try:
                route = platform_route(request.path)
                out = (
                    app.handle(request, admitted)
                    if route is None
                    else handle_platform(app, request, route, admitted)
                )
            except Exception as exc:  # a bug in the emulator: answer 500 and show the traceback
                traceback.print_exc()
                message = f"emulator error: {type(exc).__name__}: {exc}"
                out = JsonOut(
                    500,
                    orjson.dumps(error_body("api_error", message, None)),
                    {"content-type": "application/json"},
                )
            if admitted and isinstance(out, (JsonOut, DropOut)):
                # A request stops counting toward the concurrency limit once it is answered,
                # before the answer goes out: otherwise a client that sends its next request
                # the moment a reply arrives could be refused by a slot that is already free.
                if out.delay > 0:
                    time.sleep(out.delay)
                    out.delay = 0.0
                admitted = False
                app.exit_flight()
            self._write(out)
        except _DISCONNECTS:
            self.close_connection = True
        finally:
            if admitted:
                app.exit_flight()

    # ------------------------------------------------------------------ writing

    def _head_bytes(self, status: int, headers: dict[str, str], length: int | None) -> bytes:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = _REASONS.get(status, "Error")
        lines = [f"HTTP/1.1 {status} {reason}", f"date: {formatdate(usegmt=True)}"]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        if length is None:
            lines.append("transfer-encoding: chunked")
        else:
            lines.append(f"content-length: {length}")
        if self.close_connection:
            lines.append("connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send_head(self, status: int, headers: dict[str, str], length: int | None) -> None:
        self.wfile.write(self._head_bytes(status, headers, length))

    def _write(self, out: Outgoing) -> None:
        if out.delay > 0:
            time.sleep(out.delay)
        if isinstance(out, DropOut):
            self.close_connection = True
            return
        if isinstance(out, JsonOut):
            body = b"" if self.command == "HEAD" else out.body
            self.wfile.write(self._head_bytes(out.status, out.headers, len(out.body)) + body)
            return
        if isinstance(out, LinesOut):
            self._send_head(200, out.headers, None)
            buffer = bytearray()
            for line in out.lines:
                buffer += line
                if len(buffer) >= _LINES_CHUNK:
                    self.wfile.write(_chunk(bytes(buffer)))
                    buffer.clear()
            self.wfile.write((_chunk(bytes(buffer)) if buffer else b"") + b"0\r\n\r\n")
            return
        self._stream(out)

    def _frames(self, out: StreamOut) -> list[tuple[Any, int]]:
        """Encoded frames with their token counts: pings inserted, the stream fault applied."""
        fault = out.fault
        frames: list[tuple[Any, int]] = []
        deltas = 0
        fired = False

        def inject() -> bool:
            """Apply the fault here; True when the stream must stop after it."""
            nonlocal fired
            assert fault is not None
            fired = True
            if fault.kind == "drop":
                frames.append((_DROP, 0))
                return True
            if fault.kind == "error_event" and out.framing == "eventstream":
                message = fault.message or DEFAULT_MESSAGES.get(fault.error_type, "Error")
                name = STREAM_EXCEPTIONS.get(fault.error_type, "modelStreamErrorException")
                frames.append((exception_frame(name, message), 0))
                return True
            if fault.kind == "error_event":
                message = fault.message or DEFAULT_MESSAGES.get(fault.error_type, "Error")
                frames.append(
                    (
                        encode_frame(
                            "error", error_body(fault.error_type, message, out.request_id)
                        ),
                        0,
                    )
                )
                return True
            # An event-stream frame whose CRCs do not add up, or an SSE frame cut mid-JSON.
            frames.append((_BAD_CRC if out.framing == "eventstream" else _MALFORMED, 0))
            return False

        # ``sent`` counts frames so far, pings excluded: what a fault's after_events counts.
        for sent, event in enumerate(out.events):
            if fault is not None and not fired and sent == fault.after_events and inject():
                return frames
            frames.append((event.frame, event.tokens))
            if out.framing != "sse":
                continue  # event-stream has no pings
            if event.name == "message_start":
                frames.append((_PING, 0))
            elif event.is_delta:
                deltas += 1
                if out.ping_every and deltas % out.ping_every == 0:
                    frames.append((_PING, 0))
        if fault is not None and not fired:
            inject()
        return frames

    def _stream(self, out: StreamOut) -> None:
        frames = self._frames(out)
        head = self._head_bytes(200, out.headers, None)
        dropped = bool(frames) and frames[-1][0] is _DROP
        if dropped:
            frames.pop()
            self.close_connection = True
        ending = b"" if dropped else b"0\r\n\r\n"
        if out.time_to_first_token <= 0 and out.tokens_per_second is None:
            # No pacing: the whole body in one write.
            body = b"".join(frame for frame, _ in frames)
            self.wfile.write(head + (_chunk(body) if body else b"") + ending)
            return
        self.wfile.write(head)
        started = time.monotonic()
        first_due = started + out.time_to_first_token
        tokens = 0
        pending: list[bytes] = []
        for frame, count in frames:
            if count > 0:
                tokens += count
                rate = out.tokens_per_second
                due = first_due + (tokens / rate if rate else 0.0)
                wait = due - time.monotonic()
                if wait > 0.0005:
                    if pending:
                        self.wfile.write(_chunk(b"".join(pending)))
                        pending.clear()
                    time.sleep(wait)
            pending.append(frame)
        self.wfile.write((_chunk(b"".join(pending)) if pending else b"") + ending)


class EmulatorServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks its connections so `close_connections` can end them."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    # The listen backlog: socketserver's 5 drops the connections of a burst beyond it, and
    # their clients retry the handshake only after a second (a realtime job's first round
    # stalled so). Servers in front of the API take far more.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall without a network.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def open_connections(self) -> int:
        """How many client connections are open now (idle keep-alive ones included)."""
        with self._connections_lock:
            return len(self._connections)

    def close_connections(self) -> None:
        """Shut down every open client connection (their handler threads then exit)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client going away is normal; anything else is a bug worth a traceback.
        if isinstance(sys.exc_info()[1], (*_DISCONNECTS, OSError)):
            return
        super().handle_error(request, client_address)
