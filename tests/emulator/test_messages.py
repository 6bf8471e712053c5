"""POST /v1/messages (non-streaming), count_tokens validation and /v1/models."""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson
import pytest
from spec_validation import Api

from claude_magics.emulator import Emulator
from claude_magics.emulator.tokens import count_pieces, pieces
from claude_magics.model_table import load

from .support import MODEL, body, count_body, kinds, text_of

# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"model": None}, "model: Field required"),
        ({"model": 42}, "model: Input should be a valid string"),
        ({"max_tokens": None}, "max_tokens: Field required"),
        ({"max_tokens": "10"}, "max_tokens: Input should be a valid integer"),
        ({"max_tokens": True}, "max_tokens: Input should be a valid integer"),
        ({"max_tokens": 1.5}, "max_tokens: Input should be a valid integer"),
        ({"max_tokens": 0}, "max_tokens: Input should be greater than or equal to 1"),
        (
            {"max_tokens": 128_001},
            "max_tokens: 128001 > 128000, which is the maximum allowed number of output tokens",
        ),
        ({"messages": None}, "messages: Field required"),
        ({"messages": "hi"}, "messages: Input should be a valid list"),
        ({"messages": []}, "messages: at least one message is required"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role: Input should be"),
        ({"messages": [{"role": "user"}]}, "messages.0.content: Field required"),
        ({"messages": [{"role": "user", "content": ""}]}, "messages.0.content: all messages"),
        ({"messages": [{"role": "user", "content": []}]}, "messages.0.content: all messages"),
        ({"messages": [{"role": "user", "content": 7}]}, "messages.0.content: Input should be"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]},
            "messages.0.content.0.text: text content blocks must be non-empty",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages.0.content.0.text: Field required",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "video", "x": 1}]}]},
            "messages.0.content.0: Input tag 'video' found using 'type'",
        ),
        (
            {"messages": [{"role": "user", "content": "a", "name": "bob"}]},
            "messages.0.name: Extra inputs are not permitted",
        ),
        ({"frequency_penalty": 0.5}, "frequency_penalty: Extra inputs are not permitted"),
        ({"stream": "yes"}, "stream: Input should be a valid boolean"),
        ({"temperature": 1.5}, "temperature: Input should be less than or equal to 1"),
        ({"stop_sequences": "STOP"}, "stop_sequences: Input should be a valid list"),
        ({"stop_sequences": ["  "]}, "stop_sequences: each stop sequence must contain"),
        ({"metadata": {"user": "x"}}, "metadata.user: Extra inputs are not permitted"),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 1023}},
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
        ),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 1000 + 24}, "max_tokens": 1024},
            "`max_tokens` must be greater than `thinking.budget_tokens`",
        ),
        ({"thinking": {"type": "sometimes"}}, "thinking: Input tag 'sometimes'"),
        ({"tool_choice": {"type": "tool", "name": "x"}}, "tool_choice.tool.name: Tool 'x'"),
        ({"output_config": {"effort": "extreme"}}, "output_config.effort: Input should be"),
    ],
)
def test_validation_errors(emulator_api: Api, change: dict[str, Any], expected: str) -> None:
    request = body()
    for key, value in change.items():
        if value is None:
            request.pop(key)
        else:
            request[key] = value
    assert emulator_api.invalid(**request).startswith(expected)


def test_unknown_model_is_404(emulator_api: Api) -> None:
    error = emulator_api.error(
        404, "not_found_error", "POST", "/v1/messages", json=body(model="claude-nope-9")
    )
    assert error["message"] == "model: claude-nope-9"


def test_thinking_cannot_be_forced_into_tool_use(emulator_api: Api) -> None:
    request = body(
        thinking={"type": "enabled", "budget_tokens": 1024},
        max_tokens=2000,
        tools=[{"name": "t", "input_schema": {"type": "object"}}],
        tool_choice={"type": "any"},
    )
    assert "tool_choice forces tool use" in emulator_api.invalid(**request)


