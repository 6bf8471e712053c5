"""Token budgets for prompt text: a local estimate and cutting text to fit.

    estimate_tokens("some text")                 # -> 3
    cut(text, 500, "raise ClaudeMagics.value_token_budget")

No offline tokenizer exists for current Claude models, so budgets are estimates; the API's
``count_tokens`` gives exact figures where they matter (``--count``, the budget check).
"""

from __future__ import annotations

__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_DF_BUDGET",
    "DEFAULT_VALUE_BUDGET",
    "DF_BUDGET_HINT",
    "VALUE_BUDGET_HINT",
    "chars_for",
    "cut",
    "estimate_tokens",
    "plural",
]

#: Average characters per token assumed by :func:`estimate_tokens`.
CHARS_PER_TOKEN = 3.5
DEFAULT_VALUE_BUDGET = 8000
DEFAULT_DF_BUDGET = 4000

# Where users raise each budget; named in the markers so the fix is one copy-paste away.
VALUE_BUDGET_HINT = "raise ClaudeMagics.value_token_budget"
DF_BUDGET_HINT = "raise ClaudeMagics.df_token_budget"


def estimate_tokens(text: str) -> int:
    """Estimate how many tokens ``text`` is: ``ceil(len(text) / 3.5)``.

    Only an estimate, made locally without a tokenizer: English prose runs near 4 characters a
    token, code, numbers and CSV nearer 3, and newer models (4.7 on) count about 30% more.
    Use ``POST /v1/messages/count_tokens`` for a figure from the API.
    """
    return -(-2 * len(text) // 7)  # ceil(n / 3.5) in integers: no float rounding surprises


def chars_for(tokens: int) -> int:
    """The number of characters that :func:`estimate_tokens` counts as ``tokens``."""
    return max(tokens, 0) * 7 // 2


def cut(text: str, budget: int, hint: str, *, keep_tail: bool = False) -> str:
    """``text`` if it fits ``budget`` tokens, else its start (or start and end) and a marker."""
    limit = chars_for(budget)
    if len(text) <= limit:
        return text
    note = f"; budget {budget:,} tokens — {hint}]"
    if keep_tail:
        # Tracebacks: the first frames say where it started, the last ones what failed.
        head = limit // 3
        tail = limit - head
        omitted = len(text) - limit
        middle = f"\n… [cut: {omitted:,} characters here{note}\n"
        return text[:head] + middle + (text[-tail:] if tail else "")
    return f"{text[:limit]}… [cut: {len(text) - limit:,} more characters{note}"


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")
