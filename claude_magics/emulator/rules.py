"""The rules a well-formed request must also obey: per model, per API version, per conversation.

    context = RequestContext.from_headers(headers, query)   # 400 for an unknown version
    thinking = check_model_rules(body, spec, max_tokens, requested, effort, choice)
    check_version_rules(body, context); check_tool_turns(messages, thinking is not None)
    check_tool_types(body["tools"], spec)    # server tools the model cannot use

`validation` checks shapes; this module checks what depends on the model (from the model
table: thinking types, effort levels, sampling, prefill, forced tool_choice, output limit), on
the ``anthropic-version`` header (``2026-10-21`` tightened several rules) and on how the turns
of a tool-use conversation fit together. Each failure is the API's 400 with its message, or as
close to it as is known; the model table's notes say which facts are unconfirmed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from ..model_table import EFFORT_LEVELS, ModelEntry
from .errors import ApiError

__all__ = [
    "BETA_FIELDS",
    "IGNORED_BETA_FIELDS",
    "NEW_VERSION",
    "VERSIONS",
    "RequestContext",
    "check_model_rules",
    "check_tool_turns",
    "check_tool_types",
    "check_version_rules",
]

#: The ``anthropic-version`` values the API accepts (2023-01-01 is the original release).
VERSIONS = ("2023-01-01", "2023-06-01", "2026-10-21")
#: The version that rejects sampling parameters everywhere and tightened block rules.
NEW_VERSION = "2026-10-21"
#: Request fields the API accepts only from clients that send an ``anthropic-beta`` header
#: (the official SDKs' beta client also adds ``?beta=true``).
BETA_FIELDS = frozenset({"output_format", "speed", "context_management", "mcp_servers"})
#: Beta fields the emulator accepts but does not act on (named in ``x-emulator-ignored``).
IGNORED_BETA_FIELDS = ("context_management", "mcp_servers", "speed")

_THINKING_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
_SAMPLING = ("temperature", "top_p", "top_k")


def _fail(message: str) -> NoReturn:
    raise ApiError.invalid(message)


@dataclass(frozen=True)
class RequestContext:
    """What a request's headers decide: its API version, whether beta fields are allowed, and
    the beta names sent (``anthropic-beta``, comma-separated, possibly repeated)."""

    version: str = "2023-06-01"
    beta: bool = False
    betas: frozenset[str] = frozenset()

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], query: Mapping[str, str]) -> RequestContext:
        """Read ``anthropic-version`` (required, one of `VERSIONS`) and ``anthropic-beta``.

        Header names are lower-case. Raises the API's 400 for a missing or unknown version.
        """
        version = headers.get("anthropic-version", "").strip()
        if not version:
            _fail("anthropic-version: header is required")
        if version not in VERSIONS:
            _fail(f'anthropic-version: "{version}" is not a valid version')
        header = headers.get("anthropic-beta", "")
        betas = frozenset(name.strip() for name in header.split(",") if name.strip())
        beta = bool(betas) or query.get("beta") == "true"
        return cls(version, beta, betas)


# --------------------------------------------------------------------------- per model


def _non_default_sampling(body: Mapping[str, Any]) -> list[str]:
    """Sampling parameters set away from their defaults (temperature 1, top_p near 1)."""
    found = []
    if "temperature" in body and body["temperature"] != 1:
        found.append("temperature")
    if "top_p" in body and body["top_p"] < 0.99:
        found.append("top_p")
    if "top_k" in body:
        found.append("top_k")
    return found


def _check_thinking(
    spec: ModelEntry,
    requested: Mapping[str, Any] | None,
    max_tokens: int | None,
    effort: str | None,
) -> dict[str, Any] | None:
    """Check the ``thinking`` field against the model; return the thinking that will happen
    (``{"type": "adaptive"}`` on an always-on model that was not told), or None."""
    rules = spec.thinking
    kind = requested["type"] if requested is not None else None
    if kind is None:
        return {"type": "adaptive"} if rules.always_on else None
    if kind == "disabled":
        if rules.disabled == "rejected":
            how = (
                "thinking is always on for this model: remove `thinking` or use "
                '{"type": "adaptive"}'
                if rules.always_on
                else "remove `thinking` to run without it"
            )
            _fail(f"thinking.type: 'disabled' is not supported on {spec.id}; {how}.")
        if rules.disabled == "effort_at_most_high":
            level = effort or (spec.effort.default if spec.effort else "high")
            if EFFORT_LEVELS.index(level) > EFFORT_LEVELS.index("high"):
                _fail(
                    f"thinking.type: thinking can be disabled on {spec.id} only at "
                    f"output_config.effort 'high' or lower, not '{level}'."
                )
        return None
    if kind == "adaptive":
        if "adaptive" not in rules.types:
            _fail(f"thinking.type: adaptive thinking is not supported on {spec.id}")
        return dict(requested or {})
    # kind == "enabled": a manual budget.
    if "enabled" not in rules.types or rules.budget == "rejected":
        _fail(
            f"thinking.type: 'enabled' (a budget_tokens budget) is not supported on {spec.id}. "
            'Use thinking {"type": "adaptive"} and output_config.effort to control how much '
            "the model thinks."
        )
    assert requested is not None
    if max_tokens is not None and max_tokens <= requested["budget_tokens"]:
        _fail(
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
            f"documentation at {_THINKING_DOCS}#max-tokens-and-context-window-size"
        )
    return dict(requested)


def _check_sampling(body: Mapping[str, Any], spec: ModelEntry, thinking_on: bool) -> None:
    changed = _non_default_sampling(body)
    if spec.sampling == "rejected":
        if "temperature" in changed:
            _fail(
                f"temperature: {spec.id} only supports the default temperature of 1.0; "
                "remove the parameter"
            )
        if "top_k" in changed:
            _fail(f"top_k: {spec.id} does not support top_k; remove the parameter")
        if "top_p" in changed:
            _fail(f"top_p: {spec.id} only supports top_p >= 0.99; remove the parameter")
    elif thinking_on and changed:
        if spec.sampling == "thinking_off_only":
            _fail(
                f"{changed[0]}: {spec.id} accepts temperature, top_p and top_k only with "
                "thinking off"
            )
        if "temperature" in changed:
            _fail("temperature may only be set to 1 when thinking is enabled.")
    if "temperature" in body and "top_p" in body:
        _fail(
            f"`temperature` and `top_p` cannot both be specified for {spec.id}. "
            "Please use only one."
        )


def check_model_rules(
    body: Mapping[str, Any],
    spec: ModelEntry,
    max_tokens: int | None,
    requested_thinking: Mapping[str, Any] | None,
    effort: str | None,
    choice: Mapping[str, Any] | None,
) -> dict[str, Any] | None:
    """Check every rule of the model table for this request; return the effective thinking.

    ``requested_thinking`` is the request's ``thinking`` object as sent (``disabled``
    included); the result is None when the model will not think.
    """
    if max_tokens is not None and max_tokens > spec.max_tokens:
        _fail(
            f"max_tokens: {max_tokens} > {spec.max_tokens}, which is the maximum allowed number "
            f"of output tokens for {spec.id}"
        )
    if effort is not None:
        if spec.effort is None:
            _fail(f"output_config.effort: effort is not supported on {spec.id}")
        if effort not in spec.effort.levels:
            _fail(f"output_config.effort: effort '{effort}' is not supported on {spec.id}")
    thinking = _check_thinking(spec, requested_thinking, max_tokens, effort)
    if choice is not None and choice["type"] in ("any", "tool"):
        if spec.forced_tool_choice == "rejected":
            _fail(
                f"tool_choice.{choice['type']}: {spec.id} does not support forcing tool use; "
                'use tool_choice {"type": "auto"}, or output_config.format for a structured '
                "answer."
            )
        if thinking is not None:
            _fail("Thinking may not be enabled when tool_choice forces tool use.")
    _check_sampling(body, spec, thinking is not None)
    messages = body["messages"]
    if spec.prefill == "rejected" and messages[-1]["role"] == "assistant":
        _fail(
            f"messages.{len(messages) - 1}: {spec.id} does not support assistant message "
            "prefill; the conversation must end with a user message (use output_config.format "
            "for a structured answer)."
        )
    return thinking


def check_tool_types(tools: list[dict[str, Any]], spec: ModelEntry) -> None:
    """Tools the model's capabilities rule out: code execution where it is not supported."""
    for i, tool in enumerate(tools):
        kind = tool.get("type")
        code = isinstance(kind, str) and kind.startswith("code_execution_")
        if code and not spec.capabilities.code_execution:
            _fail(
                f"tools.{i}.type: '{kind}' is not supported on {spec.id} (its capabilities say "
                "code_execution is not supported)"
            )


