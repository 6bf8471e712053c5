"""``{{references}}`` in cell text: find them, resolve them, fill them in.

    interpolate_text("Why is {{df.columns[0]}} empty?", shell.user_ns)

``{{name}}``, ``{{name.attr}}``, ``{{name[0]}}``, ``{{name['key']}}`` and chains of those are
replaced by the value they name in the notebook; ``{{_error}}`` is the last exception with its
traceback. Nothing else in the cell changes: code with braces, f-strings, LaTeX, JSON and Jinja
tags pass through byte for byte (a template's own ``{{ user.name }}`` is a reference too: send
templates with interpolation off). References are resolved with ``getattr`` and ``[]`` only
(never ``eval``), and attributes starting with ``_`` are refused, so a prompt cannot call code
beyond what reading an attribute or an item does.
"""

from __future__ import annotations

import difflib
import itertools
import keyword
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..errors import PromptError
from .budget import (
    DEFAULT_DF_BUDGET,
    DEFAULT_VALUE_BUDGET,
    VALUE_BUDGET_HINT,
    cut,
)
from .dataframes import DfFormat, pandas_kind
from .values import format_error, render_value

__all__ = ["interpolate_text", "resolve_reference", "substitute_references", "template_references"]

_IDENT = r"[^\W\d]\w*"
_KEY = r"""\[(?:-?[0-9]+|'[^'\\\n]*'|"[^"\\\n]*")\]"""
# Exactly two braces on each side: ``{{{x}}}`` (an f-string brace around ``{x}``, or a
# Handlebars raw block) is left alone. Only spaces and tabs may pad the reference.
_REFERENCE = re.compile(
    rf"(?<!\{{)\{{\{{[ \t]*(?P<ref>(?P<head>{_IDENT})(?:\.{_IDENT}|{_KEY})*)[ \t]*\}}\}}(?!\}})"
)
_STEP = re.compile(
    rf"""\.(?P<attr>{_IDENT})|\[(?:(?P<int>-?[0-9]+)|'(?P<sq>[^']*)'|"(?P<dq>[^"]*)")\]"""
)
_HEAD = re.compile(_IDENT)
# Underscore names IPython itself defines: _ __ ___ (last outputs), _N (output N), _i _ii _iii
# and _iN (inputs). ``_error`` is ours and comes from the ``last_error`` argument.
_IPYTHON_NAME = re.compile(r"_{1,3}|_[0-9]+|_i{1,3}|_i[0-9]+")
_ERROR_NAME = "_error"


def _parse_reference(ref: str) -> tuple[str, list[str | int]]:
    """Split ``a.b[0]['c']`` into ``"a"`` and its steps ``[".b", 0, "[c"]``: an attribute is
    ``"." + name``, an integer key an int, a string key ``"[" + key``."""
    head = _HEAD.match(ref)
    assert head is not None  # _REFERENCE only matches references that start with a name
    steps: list[str | int] = []
    pos = head.end()
    while pos < len(ref):
        step = _STEP.match(ref, pos)
        assert step is not None
        if step["attr"] is not None:
            steps.append("." + step["attr"])
        elif step["int"] is not None:
            steps.append(int(step["int"]))
        else:
            steps.append("[" + (step["sq"] if step["sq"] is not None else step["dq"]))
        pos = step.end()
    return head.group(), steps


