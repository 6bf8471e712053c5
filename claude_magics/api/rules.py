"""A request checked against its model's rules before it is sent: one line instead of a 400.

    check_request(body, catalog.get(body["model"]), api_version="2023-06-01")
    # -> raises RequestNotAllowedError("<model> takes no thinking budget: ...")

The rules are the model's (limits and capabilities from ``GET /v1/models``; what the API does
not report from the bundled table) and the API version's. Only what is known refuses: a model
neither the server nor the table knows is sent as it is, and the API has the last word.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ClaudeError
from .models import ModelInfo

__all__ = ["NEW_API_VERSION", "RequestNotAllowedError", "check_request", "ends_with_prefill"]

#: The API version that rejects sampling parameters on every model.
NEW_API_VERSION = "2026-10-21"
_SAMPLING = ("temperature", "top_p", "top_k")


class RequestNotAllowedError(ClaudeError, ValueError):
    """The request breaks a rule of its model or API version: it was not sent. The message is
    one line saying what to do instead."""


def _levels(levels: Iterable[str]) -> str:
    return ", ".join(levels)


def ends_with_prefill(messages: Any) -> bool:
    """Whether the conversation ends with an assistant turn (a prefill)."""
    return bool(
        isinstance(messages, list)
        and messages
        and isinstance(messages[-1], Mapping)
        and messages[-1].get("role") == "assistant"
    )


def _blocks(messages: Any) -> Iterable[Mapping[str, Any]]:
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list):
            yield from (b for b in content if isinstance(b, Mapping))


def _check_thinking(body: Mapping[str, Any], info: ModelInfo) -> None:
    thinking = body.get("thinking")
    if not isinstance(thinking, Mapping):
        return
    model = info.id
    kind = thinking.get("type")
    if kind == "enabled" and info.rejects_thinking_budget:
        raise RequestNotAllowedError(
            f"{model} takes no thinking budget: use --thinking adaptive and --effort LEVEL "
            "to say how hard it should think"
        )
    if kind == "adaptive" and info.accepts_adaptive_thinking is False:
        raise RequestNotAllowedError(
            f"{model} has no adaptive thinking: give a budget instead (--thinking 4096)"
        )
    if kind == "disabled" and info.entry is not None:
        rule = info.entry.thinking.disabled
        effort = (body.get("output_config") or {}).get("effort")
        if rule == "rejected" or (rule == "effort_at_most_high" and effort in ("xhigh", "max")):
            raise RequestNotAllowedError(
                f"{model} cannot have thinking turned off"
                + (" above effort high" if rule == "effort_at_most_high" else "")
                + ": leave --thinking out (it thinks adaptively) or lower --effort"
            )
    budget = thinking.get("budget_tokens")
    max_tokens = body.get("max_tokens")
    if (
        kind == "enabled"
        and isinstance(budget, int)
        and isinstance(max_tokens, int)
        and budget >= max_tokens
    ):
        raise RequestNotAllowedError(
            f"--thinking {budget} must be below --max-tokens {max_tokens} (the budget is "
            "part of the answer's tokens): raise --max-tokens or lower the budget"
        )


def _check_effort(body: Mapping[str, Any], info: ModelInfo) -> None:
    effort = (body.get("output_config") or {}).get("effort")
    if effort is None or info.effort_levels is None:
        return
    if not info.effort_levels:
        raise RequestNotAllowedError(f"{info.id} takes no --effort: leave it out")
    if effort not in info.effort_levels:
        raise RequestNotAllowedError(
            f"{info.id} has no effort {effort!r}: use one of {_levels(info.effort_levels)}"
        )


def _check_sampling(body: Mapping[str, Any], info: ModelInfo, api_version: str) -> None:
    given = [name for name in _SAMPLING if body.get(name) is not None]
    if not given:
        return
    names = " and ".join(given)
    if api_version == NEW_API_VERSION:
        raise RequestNotAllowedError(
            f"API version {NEW_API_VERSION} takes no {names}: leave it out (use --effort to "
            "steer the answer), or set ClaudeMagics.api_version = '2023-06-01'"
        )
    if info.rejects_sampling:
        raise RequestNotAllowedError(
            f"{info.id} takes no {names}: leave it out (use --effort to steer the answer)"
        )
    thinking = body.get("thinking")
    thinking_on = isinstance(thinking, Mapping) and thinking.get("type") != "disabled"
    if info.sampling_needs_thinking_off and thinking_on:
        raise RequestNotAllowedError(
            f"{info.id} takes {names} only with thinking off: drop --thinking or {names}"
        )
    if body.get("temperature") is not None and body.get("top_p") is not None:
        raise RequestNotAllowedError("temperature and top_p cannot both be set: keep one")


def check_request(body: Mapping[str, Any], info: ModelInfo, api_version: str) -> None:
    """Raise :class:`RequestNotAllowedError` when ``body`` breaks a known rule of its model
    (``info``) or of ``api_version``; return quietly otherwise."""
    model = info.id
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int) and info.max_tokens and max_tokens > info.max_tokens:
        raise RequestNotAllowedError(
            f"--max-tokens {max_tokens:,} is above {model}'s most of {info.max_tokens:,}"
        )
    _check_thinking(body, info)
    _check_effort(body, info)
    _check_sampling(body, info, api_version)
    if info.rejects_prefill and ends_with_prefill(body.get("messages")):
        raise RequestNotAllowedError(
            f"{model} does not continue an answer you started (prefill): end the conversation "
            "with a user turn, and use --schema or -f json for a structured answer"
        )
    choice = body.get("tool_choice")
    forced = isinstance(choice, Mapping) and choice.get("type") in ("any", "tool")
    if forced and info.rejects_forced_tool:
        raise RequestNotAllowedError(
            f"{model} cannot be forced to call a tool: use tool_choice auto, or "
            "structured output (--schema) for a fixed shape"
        )
    tools = [t for t in body.get("tools") or () if isinstance(t, Mapping)]
    if info.code_execution is False and any(
        str(t.get("type", "")).startswith("code_execution_") for t in tools
    ):
        raise RequestNotAllowedError(
            f"{model} cannot run code in Anthropic's sandbox: drop --code-execution, or use a "
            "model whose capabilities list code_execution (%claude_models)"
        )
    kinds = {block.get("type") for block in _blocks(body.get("messages"))}
    if "image" in kinds and info.image_input is False:
        raise RequestNotAllowedError(f"{model} takes no images: use a model that reads them")
    cited = [
        b
        for b in _blocks(body.get("messages"))
        if b.get("type") in ("document", "search_result")
        and isinstance(b.get("citations"), Mapping)
        and b["citations"].get("enabled")
    ]
    if cited and info.citations is False:
        raise RequestNotAllowedError(
            f"{model} cannot cite documents or search results: drop --cite and "
            "--search-results, or use a model whose capabilities list citations (%claude_models)"
        )
    documents = [b for b in _blocks(body.get("messages")) if b.get("type") == "document"]
    pdfs = [d for d in documents if (d.get("source") or {}).get("media_type") == "application/pdf"]
    if pdfs and info.pdf_input is False:
        raise RequestNotAllowedError(f"{model} takes no PDFs: use a model that reads them")
    if api_version == NEW_API_VERSION:
        answers = [m for m in body.get("messages") or () if m.get("role") == "assistant"]
        if any(b.get("type") == "document" for b in _blocks(answers)):
            raise RequestNotAllowedError(
                f"API version {NEW_API_VERSION} takes no document in an assistant turn"
            )
