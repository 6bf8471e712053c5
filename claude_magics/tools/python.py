"""``run_python``: Claude runs a snippet in the user's kernel, once the user says yes.

    tool = python_tool(shell, approve=lambda code: ask_yes_no(f"{code}\\nRun it? [y/N] "))
    ToolBox([tool]).run({"type": "tool_use", "id": "t1", "name": "run_python", "input": {...}})

Each snippet is shown to ``approve`` first. On a yes it runs through ``shell.run_cell`` (so
``%magics`` and ``!commands`` work and variables it defines stay), and Claude gets back what it
printed, the value of its last expression, its error and the figures it drew, all within the
budget. On a no, or with no one to ask (nbclient, CI), nothing runs: the snippet becomes a new
cell below for the user to edit and run, and the loop stops. ``shell`` is duck-typed: anything
with IPython's ``run_cell``, ``set_next_input``, ``user_ns``, ``ast_transformers``,
``set_custom_exc`` and ``events``; this module never imports IPython.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import enum
import io
import tokenize
from collections.abc import Callable, Iterator
from typing import Any

from ..prompt.budget import chars_for
from .base import Tool, ToolOutput
from .figures import figure_blocks, open_figures
from .text import BoundedRepr, error_text, fit, one_line

__all__ = ["Approval", "ask_yes_no", "python_tool"]

# Where the snippet's last value is put for a moment: a name no one else uses, and one that
# list_variables would skip (underscored) should it ever be seen.
_VALUE_NAME = "_claude_magics_run_python_value"
_MISSING = object()
_MAX_FIGURES = 4


class Approval(enum.Enum):
    """What the user said to running a snippet."""

    YES = "yes"
    NO = "no"
    NO_INPUT = "no_input"  # no one can answer here (no stdin: nbclient, CI, a closed pipe)


def ask_yes_no(prompt: str, input_fn: Callable[[str], str] | None = None) -> Approval:
    """Ask ``prompt`` with ``input_fn`` (default: ``input`` as it is when called, which
    ipykernel replaces per cell): YES only for y or yes; NO_INPUT when there is no stdin; a
    Ctrl-C at the prompt is a NO, which stops the loop."""
    ask = input_fn if input_fn is not None else builtins.input
    try:
        answer = ask(prompt)
    except KeyboardInterrupt:
        return Approval.NO
    except (EOFError, OSError):
        return Approval.NO_INPUT
    except Exception as exc:
        # ipykernel's StdinNotImplementedError (the frontend allows no input): by name, since
        # importing IPython here is not allowed.
        if any(cls.__name__ == "StdinNotImplementedError" for cls in type(exc).__mro__):
            return Approval.NO_INPUT
        raise
    return Approval.YES if answer.strip().lower() in ("y", "yes") else Approval.NO


def python_tool(
    shell: Any, *, approve: Callable[[str], Approval], budget_tokens: int = 2000
) -> Tool:
    """The ``run_python`` tool over ``shell``; ``approve`` is asked before each snippet."""

    def run(tool_input: dict[str, Any]) -> ToolOutput:
        code = tool_input["code"]
        approval = approve(code)
        if approval is not Approval.YES:
            shell.set_next_input(code, replace=False)
            if approval is Approval.NO_INPUT:
                stop = "no one to ask (no input here): the snippet is in a new cell below"
            else:
                stop = "declined: the snippet is in a new cell below"
            message = f"Not run ({stop}); nothing in the kernel changed."
            return ToolOutput(message, is_error=True, summary=stop, stop=stop)
        return _run(shell, code, budget_tokens)

    schema = {
        "type": "object",
        "properties": {
            "code": {
                "type": "string",
                "description": "Python to run in the kernel; IPython syntax (%magics) works.",
            }
        },
        "required": ["code"],
        "additionalProperties": False,
    }
    description = (
        "Run Python code in the user's Jupyter kernel, after the user approves it. The "
        "notebook's variables are available and what the code defines stays. Returns what it "
        "printed (stdout, stderr), the value of its last expression, the error if it raised, "
        "and new matplotlib figures as images. Prefer small, read-only snippets; if the user "
        "declines, the snippet is put in a new cell for them and the conversation ends."
    )
    return Tool("run_python", description, schema, run)


class _LastValue(ast.NodeTransformer):
    """Turns a cell's final expression into an assignment to ``_VALUE_NAME``: the value
    IPython would have shown as ``Out[n]``, captured without its displayhook."""

    def visit_Module(self, node: ast.Module) -> ast.Module:
        if node.body and isinstance(node.body[-1], ast.Expr):
            last = node.body[-1]
            target = ast.Name(id=_VALUE_NAME, ctx=ast.Store())
            node.body[-1] = ast.copy_location(ast.Assign(targets=[target], value=last.value), last)
            ast.fix_missing_locations(node)
        return node


def _ends_with_semicolon(code: str) -> bool:
    # IPython's rule: a trailing ";" means "show no value".
    last = None
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            if token.type not in (
                tokenize.NEWLINE,
                tokenize.NL,
                tokenize.COMMENT,
                tokenize.ENDMARKER,
                tokenize.INDENT,
                tokenize.DEDENT,
            ):
                last = token
    except (tokenize.TokenError, SyntaxError):
        return False
    return last is not None and last.string == ";"


@contextlib.contextmanager
def _borrowed(shell: Any, capture_value: bool, collect: Callable[[], None]) -> Iterator[None]:
    """For one run_cell: the last-value transformer, errors kept for Claude rather than
    printed, a figure collector that runs before the inline backend closes figures, and the
    outer cell's ExecutionResult kept; everything is put back afterwards."""
    transformer = _LastValue() if capture_value else None
    transformers = getattr(shell, "ast_transformers", None)
    if transformer is not None and isinstance(transformers, list):
        transformers.append(transformer)
    # IPython would print the traceback into the captured stdout (a terminal) or into the cell
    # (a kernel); Claude gets it from result.error_in_exec instead. set_custom_exc is IPython's
    # public hook for this; the previous handler is put back afterwards.
    saved_exc = (getattr(shell, "custom_exceptions", ()), getattr(shell, "CustomTB", None))
    if callable(getattr(shell, "set_custom_exc", None)):
        shell.set_custom_exc((Exception,), _quiet_handler)
    callbacks = getattr(getattr(shell, "events", None), "callbacks", None)
    post_execute = callbacks.get("post_execute") if isinstance(callbacks, dict) else None
    if isinstance(post_execute, list):
        # First in line: matplotlib-inline's flush_figures, also a post_execute callback,
        # shows and closes new figures; the collector must see them before that.
        post_execute.insert(0, collect)
    # run_cell ends by clearing the displayhook's ExecutionResult: from inside a running cell
    # (the magic's), that would lose the outer cell's own result. Keep it.
    displayhook = getattr(shell, "displayhook", None)
    outer_result = getattr(displayhook, "exec_result", None)
    try:
        yield
    finally:
        if displayhook is not None and hasattr(displayhook, "exec_result"):
            displayhook.exec_result = outer_result
        if isinstance(post_execute, list) and collect in post_execute:
            post_execute.remove(collect)
        if callable(getattr(shell, "set_custom_exc", None)):
            shell.custom_exceptions, shell.CustomTB = saved_exc
        if transformer is not None and isinstance(transformers, list):
            with contextlib.suppress(ValueError):  # IPython drops a transformer that failed
                transformers.remove(transformer)


