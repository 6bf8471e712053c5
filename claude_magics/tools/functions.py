"""Plain Python functions as tools: the input schema from the signature and type hints, the
description from the docstring (Google, NumPy or reST), the result as text within a budget.

    tool = function_tool(lookup_price)     # def lookup_price(sku: str, qty: int = 1) -> float
    ToolBox([tool]).run({"type": "tool_use", "id": "t1", "name": "lookup_price", "input": {...}})

The input is checked against the schema before the call (by the ToolBox), then turned into what
the hints promise: Enum members, dataclasses, pydantic models, tuples, sets. A function that
raises gives an error result (``Type: message`` and the last lines of its traceback); nothing
it does escapes the loop except KeyboardInterrupt.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import inspect
import json
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docstring_parser

from ..errors import ToolDescriptionError
from ..prompt.budget import chars_for
from ..prompt.dataframes import pandas_kind
from ..prompt.values import render_value
from .base import Tool, ToolOutput
from .schema import Node, SchemaBuilder, Undescribable, json_default
from .text import BoundedRepr, error_text, fit, one_line, safe_end

__all__ = ["function_tool", "result_text"]

_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# What the API accepts as a property name in input_schema.
_PROPERTY_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,64}$")
# Enough prose to say what the tool is for; the arguments' own words go in the schema.
_DESCRIPTION_CHARS = 2000


@dataclass(frozen=True)
class _Param:
    name: str
    kind: inspect._ParameterKind
    default: Any
    node: Node


def function_tool(fn: Callable[..., Any], *, budget_tokens: int = 2000) -> Tool:
    """``fn`` as a :class:`Tool` named ``fn.__name__``; its result cut to ``budget_tokens``.

    Raises :class:`ToolDescriptionError` (one line: the tool, the parameter, what to change)
    when the function cannot be described: a lambda, ``*args``/``**kwargs``, a parameter
    without a type hint or with one JSON cannot express, an async function.
    """
    name = _tool_name(fn)
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        raise ToolDescriptionError(f"tool {name}: async functions cannot be tools; use a def")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ToolDescriptionError(f"tool {name}: its signature cannot be read ({exc})") from None
    try:
        # A class's parameters are its __init__'s; get_type_hints(cls) gives its attributes.
        hints = typing.get_type_hints(
            getattr(fn, "__init__") if isinstance(fn, type) else fn,  # noqa: B009
            include_extras=True,
        )
    except Exception as exc:  # a string annotation naming nothing: NameError and the like
        raise ToolDescriptionError(
            f"tool {name}: its type hints cannot be read ({type(exc).__name__}: {exc})"
        ) from None
    doc = _parse_doc(inspect.getdoc(fn) or "")
    arg_docs = {p.arg_name: p.description for p in doc.params if p.description}

    builder = SchemaBuilder()
    params: list[_Param] = []
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in signature.parameters.values():
        params.append(_describe(name, param, hints, builder))
        schema = dict(params[-1].node.schema)
        if param.name in arg_docs and "description" not in schema:
            schema["description"] = arg_docs[param.name].strip()
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
        else:
            ok, default = json_default(param.default)
            if ok:
                schema["default"] = default
        properties[param.name] = schema

    input_schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        input_schema["required"] = required
    input_schema["additionalProperties"] = False
    if builder.defs:
        input_schema["$defs"] = builder.defs
    builder.root = input_schema

    def run(tool_input: dict[str, Any]) -> ToolOutput:
        return _call(fn, params, tool_input, budget_tokens)

    # The signature with its hints resolved: `x: int`, not the string `x: 'int'`.
    shown = signature.replace(
        parameters=[
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in signature.parameters.values()
        ],
        return_annotation=hints.get("return", signature.return_annotation),
    )
    return Tool(name, _description(name, shown, doc), input_schema, run)


def _tool_name(fn: Any) -> str:
    name = getattr(fn, "__name__", None)
    if not callable(fn) or not isinstance(name, str):
        shown = one_line(repr(fn), 40)
        raise ToolDescriptionError(
            f"tool {shown}: not a function with a name (a functools.partial or a callable "
            "object? wrap it in a def)"
        )
    if name == "<lambda>":
        raise ToolDescriptionError(
            "tool <lambda>: a lambda has no name the API accepts and no type hints; "
            "define it with def and hint its parameters (`x: int`)"
        )
    if not _TOOL_NAME.match(name):
        raise ToolDescriptionError(
            f"tool {name}: the API accepts tool names of 1 to 64 ASCII letters, digits, _ and -"
        )
    return name


def _describe(
    tool: str, param: inspect.Parameter, hints: dict[str, Any], builder: SchemaBuilder
) -> _Param:
    where = f"tool {tool}: parameter `{param.name}`"
    if param.kind is inspect.Parameter.VAR_POSITIONAL:
        raise ToolDescriptionError(
            f"tool {tool}: `*{param.name}` cannot be described: tool input has named fields "
            f"only (take `{param.name}: list[...]` instead)"
        )
    if param.kind is inspect.Parameter.VAR_KEYWORD:
        raise ToolDescriptionError(
            f"tool {tool}: `**{param.name}` cannot be described: name each parameter "
            f"(or take `{param.name}: dict[str, ...]`)"
        )
    if not _PROPERTY_NAME.match(param.name):
        raise ToolDescriptionError(
            f"{where}: the API accepts parameter names of ASCII letters, digits, _, . and -"
        )
    if param.name not in hints:
        raise ToolDescriptionError(
            f"{where} has no type hint the API can describe (add one, e.g. `{param.name}: str`)"
        )
    try:
        node = builder.node(hints[param.name])
    except Undescribable as exc:
        raise ToolDescriptionError(f"{where}: {exc}") from None
    return _Param(param.name, param.kind, param.default, node)


def _parse_doc(text: str) -> docstring_parser.Docstring:
    try:
        return docstring_parser.parse(text)
    except docstring_parser.ParseError:
        # A docstring no style can parse is still prose: all of it is the description.
        fallback = docstring_parser.Docstring()
        fallback.short_description = text
        return fallback


def _description(name: str, signature: inspect.Signature, doc: docstring_parser.Docstring) -> str:
    parts = [doc.short_description, doc.long_description]
    if doc.returns is not None and doc.returns.description:
        parts.append(f"Returns: {doc.returns.description}")
    text = "\n\n".join(p.strip() for p in parts if p and p.strip())
    if not text:
        # The API takes a tool without a description; Claude uses one far better with it.
        return f"Calls the Python function {name}{signature}."
    if len(text) > _DESCRIPTION_CHARS:
        text = text[: safe_end(text, _DESCRIPTION_CHARS)].rstrip() + "…"
    return text


def _call(
    fn: Callable[..., Any], params: list[_Param], tool_input: dict[str, Any], budget: int
) -> ToolOutput:
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for param in params:
        if param.name in tool_input:
            try:
                value = param.node.to_python(tool_input[param.name])
            except Exception as exc:  # a pydantic validator, an Enum value, __post_init__
                message = f"input `{param.name}` was refused: {_one_line_error(exc)}"
                return ToolOutput(message, is_error=True, summary=one_line(message))
        elif param.kind is inspect.Parameter.POSITIONAL_ONLY:
            value = param.default  # a later positional may be given: this one must be passed
        else:
            continue
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            args.append(value)
        else:
            kwargs[param.name] = value
    try:
        result = fn(*args, **kwargs)
    except (Exception, SystemExit) as exc:
        # Leave out this frame: the traceback is the function's, not the loop's.
        if exc.__traceback__ is not None:
            exc.__traceback__ = exc.__traceback__.tb_next
        return ToolOutput(
            error_text(exc, budget), is_error=True, summary=one_line(_headline(exc), 100)
        )
    text = result_text(result, budget)
    return ToolOutput(text, summary=one_line(text))


def _headline(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _one_line_error(exc: BaseException) -> str:
    # pydantic's ValidationError spans lines and ends in a link; one line keeps what matters.
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("For further information")]
    return one_line(f"{type(exc).__name__}: " + "; ".join(lines), 300)


def result_text(value: Any, budget: int) -> str:
    """A function's return value as text of at most about ``budget`` tokens: a string as it
    is, a DataFrame or Series as the prompt shows them, else JSON when it can be, else a
    bounded repr."""
    if pandas_kind(value) is not None:
        return render_value(value, budget=budget, df_budget=budget)
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=_to_json)
        except (TypeError, ValueError, RecursionError):
            text = BoundedRepr(chars_for(budget)).repr(value)
    return fit(text, budget, f"the result is cut at about {budget:,} tokens; ask for less")


def _to_json(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        ok, items = json_default(list(value))
        return sorted(items, key=str) if ok else list(value)
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    dump = getattr(type(value), "model_dump", None)
    if callable(dump):  # a pydantic model: its own JSON form
        return dump(value, mode="json")
    if type(value).__module__ == "numpy" and callable(getattr(value, "tolist", None)):
        if getattr(value, "size", 1) <= 100_000:
            return value.tolist()  # numpy scalars and arrays
        raise TypeError("a large array: numpy's repr summarises it")
    raise TypeError(type(value).__name__)
