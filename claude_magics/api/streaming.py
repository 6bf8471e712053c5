"""Server-sent events of a Messages stream, decoded and folded into the message they describe.

    decoder, acc = SSEDecoder(), MessageAccumulator()
    for name, data in decoder.feed(chunk):   # bytes as they arrive -> (event name, data bytes)
        event = acc.feed(orjson.loads(data)) # a typed event, or None for pings and unknown types
    decoder.end()                            # at the end of the body: what it completes
    acc.message                              # the message so far: text, thinking, tool input, usage

This module does no I/O: both clients (sync and async) feed it bytes, tests feed it directly.
Lines end at CRLF, CR or LF only, as the SSE spec says (never ``str.splitlines``,
which would also break a JSON string at U+2028 or U+0085), and are split as bytes, so a chunk
that ends inside a UTF-8 character or between a CR and its LF changes nothing.

Deltas are folded at full speed (text pieces go to a list and are joined only when someone asks
for a snapshot), because a view that re-renders on every token is the caller's choice, not ours.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

__all__ = [
    "CitationEvent",
    "ContentBlockStartEvent",
    "ContentBlockStopEvent",
    "EventDecoder",
    "InputJsonEvent",
    "MessageAccumulator",
    "MessageDeltaEvent",
    "MessageStartEvent",
    "MessageStopEvent",
    "SSEDecoder",
    "SignatureEvent",
    "StreamEvent",
    "TextEvent",
    "ThinkingEvent",
]


class EventDecoder(Protocol):
    """Turns a streamed body into ``(event name, JSON data)`` pairs: `SSEDecoder` for the
    Messages API; a platform that frames its streams otherwise brings its own."""

    def feed(self, chunk: bytes) -> list[tuple[str, bytes]]: ...

    def end(self) -> list[tuple[str, bytes]]: ...


class SSEDecoder:
    """Server-sent events from a byte stream: ``feed(chunk)`` returns the events it completed,
    as ``(event name, data)`` with the data as bytes (orjson reads bytes directly).

    As the spec has it: a leading BOM is dropped, ``:`` lines are comments, a field without a
    colon has an empty value, one space after the colon is not part of the value, several
    ``data`` lines join with a LF, and an event without data is not dispatched. ``id`` and
    ``retry`` are ignored: a Messages stream is never resumed. An event the stream ends
    before finishing (no blank line after it) is dropped; the caller judges the stream by
    whether ``message_stop`` came.
    """

    __slots__ = ("_data", "_event", "_pending", "_started")

    def __init__(self) -> None:
        self._pending = b""  # the unfinished last line (a trailing CR kept as is)
        self._event = ""
        self._data: list[bytes] = []
        self._started = False

    def feed(self, chunk: bytes) -> list[tuple[str, bytes]]:
        text = self._pending + chunk if self._pending else chunk
        if not self._started:
            if len(text) < 3 and b"\xef\xbb\xbf".startswith(text):
                self._pending = text  # a BOM may be cut across chunks
                return []
            self._started = True
            if text.startswith(b"\xef\xbb\xbf"):
                text = text[3:]
        if b"\r" in text:
            # A CR at the very end may be the first half of a CRLF: decide with the next chunk.
            held = b"\r" if text.endswith(b"\r") else b""
            if held:
                text = text[:-1]
            lines = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
            self._pending = lines.pop() + held
        else:
            lines = text.split(b"\n")
            self._pending = lines.pop()
        events: list[tuple[str, bytes]] = []
        data = self._data
        for line in lines:
            if not line:  # a blank line ends the event
                if data:
                    events.append((self._event, data[0] if len(data) == 1 else b"\n".join(data)))
                    data = self._data = []
                self._event = ""
                continue
            name, colon, value = line.partition(b":")
            if colon and value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                data.append(value)
            elif name == b"event":
                self._event = value.decode("utf-8", "replace")
            # "" is a comment; id, retry and unknown fields are ignored.
        return events

    def end(self) -> list[tuple[str, bytes]]:
        """The events completed by the end of the stream: a CR held back as the possible
        first half of a CRLF was a line end after all."""
        return self.feed(b"\n") if self._pending.endswith(b"\r") else []


@dataclass(frozen=True, slots=True)
class MessageStartEvent:
    """The stream began; ``message`` has empty content and the initial usage."""

    message: dict[str, Any]
    type: str = "message_start"


@dataclass(frozen=True, slots=True)
class ContentBlockStartEvent:
    index: int
    block: dict[str, Any]
    type: str = "content_block_start"


@dataclass(frozen=True, slots=True)
class TextEvent:
    """A piece of answer text."""

    index: int
    text: str
    type: str = "text"


@dataclass(frozen=True, slots=True)
class ThinkingEvent:
    """A piece of extended-thinking text."""

    index: int
    thinking: str
    type: str = "thinking"


@dataclass(frozen=True, slots=True)
class SignatureEvent:
    index: int
    signature: str
    type: str = "signature"


@dataclass(frozen=True, slots=True)
class InputJsonEvent:
    """A piece of a tool call's input, as partial JSON text."""

    index: int
    partial_json: str
    type: str = "input_json"


