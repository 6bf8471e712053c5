"""Client tool loops: several calls in one turn, answers that quote the results, turn checks."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from spec_validation import Api, fold

from .support import MODEL, body, kinds, text_of

WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
        "required": ["city"],
    },
}
TIME = {
    "name": "local_time",
    "description": "The local time in a time zone.",
    "input_schema": {
        "type": "object",
        "properties": {"zone": {"type": "string"}, "hour24": {"type": "boolean"}},
        "required": ["zone", "hour24"],
        "additionalProperties": False,
    },
}
LABEL = {
    "name": "record_label",
    "input_schema": {
        "type": "object",
        "properties": {"label": {"enum": ["spam", "ham"]}},
        "required": ["label"],
    },
}
TOOLS = [LABEL, WEATHER, TIME]
SCHEMAS = {t["name"]: t["input_schema"] for t in TOOLS}
QUESTION = "Use local_time for Paris, then get_weather there."


def calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in message["content"] if b["type"] == "tool_use"]


def test_two_named_tools_are_called_in_one_turn(emulator_api: Api) -> None:
    message = emulator_api.create(**body(QUESTION, tools=TOOLS))
    assert kinds(message) == ["text", "tool_use", "tool_use"]
    assert text_of(message) == "I'll use the local_time and get_weather tools."
    used = calls(message)
    assert [c["name"] for c in used] == ["local_time", "get_weather"]  # the order they're named
    assert len({c["id"] for c in used}) == 2
    for call in used:
        jsonschema.validate(call["input"], SCHEMAS[call["name"]])
    assert message["stop_reason"] == "tool_use"
    # Streamed, the same two calls.
    assert (
        fold(emulator_api.stream(**body(QUESTION, tools=TOOLS)))["content"] == (message["content"])
    )


@pytest.mark.parametrize("kind", ["auto", "any"])
def test_disable_parallel_tool_use_calls_only_the_first(emulator_api: Api, kind: str) -> None:
    choice = {"type": kind, "disable_parallel_tool_use": True}
    message = emulator_api.create(**body(QUESTION, tools=TOOLS, tool_choice=choice))
    assert [c["name"] for c in calls(message)] == ["local_time"]
    parallel = emulator_api.create(**body(QUESTION, tools=TOOLS, tool_choice={"type": kind}))
    assert [c["name"] for c in calls(parallel)] == ["local_time", "get_weather"]


def test_models_that_think_between_tools_say_it_in_thinking(emulator_api: Api) -> None:
    message = emulator_api.create(**body(QUESTION, tools=TOOLS, model="claude-sonnet-5-5"))
    assert kinds(message) == ["thinking", "tool_use", "tool_use"]


def answer_to(
    api: Api, first: dict[str, Any], results: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    turns = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": first["content"]},
        {"role": "user", "content": results},
    ]
    return api.create(**body(messages=turns, tools=TOOLS, **extra))


def test_the_answer_quotes_each_result_and_names_errors(emulator_api: Api) -> None:
    first = emulator_api.create(**body(QUESTION, tools=TOOLS))
    clock, weather = calls(first)
    long = "Sunny   and\nwarm, " + "x" * 300
    results = [
        {"type": "tool_result", "tool_use_id": clock["id"], "content": "14:05 CET"},
        {
            "type": "tool_result",
            "tool_use_id": weather["id"],
            "content": [{"type": "text", "text": long}],
            "is_error": True,
        },
    ]
    answer = answer_to(emulator_api, first, results)
    assert kinds(answer) == ["text"] and answer["stop_reason"] == "end_turn"
    text = text_of(answer)
    assert text.startswith("I called local_time and get_weather.")
    assert 'local_time returned: "14:05 CET".' in text
    quoted = " ".join(long.split())[:200]
    assert f'get_weather returned an error: "{quoted}...".' in text
    assert "x" * 201 not in text  # bounded
    # Streamed, the same answer.
    turns = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": first["content"]},
        {"role": "user", "content": results},
    ]
    streamed = fold(emulator_api.stream(**body(messages=turns, tools=TOOLS)))
    assert streamed["content"] == answer["content"]


def test_an_answer_to_results_still_obeys_max_tokens(emulator_api: Api) -> None:
    first = emulator_api.create(**body(QUESTION, tools=TOOLS))
    results = [
        {"type": "tool_result", "tool_use_id": c["id"], "content": "ok"} for c in calls(first)
    ]
    cut = answer_to(emulator_api, first, results, max_tokens=3)
    assert cut["stop_reason"] == "max_tokens" and cut["usage"]["output_tokens"] == 3


# ----------------------------------------------------------------------------- turn checks


def use(ident: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": ident, "name": "record_label", "input": {"label": "ham"}}


def result(ident: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": ident, "content": "done"}


ASK = {"role": "user", "content": "Label it"}


def test_results_must_open_the_next_user_message(emulator_api: Api) -> None:
    turns = [ASK, {"role": "assistant", "content": [use("toolu_a"), use("toolu_b")]}]
    fine = [*turns, {"role": "user", "content": [result("toolu_b"), result("toolu_a")]}]
    emulator_api.create(**body(messages=fine, tools=[LABEL]))  # any order among the results
    opening: list[dict[str, Any]] = [{"type": "text", "text": "Here:"}]
    late = [*turns, {"role": "user", "content": [*opening, result("toolu_a"), result("toolu_b")]}]
    message = emulator_api.invalid(**body(messages=late, tools=[LABEL]))
    assert message.startswith(
        "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: "
        "toolu_a, toolu_b."
    )


def test_tool_use_ids_must_be_unique(emulator_api: Api) -> None:
    twice = [ASK, {"role": "assistant", "content": [use("toolu_a"), use("toolu_a")]}]
    twice.append({"role": "user", "content": [result("toolu_a")]})
    message = emulator_api.invalid(**body(messages=twice, tools=[LABEL]))
    assert message == "messages.1.content.1: `tool_use` ids must be unique"
    again = [
        *twice[:1],
        {"role": "assistant", "content": [use("toolu_a")]},
        {"role": "user", "content": [result("toolu_a")]},
        {"role": "assistant", "content": [use("toolu_a")]},
        {"role": "user", "content": [result("toolu_a")]},
    ]
    message = emulator_api.invalid(**body(messages=again, tools=[LABEL]))
    assert message == "messages.3.content.0: `tool_use` ids must be unique"


def test_a_server_tool_result_needs_its_call_before_it(emulator_api: Api) -> None:
    orphan = {
        "type": "web_search_tool_result",
        "tool_use_id": "srvtoolu_x",
        "content": [],
    }
    turns = [ASK, {"role": "assistant", "content": [orphan]}, {"role": "user", "content": "So?"}]
    message = emulator_api.invalid(**body(messages=turns))
    assert message == (
        "messages.1.content.0: unexpected `tool_use_id` found in `web_search_tool_result` "
        "blocks: srvtoolu_x. Each `web_search_tool_result` block must have a corresponding "
        "`server_tool_use` block before it."
    )


def test_tool_turns_without_tools_defined_are_refused(emulator_api: Api) -> None:
    call = {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"}
    message = emulator_api.invalid(
        "/v1/messages",
        model=MODEL,
        max_tokens=50,
        messages=[
            {"role": "user", "content": "Look it up."},
            {"role": "assistant", "content": [call]},
            {"role": "user", "content": [result, {"type": "text", "text": "Thanks."}]},
        ],
    )
    assert message == (
        "Requests which include `tool_use` or `tool_result` blocks must define tools."
    )


def test_optional_inputs_are_passed_only_when_the_message_asks_for_them(
    emulator_api: Api,
) -> None:
    plain = calls(emulator_api.create(**body("Use get_weather for Oslo.", tools=[WEATHER])))
    assert list(plain[0]["input"]) == ["city"]
    asked = calls(
        emulator_api.create(**body("Use get_weather for Oslo, unit f please.", tools=[WEATHER]))
    )
    assert asked[0]["input"]["unit"] == "f"  # named, and the enum value the message names
