"""Notebook values as prompt text, and the last error as a traceback.

    render_value({"a": 1})          # -> '{"a": 1}'
    format_error(find_last_error())

Strings as they are, lists/tuples/dicts/sets as JSON, numbers and anything else by ``repr``;
DataFrames and Series through :mod:`.dataframes`; long values are cut with a marker that names
the budget to raise.
"""

from __future__ import annotations

import json
import os
import re
import sys
import traceback
from types import TracebackType
from typing import Any

from ..errors import PromptError
from .budget import (
    DEFAULT_DF_BUDGET,
    DEFAULT_VALUE_BUDGET,
    VALUE_BUDGET_HINT,
    cut,
)
from .dataframes import DfFormat, dataframe_text, pandas_kind

__all__ = ["find_last_error", "format_error", "render_value"]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset)):
        try:
            return sorted(obj)
        except TypeError:
            return list(obj)
    if _is_numpy_scalar(obj):
        return obj.item()
    return str(obj)


def _is_numpy_scalar(value: Any) -> bool:
    return type(value).__module__ == "numpy" and getattr(value, "shape", None) == ()


def render_value(
    value: Any,
    *,
    name: str | None = None,
    budget: int = DEFAULT_VALUE_BUDGET,
    df_budget: int = DEFAULT_DF_BUDGET,
    df_format: DfFormat = "csv",
    sample: bool = False,
    seed: int = 0,
) -> str:
    """The text Claude sees for ``value``, at most about ``budget`` tokens.

    Strings as they are; lists, tuples, dicts and sets as one-line JSON (``str`` for what JSON
    cannot hold); numbers and everything else by ``repr``. A pandas DataFrame or Series becomes
    a :func:`dataframe_text` block of at most ``df_budget`` tokens. Longer text is cut with a
    marker saying how much was left out and which budget to raise.
    """
    if pandas_kind(value) is not None:
        return dataframe_text(
            value, name, budget=df_budget, df_format=df_format, sample=sample, seed=seed
        )
    label = "{{" + name + "}}" if name else "the value"
    try:
        if isinstance(value, str):
            text = value
        elif isinstance(value, (list, tuple, dict, set, frozenset)):
            text = _to_json(value)
        elif _is_numpy_scalar(value):
            text = repr(value.item())  # 3.5, not np.float64(3.5)
        else:
            text = repr(value)  # numbers too: repr is exact where str may not be
    except Exception as exc:  # a broken __repr__ is the object's bug; name it, don't crash
        raise PromptError(
            f"{label}: could not turn it into text: {type(exc).__name__}: {exc}"
        ) from exc
    return cut(text, budget, VALUE_BUDGET_HINT)


def _to_json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    except (TypeError, ValueError):
        # Keys JSON cannot hold (tuples) or a container that contains itself: repr copes.
        return repr(value)


def find_last_error() -> BaseException | None:
    """The last exception the notebook showed, or None.

    IPython stores it in ``sys.last_value`` (and ``sys.last_exc`` on Python 3.12+) each time it
    prints a traceback; the plain Python REPL does the same. Pass the result to
    :func:`build_user_content` as ``last_error`` so that ``{{_error}}`` can show it.
    """
    exc = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    return exc if isinstance(exc, BaseException) else None


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def _skip_ipython_frames(tb: TracebackType | None) -> TracebackType | None:
    # IPython's run_code frame (``exec(code_obj, ...)``) sits above every cell's frames; IPython
    # hides it when it prints the traceback, and so do we.
    marker = os.path.join("IPython", "core", "interactiveshell.py")
    while tb is not None and tb.tb_frame.f_code.co_filename.endswith(marker):
        tb = tb.tb_next
    return tb


def format_error(exc: BaseException) -> str:
    """An exception as plain text: its traceback (chained causes included), then its type and
    message, without IPython's own frames or ANSI colour codes."""
    lines = traceback.format_exception(type(exc), exc, _skip_ipython_frames(exc.__traceback__))
    return _ANSI.sub("", "".join(lines)).rstrip("\n")
