"""Server tools: definitions checked as the spec says, web search, web fetch and code execution
emulated with spec-valid blocks, their usage and their input tokens, streamed and batched."""

from __future__ import annotations

import base64
import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from spec_validation import Api, fold, spec, validate

from claude_magics.emulator import Emulator
from claude_magics.emulator.server_tools import SERVER_TOOL_RULE, TOOL_TYPES

from .support import body, count_body, kinds, text_of

SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
FETCH = {"type": "web_fetch_20250910", "name": "web_fetch"}
CODE = {"type": "code_execution_20250825", "name": "code_execution"}
NEWS = "Search the web for the latest news about the Rhine floods."


def blocks(message: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [b for b in message["content"] if b["type"] == kind]


# ----------------------------------------------------------------------------- definitions


def _spec_tool_types() -> dict[str, tuple[str, frozenset[str]]]:
    """Every non-custom tool type of the spec's request: its name and its fields."""
    schemas = spec()["components"]["schemas"]
    found = {}
    for ref in schemas["CreateMessageParams"]["properties"]["tools"]["items"]["oneOf"]:
        schema = schemas[ref["$ref"].rsplit("/", 1)[1]]
        kind = schema["properties"]["type"]
        if "const" not in kind and "enum" not in kind:
            continue  # the custom Tool
        for name in kind.get("enum") or [kind["const"]]:
            found[name] = (schema["properties"]["name"]["const"], frozenset(schema["properties"]))
    return found


def test_every_tool_type_of_the_spec_is_known_with_its_fields() -> None:
    table = {kind: (info.name, info.fields) for kind, info in TOOL_TYPES.items()}
    assert table == _spec_tool_types()


@pytest.mark.parametrize("kind", sorted(TOOL_TYPES))
def test_every_tool_type_is_accepted(emulator_api: Api, kind: str) -> None:
    tool = {"type": kind, "name": TOOL_TYPES[kind].name}
    emulator_api.create(**body("Hello [[reply_tokens=3]]", tools=[tool]))


@pytest.mark.parametrize(
    ("tool", "expected"),
    [
        (
            {"type": "web_search_20990101", "name": "web_search"},
            "tools.0: Input tag 'web_search_20990101' found using 'type' does not match any of "
            "the expected tags: 'custom', 'bash_20250124', ",
        ),
        (
            {**SEARCH, "name": "search"},
            "tools.0.web_search_20250305.name: Input should be 'web_search'",
        ),
        ({**SEARCH, "citations": {}}, "tools.0.web_search_20250305.citations: Extra inputs"),
        (
            {**SEARCH, "max_uses": 0},
            "tools.0.web_search_20250305.max_uses: Input should be greater",
        ),
        ({**SEARCH, "max_uses": "2"}, "tools.0.web_search_20250305.max_uses: Input should be a"),
        (
            {**SEARCH, "allowed_domains": ["a.org"], "blocked_domains": ["b.org"]},
            "tools.0.web_search_20250305: allowed_domains and blocked_domains cannot be used",
        ),
        (
            {**SEARCH, "user_location": {"type": "approximate", "country": "FRA"}},
            "tools.0.web_search_20250305.user_location.country: String should have at most 2",
        ),
        (
            {**SEARCH, "user_location": {"city": "Paris"}},
            "tools.0.web_search_20250305.user_location.type: Input should be 'approximate'",
        ),
        (
            {**FETCH, "citations": {"enabled": "yes"}},
            "tools.0.web_fetch_20250910.citations.enabled: Input should be a valid boolean",
        ),
        (
            {**FETCH, "max_content_tokens": -1},
            "tools.0.web_fetch_20250910.max_content_tokens: Input should be greater than 0",
        ),
        ({**FETCH, "use_cache": False}, "tools.0.web_fetch_20250910.use_cache: Extra inputs"),
        (
            {**CODE, "allowed_callers": ["robot"]},
            "tools.0.code_execution_20250825.allowed_callers.0: Input should be 'direct'",
        ),
    ],
)
def test_bad_definitions_are_400(emulator_api: Api, tool: dict[str, Any], expected: str) -> None:
    message = emulator_api.invalid(**body(tools=[tool]))
    assert message.startswith(expected), message
    # count_tokens checks the same definitions.
    assert emulator_api.invalid("/v1/messages/count_tokens", **count_body(body(tools=[tool])))


def test_code_execution_needs_the_capability(emulator: Emulator, emulator_api: Api) -> None:
    emulator.add_model(
        {
            "id": "claude-nocode-1",
            "like": "claude-sonnet-4-6",
            "capabilities": {"code_execution": False},
        }
    )
    model = emulator_api.get("/v1/models/claude-nocode-1", "ModelInfo")
    assert model["capabilities"]["code_execution"] == {"supported": False}
    message = emulator_api.invalid(**body("Compute 2 + 2", model="claude-nocode-1", tools=[CODE]))
    assert message == (
        "tools.0.type: 'code_execution_20250825' is not supported on claude-nocode-1 (its "
        "capabilities say code_execution is not supported)"
    )
    emulator_api.create(**body("Search the news", model="claude-nocode-1", tools=[SEARCH]))


# ----------------------------------------------------------------------------- web search


def test_web_search_results_citations_and_usage(emulator_api: Api) -> None:
    request = body(NEWS, tools=[SEARCH])
    message = emulator_api.create(**request)  # validated against the spec's Message
    assert kinds(message)[:3] == ["text", "server_tool_use", "web_search_tool_result"]
    (call,) = blocks(message, "server_tool_use")
    assert call["name"] == "web_search" and call["id"].startswith("srvtoolu_")
    assert call["input"] == {"query": "the latest news about the Rhine floods"}
    (found,) = blocks(message, "web_search_tool_result")
    assert found["tool_use_id"] == call["id"]
    results = found["content"]
    assert 2 <= len(results) <= 3
    for item in results:
        validate(item, "ResponseWebSearchResultBlock")
        assert str(urlsplit(item["url"]).hostname).split(".", 1)[1].startswith("example.")
        assert "the-latest-news-about-the-rhine" in item["url"]
    cited = [c for b in blocks(message, "text") for c in b["citations"] or ()]
    assert len(cited) == len(results)
    by_url = {r["url"]: r for r in results}
    for citation in cited:
        assert citation["type"] == "web_search_result_location"
        assert by_url[citation["url"]]["title"] == citation["title"]
        page = base64.b64decode(by_url[citation["url"]]["encrypted_content"]).decode()
        assert citation["cited_text"] in page
    assert message["stop_reason"] == "end_turn"
    usage = message["usage"]
    assert usage["server_tool_use"] == {"web_search_requests": 1, "web_fetch_requests": 0}
    # The results are read by the model: they are billed as input.
    assert usage["input_tokens"] > emulator_api.count(**count_body(request)) + 50
    # Deterministic: the same request, the same results.
    assert emulator_api.create(**request)["content"] == message["content"]


def test_web_search_streams_as_the_api_does(emulator_api: Api) -> None:
    request = body(NEWS, tools=[SEARCH])
    reference = emulator_api.create(**request)
    events = emulator_api.stream(**request)  # every event validated against the spec
    start = events[0][1]["message"]["usage"]
    assert start["server_tool_use"] == {"web_search_requests": 0, "web_fetch_requests": 0}
    assert start["input_tokens"] < reference["usage"]["input_tokens"]
    starts = {d["index"]: d["content_block"] for n, d in events if n == "content_block_start"}
    deltas: dict[int, set[str]] = {}
    for name, data in events:
        if name == "content_block_delta":
            deltas.setdefault(data["index"], set()).add(data["delta"]["type"])
    for index, block in starts.items():
        if block["type"] == "server_tool_use":
            assert block["input"] == {} and deltas[index] == {"input_json_delta"}
        elif block["type"] == "web_search_tool_result":
            assert block == reference["content"][index] and index not in deltas  # whole
        elif reference["content"][index]["citations"]:
            assert deltas[index] == {"citations_delta", "text_delta"}
    (delta,) = [d for n, d in events if n == "message_delta"]
    assert delta["usage"]["server_tool_use"] == {"web_search_requests": 1, "web_fetch_requests": 0}
    final = fold(events)
    assert final["content"] == reference["content"]
    assert final["usage"] == reference["usage"]


def test_max_uses_exceeded(emulator_api: Api) -> None:
    text = "Search for the latest Rhine news. Also search the web for Danube news today."
    message = emulator_api.create(**body(text, tools=[{**SEARCH, "max_uses": 1}]))
    first, second = blocks(message, "web_search_tool_result")
    assert len(first["content"]) >= 2
    assert second["content"] == {
        "type": "web_search_tool_result_error",
        "error_code": "max_uses_exceeded",
    }
    assert message["usage"]["server_tool_use"]["web_search_requests"] == 1
    both = emulator_api.create(**body(text, tools=[SEARCH]))
    assert both["usage"]["server_tool_use"]["web_search_requests"] == 2


def test_search_domains(emulator_api: Api) -> None:
    allowed = {**SEARCH, "allowed_domains": ["rivers.example.edu"]}
    message = emulator_api.create(**body(NEWS, tools=[allowed]))
    (found,) = blocks(message, "web_search_tool_result")
    assert {urlsplit(r["url"]).hostname for r in found["content"]} == {"rivers.example.edu"}
    blocked = {**SEARCH, "blocked_domains": ["example.com", "example.org"]}
    message = emulator_api.create(**body(NEWS, tools=[blocked]))
    (found,) = blocks(message, "web_search_tool_result")
    hosts = {str(urlsplit(r["url"]).hostname) for r in found["content"]}
    assert hosts and not any(h.endswith((".example.com", ".example.org")) for h in hosts)


@pytest.mark.parametrize(
    ("text", "choice", "searches"),
    [
        ("Tell me about otters.", None, 0),  # no search word
        ("Tell me about otters.", {"type": "tool", "name": "web_search"}, 1),  # forced
        ("Search the web for otters.", {"type": "none"}, 0),
        ("Please use web_search about otters.", None, 1),  # the tool's name
    ],
)
def test_when_search_runs(
    emulator_api: Api, text: str, choice: dict[str, Any] | None, searches: int
) -> None:
    extra: dict[str, Any] = {"tool_choice": choice} if choice else {}
    message = emulator_api.create(**body(text, tools=[SEARCH], **extra))
    assert len(blocks(message, "server_tool_use")) == searches
    assert message["usage"]["server_tool_use"]["web_search_requests"] == searches


def test_a_search_reply_passed_back_is_a_valid_conversation(emulator_api: Api) -> None:
    first = emulator_api.create(**body(NEWS, tools=[SEARCH]))
    turns = [
        {"role": "user", "content": NEWS},
        {"role": "assistant", "content": first["content"]},
        {"role": "user", "content": "Thanks. Summarise it in one line."},
    ]
    follow = emulator_api.create(**body(messages=turns, tools=[SEARCH]))
    assert kinds(follow) == ["text"]


# ----------------------------------------------------------------------------- web fetch


def test_web_fetch_of_a_url(emulator_api: Api) -> None:
    url = "https://docs.python.org/3/whatsnew/3.13.html"
    tool = {**FETCH, "citations": {"enabled": True}}
    message = emulator_api.create(**body(f"What changed? See {url}.", tools=[tool]))
    (call,) = blocks(message, "server_tool_use")
    assert call["name"] == "web_fetch" and call["input"] == {"url": url}
    (fetched,) = blocks(message, "web_fetch_tool_result")
    result = fetched["content"]
    assert result["type"] == "web_fetch_result" and result["url"] == url
    assert result["retrieved_at"].endswith("Z")
    document = result["content"]
    assert document["source"]["type"] == "text" and url in document["source"]["data"]
    assert document["citations"] == {"enabled": True}
    cited = [c for b in blocks(message, "text") for c in b["citations"] or ()]
    assert cited and cited[0]["cited_text"] in document["source"]["data"]
    assert message["usage"]["server_tool_use"] == {
        "web_search_requests": 0,
        "web_fetch_requests": 1,
    }
    # Outside allowed_domains: the error result, not billed.
    narrow = {**FETCH, "allowed_domains": ["example.com"]}
    refused = emulator_api.create(**body(f"Read {url}", tools=[narrow]))
    (fetched,) = blocks(refused, "web_fetch_tool_result")
    assert fetched["content"] == {
        "type": "web_fetch_tool_result_error",
        "error_code": "url_not_allowed",
    }
    assert refused["usage"]["server_tool_use"]["web_fetch_requests"] == 0


def test_web_fetch_streams_and_folds(emulator_api: Api) -> None:
    request = body("Summarise https://example.com/report", tools=[FETCH, SEARCH])
    reference = emulator_api.create(**request)
    assert [b["name"] for b in blocks(reference, "server_tool_use")] == ["web_fetch"]
    final = fold(emulator_api.stream(**request))
    assert kinds(final) == kinds(reference)
    assert final["usage"]["server_tool_use"] == reference["usage"]["server_tool_use"]


# ----------------------------------------------------------------------------- code execution


@pytest.mark.parametrize(
    ("text", "stdout", "code"),
    [
        ("Please compute (17 * 23 + 4) / 2 for me", "197.5\n", 0),
        ("Calculate 2 ** 10 - 24", "1000\n", 0),
        ("Run 1 / 0", "", 1),
        ("Run __import__('os').system('ls') now", "3 words\n", 0),  # never evaluated
    ],
)
def test_code_execution_runs_arithmetic(
    emulator_api: Api, text: str, stdout: str, code: int
) -> None:
    message = emulator_api.create(**body(text, tools=[CODE]))
    (call,) = blocks(message, "server_tool_use")
    assert call["name"] == "bash_code_execution" and "python3" in call["input"]["command"]
    (ran,) = blocks(message, "bash_code_execution_tool_result")
    assert ran["tool_use_id"] == call["id"]
    result = ran["content"]
    assert result["type"] == "bash_code_execution_result"
    assert (result["stdout"], result["return_code"]) == (stdout, code)
    if code:
        assert result["stderr"].endswith("ZeroDivisionError: division by zero\n")
        assert "The code failed: ZeroDivisionError" in text_of(message)
    else:
        assert stdout.strip() in text_of(message)
    assert message["container"]["id"].startswith("container_")
    assert message["usage"]["server_tool_use"] is None  # not a search or a fetch


def test_the_first_code_execution_version_runs_python(emulator_api: Api) -> None:
    tool = {"type": "code_execution_20250522", "name": "code_execution"}
    message = emulator_api.create(**body("Evaluate 6 * 7", tools=[tool]))
    (call,) = blocks(message, "server_tool_use")
    assert call["name"] == "code_execution" and call["input"] == {"code": "print(6 * 7)"}
    (ran,) = blocks(message, "code_execution_tool_result")
    assert ran["content"]["type"] == "code_execution_result"
    assert ran["content"]["stdout"] == "42\n"
    events = emulator_api.stream(**body("Evaluate 6 * 7", tools=[tool]))
    assert fold(events)["content"] == message["content"]


# ----------------------------------------------------------------------------- batches


def test_server_tools_in_a_batch(emulator: Emulator, emulator_api: Api) -> None:
    requests = [
        {"custom_id": "news", "params": body(NEWS, tools=[SEARCH])},
        {"custom_id": "sum", "params": body("Compute 3 + 4", tools=[CODE])},
    ]
    batch = emulator_api.post("/v1/messages/batches", "MessageBatch", {"requests": requests})
    emulator.advance_clock(3600)
    response = emulator_api.request("GET", f"/v1/messages/batches/{batch['id']}/results")
    lines = {line["custom_id"]: line for line in map(_json, response.content.splitlines())}
    for line in lines.values():
        validate(line, "MessageBatchIndividualResponse")
    news = lines["news"]["result"]["message"]
    assert "web_search_tool_result" in kinds(news)
    assert news["usage"]["server_tool_use"]["web_search_requests"] == 1
    assert news["usage"]["service_tier"] == "batch"
    total = lines["sum"]["result"]["message"]
    assert blocks(total, "bash_code_execution_tool_result")[0]["content"]["stdout"] == "7\n"


def _json(line: bytes) -> dict[str, Any]:
    return orjson.loads(line)  # type: ignore[no-any-return]


def test_help_states_the_server_tool_rule() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "claude_magics.emulator", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert " ".join(SERVER_TOOL_RULE.split()) in " ".join(help_text.split())