def _quiet_handler(
    shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None
) -> list[str]:
    return []  # shown to no one here: the error goes back to Claude


def _run(shell: Any, code: str, budget: int) -> ToolOutput:
    existing = open_figures()  # held, so that no new figure can reuse an old one's id
    before = {id(fig) for fig in existing}
    drawn: dict[int, Any] = {}

    def collect() -> None:
        for fig in open_figures():
            if id(fig) not in before:
                drawn.setdefault(id(fig), fig)

    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        # silent: no displayhook (no Out[n] printed or sent to the cell, `_` untouched), no
        # pre/post_run_cell hooks of other extensions, no history.
        with (
            _borrowed(shell, not _ends_with_semicolon(code), collect),
            contextlib.redirect_stdout(stdout),
            contextlib.redirect_stderr(stderr),
        ):
            result = shell.run_cell(code, store_history=False, silent=True)
        collect()  # backends other than inline leave figures open: catch them here
    finally:
        value = shell.user_ns.pop(_VALUE_NAME, _MISSING)
    error = getattr(result, "error_before_exec", None) or getattr(result, "error_in_exec", None)
    if isinstance(error, KeyboardInterrupt):
        raise error  # Ctrl-C while the snippet ran: the user wants the loop to stop
    return _output(stdout.getvalue(), stderr.getvalue(), value, error, list(drawn.values()), budget)


def _output(
    out: str, err: str, value: Any, error: BaseException | None, figures: list[Any], budget: int
) -> ToolOutput:
    shown = figures[:_MAX_FIGURES]
    # Text first, images after: with figures, text has half the budget, the images the rest.
    text_budget = budget // 2 if shown else budget
    ask = "print less, or print a part"
    sections: list[str] = []
    if error is not None:
        sections.append("error: " + error_text(error, text_budget * 2 // 5))
    if value is not _MISSING and value is not None:
        sections.append("result: " + BoundedRepr(chars_for(text_budget)).repr(value))
        sections[-1] = fit(sections[-1], text_budget * 3 // 10, "the value is cut; ask for less")
    if err:
        sections.append("stderr:\n" + fit(err, text_budget // 4, ask, keep_tail=True))
    if out:
        used = sum(len(s) for s in sections) * 2 // 7  # the local estimate: 3.5 chars a token
        room = max(text_budget - used, text_budget * 3 // 10)
        sections.append("stdout:\n" + fit(out, room, ask, keep_tail=True))
    if shown:
        more = f" ({len(figures) - len(shown)} more not shown)" if len(figures) > len(shown) else ""
        sections.append(f"{len(figures)} new figure(s), as images below{more}.")
    text = "\n\n".join(sections) or "Ran; it printed nothing and its last line has no value."
    text = fit(text, text_budget, ask, keep_tail=True)

    summary = _summary(out, value, error, len(figures))
    if not shown:
        return ToolOutput(text, is_error=error is not None, summary=summary)
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}]
    per_figure = max((budget - text_budget) // len(shown), 100)
    for fig in shown:
        try:
            blocks.extend(figure_blocks(fig, per_figure))
        except Exception as exc:  # a figure that cannot draw itself: say so, keep the rest
            blocks.append({"type": "text", "text": f"a figure could not be drawn: {exc!r}"})
    return ToolOutput(blocks, is_error=error is not None, summary=summary)


def _summary(out: str, value: Any, error: BaseException | None, figures: int) -> str:
    if error is not None:
        return one_line(f"{type(error).__name__}: {error}", 100)
    parts = ["ran"]
    if out:
        lines = out.count("\n") + (not out.endswith("\n"))
        parts.append(f"{lines} line{'s' if lines != 1 else ''} printed")
    if value is not _MISSING and value is not None:
        parts.append("→ " + one_line(BoundedRepr(60).repr(value), 60))
    if figures:
        parts.append(f"{figures} figure{'s' if figures != 1 else ''}")
    return ", ".join(parts)