def test_prompt_too_long(emulator_api: Api) -> None:
    long_text = "abcd " * 200_001  # 200,001 pieces: over Haiku's 200k window
    message = emulator_api.invalid(**body(long_text, model="claude-haiku-4-5"))
    assert message.startswith("prompt is too long: ")
    assert message.endswith(" tokens > 200000 maximum")
    total = int(message.split(": ")[1].split(" ")[0])
    assert total > 200_000
    # The same prompt fits Sonnet 4.6's 1M window.
    emulator_api.create(**body(long_text, max_tokens=5))


def test_count_tokens_validation(emulator_api: Api) -> None:
    path = "/v1/messages/count_tokens"
    request = body()
    assert emulator_api.invalid(path, **request) == "max_tokens: Extra inputs are not permitted"
    request = count_body(request)
    assert emulator_api.count(**request) > 0
    assert emulator_api.invalid(path, **{**request, "stream": True}).startswith("stream:")
    assert emulator_api.invalid(path, **{**request, "messages": []}).startswith("messages:")
    emulator_api.error(404, "not_found_error", "POST", path, json={**request, "model": "x-1"})


# ----------------------------------------------------------------------------- generation


def test_message_shape_and_usage(emulator_api: Api) -> None:
    message = emulator_api.create(**body())
    assert message["id"].startswith("msg_")
    assert message["model"] == MODEL
    assert message["stop_reason"] == "end_turn"
    assert message["stop_sequence"] is None and message["stop_details"] is None
    assert message["container"] is None
    usage = message["usage"]
    assert usage["service_tier"] == "standard"
    assert usage["cache_creation"] == {
        "ephemeral_5m_input_tokens": 0,
        "ephemeral_1h_input_tokens": 0,
    }
    assert usage["output_tokens"] == 60  # default_reply_tokens
    assert count_pieces(text_of(message)) == 60


def test_model_alias_is_echoed(emulator_api: Api) -> None:
    assert emulator_api.create(**body(model="claude-haiku-4-5"))["model"] == "claude-haiku-4-5"
    dated = "claude-haiku-4-5-20251001"
    assert emulator_api.create(**body(model=dated))["model"] == dated


def test_default_reply_quotes_the_user_and_is_deterministic(emulator_api: Api) -> None:
    first = emulator_api.create(**body("Tell me about the ocean tides please"))
    second = emulator_api.create(**body("Tell me about the ocean tides please"))
    other = emulator_api.create(**body("Tell me about mountain weather please"))
    assert text_of(first) == text_of(second)
    assert first["id"] != second["id"]
    assert text_of(first) != text_of(other)
    assert text_of(first).startswith('You wrote "Tell me about the ocean tides')
    assert text_of(other).startswith('You wrote "Tell me about mountain weather')


@pytest.mark.parametrize("n", [1, 2, 3, 7, 25, 250])
def test_reply_tokens_directive_sets_exact_length(emulator_api: Api, n: int) -> None:
    message = emulator_api.create(**body(f"Write something [[reply_tokens={n}]]"))
    assert message["usage"]["output_tokens"] == n
    assert count_pieces(text_of(message)) == n
    assert message["stop_reason"] == "end_turn"


def test_max_tokens_cuts_output(emulator_api: Api) -> None:
    message = emulator_api.create(**body("Go on [[reply_tokens=50]]", max_tokens=10))
    assert message["stop_reason"] == "max_tokens"
    assert message["usage"]["output_tokens"] == 10
    assert count_pieces(text_of(message)) == 10


def test_scripted_reply_is_exact_and_fifo(emulator: Emulator, emulator_api: Api) -> None:
    emulator.add_reply("first reply")
    emulator.add_reply("second reply")
    assert text_of(emulator_api.create(**body())) == "first reply"
    assert emulator_api.create(**body())["usage"]["output_tokens"] == count_pieces("second reply")
    assert text_of(emulator_api.create(**body())).startswith("You wrote")  # queue empty
    emulator.add_reply("one two three four five six")
    message = emulator_api.create(**body(max_tokens=3))
    assert text_of(message) == "".join(pieces("one two three four five six")[:3])
    assert message["stop_reason"] == "max_tokens" and message["usage"]["output_tokens"] == 3


