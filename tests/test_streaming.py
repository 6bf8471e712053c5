"""SSE decoding and the message accumulator, driven through the clients (sync and async) over an
httpx transport that hands out the body in awkward chunks (mid-line, mid-UTF-8 character, CR/LF
variants), and the decoder fed directly."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from claude_magics.api.client import AsyncClient, Client
from claude_magics.api.streaming import MessageAccumulator, SSEDecoder, TextEvent
from claude_magics.errors import APIStreamError

TRICKY_TEXT = ["Héllo", " wörld", " 😀", " line\u2028sep", " para\u2029sep", " \x85nel", " end"]


def _frame(data: dict[str, Any], newline: str = "\n") -> str:
    payload = json.dumps(data, ensure_ascii=False)
    return f"event: {data['type']}{newline}data: {payload}{newline}{newline}"


def _message_start() -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-6",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 7, "output_tokens": 1},
        },
    }


def _text_events(pieces: list[str]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [
        _message_start(),
        {"type": "ping"},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ]
    for piece in pieces:
        events.append(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            }
        )
    events += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": len(pieces)},
        },
        {"type": "message_stop"},
    ]
    return events


class _ChunkedStream(httpx.SyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks


class _AsyncChunkedStream(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


def _chunks(body: bytes, chunk_size: int | None, cuts: list[int] | None) -> list[bytes]:
    if cuts is not None:
        edges = [0, *cuts, len(body)]
        return [body[a:b] for a, b in itertools.pairwise(edges) if b > a]
    size = chunk_size or len(body)
    return [body[i : i + size] for i in range(0, len(body), size)]


def _async_stream_text(
    body: bytes, chunk_size: int | None = None, cuts: list[int] | None = None
) -> tuple[str, dict[str, Any]]:
    """What `AsyncClient` reads of ``body`` handed out in the given pieces."""
    chunks = _chunks(body, chunk_size, cuts)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream", "request-id": "req_test"},
            stream=_AsyncChunkedStream(chunks),
        )

    async def read() -> tuple[str, dict[str, Any]]:
        async with (
            AsyncClient(
                api_key="k", base_url="http://test", transport=httpx.MockTransport(handler)
            ) as client,
            client.messages.stream(model="m", max_tokens=10, messages=[]) as stream,
        ):
            text = "".join([piece async for piece in stream.text_stream])
            return text, stream.message

    return asyncio.run(read())


def _client_for(
    body: bytes, chunk_size: int | None = None, cuts: list[int] | None = None
) -> Client:
    chunks = _chunks(body, chunk_size, cuts)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream", "request-id": "req_test"},
            stream=_ChunkedStream(chunks),
        )

    return Client(api_key="k", base_url="http://test", transport=httpx.MockTransport(handler))


def _stream_text(client: Client) -> tuple[str, dict[str, Any]]:
    with client.messages.stream(model="m", max_tokens=10, messages=[]) as stream:
        text = "".join(stream.text_stream)
        return text, stream.message


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_every_chunk_split_keeps_text_intact(newline: str) -> None:
    body = "".join(_frame(e, newline) for e in _text_events(TRICKY_TEXT)).encode()
    expected = "".join(TRICKY_TEXT)
    # Every single cut position: mid-line, mid-field, between CR and LF, inside a UTF-8 sequence.
    for cut in range(1, len(body)):
        text, message = _stream_text(_client_for(body, cuts=[cut]))
        assert text == expected, f"cut at byte {cut}"
        assert message["content"][0]["text"] == expected
    # And one byte at a time.
    text, message = _stream_text(_client_for(body, chunk_size=1))
    assert text == expected
    assert message["stop_reason"] == "end_turn"
    assert message["usage"] == {"input_tokens": 7, "output_tokens": len(TRICKY_TEXT)}


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_the_async_client_reads_the_same_through_any_split(newline: str) -> None:
    body = "".join(_frame(e, newline) for e in _text_events(TRICKY_TEXT)).encode()
    expected = "".join(TRICKY_TEXT)
    # Cuts between CR and LF, inside "😀" and inside a field name, then one byte at a time.
    for cuts in ([body.index(b"\xf0") + 2], [body.index(b"data") + 2], [len(body) - 1]):
        assert _async_stream_text(body, cuts=cuts)[0] == expected, f"cut at {cuts}"
    text, message = _async_stream_text(body, chunk_size=1)
    assert text == expected
    assert message["stop_reason"] == "end_turn"


def test_the_decoder_follows_the_sse_rules() -> None:
    decoder = SSEDecoder()
    body = (
        b"\xef\xbb\xbf: a comment, then a BOM-prefixed stream\r\n"
        b"event: first\r\ndata: line one\r\ndata:line two\r\nid: 7\r\nretry: 10\r\n\r\n"
        b"event: no_data\n\n"  # an event without data is not dispatched
        b"data\n\n"  # a field without a colon: empty data, still data
        b"data:  two spaces\r\r"
        b"event: cut\ndata: never finished"
    )
    events = [event for i in range(len(body)) for event in decoder.feed(body[i : i + 1])]
    events += decoder.end()
    assert events == [
        ("first", b"line one\nline two"),
        ("", b""),
        ("", b" two spaces"),
    ]


def test_a_cr_at_the_very_end_ends_its_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r") == []  # the LF of a CRLF may come next
    assert decoder.feed(b"\r") == []
    assert decoder.end() == [("", b"x")]


def test_unicode_line_separators_inside_json_are_not_line_breaks() -> None:
    # U+2028 written raw inside the JSON string: str.splitlines() would break the frame here.
    body = "".join(_frame(e) for e in _text_events(["a\u2028b", "c\u0085d"])).encode()
    assert "\u2028".encode() in body
    text, _ = _stream_text(_client_for(body, chunk_size=7))
    assert text == "a\u2028bc\u0085d"


def test_unknown_events_comments_and_pings_are_ignored() -> None:
    events = _text_events(["x", "y"])
    frames = [_frame(e) for e in events]
    frames.insert(3, ": a comment line\n\n")
    frames.insert(4, 'event: brand_new_event\ndata: {"type": "brand_new_event", "x": 1}\n\n')
    body = "".join(frames).encode()
    text, message = _stream_text(_client_for(body, chunk_size=5))
    assert text == "xy"
    assert message["stop_reason"] == "end_turn"


def test_malformed_frame_raises_with_partial_text() -> None:
    frames = [_frame(e) for e in _text_events(["kept", " text", " lost"])]
    # Replace the third delta with a broken frame.
    frames[5] = 'event: content_block_delta\ndata: {"type": "content_block_delta", "ind\n\n'
    client = _client_for("".join(frames).encode())
    with (
        pytest.raises(APIStreamError) as info,
        client.messages.stream(model="m", max_tokens=10, messages=[]) as stream,
    ):
        for _ in stream:
            pass
    assert info.value.error_type == "malformed_event"
    assert info.value.partial is not None
    assert info.value.partial["content"][0]["text"] == "kept text"
    assert stream.text == "kept text"


def test_stream_that_ends_early_is_an_error_not_a_silent_success() -> None:
    events = _text_events(["only", " half"])[:-3]  # no block stop, message_delta, message_stop
    client = _client_for("".join(_frame(e) for e in events).encode())
    with pytest.raises(APIStreamError) as info:  # noqa: SIM117 - the stream must be entered
        with client.messages.stream(model="m", max_tokens=10, messages=[]) as stream:
            stream.until_done()
    assert info.value.error_type == "incomplete_stream"
    assert info.value.partial is not None
    assert info.value.partial["content"][0]["text"] == "only half"


def test_accumulator_folds_thinking_tools_citations_and_usage() -> None:
    acc = MessageAccumulator()
    citation = {
        "type": "char_location",
        "cited_text": "Paris",
        "document_index": 0,
        "document_title": None,
        "start_char_index": 0,
        "end_char_index": 5,
        "file_id": None,
    }
    events: list[dict[str, Any]] = [
        _message_start(),
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "Let me "},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "think."},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "sig=="},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "text", "text": "", "citations": None},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "citations_delta", "citation": citation},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "text_delta", "text": "Paris."},
        },
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": ""},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '{"city": "Pa'},
        },
    ]
    for event in events:
        acc.feed(event)
    mid = acc.message
    # Mid-stream the tool input is incomplete: the snapshot says so instead of failing.
    assert mid["content"][2]["input"] == {}
    assert mid["content"][2]["partial_json"] == '{"city": "Pa'
    for event in [
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": 'ris", "n": [1, 2]}'},
        },
        {"type": "content_block_stop", "index": 2},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 42, "input_tokens": None},
        },
        {"type": "message_stop"},
    ]:
        acc.feed(event)
    message = acc.message
    thinking, text, tool = message["content"]
    assert thinking == {"type": "thinking", "thinking": "Let me think.", "signature": "sig=="}
    assert text["text"] == "Paris." and text["citations"] == [citation]
    assert tool["input"] == {"city": "Paris", "n": [1, 2]} and "partial_json" not in tool
    assert message["stop_reason"] == "tool_use"
    # Cumulative usage: output replaced, a null input figure does not erase the known one.
    assert message["usage"] == {"input_tokens": 7, "output_tokens": 42}
    assert acc.thinking == "Let me think." and acc.text == "Paris."
    assert acc.stopped


def test_text_events_are_typed() -> None:
    acc = MessageAccumulator()
    events = [acc.feed(e) for e in _text_events(["a", "b"])]
    texts = [e for e in events if isinstance(e, TextEvent)]
    assert [(e.index, e.text, e.type) for e in texts] == [(0, "a", "text"), (0, "b", "text")]
    assert events[1] is None  # ping
