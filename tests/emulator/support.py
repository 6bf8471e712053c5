"""What the emulator tests share: one request-body builder and a few readers of replies.

body("Hi [[reply_tokens=5]]", max_tokens=50)    # a /v1/messages body for MODEL
count_body(body(system="Be brief."))            # the same request for count_tokens
text_of(message), kinds(message)                # the reply's text, its block types
"""

from __future__ import annotations

from typing import Any

__all__ = ["MODEL", "body", "count_body", "kinds", "text_of"]

#: The model most tests talk to: a legacy model whose rules are the most permissive of the
#: 1M-context line (sampling without thinking, budgets, adaptive thinking); the rules of the
#: current models have tests of their own in test_models_and_rules.py.
MODEL = "claude-sonnet-4-6"


def body(
    content: str | list[dict[str, Any]] = "Hello there",
    *,
    model: str = MODEL,
    max_tokens: int = 1000,
    **extra: Any,
) -> dict[str, Any]:
    """A /v1/messages body with one user message (text or blocks); ``extra`` adds or replaces
    fields (``messages=[...]`` replaces the conversation)."""
    return {
        "model": model,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": content}],
        **extra,
    }


def count_body(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` as a count_tokens body (which takes no max_tokens and no stream)."""
    return {k: v for k, v in payload.items() if k not in ("max_tokens", "stream")}


def text_of(message: dict[str, Any]) -> str:
    """The text of a Message's text blocks, joined."""
    return "".join(b["text"] for b in message["content"] if b["type"] == "text")


def kinds(message: dict[str, Any]) -> list[str]:
    """The types of a Message's content blocks, in order."""
    return [b["type"] for b in message["content"]]