def test_scripted_reply_not_consumed_by_invalid_request(
    emulator: Emulator, emulator_api: Api
) -> None:
    emulator.add_reply("kept")
    emulator_api.invalid(**body(max_tokens=0))
    emulator_api.count(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert text_of(emulator_api.create(**body())) == "kept"


def test_stop_sequences(emulator: Emulator, emulator_api: Api) -> None:
    emulator.add_reply("alpha beta STOP gamma")
    message = emulator_api.create(**body(stop_sequences=["STOP", "gamma"]))
    assert text_of(message) == "alpha beta "
    assert message["stop_reason"] == "stop_sequence"
    assert message["stop_sequence"] == "STOP"
    assert message["usage"]["output_tokens"] == count_pieces("alpha beta ")
    # Generated text stops too: the default reply starts with 'You wrote'.
    generated = emulator_api.create(**body("Anything at all", stop_sequences=["wrote"]))
    assert text_of(generated) == "You "
    assert generated["stop_sequence"] == "wrote"
    # A sequence that never occurs changes nothing.
    plain = emulator_api.create(**body("Anything at all", stop_sequences=["zzzz"]))
    assert plain["stop_reason"] == "end_turn" and plain["stop_sequence"] is None


def test_refusal_directive(emulator_api: Api) -> None:
    message = emulator_api.create(**body("Do the bad thing [[refusal]]"))
    assert message["stop_reason"] == "refusal"
    details = message["stop_details"]
    assert details["type"] == "refusal" and details["category"] is None
    assert details["explanation"]


@pytest.mark.parametrize("display", [None, "summarized", "omitted"])
def test_thinking_block_with_signature(emulator_api: Api, display: str | None) -> None:
    thinking: dict[str, Any] = {"type": "enabled", "budget_tokens": 2000}
    if display:
        thinking["display"] = display
    message = emulator_api.create(**body("Think first", max_tokens=4000, thinking=thinking))
    assert kinds(message) == ["thinking", "text"]
    block = message["content"][0]
    assert block["signature"]
    text_tokens = count_pieces(text_of(message))
    if display == "omitted":
        assert block["thinking"] == ""
    else:
        assert block["thinking"]
        assert message["usage"]["output_tokens"] == count_pieces(block["thinking"]) + text_tokens
    assert message["usage"]["output_tokens"] > text_tokens  # thinking is billed


def test_adaptive_and_disabled_thinking(emulator_api: Api) -> None:
    message = emulator_api.create(**body(thinking={"type": "adaptive"}))
    assert kinds(message) == ["thinking", "text"]
    assert message["content"][0]["signature"] and message["content"][0]["thinking"]
    assert kinds(emulator_api.create(**body(thinking={"type": "disabled"}))) == ["text"]
    assert kinds(emulator_api.create(**body())) == ["text"]  # off unless asked, on this model


def test_scripted_thinking_and_tool_use(emulator: Emulator, emulator_api: Api) -> None:
    emulator.add_reply(
        "Calling it.", thinking="hmm", tool_use={"name": "lookup", "input": {"q": "x"}}
    )
    message = emulator_api.create(**body())
    assert kinds(message) == ["thinking", "text", "tool_use"]
    assert message["content"][0]["thinking"] == "hmm"
    tool = message["content"][2]
    assert tool["name"] == "lookup" and tool["input"] == {"q": "x"}
    assert tool["id"].startswith("toolu_") and tool["caller"] == {"type": "direct"}
    assert message["stop_reason"] == "tool_use"
    emulator.add_reply("cut short", stop_reason="pause_turn")
    assert emulator_api.create(**body())["stop_reason"] == "pause_turn"
    with pytest.raises(ValueError, match="stop_reason"):
        emulator.add_reply("x", stop_reason="bored")


LABEL_TOOL = {
    "name": "record_label",
    "description": "Record the label of a message",
    "input_schema": {
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": ["spam", "ham", "unsure"]},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
            "when": {"type": "string", "format": "date"},
        },
        "required": ["label", "confidence", "tags"],
        "additionalProperties": False,
    },
}
WEATHER_TOOL = {
    "name": "get_weather",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
        "required": ["city"],
    },
}