@dataclass(frozen=True, slots=True)
class CitationEvent:
    index: int
    citation: dict[str, Any]
    type: str = "citation"


@dataclass(frozen=True, slots=True)
class ContentBlockStopEvent:
    """A block is complete; ``block`` is its final form (tool input parsed)."""

    index: int
    block: dict[str, Any]
    type: str = "content_block_stop"


@dataclass(frozen=True, slots=True)
class MessageDeltaEvent:
    stop_reason: str | None
    stop_sequence: str | None
    usage: dict[str, Any]
    type: str = "message_delta"


@dataclass(frozen=True, slots=True)
class MessageStopEvent:
    type: str = "message_stop"


StreamEvent = (
    MessageStartEvent
    | ContentBlockStartEvent
    | TextEvent
    | ThinkingEvent
    | SignatureEvent
    | InputJsonEvent
    | CitationEvent
    | ContentBlockStopEvent
    | MessageDeltaEvent
    | MessageStopEvent
)


@dataclass(slots=True)
class _Block:
    """One content block under construction."""

    base: dict[str, Any]
    parts: list[str] = field(default_factory=list)
    signature: list[str] = field(default_factory=list)
    citations: list[dict[str, Any]] | None = None
    stopped: bool = False

    def _joined(self) -> str:
        # Join once and keep the result, so repeated snapshots stay linear overall.
        if len(self.parts) > 1:
            self.parts[:] = ["".join(self.parts)]
        return self.parts[0] if self.parts else ""

    def snapshot(self) -> dict[str, Any]:
        block = dict(self.base)
        kind = block.get("type")
        if kind == "text":
            block["text"] = block.get("text", "") + self._joined()
            if self.citations is not None:
                block["citations"] = list(self.citations)
        elif kind == "thinking":
            block["thinking"] = block.get("thinking", "") + self._joined()
            block["signature"] = block.get("signature", "") + "".join(self.signature)
        elif kind in ("tool_use", "server_tool_use"):
            raw = self._joined()
            if raw:
                try:
                    block["input"] = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    # Mid-stream the JSON is usually incomplete: show what is known so far.
                    block["input"] = dict(block.get("input") or {})
                    block["partial_json"] = raw
        return block


