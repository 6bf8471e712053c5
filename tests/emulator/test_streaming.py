"""Streaming /v1/messages: event order, pings, folding to the JSON reply, pacing, speed."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import orjson
import pytest
from spec_validation import HEADERS, Api, fold, parse_sse

from claude_magics.emulator import Emulator
from claude_magics.emulator.tokens import count_pieces

from .support import body as _body


def body(text: str = "Hello there", **extra: Any) -> dict[str, Any]:
    """The shared body with room for a 1,024-token thinking budget."""
    return _body(text, **{"max_tokens": 2000, **extra})


def names(events: list[tuple[str, dict[str, Any]]]) -> str:
    """Event names as one string, e.g. 'message_start ping content_block_start ...'."""
    return " ".join(name for name, _ in events)


def test_event_sequence_and_frame_format(emulator: Emulator) -> None:
    with httpx.Client(base_url=emulator.url, headers=HEADERS) as client:
        response = client.post("/v1/messages", json=body("Hi [[reply_tokens=4]]", stream=True))
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    raw = response.content.decode()
    frames = raw.split("\n\n")
    assert frames[-1] == ""
    for frame in frames[:-1]:
        assert re.fullmatch(r"event: (\w+)\ndata: (\{.*\})", frame), frame
        name, data = re.fullmatch(r"event: (\w+)\ndata: (\{.*\})", frame).groups()  # type: ignore[union-attr]
        assert orjson.loads(data)["type"] == name
    events = [(n, orjson.loads(d)) for n, d in parse_sse(response.content)]
    assert names(events) == (
        "message_start ping content_block_start "
        + "content_block_delta " * 4
        + "content_block_stop message_delta message_stop"
    )


def test_stream_folds_to_the_json_reply(emulator_api: Api) -> None:
    request = body("Tell me something [[reply_tokens=30]]")
    reference = emulator_api.create(**request)
    events = emulator_api.stream(**request)
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert start["usage"]["output_tokens"] == 1
    assert start["usage"]["input_tokens"] == reference["usage"]["input_tokens"]
    first_block = events[2][1]["content_block"]
    assert first_block == {"type": "text", "text": "", "citations": None}
    final = fold(events)
    assert final["content"] == reference["content"]
    assert final["stop_reason"] == "end_turn"
    assert final["usage"] == reference["usage"]
    delta = next(d for n, d in events if n == "message_delta")
    assert delta["usage"]["output_tokens"] == 30
    texts = [d["delta"]["text"] for n, d in events if n == "content_block_delta"]
    assert all(count_pieces(t) == 1 for t in texts) and len(texts) == 30


def test_thinking_stream(emulator_api: Api) -> None:
    request = body("Think [[reply_tokens=5]]", thinking={"type": "enabled", "budget_tokens": 1024})
    reference = emulator_api.create(**request)
    events = emulator_api.stream(**request)
    order = names(events)
    assert re.fullmatch(
        r"message_start ping content_block_start (content_block_delta )+content_block_stop "
        r"content_block_start (content_block_delta ){5}content_block_stop "
        r"message_delta message_stop",
        order,
    ), order
    thinking_deltas = [
        d["delta"] for n, d in events if n == "content_block_delta" and d["index"] == 0
    ]
    assert events[2][1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert [d["type"] for d in thinking_deltas[:-1]] == ["thinking_delta"] * (
        len(thinking_deltas) - 1
    )
    assert thinking_deltas[-1]["type"] == "signature_delta"  # right before the block stops
    assert fold(events)["content"] == reference["content"]
    assert fold(events)["usage"]["output_tokens"] == reference["usage"]["output_tokens"]


def test_omitted_thinking_streams_only_a_signature(emulator_api: Api) -> None:
    request = body(thinking={"type": "enabled", "budget_tokens": 1024, "display": "omitted"})
    events = emulator_api.stream(**request)
    block0 = [
        d["delta"]["type"] for n, d in events if n == "content_block_delta" and d["index"] == 0
    ]
    assert block0 == ["signature_delta"]
    assert fold(events)["content"][0]["thinking"] == ""


def test_tool_use_stream(emulator_api: Api) -> None:
    tool = {
        "name": "pick",
        "input_schema": {
            "type": "object",
            "properties": {
                "colour": {"enum": ["red", "green"]},
                "count": {"type": "integer", "minimum": 2, "maximum": 9},
                "notes": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["colour", "count", "notes"],
        },
    }
    request = body("pick one", tools=[tool], tool_choice={"type": "tool", "name": "pick"})
    reference = emulator_api.create(**request)
    events = emulator_api.stream(**request)
    start = events[2][1]["content_block"]
    assert start["type"] == "tool_use" and start["input"] == {}
    assert start["id"] == reference["content"][0]["id"]
    partials = [d["delta"]["partial_json"] for n, d in events if n == "content_block_delta"]
    assert partials[0] == ""
    assert len(partials) > 3
    assert orjson.loads("".join(partials)) == reference["content"][0]["input"]
    final = fold(events)
    assert final["content"] == reference["content"]
    assert final["stop_reason"] == "tool_use"


def test_citations_stream(emulator_api: Api) -> None:
    request = body()
    request["messages"][0]["content"] = [
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "Water boils at 100C."},
            "citations": {"enabled": True},
        },
        {"type": "text", "text": "When does water boil?"},
    ]
    reference = emulator_api.create(**request)
    events = emulator_api.stream(**request)
    deltas = [d["delta"]["type"] for n, d in events if n == "content_block_delta"]
    assert deltas[0] == "citations_delta" and set(deltas[1:]) == {"text_delta"}
    assert fold(events)["content"] == reference["content"]


def test_stop_sequence_and_max_tokens_streamed(emulator: Emulator, emulator_api: Api) -> None:
    emulator.add_reply("one two STOP three")
    events = emulator_api.stream(**body(stop_sequences=["STOP"]))
    final = fold(events)
    assert final["content"][0]["text"] == "one two "
    assert final["stop_reason"] == "stop_sequence" and final["stop_sequence"] == "STOP"
    events = emulator_api.stream(**body("x [[reply_tokens=40]]", max_tokens=7))
    final = fold(events)
    assert final["stop_reason"] == "max_tokens"
    assert final["usage"]["output_tokens"] == 7
    assert count_pieces(final["content"][0]["text"]) == 7


@pytest.mark.parametrize(("ping_every", "expected"), [(5, 1 + 4), (7, 1 + 2), (0, 1)])
def test_ping_frequency(
    emulator: Emulator, emulator_api: Api, ping_every: int, expected: int
) -> None:
    emulator.configure(ping_every=ping_every)
    events = emulator_api.stream(**body("x [[reply_tokens=20]]"))
    assert names(events).count("ping") == expected
    assert names(events).startswith("message_start ping ")


def test_tokens_per_delta(emulator: Emulator, emulator_api: Api) -> None:
    emulator.configure(tokens_per_delta=4)
    events = emulator_api.stream(**body("x [[reply_tokens=10]]"))
    sizes = [count_pieces(d["delta"]["text"]) for n, d in events if n == "content_block_delta"]
    assert sizes == [4, 4, 2]


def _timed_stream(url: str, request: dict[str, Any]) -> tuple[float, float]:
    """(seconds to the first text delta, seconds to the end) for a streamed request."""
    started = time.monotonic()
    first = None
    with (
        httpx.Client(base_url=url, headers=HEADERS, verify=False) as client,
        client.stream("POST", "/v1/messages", json={**request, "stream": True}) as response,
    ):
        for chunk in response.iter_bytes():
            if first is None and b"text_delta" in chunk:
                first = time.monotonic() - started
    total = time.monotonic() - started
    assert first is not None
    return first, total


def test_time_to_first_token_and_tokens_per_second(emulator: Emulator) -> None:
    request = body("x [[reply_tokens=40]]")
    _, unpaced = _timed_stream(emulator.url, request)
    emulator.configure(time_to_first_token=0.4)
    first, total = _timed_stream(emulator.url, request)
    assert 0.35 <= first < 1.5
    emulator.configure(time_to_first_token=0.0, tokens_per_second=100)
    first, total = _timed_stream(emulator.url, request)
    # 40 tokens at 100/s: the first is due after 1/100 s, the last after 0.4 s; without
    # pacing all 40 come at once (compared, not timed against a constant: CI may be loaded).
    assert total >= 0.39
    assert first < total - 0.3
    assert unpaced < total


def test_latency_option_delays_responses(emulator: Emulator, emulator_api: Api) -> None:
    emulator.configure(latency=0.3)
    started = time.monotonic()
    emulator_api.create(**body())
    assert 0.3 <= time.monotonic() - started < 1.5


def test_huge_unpaced_stream_arrives_whole(emulator: Emulator) -> None:
    request = body("x [[reply_tokens=20000]]", max_tokens=30000, stream=True)
    with httpx.Client(base_url=emulator.url, headers=HEADERS, verify=False) as client:
        raw = client.post("/v1/messages", json=request).content
    assert raw.count(b"event: content_block_delta\n") == 20000
    assert raw.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
