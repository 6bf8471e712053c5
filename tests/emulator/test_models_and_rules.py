"""The line-up of 2026-12 and its rules, per model family, as the emulator enforces them.

The expectations are written out from shared/MODELS.md rather than read from the bundled table,
so these tests check the table (claude_magics/data/models.json) as well as the emulator.
"""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import httpx
import jsonschema
import orjson
import pytest
from spec_validation import HEADERS, Api, fold

from claude_magics.emulator import Emulator
from claude_magics.emulator.generation import AUTO_TOOL_RULE
from claude_magics.emulator.tokens import MESSAGE_OVERHEAD, REQUEST_OVERHEAD
from claude_magics.model_table import EFFORT_LEVELS, load

from .support import body, count_body, kinds, text_of

# ----------------------------------------------------------------------------- MODELS.md

NEW_GENERATION = [  # Opus 4.7 and later: new tokenizer, budgets / sampling / prefill rejected
    "claude-fable-5-2", "claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5",
    "claude-fable-5-1", "claude-fable-5", "claude-opus-5", "claude-sonnet-5",
    "claude-opus-4-8", "claude-opus-4-7",
]  # fmt: skip
GEN_4_6 = ["claude-opus-4-6", "claude-sonnet-4-6"]
GEN_4_5 = ["claude-haiku-4-5", "claude-opus-4-5", "claude-sonnet-4-5"]  # aliases of dated ids
ALL_MODELS = NEW_GENERATION + GEN_4_6 + GEN_4_5
ACTIVE = ["claude-fable-5-2", "claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5"]

LIMITS = {  # (context window, max output)
    **dict.fromkeys(NEW_GENERATION + GEN_4_6, (1_000_000, 128_000)),
    **dict.fromkeys(GEN_4_5, (200_000, 64_000)),
}
ALWAYS_THINKING = ["claude-fable-5-2", "claude-opus-5-5", "claude-fable-5-1", "claude-fable-5"]
ALWAYS_THINKING += ["claude-opus-5"]  # adaptive by default
CANNOT_DISABLE = ["claude-fable-5-2", "claude-opus-5-5", "claude-sonnet-5-5"]
CANNOT_DISABLE += ["claude-fable-5-1", "claude-fable-5"]
NO_FORCED_TOOLS = ["claude-fable-5-2", "claude-fable-5-1", "claude-opus-5-5", "claude-sonnet-5-5"]
EFFORT = {
    **{m: set(EFFORT_LEVELS) for m in NEW_GENERATION},
    **{m: {"low", "medium", "high", "max"} for m in GEN_4_6},
    "claude-opus-4-5": {"low", "medium", "high"},
    "claude-haiku-4-5": set(),
    "claude-sonnet-4-5": set(),
}
RETIRED = {  # id or alias -> replacement
    "claude-opus-4-1-20250805": "claude-opus-5-5",
    "claude-opus-4-1": "claude-opus-5-5",
    "claude-opus-4-20250514": "claude-opus-5-5",
    "claude-sonnet-4-20250514": "claude-sonnet-5-5",
    "claude-3-5-haiku-20241022": "claude-haiku-5-5",
}
TOOL = {
    "name": "record_label",
    "description": "Record the label of a review",
    "input_schema": {
        "type": "object",
        "properties": {"label": {"enum": ["good", "bad"]}},
        "required": ["label"],
    },
}
SHORT = "Hello there [[reply_tokens=3]]"


