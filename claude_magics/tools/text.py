"""Text that tools send back: within a token budget, never half a secret, errors in few lines.

    fit(text, 2000, "ask for fewer rows")     # text, or its start and a note of what is left out
    BoundedRepr(chars=4000, redact=hide).repr(value)

Every cut here ends at a word boundary, so a string such as an API key is either whole (and the
caller's redaction replaces it) or absent: never a prefix that redaction cannot recognise.
"""

from __future__ import annotations

import builtins
import reprlib
import traceback
from collections.abc import Callable
from typing import Any

from ..prompt.budget import chars_for, estimate_tokens
from ..prompt.values import format_error

__all__ = [
    "BoundedRepr",
    "Redact",
    "error_text",
    "fit",
    "no_redaction",
    "one_line",
    "safe_end",
]

Redact = Callable[[str], str]

# How far a cut may move back to reach a boundary: keys are about 110 characters.
_BACKOFF = 256
_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def no_redaction(text: str) -> str:
    return text


def safe_end(text: str, limit: int) -> int:
    """Where to cut ``text`` at or before ``limit`` so that no whitespace-free run (a key, a
    token, a number) is split: at the last whitespace, else the last non-word character
    within a short way back, else at ``limit``."""
    if limit >= len(text):
        return len(text)
    if limit <= 0:
        return 0
    if text[limit - 1].isspace() or text[limit].isspace():
        return limit
    floor = max(limit - _BACKOFF, 0)
    for i in range(limit - 1, floor - 1, -1):
        if text[i].isspace():
            return i + 1
    for i in range(limit - 1, floor - 1, -1):
        if text[i] not in _WORD:
            return i + 1
    return limit


def _safe_start(text: str, start: int) -> int:
    # safe_end's mirror image: where a kept tail may begin without splitting a run.
    if start <= 0 or start >= len(text) or text[start - 1].isspace() or text[start].isspace():
        return min(max(start, 0), len(text))
    ceiling = min(start + _BACKOFF, len(text))
    for i in range(start, ceiling):
        if text[i].isspace():
            return i
    for i in range(start, ceiling):
        if text[i] not in _WORD:
            return i
    return start


def fit(text: str, budget: int, how_to_ask: str, *, keep_tail: bool = False) -> str:
    """``text`` if it fits ``budget`` tokens (the local estimate), else as much as fits and a
    note saying how much was left out and ``how_to_ask`` for it. ``keep_tail`` keeps the end
    too (output and tracebacks: the last lines say how it ended)."""
    if estimate_tokens(text) <= budget:
        return text
    room = max(chars_for(budget) - 120 - len(how_to_ask), 0)  # leave room for the note
    if keep_tail:
        head_end = safe_end(text, room // 3)
        tail_start = max(_safe_start(text, len(text) - (room - head_end)), head_end)
        note = f"\n… [{tail_start - head_end:,} characters left out here; {how_to_ask}]\n"
        return text[:head_end] + note + text[tail_start:]
    end = safe_end(text, room)
    return f"{text[:end]}… [{len(text) - end:,} more characters left out; {how_to_ask}]"


def one_line(text: str, width: int = 80) -> str:
    """The first non-blank line of ``text``, at most ``width`` characters."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(line) <= width:
        return line
    return line[: safe_end(line, width - 1)].rstrip() + "…"


def error_text(exc: BaseException, budget: int, *, lines: int = 12) -> str:
    """``Type: message`` first, then the last ``lines`` lines of the traceback (IPython's own
    frames left out), within ``budget`` tokens: the end of a traceback says what failed."""
    headline = f"{type(exc).__name__}: {exc}".strip()
    if isinstance(exc, SyntaxError):
        # Where the parser stopped is the whole story; the frames are the compiler's.
        where = traceback.format_exception_only(type(exc), exc)
        return fit(headline + "\n\n" + "".join(where).rstrip(), budget, "the message is cut")
    trace = format_error(exc).splitlines()
    if trace and trace[-1] == headline:
        trace = trace[:-1]  # the headline already says it
    if trace and trace[0].startswith("Traceback") and len(trace) > 1:
        tail = trace[-lines:] if len(trace) > lines else trace[1:]
        text = headline + "\n\nTraceback (last lines):\n" + "\n".join(tail)
    else:
        text = headline
    return fit(text, budget, "the traceback is cut", keep_tail=True)


class BoundedRepr(reprlib.Repr):
    """``reprlib`` with room for a useful look (dozens of items, long strings) that redacts
    every string and foreign repr *before* shortening it, and survives reprs that raise."""

    def __init__(self, chars: int, redact: Redact = no_redaction) -> None:
        super().__init__()
        self.redact = redact
        self.maxlevel = 3
        self.maxtuple = self.maxlist = self.maxarray = self.maxdeque = 40
        self.maxset = self.maxfrozenset = 40
        self.maxdict = 30
        self.maxlong = 200
        self.maxstring = max(chars, 40)
        self.maxother = max(chars, 40)

    def repr_str(self, x: str, level: int) -> str:
        text = self.redact(x)
        if len(text) <= self.maxstring:
            return builtins.repr(text)
        end = safe_end(text, self.maxstring)
        return builtins.repr(text[:end]) + f"… (+{len(text) - end:,} characters)"

    def repr_instance(self, x: Any, level: int) -> str:
        try:
            text = self.redact(builtins.repr(x))
        except Exception as exc:  # a broken __repr__ is the object's bug: say so, go on
            return f"<{type(x).__name__} object; its repr raised {type(exc).__name__}: {exc}>"
        if len(text) <= self.maxother:
            return text
        end = safe_end(text, self.maxother)
        return text[:end] + f"… (+{len(text) - end:,} characters)"
