"""An answer that is more than text, as Markdown: citations as numbered footnotes, searches,
fetches and code run in Anthropic's sandbox shown where they happened.

    markdown, plain = answer_text(result.message)   # None, None for a plain-text answer
    citations_of(result.message)                     # [Citation(number=1, title=..., ...)]

Text blocks carry ``citations``: of web pages (``--web``), of documents (``--pdf``/``--file``
with ``--cite``: a page range of a PDF, a character range of a text, a block range of a
content document) and of search results (``--search-results``). The static output shows each
cited sentence with a ``[n]`` marker and the sources as a numbered list under the answer: a
web page by title and link (the same page cited twice keeps one number), a document or search
result by its title, where (page, characters, block) and the quoted passage (the same passage
cited twice keeps one number). ``--web`` answers also carry ``server_tool_use`` blocks (the
query, the URL) and ``--code-execution`` answers the code and what it printed, shown in place.
Only ``http``/``https`` links are made links; titles, quotes and URLs are escaped, so a page or
a document cannot inject Markdown or HTML into the notebook.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Citation",
    "Footnotes",
    "answer_text",
    "citations_of",
    "fence",
    "has_extras",
    "live_parts",
    "live_text",
    "steps_text",
]

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
#: How much of a cited passage the sources list quotes.
_MAX_QUOTE_CHARS = 300
#: Characters Markdown (or a notebook's LaTeX) would read as markup in a quoted passage.
_MARKUP = str.maketrans({c: f"\\{c}" for c in "\\`*_[]#|~$"})


def has_extras(message: Mapping[str, Any]) -> bool:
    """Whether the answer holds citations or server-tool blocks (else its text is all)."""
    for block in message.get("content") or ():
        if block.get("type") in _EXTRA_BLOCKS or block.get("citations"):
            return True
    return False


@dataclass(frozen=True)
class Citation:
    """One cited source of an answer, as ``ClaudeResult.citations`` keeps it: a passage of a
    document or search result, or a web page.

    ``number`` is its footnote ``[n]`` in the answer; ``kind`` the API's citation type
    (``page_location``, ``char_location``, ``content_block_location``,
    ``search_result_location``, ``web_search_result_location``); ``quote`` the cited text.
    Where it is: ``pages`` (first and last page, from 1, both included), ``chars`` (start and
    end character, from 0, end excluded) or ``blocks`` (start and end block, from 0, end
    excluded), as the API counts them; :attr:`location` says it for people."""

    number: int
    kind: str
    quote: str
    title: str | None = None
    document_index: int | None = None
    search_result_index: int | None = None
    #: A search result's ``source`` (a URL or your own id).
    source: str | None = None
    #: A web page's address.
    url: str | None = None
    #: The Files API id of the cited document, when it was sent by id.
    file_id: str | None = None
    pages: tuple[int, int] | None = None
    chars: tuple[int, int] | None = None
    blocks: tuple[int, int] | None = None

    @property
    def location(self) -> str:
        """Where the passage is, for people: "page 2", "pages 2–3", "characters 1–57",
        "block 1" (counted from 1, ends included); "" for a web page."""
        if self.pages is not None:
            first, last = self.pages
            return f"page {first}" if last <= first else f"pages {first}–{last}"
        if self.chars is not None:
            return f"characters {self.chars[0] + 1:,}–{self.chars[1]:,}"
        if self.blocks is not None:
            first, end = self.blocks
            return f"block {first + 1}" if end <= first + 1 else f"blocks {first + 1}–{end}"
        return ""

    @property
    def label(self) -> str:
        """What the source is called: its title, else its source or URL, else "document n"."""
        if self.title:
            return self.title
        if self.source or self.url:
            return str(self.source or self.url)
        if self.search_result_index is not None:
            return f"search result {self.search_result_index + 1}"
        return f"document {(self.document_index or 0) + 1}"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _span(start: Any, end: Any) -> tuple[int, int] | None:
    first, stop = _int(start), _int(end)
    return None if first is None or stop is None else (first, stop)


def _citation(raw: Mapping[str, Any], number: int) -> Citation:
    """A :class:`Citation` from the API's citation object."""
    kind = str(raw.get("type") or "")
    pages = _span(raw.get("start_page_number"), raw.get("end_page_number"))
    title = raw.get("document_title") if "document_title" in raw else raw.get("title")
    return Citation(
        number=number,
        kind=kind,
        quote=str(raw.get("cited_text") or ""),
        title=str(title) if title else None,
        document_index=_int(raw.get("document_index")),
        search_result_index=_int(raw.get("search_result_index")),
        source=str(raw["source"]) if raw.get("source") else None,
        url=str(raw["url"]) if raw.get("url") else None,
        file_id=str(raw["file_id"]) if raw.get("file_id") else None,
        # The API's end page is the page after the passage.
        pages=None if pages is None else (pages[0], max(pages[0], pages[1] - 1)),
        chars=_span(raw.get("start_char_index"), raw.get("end_char_index")),
        blocks=_span(raw.get("start_block_index"), raw.get("end_block_index")),
    )


_WHERE = (
    "start_page_number",
    "end_page_number",
    "start_char_index",
    "end_char_index",
    "start_block_index",
    "end_block_index",
)


