"""An answer that is more than text, as Markdown: citations as numbered footnotes, searches,
fetches and code run in Anthropic's sandbox shown where they happened.

    markdown, plain = answer_text(result.message)   # None, None for a plain-text answer

``%%claude --web`` answers carry ``server_tool_use`` blocks (the query, the URL), their results
and text blocks whose ``citations`` point at the pages they came from; ``--code-execution``
answers carry the code and what it printed. The static output shows each cited sentence with a
``[n]`` marker and the sources as a numbered list under the answer (title and link; the same
page cited twice keeps one number), and the code with its output, so a saved notebook shows
where the answer came from. Only ``http``/``https`` links are made links; titles and URLs are
escaped, so a page cannot inject Markdown or HTML into the notebook.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["answer_text", "fence", "has_extras", "steps_text"]

#: Blocks that make an answer more than text.
_EXTRA_BLOCKS = frozenset(
    {
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
    }
)
#: How much of a sandbox's output the static view shows.
_MAX_OUTPUT_CHARS = 4000


def has_extras(message: Mapping[str, Any]) -> bool:
    """Whether the answer holds citations or server-tool blocks (else its text is all)."""
    for block in message.get("content") or ():
        if block.get("type") in _EXTRA_BLOCKS or block.get("citations"):
            return True
    return False


def _source(citation: Mapping[str, Any]) -> tuple[str, str]:
    """(key, label) of a citation's source: a web page by URL, a document by index/title."""
    url = citation.get("url")
    if isinstance(url, str) and url:
        title = str(citation.get("title") or url)
        return url, title
    named = citation.get("document_title") or citation.get("title") or citation.get("source")
    index = citation.get("document_index", citation.get("search_result_index"))
    key = f"doc:{index}:{named}"
    if named:
        return key, str(named)
    return key, f"document {index}" if index is not None else "a source"


def _safe_link(label: str, url: str) -> str:
    """A Markdown link when ``url`` is http(s), else the label alone; both escaped."""
    shown = " ".join(label.split()).replace("[", "(").replace("]", ")")
    shown = html.escape(shown, quote=False)
    if url.startswith(("https://", "http://")):
        target = url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
        target = target.replace("<", "%3C").replace(">", "%3E")
        return f"[{shown}]({target})"
    return shown


def fence(text: str, lang: str = "") -> str:
    """``text`` in a fence longer than any run of backticks inside it."""
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


def _cut(text: str) -> str:
    if len(text) <= _MAX_OUTPUT_CHARS:
        return text
    return text[:_MAX_OUTPUT_CHARS] + f"\n… ({len(text) - _MAX_OUTPUT_CHARS:,} more characters)"


def _tool_line(block: Mapping[str, Any]) -> tuple[str, str]:
    """Markdown and plain text of a server tool call."""
    name = str(block.get("name") or "")
    raw = block.get("input")
    given: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    if name == "web_search":
        query = " ".join(str(given.get("query", "")).split())
        return f"🔎 *Searched the web:* {html.escape(query)}", f"[searched the web: {query}]"
    if name == "web_fetch":
        url = str(given.get("url", ""))
        return f"🌐 *Read* {_safe_link(url, url)}", f"[read {url}]"
    code = given.get("code") or given.get("command")
    if isinstance(code, str):
        lang = "python" if "code" in given else "bash"
        return f"▶ *Ran in Anthropic's sandbox:*\n\n{fence(code, lang)}", f"[ran]\n{code}"
    return f"⚙ *{html.escape(name)}*", f"[{name}]"


def _result_text(block: Mapping[str, Any]) -> tuple[str, str] | None:
    """Markdown and plain text of a server tool's result worth showing (code output, errors)."""
    content = block.get("content")
    if not isinstance(content, Mapping):
        return None  # search results: shown as the footnotes they are cited by
    kind = str(content.get("type") or "")
    if kind.endswith("_error"):
        code = str(content.get("error_code") or "error")
        return f"⚠ *{html.escape(block.get('type', ''))}: {html.escape(code)}*", f"[error: {code}]"
    if "stdout" in content or "stderr" in content:
        out = _cut(str(content.get("stdout") or ""))
        err = _cut(str(content.get("stderr") or ""))
        parts_md, parts_plain = [], []
        if out:
            parts_md.append(fence(out, "text"))
            parts_plain.append(out)
        if err:
            parts_md.append("stderr:\n\n" + fence(err, "text"))
            parts_plain.append(f"stderr: {err}")
        exit_code = content.get("return_code")
        if exit_code not in (None, 0):
            parts_md.append(f"*exit code {exit_code}*")
            parts_plain.append(f"exit code {exit_code}")
        return "\n\n".join(parts_md) or "*(no output)*", "\n".join(parts_plain) or "(no output)"
    return None