# --------------------------------------------------------------------------- per API version


def check_version_rules(body: Mapping[str, Any], context: RequestContext) -> None:
    """The rules ``anthropic-version: 2026-10-21`` added (earlier versions have none)."""
    if context.version != NEW_VERSION:
        return
    for name in _SAMPLING:
        if name in body:
            _fail(
                f"{name}: sampling parameters are not supported in API version {NEW_VERSION}; "
                "remove the parameter"
            )
    for i, message in enumerate(body["messages"]):
        content = message["content"]
        if isinstance(content, str):
            continue
        for j, block in enumerate(content):
            if message["role"] == "assistant" and block["type"] == "document":
                _fail(
                    f"messages.{i}.content.{j}: document blocks are not allowed in assistant "
                    f"messages in API version {NEW_VERSION}"
                )
            if message["role"] == "user" and block["type"] == "text" and block.get("citations"):
                _fail(
                    f"messages.{i}.content.{j}.citations: citations are not allowed on user "
                    f"text blocks in API version {NEW_VERSION}"
                )


# --------------------------------------------------------------------------- per conversation


def _blocks(message: Mapping[str, Any], kind: str) -> list[tuple[int, dict[str, Any]]]:
    content = message["content"]
    if isinstance(content, str):
        return []
    return [(j, b) for j, b in enumerate(content) if b.get("type") == kind]


