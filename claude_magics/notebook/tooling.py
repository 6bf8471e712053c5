"""From ``%%claude``'s tool flags to the tools a request offers and the box that runs them.

    toolbox, definitions = cell_tools(args, shell, client, approval="ask", budget_tokens=2000)
    offer_tools(body, definitions, conversation.tools(key))

``--tools f,g`` (notebook functions, described from their signatures and docstrings),
``--inspect`` (read-only looks at the kernel's variables), ``--python`` (a ``run_python`` tool
that runs a snippet only after a yes at a ``[y/N]`` prompt), ``--web`` and ``--code-execution``
(Anthropic's server tools: named in the request, run by Anthropic). A function that cannot be
described, a name that is not a function, or a flag that makes no sense here is one line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from .request import lookup
from .tool_loop import CODE_EXECUTION_TOOLS, WEB_TOOLS

if TYPE_CHECKING:
    from ..api.client import Client
    from ..api.uploads import Uploads
    from ..tools import Approval, ToolBox

__all__ = ["cell_tools", "frames_as_files", "offer_tools", "uses_tools"]

#: What the prompt before a snippet asks.
RUN_QUESTION = "Run this snippet in the kernel? [y/N] "


def uses_tools(args: Any) -> bool:
    """Whether the cell's flags ask for any tool (so the call becomes a tool loop)."""
    return bool(args.tools or args.inspect or args.python or args.web or args.code_execution)


def _approver(shell: Any, mode: str) -> Callable[[str], Approval]:
    """Show a snippet, then ask for a yes: IPython's ``input`` reaches JupyterLab, VS Code and
    the terminal; where no one can answer (nbclient, CI) nothing runs."""
    from ..tools import Approval
    from ..tools.python import ask_yes_no
    from .content import fence
    from .views import display

    def approve(code: str) -> Approval:
        terminal = getattr(shell, "kernel", None) is None
        if terminal:
            print(f"Claude wants to run:\n{code}", flush=True)
        else:
            display(
                {
                    "text/markdown": f"**Claude wants to run:**\n\n{fence(code, 'python')}",
                    "text/plain": f"Claude wants to run:\n{code}",
                },
                raw=True,
            )
        if mode == "never":
            print(
                "ClaudeMagics.python_approval is 'never': the snippet goes into a new cell.",
                file=sys.stderr,
            )
            return Approval.NO
        return ask_yes_no(RUN_QUESTION)

    return approve


def cell_tools(
    args: Any,
    shell: Any,
    client: Client,
    *,
    approval: str,
    budget_tokens: int,
) -> tuple[ToolBox | None, list[dict[str, Any]]]:
    """The box of client tools the flags ask for (None: none) and every tool definition the
    request offers (client tools first, then Anthropic's)."""
    if not uses_tools(args):
        return None, []
    from ..errors import ClaudeError
    from ..tools import ToolBox, function_tool, inspection_tools, python_tool

    namespace: Mapping[str, Any] = shell.user_ns

    def redact(text: str) -> str:
        return str(client.redact_key(text)[0])

    tools = []
    for name in [n.strip() for n in (args.tools or "").split(",") if n.strip()]:
        fn = lookup(namespace, name, "--tools")
        if not callable(fn):
            raise UsageError(f"--tools {name}: {type(fn).__name__} is not a function")
        try:
            tools.append(function_tool(fn))
        except ClaudeError as exc:
            raise UsageError(str(exc)) from None
    if args.tools is not None and not tools:
        raise UsageError("--tools needs function names, e.g. --tools lookup_price,convert")
    if args.inspect:
        tools += inspection_tools(
            namespace, redact=redact, budget_tokens=budget_tokens, fixed_names=not args.python
        )
    if args.python:
        tools.append(
            python_tool(shell, approve=_approver(shell, approval), budget_tokens=budget_tokens)
        )
    server: list[dict[str, Any]] = []
    if args.web:
        server += [dict(tool) for tool in WEB_TOOLS]
    if args.code_execution:
        server += [dict(tool) for tool in CODE_EXECUTION_TOOLS]
    try:
        box = ToolBox(tools, redact=redact) if tools else None
    except ClaudeError as exc:
        raise UsageError(str(exc)) from None
    names = {t.name for t in tools}
    clash = names & {str(t["name"]) for t in server}
    if clash:
        raise UsageError(f"--tools {', '.join(sorted(clash))}: that name is Anthropic's tool")
    return box, (box.definitions() if box else []) + server


def offer_tools(
    body: dict[str, Any],
    definitions: list[dict[str, Any]],
    history_tools: list[dict[str, Any]],
) -> None:
    """Put the tools into ``body``: the cell's, then those earlier turns were made with (a
    request whose history holds tool calls must define their tools). A cell with no tools of
    its own offers them with ``tool_choice: none``, so Claude answers without calling any."""
    if not definitions and not history_tools:
        return
    names = {str(t.get("name")) for t in definitions}
    body["tools"] = [*definitions, *(t for t in history_tools if str(t.get("name")) not in names)]
    if not definitions:
        body["tool_choice"] = {"type": "none"}


def frames_as_files(
    args: Any,
    namespace: Mapping[str, Any],
    client: Client,
    uploads: Uploads,
    *,
    dry_run: bool = False,
) -> list[dict[str, Any]]:
    """``--df NAME`` with ``--code-execution``: each DataFrame goes to Anthropic's sandbox as a
    CSV file (``NAME.csv``, uploaded through the Files API, the key redacted from it) and a
    ``container_upload`` block, so code there reads every row instead of a text excerpt.
    ``uploads`` (files.sqlite beside the ledger) uploads the same content once, across
    sessions too, so a re-run sends the same file id and is replayed. ``dry_run`` uploads
    nothing: the block names the file it would be."""
    import hashlib

    from ..prompt.dataframes import pandas_kind

    if not (args.code_execution and args.df):
        return []
    blocks = []
    for name in args.df:
        frame = lookup(namespace, name, "--df")
        if pandas_kind(frame) is None:
            raise UsageError(f"--df {name}: {type(frame).__name__} is not a DataFrame or Series")
        text = str(client.redact_key(frame.to_csv(index=pandas_kind(frame) == "Series"))[0])
        data = text.encode("utf-8", "replace")
        known = uploads.known(client, hashlib.sha256(data).hexdigest())
        if dry_run and known is None:
            pending = f"<{name}.csv, uploaded when sent>"
            blocks.append({"type": "container_upload", "file_id": pending})
            continue
        if known is None:
            known = uploads.upload(client, data, filename=f"{name}.csv", media_type="text/csv")
        blocks.append({"type": "container_upload", "file_id": known.file_id})
    return blocks
