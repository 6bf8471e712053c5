"""From a ``%%claude`` cell's flags and text to what it sends: call options, the user turn and
the key of the cell's turn in its conversation.

    options = call_options(args, user_ns, model=magics.model, max_tokens=4096, system="",
                           info=catalog.get(magics.model))
    content = user_content(args, cell, user_ns, value_budget=8000, df_budget=4000, ...)

``args`` are the parsed flags of ``%%claude``; values that a flag leaves out come from the
caller (the magic passes its traits: flags override ``%config``). Mistakes in what the user
wrote raise ``UsageError``: IPython shows it as one line, and nothing is sent.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from IPython.core.error import UsageError

if TYPE_CHECKING:
    from ..api.models import ModelInfo
    from ..prompt.body import CallOptions

__all__ = ["AUTO_THINKING", "call_options", "lookup", "turn_key", "user_content"]

#: The smallest extended-thinking budget the API accepts.
MIN_THINKING_BUDGET = 1024
#: ``--thinking`` given without a value: whatever the model supports (see ``_thinking_kind``).
AUTO_THINKING = "auto"


def lookup(namespace: Mapping[str, Any], name: str, flag: str) -> Any:
    """The notebook variable ``name``, or a one-line UsageError naming it (and a near miss)."""
    if name in namespace:
        return namespace[name]
    close = difflib.get_close_matches(name, [k for k in namespace if not k.startswith("_")], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UsageError(f"{flag} {name}: no variable named {name!r} in the notebook{hint}")


def _attachment(namespace: Mapping[str, Any], value: str) -> Any:
    """An attachment argument: a variable's value if one has that name, else a path."""
    return namespace[value] if value.isidentifier() and value in namespace else value