def _leading_results(message: Mapping[str, Any]) -> set[str]:
    """The tool_use ids answered by the tool_result blocks that open a user message (results
    after any other block answer nothing: the API wants them first)."""
    content = message["content"]
    answered: set[str] = set()
    for block in content if isinstance(content, list) else ():
        if block.get("type") != "tool_result":
            break
        answered.add(block["tool_use_id"])
    return answered


def _check_server_pairs(i: int, message: Mapping[str, Any], seen: set[str]) -> None:
    """Call ids are unique in the conversation; a server tool's result follows its call in
    the same assistant message."""
    content = message["content"]
    calls: set[str] = set()
    for j, block in enumerate(content if isinstance(content, list) else ()):
        kind = block.get("type")
        if kind in ("tool_use", "server_tool_use"):
            ident = block.get("id")
            if ident in seen:
                _fail(f"messages.{i}.content.{j}: `tool_use` ids must be unique")
            if isinstance(ident, str):
                seen.add(ident)
                calls.add(ident)
        elif isinstance(kind, str) and kind.endswith("_tool_result"):
            ident = block.get("tool_use_id")
            if ident not in calls:
                _fail(
                    f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `{kind}` "
                    f"blocks: {ident}. Each `{kind}` block must have a corresponding "
                    "`server_tool_use` block before it."
                )


def check_tool_turns(messages: list[dict[str, Any]], thinking_on: bool) -> None:
    """Tool calls and results must pair up turn by turn: every ``tool_use`` answered by a
    ``tool_result`` at the start of the next user message, every result answering a call of
    the message before, call ids unique, server tool results after their calls. With thinking
    on, the assistant turn that a trailing tool result answers must start with its thinking
    block."""
    seen: set[str] = set()
    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            _check_server_pairs(i, message, seen)
            calls = [b["id"] for _, b in _blocks(message, "tool_use")]
            following = messages[i + 1] if i + 1 < len(messages) else None
            answered = set()
            if following is not None and following["role"] == "user":
                answered = _leading_results(following)
            missing = [c for c in calls if c not in answered]
            if missing:
                _fail(
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(missing)}. Each `tool_use` block must have "
                    "a corresponding `tool_result` block in the next message."
                )
        else:
            previous = messages[i - 1] if i > 0 else None
            called = set()
            if previous is not None and previous["role"] == "assistant":
                called = {b["id"] for _, b in _blocks(previous, "tool_use")}
            for j, block in _blocks(message, "tool_result"):
                if block["tool_use_id"] not in called:
                    _fail(
                        f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                        f"`tool_result` blocks: {block['tool_use_id']}. Each `tool_result` block "
                        "must have a corresponding `tool_use` block in the previous message."
                    )
    if thinking_on:
        _check_thinking_kept(messages)


def _only_tool_results(message: Mapping[str, Any]) -> bool:
    content = message["content"]
    return (
        message["role"] == "user"
        and isinstance(content, list)
        and bool(content)
        and all(b.get("type") == "tool_result" for b in content)
    )


def _check_thinking_kept(messages: list[dict[str, Any]]) -> None:
    """The current assistant turn (the tool calls and results since the last real user
    message) must open with the thinking block the model produced for it."""
    if not _only_tool_results(messages[-1]):
        return
    start = len(messages) - 1
    while start >= 2 and _only_tool_results(messages[start - 2]):
        start -= 2  # several tool rounds in one turn: the turn opens with the first of them
    first = messages[start - 1] if start >= 1 else None
    if first is None or first["role"] != "assistant":
        return
    content = first["content"]
    opening = content[0]["type"] if isinstance(content, list) and content else "text"
    if opening not in ("thinking", "redacted_thinking"):
        _fail(
            f"messages.{start - 1}.content.0.type: Expected `thinking` or `redacted_thinking`, "
            f"but found `{opening}`. When `thinking` is enabled, a final `assistant` message must "
            "start with a thinking block (preceeding the lastmost set of `tool_use` and "
            "`tool_result` blocks). We recommend you include thinking blocks from previous "
            "turns. To avoid this requirement, disable `thinking`. Please consult our "
            f"documentation at {_THINKING_DOCS}"
        )
