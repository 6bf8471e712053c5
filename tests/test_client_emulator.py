"""Our client against the emulator over real sockets: every endpoint, delta type and fault."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from claude_magics.api.client import ApiObject, Client, MessageStream
from claude_magics.api.streaming import (
    ContentBlockStopEvent,
    InputJsonEvent,
    MessageDeltaEvent,
    MessageStartEvent,
    MessageStopEvent,
    SignatureEvent,
    TextEvent,
    ThinkingEvent,
)
from claude_magics.emulator import Emulator
from claude_magics.errors import (
    APIConnectionError,
    APIStreamError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    OverloadedError,
    RateLimitError,
    RequestTooLargeError,
)

MODEL = "claude-sonnet-4-6"


def ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def client(emulator: Emulator) -> Iterator[Client]:
    # Tiny backoff so retry tests run fast; the rules themselves are pinned in test_client_retries.
    with Client(
        api_key="sk-emulator-secret-42", base_url=emulator.url, initial_retry_delay=0.01
    ) as client:
        yield client


def test_create_returns_the_message_with_request_id(client: Client) -> None:
    message = client.messages.create(
        model=MODEL, max_tokens=200, messages=ask("Hi [[reply_tokens=12]]")
    )
    assert isinstance(message, ApiObject)
    assert message["type"] == "message"
    assert message["usage"]["output_tokens"] == 12
    assert message.request_id is not None
    assert message.request_id.startswith("req_")


def test_stream_yields_every_event_kind_in_order(client: Client) -> None:
    with client.messages.stream(
        model=MODEL, max_tokens=200, messages=ask("Hi [[reply_tokens=30]]")
    ) as stream:
        events = list(stream)
    assert isinstance(events[0], MessageStartEvent)
    assert isinstance(events[-1], MessageStopEvent)
    assert isinstance(events[-2], MessageDeltaEvent)
    texts = [e for e in events if isinstance(e, TextEvent)]
    assert len(texts) == 30
    assert stream.message["usage"]["output_tokens"] == 30
    assert stream.request_id is not None
    # Same request without streaming: same content (the emulator is deterministic).
    plain = client.messages.create(
        model=MODEL, max_tokens=200, messages=ask("Hi [[reply_tokens=30]]")
    )
    assert stream.text == plain["content"][0]["text"]
    assert stream.message["content"] == plain["content"]


def test_stream_thinking_signature_and_tool_input(client: Client) -> None:
    tool = {
        "name": "classify",
        "input_schema": {
            "type": "object",
            "properties": {
                "label": {"type": "string", "enum": ["bug", "feature", "question"]},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            },
            "required": ["label", "confidence"],
        },
    }
    with client.messages.stream(
        model=MODEL,
        max_tokens=4000,
        thinking={"type": "enabled", "budget_tokens": 2000},
        tools=[tool],
        # Thinking allows only tool_choice auto/none; auto uses a tool the prompt names.
        tool_choice={"type": "auto"},
        messages=ask("Use classify on: the app crashes on start"),
    ) as stream:
        events = list(stream)
    kinds = {type(e) for e in events}
    assert {ThinkingEvent, SignatureEvent, InputJsonEvent} <= kinds
    message = stream.message
    thinking = message["content"][0]
    assert thinking["type"] == "thinking"
    assert thinking["thinking"]
    assert thinking["signature"]
    tool_use = next(b for b in message["content"] if b["type"] == "tool_use")
    assert tool_use["input"]["label"] in {"bug", "feature", "question"}
    assert 0 <= tool_use["input"]["confidence"] <= 1
    assert message["stop_reason"] == "tool_use"
    stops = [e for e in events if isinstance(e, ContentBlockStopEvent)]
    assert stops[-1].block["input"] == tool_use["input"]


def test_stream_folds_server_tool_blocks_and_their_usage(client: Client) -> None:
    """Server tool results arrive whole in content_block_start and citations as deltas: the
    accumulator rebuilds the same message as the non-streaming call, usage included."""
    tools = [
        {"type": "web_search_20250305", "name": "web_search"},
        {"type": "code_execution_20250825", "name": "code_execution"},
    ]
    params: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 1000,
        "tools": tools,
        "messages": ask("Search the web for the latest otter news. Then compute 6 * 7."),
    }
    with client.messages.stream(**params) as stream:
        list(stream)
    plain = client.messages.create(**params)
    message = stream.message
    types = [b["type"] for b in message["content"]]
    assert {"web_search_tool_result", "bash_code_execution_tool_result"} <= set(types)
    assert message["content"] == plain["content"]
    assert message["usage"] == plain["usage"]
    assert message["usage"]["server_tool_use"]["web_search_requests"] == 1
    assert message["container"]["id"] == plain["container"]["id"]


def test_max_tokens_and_stop_sequences(client: Client, emulator: Emulator) -> None:
    cut = client.messages.create(model=MODEL, max_tokens=5, messages=ask("Hi [[reply_tokens=50]]"))
    assert cut["stop_reason"] == "max_tokens"
    assert cut["usage"]["output_tokens"] == 5
    emulator.add_reply("alpha beta STOP gamma")
    stopped = client.messages.create(
        model=MODEL, max_tokens=100, stop_sequences=["STOP"], messages=ask("go")
    )
    assert stopped["stop_reason"] == "stop_sequence"
    assert stopped["stop_sequence"] == "STOP"
    assert stopped["content"][0]["text"] == "alpha beta "


def test_count_tokens_equals_usage(client: Client) -> None:
    params: dict[str, Any] = {
        "model": MODEL,
        "system": "You are terse.",
        "messages": ask("Count me, please, all of me."),
    }
    counted = client.messages.count_tokens(**params)
    message = client.messages.create(max_tokens=20, **params)
    assert counted == message["usage"]["input_tokens"]
    assert counted > 0


def test_models_list_get_and_pagination(client: Client) -> None:
    page = client.models.list(limit=2)
    assert len(page) == 2
    assert page.has_more
    everything = list(client.models.iter_all(page_size=2))
    ids = [m["id"] for m in everything]
    assert len(ids) == len(set(ids)) >= 6
    assert "claude-sonnet-4-6" in ids
    assert client.models.get("claude-sonnet-4-6")["max_input_tokens"] > 0
    with pytest.raises(NotFoundError):
        client.models.get("claude-unknown")


def test_batches_create_to_results_streamed(client: Client) -> None:
    requests = [
        {
            "custom_id": f"r{i}",
            "params": {"model": MODEL, "max_tokens": 20, "messages": ask(f"row {i}")},
        }
        for i in range(20)
    ]
    requests.append({"custom_id": "broken", "params": {"model": MODEL, "messages": ask("x")}})
    batch = client.batches.create(requests)
    assert batch["processing_status"] == "in_progress"
    assert batch["request_counts"]["processing"] == 21
    assert client.batches.retrieve(batch["id"])["id"] == batch["id"]
    deadline = time.monotonic() + 10
    while batch["processing_status"] != "ended":
        assert time.monotonic() < deadline
        time.sleep(0.05)
        batch = client.batches.retrieve(batch["id"])
    assert batch["request_counts"]["succeeded"] == 20
    assert batch["request_counts"]["errored"] == 1
    with client.batches.results(batch["id"]) as lines:
        results = {line["custom_id"]: line["result"] for line in lines}
    assert set(results) == {f"r{i}" for i in range(20)} | {"broken"}
    assert results["r3"]["type"] == "succeeded"
    assert results["r3"]["message"]["usage"]["service_tier"] == "batch"
    assert results["broken"]["type"] == "errored"
    assert results["broken"]["error"]["error"]["type"] == "invalid_request_error"
    listed = [b["id"] for b in client.batches.iter_all(page_size=1)]
    assert batch["id"] in listed
    assert client.batches.delete(batch["id"])["type"] == "message_batch_deleted"
    with pytest.raises(NotFoundError):
        client.batches.retrieve(batch["id"])


def test_batch_cancel(client: Client, emulator: Emulator) -> None:
    emulator.configure(batch_processing_seconds=30)
    requests = [
        {"custom_id": f"r{i}", "params": {"model": MODEL, "max_tokens": 5, "messages": ask("x")}}
        for i in range(4)
    ]
    batch = client.batches.create(requests)
    canceled = client.batches.cancel(batch["id"])
    assert canceled["processing_status"] == "canceling"
    emulator.advance_clock(1)
    ended = client.batches.retrieve(batch["id"])
    assert ended["processing_status"] == "ended"
    assert ended["request_counts"]["canceled"] == 4
    kinds = {line["result"]["type"] for line in client.batches.results(batch["id"])}
    assert kinds == {"canceled"}


def test_batch_over_the_limit_is_413(client: Client) -> None:
    one = {"model": MODEL, "max_tokens": 1, "messages": ask("x")}
    with pytest.raises(RequestTooLargeError):
        client.batches.create([{"custom_id": f"r{i}", "params": one} for i in range(100_001)])


def test_validation_errors_come_back_typed(client: Client) -> None:
    with pytest.raises(BadRequestError) as info:
        client.messages.create(model=MODEL, messages=ask("x"))
    assert "max_tokens" in info.value.message
    assert info.value.request_id
    with pytest.raises(NotFoundError):
        client.messages.create(model="claude-nope", max_tokens=5, messages=ask("x"))
    with pytest.raises(BadRequestError):
        client.messages.create(
            model=MODEL,
            max_tokens=2000,
            thinking={"type": "enabled", "budget_tokens": 500},
            messages=ask("x"),
        )


def test_529_is_retried_then_succeeds(client: Client, emulator: Emulator) -> None:
    emulator.add_fault(status=529, count=2)
    message = client.messages.create(model=MODEL, max_tokens=10, messages=ask("x"))
    assert message["content"][0]["text"]
    assert [r.status for r in emulator.requests] == [529, 529, 200]


def test_429_retry_after_is_honoured(client: Client, emulator: Emulator) -> None:
    emulator.add_fault(status=429, retry_after=1)
    started = time.monotonic()
    client.messages.create(model=MODEL, max_tokens=10, messages=ask("x"))
    assert time.monotonic() - started >= 0.9
    assert [r.status for r in emulator.requests] == [429, 200]


def test_retries_give_up_with_the_attempt_count(client: Client, emulator: Emulator) -> None:
    emulator.add_fault(status=529, count=0)
    with pytest.raises(OverloadedError) as info:
        client.messages.create(model=MODEL, max_tokens=10, messages=ask("x"))
    assert info.value.attempts == 3
    assert "gave up after 3 attempts" in "\n".join(info.value._render_traceback_())
    assert len(emulator.requests) == 3


def test_should_retry_false_is_not_retried(client: Client, emulator: Emulator) -> None:
    emulator.add_fault(status=529, should_retry=False)
    with pytest.raises(OverloadedError):
        client.messages.create(model=MODEL, max_tokens=10, messages=ask("x"))
    assert len(emulator.requests) == 1


def test_rate_limit_from_the_emulator_limits(emulator: Emulator) -> None:
    emulator.configure(requests_per_minute=2)
    client = Client(api_key="k", base_url=emulator.url, max_retries=0)
    client.messages.create(model=MODEL, max_tokens=5, messages=ask("x"))
    assert client.rate_limits.requests_limit == 2
    assert client.rate_limits.requests_remaining == 1
    client.messages.create(model=MODEL, max_tokens=5, messages=ask("x"))
    with pytest.raises(RateLimitError) as info:
        client.messages.create(model=MODEL, max_tokens=5, messages=ask("x"))
    assert float(info.value.headers["retry-after"]) >= 1


def test_error_event_mid_stream_keeps_partial_text(client: Client, emulator: Emulator) -> None:
    emulator.add_fault(kind="error_event", after_events=8, error_type="overloaded_error")
    seen: list[str] = []
    with pytest.raises(APIStreamError) as info:  # noqa: SIM117 - the stream must be entered
        with client.messages.stream(
            model=MODEL, max_tokens=100, messages=ask("Hi [[reply_tokens=40]]")
        ) as stream:
            seen.extend(stream.text_stream)
    error = info.value
    assert error.error_type == "overloaded_error"
    assert error.partial is not None
    assert seen
    assert error.partial["content"][0]["text"] == "".join(seen)
    assert stream.text == "".join(seen)
    assert "kept" in "\n".join(error._render_traceback_())


def test_dropped_connection_mid_stream_keeps_partial_text(
    client: Client, emulator: Emulator
) -> None:
    emulator.add_fault(kind="drop", after_events=8)
    seen: list[str] = []
    with pytest.raises(APIStreamError) as info:  # noqa: SIM117
        with client.messages.stream(
            model=MODEL, max_tokens=100, messages=ask("Hi [[reply_tokens=40]]")
        ) as stream:
            seen.extend(stream.text_stream)
    assert info.value.error_type in {"connection_error", "incomplete_stream"}
    assert seen
    assert info.value.partial is not None
    assert info.value.partial["content"][0]["text"] == "".join(seen)


def test_malformed_frame_mid_stream(client: Client, emulator: Emulator) -> None:
    emulator.add_fault(kind="malformed", after_events=6)
    with pytest.raises(APIStreamError) as info:  # noqa: SIM117
        with client.messages.stream(
            model=MODEL, max_tokens=100, messages=ask("Hi [[reply_tokens=40]]")
        ) as stream:
            stream.until_done()
    assert info.value.error_type == "malformed_event"
    assert info.value.partial is not None


def test_stream_status_error_before_start_is_retried(client: Client, emulator: Emulator) -> None:
    emulator.add_fault(status=529)
    with client.messages.stream(model=MODEL, max_tokens=50, messages=ask("x")) as stream:
        text = "".join(stream.text_stream)
    assert text
    assert [r.status for r in emulator.requests] == [529, 200]


def test_interrupting_a_stream_closes_the_connection(emulator: Emulator) -> None:
    emulator.configure(tokens_per_second=50)
    client = Client(api_key="k", base_url=emulator.url)
    received: list[str] = []
    with client.messages.stream(
        model=MODEL, max_tokens=2000, messages=ask("long [[reply_tokens=1000]]")
    ) as stream:
        for text in stream.text_stream:
            received.append(text)
            if len(received) == 5:
                break  # what a KeyboardInterrupt does to the loop
    response = stream._response
    assert response is not None
    assert response.is_closed
    assert stream.text == "".join(received)
    # The emulator would need 20 s to finish; we got out right away and the connection is free.
    started = time.monotonic()
    client.messages.create(model=MODEL, max_tokens=5, messages=ask("next"))
    assert time.monotonic() - started < 5


def test_keyboard_interrupt_mid_stream_keeps_partial(emulator: Emulator) -> None:
    emulator.configure(tokens_per_second=400)
    client = Client(api_key="k", base_url=emulator.url)
    streams: list[MessageStream] = []

    def read_until_interrupted() -> None:
        with client.messages.stream(
            model=MODEL, max_tokens=2000, messages=ask("long [[reply_tokens=1000]]")
        ) as stream:
            streams.append(stream)
            for index, _ in enumerate(stream.text_stream):
                if index == 10:
                    raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        read_until_interrupted()
    stream = streams[0]
    assert stream._response is not None
    assert stream._response.is_closed
    assert len(stream.message["content"][0]["text"]) > 0


def test_timeout_is_a_timeout_error(emulator: Emulator) -> None:
    emulator.add_fault(kind="slow", delay=2.0, count=0)
    client = Client(
        api_key="k", base_url=emulator.url, timeout=0.3, max_retries=1, initial_retry_delay=0.01
    )
    with pytest.raises(APITimeoutError) as info:
        client.messages.create(model=MODEL, max_tokens=5, messages=ask("x"))
    assert info.value.attempts == 2


def test_unreachable_server_is_a_connection_error() -> None:
    client = Client(
        api_key="k", base_url="http://127.0.0.1:9", max_retries=1, initial_retry_delay=0.01
    )
    with pytest.raises(APIConnectionError) as info:
        client.messages.create(model=MODEL, max_tokens=5, messages=ask("x"))
    assert not info.value.may_have_reached_server
    assert info.value.attempts == 2


def test_auth_errors_and_key_never_leaks(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-ant-very-secret-value-123"
    emulator.configure(api_keys=frozenset({"the-right-key"}))
    caplog.set_level(logging.DEBUG)
    client = Client(api_key=secret, base_url=emulator.url)
    with pytest.raises(AuthenticationError) as info:
        client.messages.create(model=MODEL, max_tokens=5, messages=ask("x"))
    error = info.value
    dumps = [
        str(error),
        repr(error),
        "\n".join(error._render_traceback_()),
        str(vars(error)),
        repr(client),
        str(vars(client)),
        caplog.text,
        str([vars(r) if hasattr(r, "__dict__") else repr(r) for r in emulator.requests]),
    ]
    for text in dumps:
        assert secret not in text
    # The emulator's own request log redacts the key too.
    assert emulator.requests[-1].headers["x-api-key"] != secret


def test_injected_http_client_is_used_and_not_closed(emulator: Emulator) -> None:
    seen: list[str] = []
    http = httpx.Client(event_hooks={"request": [lambda r: seen.append(r.url.path)]})
    with Client(api_key="k", base_url=emulator.url, http_client=http) as client:
        client.models.list()
    assert seen == ["/v1/models"]
    assert not http.is_closed
    http.close()
