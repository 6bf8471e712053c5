"""AWS event-stream framing, decoded: what Bedrock's InvokeModelWithResponseStream sends.

    decoder = BedrockEventDecoder()               # for an answer of content type
    for name, data in decoder.feed(chunk):        # application/vnd.amazon.eventstream
        ...                                       # the same JSON events as server-sent events

A message is a prelude (total length, headers length, the prelude's CRC32), headers (name,
type, value), a payload and the message's CRC32. Each ``chunk`` event's payload is
``{"bytes": base64}`` holding one JSON event of the Messages API (``message_start``,
``content_block_delta``...); an ``exception`` message (throttling, a model stream error) becomes
an ``error`` event, so the stream reader handles both transports alike. A pure decoder (no
botocore: Bedrock API-key users do not need it); every CRC is checked.
"""

from __future__ import annotations

import base64
import binascii
import functools
import struct
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import orjson

__all__ = [
    "EVENTSTREAM_CONTENT_TYPE",
    "BedrockEventDecoder",
    "EventStreamDecoder",
    "EventStreamError",
    "EventStreamMessage",
    "SseLikeEvent",
    "sse_events_of",
]

EVENTSTREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"
_PRELUDE = struct.Struct(">III")
# Header value types and their fixed sizes (None: a 2-byte length, then the bytes).
_FIXED = {0: 0, 1: 0, 2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16}
# Bedrock's stream exceptions, as the Messages API's error types.
_EXCEPTION_TYPES = {
    "throttlingException": "rate_limit_error",
    "serviceUnavailableException": "overloaded_error",
    "modelStreamErrorException": "api_error",
    "internalServerException": "api_error",
    "modelTimeoutException": "timeout_error",
    "validationException": "invalid_request_error",
}


class EventStreamError(ValueError):
    """Bytes that are not a valid event-stream message (a bad CRC, a length that lies)."""


@dataclass(frozen=True)
class EventStreamMessage:
    headers: Mapping[str, str | bytes | int | bool]
    payload: bytes


@dataclass(frozen=True)
class SseLikeEvent:
    """What the stream reader needs of an SSE event: its name and its JSON text."""

    event: str
    data: str


def _header_value(kind: int, data: bytes, at: int) -> tuple[str | bytes | int | bool, int]:
    if kind in (0, 1):
        return kind == 0, at
    if kind in (6, 7):
        (length,) = struct.unpack_from(">H", data, at)
        raw = data[at + 2 : at + 2 + length]
        return (raw.decode("utf-8") if kind == 7 else raw), at + 2 + length
    size = _FIXED.get(kind)
    if size is None:
        raise EventStreamError(f"unknown header value type {kind}")
    raw = data[at : at + size]
    return (raw if kind == 9 else int.from_bytes(raw, "big", signed=True)), at + size


@functools.lru_cache(maxsize=64)
def _parse_headers(data: bytes) -> Mapping[str, str | bytes | int | bool]:
    # Cached: every chunk of a stream carries the same few headers, byte for byte.
    headers: dict[str, str | bytes | int | bool] = {}
    at = 0
    while at < len(data):
        length = data[at]
        name = data[at + 1 : at + 1 + length].decode("utf-8")
        at += 1 + length
        kind = data[at]
        headers[name], at = _header_value(kind, data, at + 1)
    return MappingProxyType(headers)


class EventStreamDecoder:
    """Feed bytes as they arrive; iterate the complete messages so far."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[EventStreamMessage]:
        # One read often holds many messages: walk them by offset and drop what was read once
        # at the end (deleting each message from the front would copy the rest every time).
        self._buffer += data
        buffer = self._buffer
        at = 0
        try:
            while len(buffer) - at >= _PRELUDE.size:
                total, headers_length, prelude_crc = _PRELUDE.unpack_from(buffer, at)
                if zlib.crc32(buffer[at : at + 8]) != prelude_crc:
                    raise EventStreamError("event-stream prelude CRC mismatch")
                if total < 16 + headers_length:
                    raise EventStreamError(f"event-stream message length {total} is too short")
                if len(buffer) - at < total:
                    return
                frame = bytes(buffer[at : at + total])
                at += total
                (message_crc,) = struct.unpack_from(">I", frame, total - 4)
                if zlib.crc32(memoryview(frame)[:-4]) != message_crc:
                    raise EventStreamError("event-stream message CRC mismatch")
                headers = _parse_headers(frame[12 : 12 + headers_length])
                yield EventStreamMessage(headers, frame[12 + headers_length : total - 4])
        finally:
            del buffer[:at]

    @property
    def pending(self) -> int:
        """Bytes of an incomplete message still buffered (a stream cut mid-message)."""
        return len(self._buffer)


def _error(error_type: str, message: str) -> tuple[str, bytes]:
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    return "error", orjson.dumps(body)


class BedrockEventDecoder:
    """The client's `streaming.EventDecoder` for an event-stream answer: ``feed(chunk)``
    returns the ``(event name, JSON data)`` pairs the chunk completes, the JSON events each
    ``chunk`` message carries; an ``exception`` message, a malformed frame or a stream that
    ends inside a message becomes one ``error`` event, the last one."""

    __slots__ = ("_done", "_frames")

    def __init__(self) -> None:
        self._frames = EventStreamDecoder()
        self._done = False

    def feed(self, chunk: bytes) -> list[tuple[str, bytes]]:
        if self._done:
            return []
        try:
            messages = list(self._frames.feed(chunk))
        except EventStreamError as exc:
            return self._last(_error("malformed_event", f"a malformed event-stream frame: {exc}"))
        events: list[tuple[str, bytes]] = []
        for message in messages:
            kind = message.headers.get(":message-type")
            if kind in ("exception", "error"):
                name = str(
                    message.headers.get(":exception-type")
                    or message.headers.get(":error-code")
                    or "internalServerException"
                )
                try:
                    text = str(orjson.loads(message.payload).get("message") or name)
                except (orjson.JSONDecodeError, AttributeError):
                    text = message.payload.decode("utf-8", "replace") or name
                events.append(_error(_EXCEPTION_TYPES.get(name, "api_error"), f"{name}: {text}"))
                return self._last(*events)
            if message.headers.get(":event-type") != "chunk":
                continue  # initial-response and future event types carry no model event
            try:
                inner = base64.b64decode(orjson.loads(message.payload)["bytes"], validate=True)
                data = orjson.loads(inner)
            except (orjson.JSONDecodeError, KeyError, TypeError, binascii.Error):
                events.append(
                    _error("malformed_event", "an event-stream chunk without a JSON event")
                )
                return self._last(*events)
            events.append((str(data.get("type") or "message"), inner))
        return events

    def end(self) -> list[tuple[str, bytes]]:
        if not self._done and self._frames.pending:
            return self._last(
                _error("incomplete_stream", "the event stream ended inside a message")
            )
        return []

    def _last(self, *events: tuple[str, bytes]) -> list[tuple[str, bytes]]:
        # Nothing after an error event is read: the stream reader raises at it.
        self._done = True
        return list(events)


def sse_events_of(chunks: Iterable[bytes]) -> Iterator[SseLikeEvent]:
    """The JSON events carried by event-stream ``chunks``, as SSE-like events (for reading an
    event-stream body outside the client)."""
    decoder = BedrockEventDecoder()
    for chunk in chunks:
        for name, data in decoder.feed(chunk):
            yield SseLikeEvent(name, data.decode("utf-8"))
    for name, data in decoder.end():
        yield SseLikeEvent(name, data.decode("utf-8"))