def thinks(model: str) -> dict[str, Any]:
    """The thinking field that turns thinking on for ``model`` (a budget on 4.5 models)."""
    if model in GEN_4_5:
        return {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    return {"thinking": {"type": "adaptive"}}


# ----------------------------------------------------------------------------- the table


def test_the_table_serves_the_line_up_and_the_retired_ids() -> None:
    table = load()
    served = {name for m in table.models for name in m.names}
    assert set(ALL_MODELS) <= served
    assert {m.id for m in table.active()} == set(ACTIVE)
    assert table.find("claude-haiku-4-5").id == "claude-haiku-4-5-20251001"  # type: ignore[union-attr]
    for name, replacement in RETIRED.items():
        retired = table.find_retired(name)
        assert retired is not None and retired.replacement == replacement
    deprecated = {m.id: m for m in table.models if m.status == "deprecated"}
    assert set(deprecated) == {"claude-opus-4-5-20251101", "claude-sonnet-4-5-20250929"}
    assert deprecated["claude-opus-4-5-20251101"].retires_on == "2027-01-22"
    minimums = {m: table.find(m).cache_min_tokens for m in ALL_MODELS}  # type: ignore[union-attr]
    assert minimums["claude-haiku-4-5"] == minimums["claude-opus-4-6"] == 4096
    assert minimums["claude-sonnet-4-6"] == minimums["claude-sonnet-5"] == 1024
    assert minimums["claude-opus-4-7"] == 2048
    assert minimums["claude-fable-5"] == minimums["claude-opus-5"] == 512


@pytest.mark.parametrize("model", ALL_MODELS)
def test_models_endpoint_reports_the_limits_and_capabilities(emulator_api: Api, model: str) -> None:
    info = emulator_api.get(f"/v1/models/{model}", "ModelInfo")
    assert (info["max_input_tokens"], info["max_tokens"]) == LIMITS[model]
    caps = info["capabilities"]
    levels = {level for level in EFFORT_LEVELS if caps["effort"][level]["supported"]}
    assert levels == EFFORT[model] and caps["effort"]["supported"] is bool(EFFORT[model])
    types = caps["thinking"]["types"]
    assert types["adaptive"]["supported"] is (model not in GEN_4_5)
    assert types["enabled"]["supported"] is (model not in NEW_GENERATION)


@pytest.mark.parametrize("model", ALL_MODELS)
def test_output_limit(emulator_api: Api, model: str) -> None:
    limit = LIMITS[model][1]
    emulator_api.create(**body(SHORT, model=model, max_tokens=limit))
    message = emulator_api.invalid(**body(SHORT, model=model, max_tokens=limit + 1))
    assert message.startswith(f"max_tokens: {limit + 1} > {limit}, which is the maximum")


@pytest.mark.parametrize(("name", "replacement"), sorted(RETIRED.items()))
def test_retired_models_are_404_naming_the_replacement(
    emulator_api: Api, name: str, replacement: str
) -> None:
    error = emulator_api.error(
        404, "not_found_error", "POST", "/v1/messages", json=body(model=name)
    )
    assert error["message"].startswith(f"model: {name} was retired")
    assert f"use {replacement} instead" in error["message"]
    assert all(current in error["message"] for current in ACTIVE)
    error = emulator_api.error(404, "not_found_error", "GET", f"/v1/models/{name}")
    assert replacement in error["message"]
    path = "/v1/messages/count_tokens"
    emulator_api.error(404, "not_found_error", "POST", path, json=count_body(body(model=name)))


def test_deprecated_models_are_served(emulator_api: Api) -> None:
    for model in ("claude-opus-4-5-20251101", "claude-sonnet-4-5-20250929"):
        assert emulator_api.create(**body(SHORT, model=model))["model"] == model


# ----------------------------------------------------------------------------- thinking


@pytest.mark.parametrize("model", ALL_MODELS)
def test_budget_thinking(emulator_api: Api, model: str) -> None:
    request = body(
        model=model, max_tokens=4000, thinking={"type": "enabled", "budget_tokens": 2000}
    )
    if model in NEW_GENERATION:
        message = emulator_api.invalid(**request)
        assert message.startswith("thinking.type: 'enabled'")
        assert '{"type": "adaptive"}' in message and "output_config.effort" in message
    else:  # accepted (deprecated on the 4.6 models)
        assert kinds(emulator_api.create(**request)) == ["thinking", "text"]


@pytest.mark.parametrize("model", ALL_MODELS)
def test_adaptive_thinking(emulator_api: Api, model: str) -> None:
    request = body(model=model, thinking={"type": "adaptive"})
    if model in GEN_4_5:
        assert "adaptive thinking is not supported" in emulator_api.invalid(**request)
    else:
        assert kinds(emulator_api.create(**request)) == ["thinking", "text"]


@pytest.mark.parametrize("model", ALL_MODELS)
def test_disabled_thinking(emulator_api: Api, model: str) -> None:
    request = body(model=model, thinking={"type": "disabled"})
    if model in CANNOT_DISABLE:
        assert emulator_api.invalid(**request).startswith("thinking.type: 'disabled' is not")
        return
    assert kinds(emulator_api.create(**request)) == ["text"]
    if model == "claude-opus-5":  # only at effort high or lower
        for effort in ("xhigh", "max"):
            message = emulator_api.invalid(**request, output_config={"effort": effort})
            assert "only at output_config.effort 'high' or lower" in message
        emulator_api.create(**request, output_config={"effort": "low"})


@pytest.mark.parametrize("model", ALL_MODELS)
def test_thinking_unasked(emulator_api: Api, model: str) -> None:
    """Fable and Opus 5.x think without being asked; the others only when asked."""
    message = emulator_api.create(**body(model=model))
    if model in ALWAYS_THINKING:
        assert kinds(message) == ["thinking", "text"]
        assert message["content"][0]["thinking"] == ""  # omitted by default on these models
        assert message["content"][0]["signature"]
    else:
        assert kinds(message) == ["text"]


@pytest.mark.parametrize("model", ALL_MODELS)
def test_thinking_display_default(emulator_api: Api, model: str) -> None:
    message = emulator_api.create(**body(model=model, max_tokens=2000, **thinks(model)))
    block = message["content"][0]
    assert block["type"] == "thinking" and block["signature"]
    if model in NEW_GENERATION:
        assert block["thinking"] == ""
        assert message["usage"]["output_tokens"] > len(text_of(message).split())  # still billed
        summarized = {"type": "adaptive", "display": "summarized"}
        shown = emulator_api.create(**body(model=model, thinking=summarized))
        assert shown["content"][0]["thinking"]
    else:
        assert block["thinking"]


def test_omitted_thinking_streams_a_signature_and_no_text(emulator_api: Api) -> None:
    request = body("Think it over", model="claude-sonnet-5-5", thinking={"type": "adaptive"})
    reference = emulator_api.create(**request)
    events = emulator_api.stream(**request)
    start = next(d for n, d in events if n == "content_block_start" and d["index"] == 0)
    assert start["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    deltas = [d["delta"] for n, d in events if n == "content_block_delta" and d["index"] == 0]
    assert [d["type"] for d in deltas] == ["signature_delta"] and deltas[0]["signature"]
    assert fold(events)["content"] == reference["content"]
    summarized = {"type": "adaptive", "display": "summarized"}
    events = emulator_api.stream(**{**request, "thinking": summarized})
    deltas = [d["delta"] for n, d in events if n == "content_block_delta" and d["index"] == 0]
    assert {d["type"] for d in deltas} == {"thinking_delta", "signature_delta"}


# ----------------------------------------------------------------------------- effort


@pytest.mark.parametrize("model", ALL_MODELS)
def test_effort_levels(emulator_api: Api, model: str) -> None:
    for level in EFFORT_LEVELS:
        request = body(SHORT, model=model, output_config={"effort": level})
        if level in EFFORT[model]:
            emulator_api.create(**request)
        elif EFFORT[model]:
            message = emulator_api.invalid(**request)
            assert message == f"output_config.effort: effort '{level}' is not supported on " + (
                load().find(model).id  # type: ignore[union-attr]
            )
        else:
            assert "effort is not supported" in emulator_api.invalid(**request)


# ----------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("model", ALL_MODELS)
def test_sampling_parameters(emulator_api: Api, model: str) -> None:
    lowered = [{"temperature": 0.5}, {"top_p": 0.5}, {"top_k": 5}]
    if model in NEW_GENERATION:
        for change in lowered:
            (name,) = change
            assert emulator_api.invalid(**body(SHORT, model=model, **change)).startswith(name)
        emulator_api.create(**body(SHORT, model=model, temperature=1.0))  # the default is fine
    else:
        for change in lowered:
            emulator_api.create(**body(SHORT, model=model, **change))
    if model in GEN_4_6:  # accepted only with thinking off
        message = emulator_api.invalid(**body(model=model, temperature=0.5, **thinks(model)))
        assert "only with thinking off" in message
    if model in GEN_4_5:
        message = emulator_api.invalid(
            **body(model=model, max_tokens=2000, temperature=0.5, **thinks(model))
        )
        assert message == "temperature may only be set to 1 when thinking is enabled."
    # Everywhere: not both temperature and top_p, even at their defaults.
    both = emulator_api.invalid(**body(SHORT, model=model, temperature=1.0, top_p=1.0))
    assert "`temperature` and `top_p` cannot both be specified" in both


# ----------------------------------------------------------------------------- prefill, tools


@pytest.mark.parametrize("model", ALL_MODELS)
def test_prefill(emulator_api: Api, model: str) -> None:
    messages = [
        {"role": "user", "content": "Answer in JSON"},
        {"role": "assistant", "content": "{"},
    ]
    request = body(model=model, messages=messages)
    if model in NEW_GENERATION + GEN_4_6:
        message = emulator_api.invalid(**request)
        assert message.startswith(
            "messages.1:"
        ) and "does not support assistant message prefill" in (message)
    else:
        assert kinds(emulator_api.create(**request)) == ["text"]


@pytest.mark.parametrize("model", ALL_MODELS)
@pytest.mark.parametrize("choice", [{"type": "any"}, {"type": "tool", "name": "record_label"}])
def test_forced_tool_choice(emulator_api: Api, model: str, choice: dict[str, Any]) -> None:
    request = body("Rate this review: awful", model=model, tools=[TOOL], tool_choice=choice)
    if model in NO_FORCED_TOOLS:
        message = emulator_api.invalid(**request)
        assert message.startswith(f"tool_choice.{choice['type']}:")
        assert "does not support forcing tool use" in message
    elif model in ALWAYS_THINKING:  # forcing is allowed, thinking is on: the thinking rule
        assert "tool_choice forces tool use" in emulator_api.invalid(**request)
    else:
        assert kinds(emulator_api.create(**request)) == ["tool_use"]
        message = emulator_api.invalid(**{**request, "max_tokens": 2000, **thinks(model)})
        assert message == "Thinking may not be enabled when tool_choice forces tool use."


@pytest.mark.parametrize("model", ["claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5"])
def test_text_between_tool_calls(emulator_api: Api, model: str) -> None:
    """Opus 5.5 and Sonnet 5.5 return their words before a tool call as thinking."""
    message = emulator_api.create(
        **body("Please call record_label on this", model=model, tools=[TOOL])
    )
    if model == "claude-haiku-5-5":
        assert kinds(message) == ["text", "tool_use"]
    else:
        assert kinds(message) == ["thinking", "tool_use"]
        assert message["content"][0]["signature"]
    assert message["stop_reason"] == "tool_use"


# ----------------------------------------------------------------------------- tokenizer


@pytest.mark.parametrize("model", ALL_MODELS)
def test_tokenizer_generation_counts(emulator_api: Api, model: str) -> None:
    text = " abcd" * 100  # 100 pieces under the old tokenizer
    counted = emulator_api.count(**count_body(body(text, model=model)))
    pieces = math.ceil(100 * 1.3) if model in NEW_GENERATION else 100
    assert counted == REQUEST_OVERHEAD + MESSAGE_OVERHEAD + pieces
    usage = emulator_api.create(**body(text, model=model, max_tokens=2000))["usage"]
    total = (
        usage["input_tokens"]
        + usage["cache_creation_input_tokens"]
        + usage["cache_read_input_tokens"]
    )
    assert total == counted  # count_tokens and usage agree, on either tokenizer


@pytest.mark.parametrize("model", ALL_MODELS)
def test_cache_minimum_per_model(emulator_api: Api, model: str) -> None:
    """A breakpoint is cached exactly from the model's minimum prefix on."""
    minimum = load().find(model).cache_min_tokens  # type: ignore[union-attr]
    ratio = 1.3 if model in NEW_GENERATION else 1.0

    def system_of(total: int) -> list[dict[str, Any]]:
        # Prefix = request overhead + system overhead (3) + the text's tokens.
        words = math.floor((total - REQUEST_OVERHEAD - 3) / ratio)
        text = " abcd" * words
        return [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}]

    below = emulator_api.create(**body(SHORT, model=model, system=system_of(minimum - 40)))
    assert below["usage"]["cache_creation_input_tokens"] == 0
    above = emulator_api.create(**body(SHORT, model=model, system=system_of(minimum + 40)))
    assert above["usage"]["cache_creation_input_tokens"] >= minimum


# ----------------------------------------------------------------------------- API versions


@pytest.mark.parametrize("model", ["claude-haiku-4-5", "claude-sonnet-4-6", "claude-sonnet-5-5"])
@pytest.mark.parametrize("name", ["temperature", "top_p", "top_k"])
def test_version_2026_rejects_sampling_everywhere(
    emulator_api: Api, api_2026: Api, model: str, name: str
) -> None:
    value = {"temperature": 1.0, "top_p": 1.0, "top_k": 40}[name]
    message = api_2026.invalid(**body(SHORT, model=model, **{name: value}))
    assert message.startswith(f"{name}: sampling parameters are not supported in API version")
    if model == "claude-haiku-4-5":
        emulator_api.create(**body(SHORT, model=model, **{name: value}))  # 2023-06-01 accepts
    api_2026.create(**body(SHORT, model=model))


def test_version_2026_block_rules(emulator_api: Api, api_2026: Api) -> None:
    document = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "Notes."},
    }
    turns = [
        {"role": "user", "content": "Read this"},
        {"role": "assistant", "content": [document]},
        {"role": "user", "content": "Summarise it"},
    ]
    emulator_api.create(**body(messages=turns))
    message = api_2026.invalid(**body(messages=turns))
    assert message.startswith("messages.1.content.0: document blocks are not allowed")
    citation = {
        "type": "char_location",
        "cited_text": "Notes.",
        "document_index": 0,
        "document_title": None,
        "start_char_index": 0,
        "end_char_index": 6,
    }
    cited = [{"type": "text", "text": "As quoted", "citations": [citation]}]
    emulator_api.create(**body(cited))
    message = api_2026.invalid(**body(cited))
    assert message.startswith("messages.0.content.0.citations: citations are not allowed")
    api_2026.create(**body([{"type": "text", "text": "As quoted", "citations": []}]))