def answer_text(message: Mapping[str, Any]) -> tuple[str, str] | tuple[None, None]:
    """The answer as (Markdown, plain text) with its citations as numbered footnotes and its
    server tool calls in place; ``(None, None)`` when it is only text (the caller shows that)."""
    if not has_extras(message):
        return None, None
    numbers: dict[str, int] = {}
    sources: list[tuple[str, str]] = []
    md: list[str] = []
    plain: list[str] = []
    prose: list[str] = []  # consecutive text blocks are one paragraph
    prose_plain: list[str] = []

    def flush() -> None:
        if prose:
            md.append("".join(prose).strip())
            plain.append("".join(prose_plain).strip())
            prose.clear()
            prose_plain.clear()

    blocks: Sequence[Mapping[str, Any]] = message.get("content") or ()
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            text = str(block.get("text") or "")
            marks = []
            for citation in block.get("citations") or ():
                key, label = _source(citation)
                if key not in numbers:
                    numbers[key] = len(sources) + 1
                    sources.append((label, key))
                mark = f"[{numbers[key]}]"
                if mark not in marks:
                    marks.append(mark)
            stripped = text.rstrip()
            tail = text[len(stripped) :]
            prose.append(stripped + ("<sup>" + "".join(marks) + "</sup>" if marks else "") + tail)
            prose_plain.append(stripped + "".join(marks) + tail)
        elif kind == "server_tool_use":
            flush()
            line_md, line_plain = _tool_line(block)
            md.append(line_md)
            plain.append(line_plain)
        elif kind in _EXTRA_BLOCKS:
            shown = _result_text(block)
            if shown is not None:
                flush()
                md.append(shown[0])
                plain.append(shown[1])
    flush()
    if sources:
        md.append(
            "**Sources**\n\n"
            + "\n".join(
                f"{n}. {_safe_link(label, key)}" for n, (label, key) in enumerate(sources, 1)
            )
        )
        plain.append(
            "Sources:\n"
            + "\n".join(
                f"[{n}] {label}" + (f" <{key}>" if key.startswith("http") else "")
                for n, (label, key) in enumerate(sources, 1)
            )
        )
    return "\n\n".join(p for p in md if p), "\n\n".join(p for p in plain if p)


def steps_text(result: Any) -> tuple[str, str] | tuple[None, None]:
    """A tool loop's steps as a compact numbered list (Markdown, plain text), with what the
    loop cost and why it stopped early; ``(None, None)`` for a call without tools."""
    from ..cost.pricing import format_usd

    steps = result.steps
    if not steps and result.loop_note is None:
        return None, None
    calls = result.loop_calls or 1
    head = f"{len(steps)} tool step{'s' * (len(steps) != 1)}"
    head += f" · {calls} model call{'s' * (calls != 1)}"
    # The cost goes only beside the Markdown, like the status line: the plain text is the same
    # whether the loop was paid for now or replayed, so nbval sees no difference.
    cost = (
        f" · {format_usd(result.loop_cost_usd)} in all" if result.loop_cost_usd is not None else ""
    )
    md = [f"**Tools** <sub>{html.escape(head + cost)}</sub>", ""]
    plain = [f"Tools ({head}):"]
    for number, step in enumerate(steps, 1):
        mark = "⚠ " if step.is_error else ""
        where = " (Anthropic)" if step.server else ""
        summary = " ".join(step.summary.split())
        if len(summary) > 120:
            summary = summary[:119] + "…"
        call = step.call().replace("`", "'")
        md.append(f"{number}. `{call}`{where} → {mark}{html.escape(summary)}")
        plain.append(f"{number}. {step.call()}{where} -> {mark}{summary}")
    if result.loop_note:
        md += ["", f"*Stopped: {html.escape(result.loop_note)}*"]
        plain.append(f"Stopped: {result.loop_note}")
    return "\n".join(md), "\n".join(plain)