def _key(raw: Mapping[str, Any]) -> tuple[Any, ...]:
    """What one footnote stands for: a web page (by URL), or one passage of a document or
    search result: which one (by title, or by index when it has none; the same document sent
    again later in a conversation is the same source), where, and what it says."""
    url = raw.get("url")
    if isinstance(url, str) and url:
        return ("web", url)
    named = raw.get("document_title") or raw.get("title")
    source = (
        (named, raw.get("source"))
        if named
        else raw.get("document_index", raw.get("search_result_index"))
    )
    where = tuple(raw.get(k) for k in _WHERE)
    return (raw.get("type"), source, where, raw.get("cited_text"))


class Footnotes:
    """Numbers for the citations of one answer, in the order they are first met: the same web
    page, or the same passage, keeps its number.

        notes = Footnotes()
        notes.numbers(block["citations"])   # [1, 2]
        notes.entries                       # [Citation(number=1, ...), Citation(number=2, ...)]
    """

    def __init__(self) -> None:
        self.entries: list[Citation] = []
        self._numbers: dict[tuple[Any, ...], int] = {}

    def numbers(self, citations: Iterable[Mapping[str, Any]] | None) -> list[int]:
        """The footnote numbers of a text block's citations, each once, in order."""
        found: list[int] = []
        for raw in citations or ():
            if not isinstance(raw, Mapping):
                continue
            key = _key(raw)
            number = self._numbers.get(key)
            if number is None:
                number = self._numbers[key] = len(self.entries) + 1
                self.entries.append(_citation(raw, number))
            if number not in found:
                found.append(number)
        return found

    def markdown(self) -> str:
        """The numbered sources list under an answer ("" when nothing was cited)."""
        if not self.entries:
            return ""
        return "**Sources**\n\n" + "\n".join(
            f"{c.number}. {_source_markdown(c)}" for c in self.entries
        )

    def plain(self) -> str:
        """The sources list as plain text ("" when nothing was cited)."""
        if not self.entries:
            return ""
        return "Sources:\n" + "\n".join(f"[{c.number}] {_source_plain(c)}" for c in self.entries)


def citations_of(message: Mapping[str, Any]) -> list[Citation]:
    """The sources an answer cites, numbered as its footnotes are (see :class:`Footnotes`)."""
    notes = Footnotes()
    for block in message.get("content") or ():
        if isinstance(block, Mapping) and block.get("type") == "text":
            notes.numbers(block.get("citations"))
    return notes.entries


def _quote_text(text: str) -> str:
    shown = " ".join(text.split())
    if len(shown) > _MAX_QUOTE_CHARS:
        shown = shown[: _MAX_QUOTE_CHARS - 1].rstrip() + "…"
    return shown


def _escaped(text: str) -> str:
    """``text`` as literal Markdown: no HTML, no emphasis, links, code, tables or math."""
    return html.escape(" ".join(text.split()), quote=False).translate(_MARKUP)


def _source_markdown(c: Citation) -> str:
    if c.url:  # a web page: its title, linked
        return _safe_link(c.title or c.url, c.url)
    name = f"**{_escaped(c.label)}**"
    if c.source:
        linked = c.source.startswith(("https://", "http://"))
        name = _safe_link(c.label, c.source) if linked else f"{name} ({_escaped(c.source)})"
    where = f", {c.location}" if c.location else ""
    quote = f": “{_escaped(_quote_text(c.quote))}”" if c.quote.strip() else ""
    return f"{name}{where}{quote}"


def _source_plain(c: Citation) -> str:
    if c.url:
        return f"{c.title or c.url} <{c.url}>"
    name = c.label + (f" ({c.source})" if c.source else "")
    where = f", {c.location}" if c.location else ""
    quote = f': "{_quote_text(c.quote)}"' if c.quote.strip() else ""
    return f"{name}{where}{quote}"


def live_parts(parts: Iterable[tuple[str, Sequence[Mapping[str, Any]] | None]]) -> tuple[str, str]:
    """The answer so far with ``[n]`` after each cited block, and the sources list (Markdown,
    "" when nothing is cited yet), for a live view (no HTML: its Markdown is rendered with HTML
    off). ``parts`` are the text blocks so far, as ``(text, citations)``. Apart, because the
    answer grows at its end while the sources list changes as a whole."""
    notes = Footnotes()
    pieces = []
    for text, citations in parts:
        numbers = notes.numbers(citations)
        stripped = text.rstrip()
        marks = "".join(f"[{n}]" for n in numbers)
        pieces.append(stripped + marks + text[len(stripped) :])
    return "".join(pieces), notes.markdown()


def live_text(parts: Iterable[tuple[str, Sequence[Mapping[str, Any]] | None]]) -> str:
    """:func:`live_parts` as one Markdown text: the answer, then the sources list under it."""
    answer, sources = live_parts(parts)
    return answer + (f"\n\n{sources}" if sources else "")


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
    notes = Footnotes()
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
            marks = "".join(f"[{n}]" for n in notes.numbers(block.get("citations")))
            stripped = text.rstrip()
            tail = text[len(stripped) :]
            prose.append(stripped + (f"<sup>{marks}</sup>" if marks else "") + tail)
            prose_plain.append(stripped + marks + tail)
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
    md.append(notes.markdown())
    plain.append(notes.plain())
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