@pytest.mark.parametrize("version", ["2023-06-01", "2023-01-01", "2026-10-21"])
def test_known_versions_and_bearer_keys(emulator: Emulator, version: str) -> None:
    for auth in ({"x-api-key": "k"}, {"authorization": "Bearer k"}):
        with Api(emulator.url, headers={**auth, "anthropic-version": version}) as api:
            api.create(**body(SHORT))


@pytest.mark.parametrize("version", ["2024-10-22", "2023-06-01, 2023-06-01", "latest"])
def test_unknown_version_is_400(emulator_api: Api, version: str) -> None:
    headers = {**HEADERS, "anthropic-version": version}
    error = emulator_api.error(
        400, "invalid_request_error", "POST", "/v1/messages", json=body(), headers=headers
    )
    assert error["message"] == f'anthropic-version: "{version}" is not a valid version'


# ----------------------------------------------------------------------------- tool turns


def call(ident: str, name: str = "record_label") -> dict[str, Any]:
    return {"type": "tool_use", "id": ident, "name": name, "input": {"label": "good"}}


def result(ident: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": ident, "content": "recorded"}


QUESTION = {"role": "user", "content": "Label this review: great"}
THOUGHT = {"type": "thinking", "thinking": "A label is needed.", "signature": "c2ln"}


def test_a_tool_use_needs_its_result_next(emulator_api: Api) -> None:
    turns = [QUESTION, {"role": "assistant", "content": [call("toolu_a")]}]
    answered = [*turns, {"role": "user", "content": [result("toolu_a")]}]
    emulator_api.create(**body(messages=answered, tools=[TOOL]))
    for follow_up in ("thanks", [result("toolu_b")]):
        wrong = [*turns, {"role": "user", "content": follow_up}]
        message = emulator_api.invalid(**body(messages=wrong, tools=[TOOL]))
        assert message.startswith(
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately "
            "after: toolu_a. Each `tool_use` block must have a corresponding `tool_result`"
        )
    two = [QUESTION, {"role": "assistant", "content": [call("toolu_a"), call("toolu_c")]}]
    partial = [*two, {"role": "user", "content": [result("toolu_c")]}]
    message = emulator_api.invalid(**body(messages=partial, tools=[TOOL]))
    assert "immediately after: toolu_a." in message  # only the unanswered one
    # A final assistant tool call has no result after it either (Haiku 4.5 allows prefill).
    message = emulator_api.invalid(**body(messages=turns, tools=[TOOL], model="claude-haiku-4-5"))
    assert "without `tool_result` blocks" in message


def test_a_tool_result_needs_its_tool_use(emulator_api: Api) -> None:
    turns = [QUESTION, {"role": "assistant", "content": [call("toolu_a")]}]
    extra = [*turns, {"role": "user", "content": [result("toolu_a"), result("toolu_zz")]}]
    message = emulator_api.invalid(**body(messages=extra, tools=[TOOL]))
    assert message.startswith(
        "messages.2.content.1: unexpected `tool_use_id` found in `tool_result` blocks: toolu_zz."
    )
    orphan = [{"role": "user", "content": [result("toolu_a")]}]
    assert "unexpected `tool_use_id`" in emulator_api.invalid(**body(messages=orphan))
    path = "/v1/messages/count_tokens"  # count_tokens checks the same conversation
    assert "unexpected `tool_use_id`" in emulator_api.invalid(
        path, **count_body(body(messages=orphan))
    )


def test_thinking_must_be_passed_back_with_tool_use(emulator_api: Api) -> None:
    adaptive = {"type": "adaptive"}
    bare = [QUESTION, {"role": "assistant", "content": [call("toolu_a")]}]
    bare.append({"role": "user", "content": [result("toolu_a")]})
    message = emulator_api.invalid(**body(messages=bare, tools=[TOOL], thinking=adaptive))
    assert message.startswith(
        "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
        "`tool_use`. When `thinking` is enabled, a final `assistant` message must start with a "
        "thinking block"
    )
    emulator_api.create(**body(messages=bare, tools=[TOOL]))  # thinking off: fine
    kept = [QUESTION, {"role": "assistant", "content": [THOUGHT, call("toolu_a")]}]
    kept.append({"role": "user", "content": [result("toolu_a")]})
    emulator_api.create(**body(messages=kept, tools=[TOOL], thinking=adaptive))
    redacted = {"type": "redacted_thinking", "data": "opaque"}
    kept[1] = {"role": "assistant", "content": [redacted, call("toolu_a")]}
    emulator_api.create(**body(messages=kept, tools=[TOOL], thinking=adaptive))
    # A second tool round in the same turn: only the turn's first assistant message opens with
    # thinking.
    second = [
        *kept,
        {"role": "assistant", "content": [call("toolu_b")]},
        {"role": "user", "content": [result("toolu_b")]},
    ]
    emulator_api.create(**body(messages=second, tools=[TOOL], thinking=adaptive))
    second[1] = bare[1]
    message = emulator_api.invalid(**body(messages=second, tools=[TOOL], thinking=adaptive))
    assert message.startswith("messages.1.content.0.type: Expected `thinking`")
    # An always-thinking model needs its thinking back without being told it thinks.
    message = emulator_api.invalid(**body(messages=bare, tools=[TOOL], model="claude-opus-5-5"))
    assert "Expected `thinking` or `redacted_thinking`" in message


# ----------------------------------------------------------------------------- beta fields


SCHEMA = {
    "type": "object",
    "properties": {"verdict": {"enum": ["yes", "no"]}, "score": {"type": "integer"}},
    "required": ["verdict", "score"],
    "additionalProperties": False,
}


def test_beta_fields_need_a_beta_header(emulator_api: Api) -> None:
    fmt = {"type": "json_schema", "schema": SCHEMA}
    message = emulator_api.invalid(**body(output_format=fmt))
    assert message == "output_format: Extra inputs are not permitted"
    assert emulator_api.invalid(**body(speed="fast")) == "speed: Extra inputs are not permitted"
    # The official SDKs' beta client marks the path instead: /v1/messages?beta=true.
    response = emulator_api.request("POST", "/v1/messages?beta=true", json=body(speed="fast"))
    assert response.status_code == 200 and response.headers["x-emulator-ignored"] == "speed"


def test_output_format_is_structured_output(beta_api: Api) -> None:
    fmt = {"type": "json_schema", "schema": SCHEMA}
    for i in range(5):
        message = beta_api.create(**body(f"Is review {i} positive? yes", output_format=fmt))
        jsonschema.validate(orjson.loads(text_of(message)), SCHEMA)
    both = body(output_format=fmt, output_config={"format": fmt})
    assert beta_api.invalid(**both).startswith("output_format: give either output_format")
    counted = beta_api.count(**count_body(body(output_format=fmt)))
    assert counted == beta_api.count(**count_body(body(output_config={"format": fmt})))
    assert counted > beta_api.count(**count_body(body()))  # the schema is counted


def test_ignored_beta_fields_are_named_in_a_header(beta_api: Api) -> None:
    extra = {
        "speed": "fast",
        "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
        "mcp_servers": [{"type": "url", "name": "docs", "url": "https://example.com/mcp"}],
    }
    response = beta_api.request("POST", "/v1/messages", json=body(**extra))
    assert response.status_code == 200
    assert response.headers["x-emulator-ignored"] == "context_management, mcp_servers, speed"
    streamed, _ = beta_api.stream_response(**body(speed="fast"))
    assert streamed.headers["x-emulator-ignored"] == "speed"
    counted = beta_api.request("POST", "/v1/messages/count_tokens", json=count_body(body(**extra)))
    assert counted.status_code == 200 and "speed" in counted.headers["x-emulator-ignored"]
    plain = beta_api.request("POST", "/v1/messages", json=body())
    assert "x-emulator-ignored" not in plain.headers
    assert beta_api.invalid(**body(speed="turbo")) == "speed: Input should be 'standard' or 'fast'"
    servers = [{"type": "url", "name": "x"}]
    assert beta_api.invalid(**body(mcp_servers=servers)) == "mcp_servers.0.url: Field required"


# ----------------------------------------------------------------------------- schemas

UNSATISFIABLE = [
    {"type": "string", "minLength": 5, "maxLength": 2},
    {"type": "integer", "minimum": 5, "maximum": 3},
    {"enum": []},
    {"type": "integer", "multipleOf": 0},
    {"allOf": [{"type": "string"}, {"type": "integer"}]},
    {"type": "array", "minItems": 3, "maxItems": 1},
]


@pytest.mark.parametrize("bad", UNSATISFIABLE, ids=lambda s: orjson.dumps(s).decode())
def test_unsatisfiable_schemas_are_400_not_500(
    emulator: Emulator, emulator_api: Api, bad: dict[str, Any]
) -> None:
    wrapped = {"type": "object", "properties": {"x": bad}, "required": ["x"]}
    output = {"output_config": {"format": {"type": "json_schema", "schema": wrapped}}}
    message = emulator_api.invalid(**body(**output))
    assert message.startswith("output_config.format.schema: Invalid schema: no JSON value")
    tool = {"name": "t", "input_schema": wrapped}
    message = emulator_api.invalid(**body(tools=[tool]))
    assert message.startswith("tools.0.input_schema: Invalid schema: no JSON value")
    response = emulator_api.request("POST", "/v1/messages", json=body(stream=True, **output))
    assert response.status_code == 400
    assert all(r.status < 500 for r in emulator.requests)


def test_a_satisfiable_strict_schema_still_works(emulator_api: Api) -> None:
    schema = {
        "type": "object",
        "properties": {
            "code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$"},
            "n": {"type": "integer", "minimum": 3, "maximum": 3},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "uniqueItems": True},
        },
        "required": ["code", "n", "tags"],
        "additionalProperties": False,
    }
    fmt = {"format": {"type": "json_schema", "schema": schema}}
    for i in range(5):
        value = orjson.loads(text_of(emulator_api.create(**body(f"Item {i}", output_config=fmt))))
        jsonschema.validate(value, schema)