@pytest.mark.parametrize("choice", [{"type": "tool", "name": "record_label"}, {"type": "any"}])
def test_forced_tool_use_input_matches_schema(emulator_api: Api, choice: dict[str, Any]) -> None:
    seen = set()
    for i in range(12):
        message = emulator_api.create(
            **body(f"Classify message {i}: cheap pills", tools=[LABEL_TOOL], tool_choice=choice)
        )
        assert kinds(message) == ["tool_use"]
        call = message["content"][0]
        assert call["name"] == "record_label"
        jsonschema.validate(call["input"], LABEL_TOOL["input_schema"])
        seen.add(call["input"]["label"])
        assert message["stop_reason"] == "tool_use"
        assert message["usage"]["output_tokens"] == count_pieces(
            orjson.dumps(call["input"]).decode()
        )
    assert len(seen) > 1  # enum values vary between requests


def test_enum_prefers_value_named_in_message(emulator_api: Api) -> None:
    choice = {"type": "tool", "name": "record_label"}
    for i in range(5):
        message = emulator_api.create(
            **body(f"Item {i} is obviously ham.", tools=[LABEL_TOOL], tool_choice=choice)
        )
        assert message["content"][0]["input"]["label"] == "ham"


def test_tool_choice_auto_and_none(emulator_api: Api) -> None:
    tools = [LABEL_TOOL, WEATHER_TOOL]
    named = emulator_api.create(**body("Please call get_weather for Paris", tools=tools))
    assert kinds(named) == ["text", "tool_use"]
    assert named["content"][1]["name"] == "get_weather"
    jsonschema.validate(named["content"][1]["input"], WEATHER_TOOL["input_schema"])
    assert named["stop_reason"] == "tool_use"
    unrelated = emulator_api.create(**body("Tell me a joke about cats", tools=tools))
    assert kinds(unrelated) == ["text"]
    assert unrelated["stop_reason"] == "end_turn"
    none = emulator_api.create(
        **body("Please call get_weather", tools=tools, tool_choice={"type": "none"})
    )
    assert kinds(none) == ["text"]


FORECAST_TOOL = {
    "name": "city_forecast",
    "description": "Look up the weather forecast for a city on a given day.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "day": {"type": "string", "format": "date"}},
        "required": ["city", "day"],
    },
}


@pytest.mark.parametrize(
    ("question", "called"),
    [
        ("Will it rain in Paris tomorrow? What's the forecast?", "city_forecast"),
        ("Which cities get the most weather?", "city_forecast"),  # plural s: city ~ cities
        ("Is this message spam or a real label?", "record_label"),  # name words: record_label
        ("Give me a haiku about autumn", None),  # no content word shared
        ("What is the time, please?", None),  # only common words shared
    ],
)
def test_auto_calls_the_tool_whose_words_fit(
    emulator_api: Api, question: str, called: str | None
) -> None:
    """The word-overlap rule of AUTO_TOOL_RULE: no tool is named, the wording fits one."""
    message = emulator_api.create(**body(question, tools=[LABEL_TOOL, FORECAST_TOOL]))
    calls = [b for b in message["content"] if b["type"] == "tool_use"]
    if called is None:
        assert calls == [] and message["stop_reason"] == "end_turn"
        return
    assert [c["name"] for c in calls] == [called]
    schema = next(t for t in (LABEL_TOOL, FORECAST_TOOL) if t["name"] == called)["input_schema"]
    jsonschema.validate(calls[0]["input"], schema, format_checker=jsonschema.FormatChecker())
    assert message["stop_reason"] == "tool_use"