def _suggest(word: str, candidates: Iterable[Any]) -> str:
    """ " (did you mean 'df'?)" for the closest public name among ``candidates``, else ""."""
    names = [c for c in itertools.islice(candidates, 10_000) if isinstance(c, str)]
    match = difflib.get_close_matches(word, [n for n in names if not n.startswith("_")], n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _resolve(ref: str, namespace: Mapping[str, Any], last_error: BaseException | None) -> Any:
    """The value ``ref`` names: a namespace lookup, then getattr/getitem steps, nothing else."""
    label = "{{" + ref + "}}"
    name, steps = _parse_reference(ref)
    if name == _ERROR_NAME:
        if last_error is None:
            raise PromptError(f"{label}: there is no error to show; nothing has failed yet")
        value: Any = last_error
    elif name.startswith("_") and not _IPYTHON_NAME.fullmatch(name):
        raise PromptError(
            f"{label}: names starting with '_' are private; only _error and IPython's "
            "_, __, ___, _N and _iN can be referenced"
        )
    elif name in namespace:
        value = namespace[name]
    else:
        hint = _suggest(name, namespace)
        raise PromptError(f"{label}: no variable named {name!r} in the notebook{hint}")

    path = name
    for step in steps:
        if isinstance(step, str) and step.startswith("."):
            value = _get_attribute(value, step[1:], path, label)
            path += step
        else:
            key: int | str = step if isinstance(step, int) else step[1:]
            value = _get_item(value, key, path, label)
            path += f"[{key!r}]"
    return value


def _get_attribute(value: Any, attr: str, path: str, label: str) -> Any:
    if attr.startswith("_"):
        raise PromptError(f"{label}: attributes starting with '_' cannot be referenced ({attr})")
    try:
        return getattr(value, attr)
    except AttributeError:
        hint = _suggest(attr, dir(value))
        kind = type(value).__name__
        raise PromptError(f"{label}: {path} ({kind}) has no attribute {attr!r}{hint}") from None
    except Exception as exc:  # a property that raised: report it, as a one-line error
        raise PromptError(
            f"{label}: reading {path}.{attr} raised {type(exc).__name__}: {exc}"
        ) from exc


def _get_item(value: Any, key: int | str, path: str, label: str) -> Any:
    kind = type(value).__name__
    try:
        return value[key]
    except KeyError:
        hint = ""
        if isinstance(key, str) and isinstance(value, Mapping):
            hint = _suggest(key, value)
        elif isinstance(key, str) and pandas_kind(value) == "DataFrame":
            hint = _suggest(key, value.columns)
        raise PromptError(f"{label}: {path} ({kind}) has no key {key!r}{hint}") from None
    except IndexError:
        size = _length(value)
        raise PromptError(
            f"{label}: index {key} is out of range for {path} ({kind}{size})"
        ) from None
    except TypeError as exc:
        raise PromptError(
            f"{label}: {path} ({kind}) cannot be indexed with {key!r}: {exc}"
        ) from exc
    except Exception as exc:
        raise PromptError(
            f"{label}: reading {path}[{key!r}] raised {type(exc).__name__}: {exc}"
        ) from exc


def _length(value: Any) -> str:
    try:
        return f" of length {len(value)}"
    except Exception:
        return ""


def interpolate_text(
    text: str,
    namespace: Mapping[str, Any],
    *,
    value_budget: int = DEFAULT_VALUE_BUDGET,
    df_budget: int = DEFAULT_DF_BUDGET,
    df_format: DfFormat = "csv",
    sample: bool = False,
    seed: int = 0,
    last_error: BaseException | None = None,
) -> str:
    """Replace each ``{{reference}}`` in ``text`` by the text of the value it names.

    A reference is a name followed by any number of ``.attr``, ``[int]``, ``['str']`` or
    ``["str"]`` steps, inside exactly two braces, optionally padded with spaces or tabs; a
    Python keyword (``{{ and }}``, ``{{None}}``) is never a name. Everything else is returned
    byte for byte, and inserted values are not scanned again. ``{{_error}}`` renders
    ``last_error`` (see :func:`format_error`). Raises :class:`PromptError` naming the first
    reference that fails.
    """
    rendered: dict[str, str] = {}

    def replace(match: re.Match[str]) -> str:
        ref = match["ref"]
        if keyword.iskeyword(match["head"]):
            # No variable can be called ``and`` or ``None``: ``f"{{ and }}"`` is just text.
            return match.group()
        if ref not in rendered:
            value = _resolve(ref, namespace, last_error)
            if ref == _ERROR_NAME:
                rendered[ref] = cut(
                    format_error(value), value_budget, VALUE_BUDGET_HINT, keep_tail=True
                )
            else:
                rendered[ref] = render_value(
                    value,
                    name=ref,
                    budget=value_budget,
                    df_budget=df_budget,
                    df_format=df_format,
                    sample=sample,
                    seed=seed,
                )
        return rendered[ref]

    return _REFERENCE.sub(replace, text)


def template_references(text: str) -> list[str]:
    """The distinct ``{{references}}`` of ``text`` in order of first appearance, written as in
    the text without padding (``"review"``, ``"meta['title']"``); keywords are not references.

    The grammar is :func:`interpolate_text`'s, so a row template (``df.claude.map``) reads
    exactly like a ``%%claude`` cell.
    """
    seen: dict[str, None] = {}
    for match in _REFERENCE.finditer(text):
        if not keyword.iskeyword(match["head"]):
            seen.setdefault(match["ref"], None)
    return list(seen)


def substitute_references(text: str, replace: Callable[[str], str]) -> str:
    """``text`` with each ``{{reference}}`` replaced by ``replace(reference)``; everything else,
    braces included, byte for byte (the rules of :func:`interpolate_text`)."""

    def sub(match: re.Match[str]) -> str:
        if keyword.iskeyword(match["head"]):
            return match.group()
        return replace(match["ref"])

    return _REFERENCE.sub(sub, text)


def resolve_reference(ref: str, namespace: Mapping[str, Any]) -> Any:
    """The value ``ref`` (as :func:`template_references` gives it) names in ``namespace``:
    getattr and ``[]`` steps only, never ``eval``. Raises :class:`PromptError` naming it."""
    return _resolve(ref, namespace, None)