# ----------------------------------------------------------------------------- registration


def test_register_models_by_option_and_by_method() -> None:
    with Emulator(models=["claude-sonnet-6,500000,64000"]) as emu, Api(emu.url) as api:
        listing = api.get("/v1/models", "ListResponse_ModelInfo_")
        first = listing["data"][0]
        assert first["id"] == "claude-sonnet-6"
        assert (first["max_input_tokens"], first["max_tokens"]) == (500_000, 64_000)
        api.create(**body(SHORT, model="claude-sonnet-6", max_tokens=64_000))
        assert "64000" in api.invalid(**body(model="claude-sonnet-6", max_tokens=64_001))
        # The newest Sonnet's rules: sampling rejected, new tokenizer.
        assert api.invalid(**body(model="claude-sonnet-6", temperature=0.2)).startswith(
            "temperature"
        )
        text = count_body(body(" abcd" * 100, model="claude-sonnet-6"))
        assert api.count(**text) == REQUEST_OVERHEAD + MESSAGE_OVERHEAD + 130
        info = emu.add_model(
            id="claude-haiku-6",
            max_input_tokens=300_000,
            max_tokens=32_000,
            like="claude-haiku-4-5",
        )
        assert info["max_tokens"] == 32_000
        api.create(**body(SHORT, model="claude-haiku-6", temperature=0.2))  # Haiku 4.5's rules
        emu.reset()  # registered models are settings: they stay
        assert api.get("/v1/models/claude-haiku-6", "ModelInfo")["max_input_tokens"] == 300_000
        # Registering a known id replaces its entry: a CI can pin the limits it expects.
        emu.add_model("claude-sonnet-4-6,1000000,64000")
        assert "64000" in api.invalid(**body(max_tokens=64_001))
        with pytest.raises(ValueError, match="ID,MAX_INPUT_TOKENS,MAX_OUTPUT_TOKENS"):
            emu.add_model("claude-x-1,100")
        with pytest.raises(ValueError, match="max_tokens"):
            emu.add_model(id="claude-x-1", max_input_tokens=100, max_tokens=0)


