"""The official ``anthropic`` SDK, an independent client, against our emulator.

If the SDK (generated from the official spec, with its own SSE parser and typed models) can drive
the emulator end to end and gets its own typed errors, the emulator speaks the real protocol, not
just whatever our client happens to expect.
"""

from __future__ import annotations

import time

import anthropic
import pytest

from claude_magics.emulator import Emulator
from claude_magics.model_table import load

MODEL = "claude-sonnet-4-6"
HELLO = [{"role": "user", "content": "Hello there [[reply_tokens=25]]"}]
CURRENT = [model.id for model in load().active()]  # the line-up the SDK's users call today


@pytest.fixture
def sdk(emulator: Emulator) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=emulator.url, api_key="sdk-test-key", max_retries=0)


def test_create(sdk: anthropic.Anthropic) -> None:
    message = sdk.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text"
    assert message.content[0].text
    assert message.usage.output_tokens == 25
    assert message.usage.input_tokens > 0


def test_stream_text_and_final_message(sdk: anthropic.Anthropic) -> None:
    reference = sdk.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    with sdk.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) >= 25
    assert "".join(pieces) == reference.content[0].text
    assert final.content[0].text == reference.content[0].text
    assert final.usage.output_tokens == 25
    assert final.stop_reason == "end_turn"


def test_sdk_sends_the_new_version_with_a_bearer_key(
    sdk: anthropic.Anthropic, emulator: Emulator
) -> None:
    sdk.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    headers = emulator.requests[-1].headers
    assert headers["anthropic-version"] == "2026-10-21"  # what this SDK sends by default
    assert headers["authorization"] == "<redacted>" and "x-api-key" not in headers


@pytest.mark.parametrize("model", CURRENT)
def test_default_calls_on_every_current_model(sdk: anthropic.Anthropic, model: str) -> None:
    """messages.create, messages.stream and count_tokens with only the required arguments,
    as llm-anthropic, langchain-anthropic and litellm make them."""
    message = sdk.messages.create(model=model, max_tokens=1024, messages=HELLO)
    texts = [block.text for block in message.content if block.type == "text"]
    assert len(texts) == 1 and texts[0]
    assert message.stop_reason == "end_turn" and message.model == model
    assert all(b.signature for b in message.content if b.type == "thinking")
    with sdk.messages.stream(model=model, max_tokens=1024, messages=HELLO) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == texts[0]
    assert [b.type for b in final.content] == [b.type for b in message.content]
    assert final.usage.output_tokens == message.usage.output_tokens
    counted = sdk.messages.count_tokens(model=model, messages=HELLO)
    usage = message.usage
    billed = (
        usage.input_tokens
        + (usage.cache_creation_input_tokens or 0)
        + (usage.cache_read_input_tokens or 0)
    )
    assert counted.input_tokens == billed
    info = sdk.models.retrieve(model)
    assert info.max_tokens == 128_000 and info.max_input_tokens == 1_000_000


def test_stream_thinking_and_tool_use(sdk: anthropic.Anthropic) -> None:
    tool = {
        "name": "record_label",
        "description": "Record a label",
        "input_schema": {
            "type": "object",
            "properties": {"label": {"type": "string", "enum": ["spam", "ham"]}},
            "required": ["label"],
        },
    }
    with sdk.messages.stream(
        model=MODEL,
        max_tokens=3000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=[tool],  # type: ignore[list-item]
        tool_choice={"type": "auto"},
        messages=[{"role": "user", "content": "Call record_label on: win a free phone"}],
    ) as stream:
        final = stream.get_final_message()
    kinds = [block.type for block in final.content]
    assert kinds[0] == "thinking"
    assert final.content[0].signature  # type: ignore[union-attr]
    tool_use = next(block for block in final.content if block.type == "tool_use")
    assert tool_use.input["label"] in {"spam", "ham"}  # type: ignore[index]
    assert final.stop_reason == "tool_use"


def test_count_tokens_matches_usage(sdk: anthropic.Anthropic) -> None:
    counted = sdk.messages.count_tokens(model=MODEL, messages=HELLO, system="Be brief.")
    message = sdk.messages.create(model=MODEL, max_tokens=50, messages=HELLO, system="Be brief.")
    assert counted.input_tokens == message.usage.input_tokens


def test_models(sdk: anthropic.Anthropic) -> None:
    ids = [model.id for model in sdk.models.list()]
    assert "claude-sonnet-4-6" in ids
    assert "claude-opus-4-7" in ids
    info = sdk.models.retrieve("claude-haiku-4-5")
    assert info.id == "claude-haiku-4-5-20251001"  # the alias resolves to the dated id
    assert info.max_input_tokens == 200_000


def test_batches_from_create_to_results(sdk: anthropic.Anthropic) -> None:
    requests = [
        {"custom_id": f"row-{i}", "params": {"model": MODEL, "max_tokens": 20, "messages": HELLO}}
        for i in range(5)
    ]
    requests.append(
        {"custom_id": "bad", "params": {"model": MODEL, "max_tokens": 0, "messages": HELLO}}
    )
    batch = sdk.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    assert batch.processing_status == "in_progress"
    deadline = time.monotonic() + 10
    while batch.processing_status != "ended" and time.monotonic() < deadline:
        time.sleep(0.05)
        batch = sdk.messages.batches.retrieve(batch.id)
    assert batch.processing_status == "ended"
    assert batch.request_counts.succeeded == 5
    assert batch.request_counts.errored == 1
    results = {entry.custom_id: entry.result for entry in sdk.messages.batches.results(batch.id)}
    assert set(results) == {f"row-{i}" for i in range(5)} | {"bad"}
    assert results["row-0"].type == "succeeded"
    assert results["bad"].type == "errored"
    listed = [b.id for b in sdk.messages.batches.list(limit=10)]
    assert batch.id in listed
    deleted = sdk.messages.batches.delete(batch.id)
    assert deleted.id == batch.id


def test_typed_errors(emulator: Emulator) -> None:
    emulator.configure(api_keys=frozenset({"good-key"}))
    bad = anthropic.Anthropic(base_url=emulator.url, api_key="wrong-key", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model=MODEL, max_tokens=10, messages=HELLO)

    good = anthropic.Anthropic(base_url=emulator.url, api_key="good-key", max_retries=0)
    with pytest.raises(anthropic.NotFoundError) as not_found:
        good.messages.create(model="claude-nonexistent-9", max_tokens=10, messages=HELLO)
    assert not_found.value.request_id
    with pytest.raises(anthropic.NotFoundError, match="use claude-opus-5-5 instead"):
        good.messages.create(model="claude-opus-4-1", max_tokens=10, messages=HELLO)  # retired

    emulator.add_fault(status=429, retry_after=1)
    with pytest.raises(anthropic.RateLimitError):
        good.messages.create(model=MODEL, max_tokens=10, messages=HELLO)

    emulator.add_fault(status=529)
    with pytest.raises(anthropic.OverloadedError):
        good.messages.create(model=MODEL, max_tokens=10, messages=HELLO)


def test_sdk_retries_a_529_then_succeeds(emulator: Emulator) -> None:
    emulator.add_fault(status=529, retry_after_ms=10)
    sdk = anthropic.Anthropic(base_url=emulator.url, api_key="k", max_retries=2)
    message = sdk.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert message.content[0].text
    statuses = [r.status for r in emulator.requests if r.path == "/v1/messages"]
    assert statuses == [529, 200]