def _thinking_kind(info: ModelInfo | None, max_tokens: int) -> str:
    """What a bare ``--thinking`` means for this model: adaptive where it has adaptive thinking
    (or where that is unknown: every current model has it), else a budget of half the answer's
    tokens, so the reply keeps the other half."""
    if info is None or info.accepts_adaptive_thinking is not False:
        return "adaptive"
    return str(max(MIN_THINKING_BUDGET, max_tokens // 2))


def _thinking(
    args: argparse.Namespace,
    max_tokens: int,
    default_max_tokens: int,
    info: ModelInfo | None = None,
    show: bool = False,
) -> tuple[dict[str, Any] | None, int]:
    """``--thinking`` and ``--show-thinking``: the request's ``thinking`` and the ``max_tokens``
    that makes room for it. ``show`` (the flag or the trait) asks for summarized thinking text
    where the model would otherwise omit it."""
    requested = args.thinking
    if requested is None and getattr(args, "show_thinking", False):
        requested = AUTO_THINKING  # asking to see the thinking asks for thinking
    if requested is None and show and info is not None and info.thinking_always_on:
        # The model thinks anyway; only an explicit (adaptive) thinking can carry the display.
        requested = "adaptive"
    if requested is None:
        return None, max_tokens
    if requested == AUTO_THINKING:
        requested = _thinking_kind(info, max_tokens)
    thinking: dict[str, Any]
    if requested == "adaptive":
        thinking = {"type": "adaptive"}
    else:
        try:
            budget = int(requested)
        except ValueError:
            raise UsageError(
                f"--thinking takes a token budget or 'adaptive', got {requested!r}"
            ) from None
        if budget < MIN_THINKING_BUDGET:
            raise UsageError(
                f"--thinking budget must be at least {MIN_THINKING_BUDGET} tokens, got {budget}"
            )
        if budget >= max_tokens:
            if args.max_tokens is not None:
                raise UsageError(
                    f"--thinking {budget} needs --max-tokens above {budget} "
                    f"(got {max_tokens}): thinking counts toward max_tokens"
                )
            # Thinking counts toward max_tokens: leave the usual room for the answer.
            max_tokens = budget + default_max_tokens
        thinking = {"type": "enabled", "budget_tokens": budget}
    # Models that omit thinking text by default return it summarized when asked; the others
    # return it anyway, and older ones may not know the field, so it is sent only where needed.
    if show and (info is None or info.thinking_display_default != "summarized"):
        thinking["display"] = "summarized"
    return thinking, max_tokens


def call_options(
    args: argparse.Namespace,
    namespace: Mapping[str, Any],
    *,
    model: str,
    max_tokens: int,
    system: str,
    info: ModelInfo | None = None,
    show_thinking: bool = False,
) -> CallOptions:
    """The call's options from the flags; ``model``, ``max_tokens``, ``system`` and
    ``show_thinking`` are the settings a flag overrides. ``info`` is what is known of the model
    (a bare ``--thinking`` becomes what it supports). ``--schema NAME`` is looked up in
    ``namespace``."""
    from ..prompt.body import CallOptions, json_schema_of

    tokens = args.max_tokens if args.max_tokens is not None else max_tokens
    if tokens < 1:
        raise UsageError(f"--max-tokens must be at least 1, got {tokens}")
    show = bool(getattr(args, "show_thinking", False) or show_thinking)
    thinking, tokens = _thinking(args, tokens, max_tokens, info, show)
    if args.temperature is not None and not 0 <= args.temperature <= 1:
        raise UsageError(f"--temperature must be between 0 and 1, got {args.temperature}")
    schema = None
    if args.schema:
        value = lookup(namespace, args.schema, "--schema")
        try:
            schema = json_schema_of(value)
        except TypeError as exc:
            raise UsageError(f"--schema {args.schema}: {exc}") from None
    return CallOptions(
        model=args.model or model,
        max_tokens=tokens,
        system=args.system if args.system is not None else system,
        temperature=args.temperature,
        stop_sequences=list(args.stop),
        thinking=thinking,
        effort=args.effort,
        schema=schema,
    )


def user_content(
    args: argparse.Namespace,
    prompt: str,
    namespace: Mapping[str, Any],
    *,
    value_budget: int,
    df_budget: int,
    df_format: Literal["csv", "markdown"],
    sample: bool,
    seed: int,
) -> list[dict[str, Any]]:
    """The user turn's content blocks: the attachments (``--pdf``, ``--file``, with citations
    on under ``--cite``; ``--search-results``, ``--image``, ``--df``), then the prompt with its
    ``{{references}}`` filled in from ``namespace`` (unless ``--no-interpolate``), each value
    cut to its token budget."""
    from .. import prompt as prompt_module

    cite = bool(getattr(args, "cite", False))
    found = getattr(args, "search_results", None) or []
    if cite and not (args.pdf or args.file or found):
        raise UsageError(
            "--cite asks for citations of documents: attach one with --pdf X or --file X "
            "(or give --search-results NAME)"
        )
    try:
        attachments: list[dict[str, Any]] = []
        for value in args.pdf:
            attachments.append(prompt_module.pdf_block(_attachment(namespace, value), cite=cite))
        for value in args.file:
            attachments.append(prompt_module.file_block(_attachment(namespace, value), cite=cite))
        for name in found:
            results = lookup(namespace, name, "--search-results")
            try:
                attachments += prompt_module.search_result_blocks(results)
            except prompt_module.PromptError as exc:
                raise UsageError(f"--search-results {name}: {exc}") from None
        for value in args.image:
            attachments.append(prompt_module.image_block(_attachment(namespace, value)))
        # With --code-execution the frames go to the sandbox as files (tooling.frames_as_files).
        for name in [] if getattr(args, "code_execution", False) else args.df:
            frame = lookup(namespace, name, "--df")
            attachments.append(
                prompt_module.dataframe_block(
                    frame, name, budget=df_budget, df_format=df_format, sample=sample, seed=seed
                )
            )
        return prompt_module.build_user_content(
            prompt,
            namespace,
            interpolate=not args.no_interpolate,
            value_budget=value_budget,
            df_budget=df_budget,
            df_format=df_format,
            sample=sample,
            seed=seed,
            last_error=prompt_module.find_last_error(),
            attachments=attachments,
        )
    except prompt_module.PromptError as exc:
        raise UsageError(str(exc)) from None


def turn_key(cell_id: str | None, line: str, prompt: str) -> str:
    """What identifies a cell's turn in its conversation, so a re-run replaces it: the front
    end's cell id when the kernel gets one, else the cell's text."""
    if cell_id:
        return f"cell:{cell_id}"
    # No cell id (terminal, some front ends): the same cell text is the same turn.
    digest = hashlib.sha1(f"{line}\n{prompt}".encode()).hexdigest()[:16]
    return f"text:{digest}"