def test_register_models_over_the_admin_api(emulator: Emulator, emulator_api: Api) -> None:
    with httpx.Client(base_url=emulator.url) as admin:
        added = admin.post("/_emulator/models", json="claude-opus-6,2000000,256000")
        assert added.status_code == 200
        assert added.json()["models"][0]["max_input_tokens"] == 2_000_000
        spec = {"id": "claude-fable-6", "max_input_tokens": 1_000_000, "max_tokens": 128_000}
        spec["prefill"] = "accepted"  # any field of the table can be set
        assert admin.post("/_emulator/models", json=[spec]).status_code == 200
        served = admin.get("/_emulator/models").json()
        by_id = {m["id"]: m for m in served["models"]}
        assert by_id["claude-fable-6"]["thinking"]["always_on"] is True  # Fable's rules
        assert by_id["claude-opus-6"]["max_tokens"] == 256_000
        assert "claude-opus-4-1-20250805" in {r["id"] for r in served["retired"]}
        bad = admin.post("/_emulator/models", json={"id": "claude-x", "sampling": "sometimes"})
        assert bad.status_code == 400 and "sampling" in bad.json()["error"]["message"]
    emulator_api.create(**body(SHORT, model="claude-opus-6", max_tokens=256_000))
    prefill = [{"role": "user", "content": "Go"}, {"role": "assistant", "content": "Sure"}]
    emulator_api.create(**body(model="claude-fable-6", messages=prefill))


def test_register_models_on_the_command_line() -> None:
    command = [sys.executable, "-m", "claude_magics.emulator", "--port", "0"]
    proc = subprocess.Popen(
        [*command, "--model", "claude-sonnet-6,400000,32000", "--model", '{"id": "claude-x-2"}'],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        with Api(url) as api:
            info = api.get("/v1/models/claude-sonnet-6", "ModelInfo")
            assert (info["max_input_tokens"], info["max_tokens"]) == (400_000, 32_000)
            api.create(**body(SHORT, model="claude-x-2"))  # limits of the newest Sonnet
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    bad = subprocess.run([*command, "--model", "claude-x,lots,1"], capture_output=True, text=True)
    assert bad.returncode == 2 and "integers" in bad.stderr


def test_help_documents_the_auto_tool_rule() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "claude_magics.emulator", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--model" in help_text
    assert " ".join(help_text.split()).count(" ".join(AUTO_TOOL_RULE.split())) == 1