class MessageAccumulator:
    """Folds stream events into the message they describe.

    ``feed`` takes one decoded event payload (``{"type": ..., ...}``) and returns a typed event,
    or None for ``ping`` and for event types this version does not know (the API may add some;
    they must not break a stream).
    """

    __slots__ = ("_blocks", "_message", "_usage", "started", "stopped")

    def __init__(self) -> None:
        self._message: dict[str, Any] = {}
        self._usage: dict[str, Any] = {}
        self._blocks: list[_Block] = []
        self.started = False
        self.stopped = False

    def feed(self, data: dict[str, Any]) -> StreamEvent | None:
        kind = data.get("type")
        if kind == "content_block_delta":
            # The hot path: one per token.
            delta = data["delta"]
            index = data["index"]
            block = self._blocks[index]
            delta_type = delta.get("type")
            if delta_type == "text_delta":
                text = delta["text"]
                block.parts.append(text)
                return TextEvent(index, text)
            if delta_type == "input_json_delta":
                block.parts.append(delta["partial_json"])
                return InputJsonEvent(index, delta["partial_json"])
            if delta_type == "thinking_delta":
                block.parts.append(delta["thinking"])
                return ThinkingEvent(index, delta["thinking"])
            if delta_type == "signature_delta":
                block.signature.append(delta["signature"])
                return SignatureEvent(index, delta["signature"])
            if delta_type == "citations_delta":
                if block.citations is None:
                    block.citations = []
                block.citations.append(delta["citation"])
                return CitationEvent(index, delta["citation"])
            return None
        if kind == "message_start":
            message = dict(data["message"])
            self._usage = dict(message.get("usage") or {})
            message["content"] = []
            self._message = message
            self.started = True
            return MessageStartEvent(self.message)
        if kind == "content_block_start":
            index = data["index"]
            base = dict(data["content_block"])
            # Blocks arrive in index order; tolerate gaps rather than mis-assigning deltas.
            while len(self._blocks) < index:
                self._blocks.append(_Block(base={"type": "unknown"}))
            block = _Block(base=base)
            if base.get("type") == "text" and base.get("citations"):
                block.citations = list(base["citations"])
            if index < len(self._blocks):
                self._blocks[index] = block
            else:
                self._blocks.append(block)
            return ContentBlockStartEvent(index, base)
        if kind == "content_block_stop":
            index = data["index"]
            block = self._blocks[index]
            block.stopped = True
            return ContentBlockStopEvent(index, block.snapshot())
        if kind == "message_delta":
            delta = data.get("delta") or {}
            for key in ("stop_reason", "stop_sequence", "stop_details", "container"):
                if key in delta:
                    self._message[key] = delta[key]
            # Usage in message_delta is cumulative: a non-null figure replaces the old one.
            for key, value in (data.get("usage") or {}).items():
                if value is not None:
                    self._usage[key] = value
            return MessageDeltaEvent(
                delta.get("stop_reason"), delta.get("stop_sequence"), dict(self._usage)
            )
        if kind == "message_stop":
            self.stopped = True
            return MessageStopEvent()
        return None

    @property
    def message(self) -> dict[str, Any]:
        """A snapshot of the message so far (a new dict each time)."""
        message = dict(self._message)
        message["content"] = [block.snapshot() for block in self._blocks]
        message["usage"] = dict(self._usage)
        return message

    @property
    def text(self) -> str:
        """All answer text so far, text blocks joined."""
        return "".join(
            block._joined() for block in self._blocks if block.base.get("type") == "text"
        )

    def text_parts(self) -> list[tuple[str, list[dict[str, Any]] | None]]:
        """Each text block so far as ``(text, citations)``: for a view that marks what is
        cited while the answer streams (no copies of the blocks are made)."""
        return [
            (str(block.base.get("text") or "") + block._joined(), block.citations)
            for block in self._blocks
            if block.base.get("type") == "text"
        ]

    @property
    def thinking(self) -> str:
        """All extended-thinking text so far."""
        return "".join(
            block._joined() for block in self._blocks if block.base.get("type") == "thinking"
        )


def events_of_message(message: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The stream events that describe a whole ``message``, in the API's order.

    For a server that answers a streaming request with the complete JSON message (some
    gateways do): fed to a :class:`MessageAccumulator`, they rebuild the message exactly, so
    callers see one kind of answer whatever the server sent.
    """
    start = {k: v for k, v in message.items() if k not in ("stop_reason", "stop_sequence")}
    start.update(content=[], stop_reason=None, stop_sequence=None)
    yield {"type": "message_start", "message": start}
    for index, block in enumerate(message.get("content") or []):
        kind = block.get("type")
        if kind == "text":
            shell = {k: v for k, v in block.items() if k != "citations"}
            yield _block_start(index, {**shell, "text": ""})
            for citation in block.get("citations") or ():
                yield _delta(index, {"type": "citations_delta", "citation": citation})
            yield _delta(index, {"type": "text_delta", "text": block.get("text", "")})
        elif kind == "thinking":
            yield _block_start(index, {**block, "thinking": "", "signature": ""})
            yield _delta(index, {"type": "thinking_delta", "thinking": block.get("thinking", "")})
            yield _delta(
                index, {"type": "signature_delta", "signature": block.get("signature", "")}
            )
        elif kind in ("tool_use", "server_tool_use"):
            yield _block_start(index, {**block, "input": {}})
            raw = orjson.dumps(block.get("input") or {}).decode()
            yield _delta(index, {"type": "input_json_delta", "partial_json": raw})
        else:  # redacted thinking, tool results of server tools...: whole at the start
            yield _block_start(index, dict(block))
        yield {"type": "content_block_stop", "index": index}
    yield {
        "type": "message_delta",
        "delta": {
            "stop_reason": message.get("stop_reason"),
            "stop_sequence": message.get("stop_sequence"),
        },
        "usage": dict(message.get("usage") or {}),
    }
    yield {"type": "message_stop"}


def _block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def _delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}
