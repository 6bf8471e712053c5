"""The one place that builds Messages API request bodies: the user turn, then the whole body.

    content = build_user_content("Why is {{df.columns[0]}} empty?", shell.user_ns)
    body = build_body(CallOptions(model=model, max_tokens=1024), history, content)
    add_cache_breakpoints(body, min_tokens=1024)

The user turn is the attachments first (Anthropic recommends documents and images before the
question), then the cell's text with its ``{{references}}`` filled in.

Also: automatic prompt-caching breakpoints (within the API's limit of 4), structured-output
schemas from dicts or pydantic models, and a printable dry-run view with the key masked and
base64 payloads shortened.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import PromptError
from ..walk import map_strings
from .budget import DEFAULT_DF_BUDGET, DEFAULT_VALUE_BUDGET, estimate_tokens
from .dataframes import ContentBlock, DfFormat, check_df_format
from .references import interpolate_text

__all__ = [
    "MAX_CACHE_BREAKPOINTS",
    "CallOptions",
    "add_cache_breakpoints",
    "build_body",
    "build_user_content",
    "dry_run_text",
    "estimate_request_tokens",
    "json_schema_of",
    "repair_surrogates",
]

MAX_CACHE_BREAKPOINTS = 4

_ATTACHMENT_TYPES = ("image", "document", "search_result", "text")


def build_user_content(
    cell_text: str,
    namespace: Mapping[str, Any],
    *,
    interpolate: bool = True,
    value_budget: int = DEFAULT_VALUE_BUDGET,
    df_budget: int = DEFAULT_DF_BUDGET,
    df_format: DfFormat = "csv",
    sample: bool = False,
    seed: int = 0,
    last_error: BaseException | None = None,
    attachments: Sequence[ContentBlock] = (),
) -> list[ContentBlock]:
    """The content blocks of the user turn for a cell.

    ``attachments`` (from :func:`image_block`, :func:`pdf_block`, :func:`file_block`,
    :func:`dataframe_block`) come first, in the order given, then one text block with the
    cell's text, its ``{{references}}`` filled in unless ``interpolate`` is false (Anthropic
    recommends documents and images before the question). A whitespace-only cell adds no text
    block (the API rejects one). Raises :class:`PromptError` for a bad reference, or when
    there is nothing to send.
    """
    check_df_format(df_format)
    blocks: list[ContentBlock] = []
    for block in attachments:
        if not isinstance(block, Mapping) or block.get("type") not in _ATTACHMENT_TYPES:
            raise PromptError(f"not a content block: {block!r:.80}")
        blocks.append(dict(block))
    text = cell_text
    if interpolate:
        text = interpolate_text(
            cell_text,
            namespace,
            value_budget=value_budget,
            df_budget=df_budget,
            df_format=df_format,
            sample=sample,
            seed=seed,
            last_error=last_error,
        )
    if text.strip():
        blocks.append({"type": "text", "text": text})
    if not blocks:
        raise PromptError("nothing to send: the cell is empty")
    return blocks


@dataclass
class CallOptions:
    """Everything about one call except the conversation itself."""

    model: str
    max_tokens: int
    system: str = ""
    temperature: float | None = None
    stop_sequences: list[str] = field(default_factory=list)
    thinking: dict[str, Any] | None = None
    effort: str | None = None
    schema: dict[str, Any] | None = None
    #: More system-prompt blocks, after ``system``'s text: a prompt in parts, each a text block
    #: that may carry its own ``cache_control`` (DataFrame jobs: the user's system prompt, then
    #: the shared instruction). Copied into the body, as the history is.
    system_blocks: Sequence[Mapping[str, Any]] = ()


def build_body(
    options: CallOptions,
    history: Sequence[dict[str, Any]],
    user_content: list[dict[str, Any]],
) -> dict[str, Any]:
    """The request body: history, then the new user turn; optional fields only when set.

    A history that ends with a user turn (tool results of a loop stopped early) takes the new
    words into that turn, after the results, as the API wants them."""
    messages = copy.deepcopy(list(history))
    if (
        messages
        and messages[-1].get("role") == "user"
        and isinstance(messages[-1].get("content"), list)
    ):
        merged = [*messages[-1]["content"], *copy.deepcopy(user_content)]
        messages[-1] = {"role": "user", "content": merged}
    else:
        messages.append({"role": "user", "content": user_content})
    body: dict[str, Any] = {
        "model": options.model,
        "max_tokens": options.max_tokens,
        "messages": messages,
    }
    system: list[dict[str, Any]] = []
    if options.system:
        system.append({"type": "text", "text": options.system})
    system += [copy.deepcopy(dict(block)) for block in options.system_blocks]
    if system:
        body["system"] = system
    if options.temperature is not None:
        # Deprecated by the API and rejected by newer models unless 1.0: only when asked for.
        body["temperature"] = options.temperature
    if options.stop_sequences:
        body["stop_sequences"] = list(options.stop_sequences)
    if options.thinking is not None:
        body["thinking"] = options.thinking
    output_config: dict[str, Any] = {}
    if options.effort:
        output_config["effort"] = options.effort
    if options.schema is not None:
        output_config["format"] = {"type": "json_schema", "schema": options.schema}
    if output_config:
        body["output_config"] = output_config
    repaired, _ = repair_surrogates(body)
    return dict(repaired)


def _repair(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Through UTF-16: a pair written as two surrogates joins into its character; a lone
        # one becomes U+FFFD.
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def repair_surrogates(value: Any) -> tuple[Any, int]:
    """``value`` with every lone surrogate in its strings replaced by U+FFFD, and how many
    strings were repaired.

    Lone surrogates come from text read with ``errors="surrogateescape"`` or from non-UTF-8
    file names; JSON cannot carry them, so the request would fail deep inside the client. A
    pair written as two surrogates is joined into its character.
    """
    return map_strings(value, _repair)


def _block_tokens(block: dict[str, Any]) -> int:
    kind = block.get("type")
    if kind == "text":
        return estimate_tokens(str(block.get("text", "")))
    if kind == "image":
        return 1600  # the API's cost of a typical full-size image
    if kind == "document":
        source = block.get("source") or {}
        if source.get("type") == "text":
            return estimate_tokens(str(source.get("data", "")))
        # A PDF: roughly 3/4 of its base64 length in bytes, ~1 token per 3 bytes of PDF.
        return len(str(source.get("data", ""))) // 4
    return estimate_tokens(json.dumps(block, default=str))


def estimate_request_tokens(body: Mapping[str, Any]) -> int:
    """A local estimate of a request's input tokens (system, messages, tools), block by block as
    :func:`add_cache_breakpoints` weighs them: text by :func:`estimate_tokens`, an image at the
    API's typical cost, a PDF by its size. For when the API's ``count_tokens`` cannot be asked."""
    total = 0
    system = body.get("system")
    if isinstance(system, str):
        total += estimate_tokens(system)
    elif isinstance(system, list):
        total += sum(_block_tokens(b) for b in system if isinstance(b, dict))
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, str):
            total += estimate_tokens(content)
        elif isinstance(content, list):
            total += sum(_block_tokens(b) for b in content if isinstance(b, dict))
        total += 4  # the role and turn markers around each message
    if body.get("tools"):
        total += estimate_tokens(json.dumps(body["tools"], default=str))
    fmt = (body.get("output_config") or {}).get("format")
    if fmt:
        total += estimate_tokens(json.dumps(fmt, default=str))
    return total


def _content_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        blocks: list[dict[str, Any]] = [{"type": "text", "text": content}]
        message["content"] = blocks
        return blocks
    return content if isinstance(content, list) else []


def add_cache_breakpoints(
    body: dict[str, Any], *, min_tokens: int = 1024, conversation: bool = True
) -> int:
    """Mark what is worth caching, in place; return how many breakpoints were added.

    In order of value: a long system prompt; the last large document or image of the new turn
    (so follow-ups re-read it from cache); and, for a conversation, the end of the new turn, so
    the next turn reads the whole prefix from cache. A breakpoint whose prefix is shorter than
    the model's minimum is skipped: the API would not cache it, and a write costs 1.25x input.
    Existing ``cache_control`` marks are respected and count toward the limit of 4.
    """
    existing = sum(
        1
        for message in body.get("messages", [])
        for b in _content_blocks(message)
        if "cache_control" in b
    ) + sum(1 for b in body.get("system") or [] if isinstance(b, dict) and "cache_control" in b)
    budget = MAX_CACHE_BREAKPOINTS - existing
    added = 0
    prefix = 0
    mark = {"type": "ephemeral"}

    system = body.get("system")
    if isinstance(system, list) and system:
        prefix += sum(_block_tokens(b) for b in system)
        if prefix >= min_tokens and budget > added and "cache_control" not in system[-1]:
            system[-1]["cache_control"] = dict(mark)
            added += 1

    messages = body.get("messages", [])
    for message in messages[:-1]:
        prefix += sum(_block_tokens(b) for b in _content_blocks(message))
    if not messages:
        return added
    new_turn = _content_blocks(messages[-1])
    last_attachment = None
    for index, block in enumerate(new_turn):
        prefix += _block_tokens(block)
        if block.get("type") in ("document", "image", "search_result"):
            last_attachment = (index, prefix)
    total = prefix
    if last_attachment is not None and budget > added:
        index, upto = last_attachment
        is_last = index == len(new_turn) - 1
        if upto >= min_tokens and not is_last and "cache_control" not in new_turn[index]:
            new_turn[index]["cache_control"] = dict(mark)
            added += 1
    if (
        conversation
        and new_turn
        and total >= min_tokens
        and budget > added
        and "cache_control" not in new_turn[-1]
    ):
        new_turn[-1]["cache_control"] = dict(mark)
        added += 1
    return added


def json_schema_of(value: Any) -> dict[str, Any]:
    """A JSON schema for structured output, from a schema dict or a pydantic model class.

    Objects get ``additionalProperties: false`` where they do not say otherwise, as structured
    output requires.
    """
    if isinstance(value, dict):
        schema = copy.deepcopy(value)
    elif hasattr(value, "model_json_schema"):
        schema = value.model_json_schema()
    else:
        raise TypeError(
            f"expected a JSON-schema dict or a pydantic model class, got {type(value).__name__}"
        )
    _close_objects(schema)
    return schema


def _close_objects(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "object" and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close_objects(value)
    elif isinstance(node, list):
        for value in node:
            _close_objects(value)


def _shorten_payloads(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if (
                key == "data"
                and isinstance(value, str)
                and len(value) > 120
                and node.get("type") == "base64"
            ):
                out[key] = f"<{len(value):,} characters of base64>"
            else:
                out[key] = _shorten_payloads(value)
        return out
    if isinstance(node, list):
        return [_shorten_payloads(v) for v in node]
    return node


def dry_run_text(
    url: str,
    body: dict[str, Any],
    key_status: str,
    api_version: str,
    betas: Sequence[str] = (),
) -> str:
    """The request as it would be sent: URL, headers (key masked) and the JSON body."""
    headers = {
        "x-api-key": f"<{key_status}: not shown>",
        "anthropic-version": api_version,
        "content-type": "application/json",
    }
    if betas:
        headers["anthropic-beta"] = ",".join(betas)
    lines = [f"POST {url}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append("")
    lines.append(json.dumps(_shorten_payloads(body), indent=2, ensure_ascii=False))
    return "\n".join(lines)