def test_auto_tool_loop_ends_with_an_answer(emulator_api: Api) -> None:
    """A natural question calls the tool; returning its result gets a text answer."""
    question = {"role": "user", "content": "What's the forecast for Lyon on Friday?"}
    first = emulator_api.create(**body(messages=[question], tools=[FORECAST_TOOL]))
    call = first["content"][-1]
    assert call["type"] == "tool_use" and call["name"] == "city_forecast"
    result = {"type": "tool_result", "tool_use_id": call["id"], "content": "Sunny, city 21C"}
    turns = [question, {"role": "assistant", "content": first["content"]}]
    answer = emulator_api.create(
        **body(messages=[*turns, {"role": "user", "content": [result]}], tools=[FORECAST_TOOL])
    )
    assert kinds(answer) == ["text"] and answer["stop_reason"] == "end_turn"


def test_tool_use_dropped_when_it_does_not_fit(emulator_api: Api) -> None:
    choice = {"type": "tool", "name": "record_label"}
    message = emulator_api.create(**body("x", tools=[LABEL_TOOL], tool_choice=choice, max_tokens=2))
    assert message["stop_reason"] == "max_tokens"
    assert message["usage"]["output_tokens"] == 2
    assert all(b["type"] != "tool_use" for b in message["content"])


def test_structured_output_is_valid_json(emulator_api: Api) -> None:
    schema = {
        "type": "object",
        "properties": {
            "sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]},
            "score": {"type": "integer", "minimum": 1, "maximum": 5},
            "summary": {"type": "string", "maxLength": 40},
            "keywords": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        },
        "required": ["sentiment", "score", "summary", "keywords"],
        "additionalProperties": False,
    }
    fmt = {"format": {"type": "json_schema", "schema": schema}}
    for i in range(10):
        message = emulator_api.create(**body(f"Review {i}: I loved it", output_config=fmt))
        document = orjson.loads(text_of(message))
        jsonschema.validate(document, schema)
    negative = emulator_api.create(**body("Label as negative: awful", output_config=fmt))
    assert orjson.loads(text_of(negative))["sentiment"] == "negative"


def test_text_document_citations(emulator_api: Api) -> None:
    doc_text = "The grass is green. The sky is blue."
    request = body()
    request["messages"][0]["content"] = [
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": doc_text},
            "title": "Colours",
            "citations": {"enabled": True},
        },
        {"type": "text", "text": "What colour is the grass?"},
    ]
    message = emulator_api.create(**request)
    citations = message["content"][0]["citations"]
    assert len(citations) == 1
    citation = citations[0]
    assert citation["type"] == "char_location"
    assert citation["document_index"] == 0 and citation["document_title"] == "Colours"
    start, end = citation["start_char_index"], citation["end_char_index"]
    assert doc_text[start:end] == citation["cited_text"] == "The grass is green. "
    # Without citations enabled there are none.
    request["messages"][0]["content"][0].pop("citations")
    assert emulator_api.create(**request)["content"][0]["citations"] is None


def test_assistant_prefill_and_tool_results_are_accepted(emulator_api: Api) -> None:
    conversation = [
        {"role": "user", "content": "Weather in Paris? use get_weather"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "ok", "signature": "sig"},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny, 21C"}],
        },
        {"role": "assistant", "content": "The weather"},
    ]
    # Haiku 4.5 still accepts a prefill (4.6 and later models answer 400: test_models_and_rules).
    message = emulator_api.create(
        model="claude-haiku-4-5", max_tokens=100, messages=conversation, tools=[WEATHER_TOOL]
    )
    assert kinds(message) == ["text"]
    assert message["stop_reason"] == "end_turn"


# ----------------------------------------------------------------------------- models


def test_models_list_get_and_pagination(emulator_api: Api) -> None:
    listing = emulator_api.get("/v1/models", "ListResponse_ModelInfo_", limit=100)
    ids = [m["id"] for m in listing["data"]]
    assert ids == [m.id for m in load().models]  # the bundled table, newest first
    assert listing["has_more"] is False
    assert listing["first_id"] == ids[0] and listing["last_id"] == ids[-1]
    default = emulator_api.get("/v1/models", "ListResponse_ModelInfo_")
    assert [m["id"] for m in default["data"]] == ids[:15] and len(ids) == 15  # limit 20 fits
    page = emulator_api.get("/v1/models", "ListResponse_ModelInfo_", limit=2)
    assert [m["id"] for m in page["data"]] == ids[:2] and page["has_more"] is True
    page = emulator_api.get("/v1/models", "ListResponse_ModelInfo_", limit=2, after_id=ids[1])
    assert [m["id"] for m in page["data"]] == ids[2:4] and page["has_more"] is True
    page = emulator_api.get("/v1/models", "ListResponse_ModelInfo_", limit=20, after_id=ids[2])
    assert [m["id"] for m in page["data"]] == ids[3:] and page["has_more"] is False
    page = emulator_api.get("/v1/models", "ListResponse_ModelInfo_", limit=2, before_id=ids[4])
    assert [m["id"] for m in page["data"]] == ids[2:4] and page["has_more"] is True
    page = emulator_api.get("/v1/models", "ListResponse_ModelInfo_", before_id=ids[1])
    assert [m["id"] for m in page["data"]] == ids[:1] and page["has_more"] is False
    for bad in ("0", "1001", "x"):
        emulator_api.error(400, "invalid_request_error", "GET", "/v1/models", params={"limit": bad})
    by_id = {m["id"]: m for m in listing["data"]}
    limits = {i: (m["max_input_tokens"], m["max_tokens"]) for i, m in by_id.items()}
    assert limits["claude-sonnet-5-5"] == (1_000_000, 128_000)
    assert limits["claude-opus-4-7"] == (1_000_000, 128_000)
    assert limits["claude-sonnet-4-6"] == (1_000_000, 128_000)  # not 64K: clients rely on it
    assert limits["claude-haiku-4-5-20251001"] == (200_000, 64_000)
    haiku = by_id["claude-haiku-4-5-20251001"]["capabilities"]
    assert haiku["effort"]["supported"] is False
    assert haiku["thinking"]["types"] == {
        "adaptive": {"supported": False},
        "enabled": {"supported": True},
    }
    opus = by_id["claude-opus-4-7"]["capabilities"]
    assert opus["thinking"]["types"]["enabled"] == {"supported": False}  # budgets are a 400
    assert opus["effort"]["xhigh"] == {"supported": True}
    assert by_id["claude-sonnet-4-6"]["capabilities"]["effort"]["xhigh"] == {"supported": False}


def test_get_model_by_alias_and_unknown(emulator_api: Api) -> None:
    info = emulator_api.get("/v1/models/claude-sonnet-4-5", "ModelInfo")
    assert info["id"] == "claude-sonnet-4-5-20250929"
    assert info["display_name"] == "Claude Sonnet 4.5"
    assert emulator_api.get("/v1/models/claude-opus-4-7", "ModelInfo")["id"] == "claude-opus-4-7"
    error = emulator_api.error(404, "not_found_error", "GET", "/v1/models/claude-9")
    assert "claude-9" in error["message"]


def test_code_requests_get_a_fenced_code_block(emulator_api: Api) -> None:
    message = emulator_api.create(
        model="claude-sonnet-4-6",
        max_tokens=500,
        messages=[{"role": "user", "content": "Write a Python function that cleans a column"}],
    )
    text = message["content"][0]["text"]
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    compile(code, "<emulator answer>", "exec")  # the code block is real, runnable Python
    # An explicit length still wins over the shape.
    sized = emulator_api.create(
        model="claude-sonnet-4-6",
        max_tokens=500,
        messages=[{"role": "user", "content": "Write a function [[reply_tokens=9]]"}],
    )
    assert sized["usage"]["output_tokens"] == 9
    assert "```" not in sized["content"][0]["text"]
