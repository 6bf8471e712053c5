"""Markdown rendered while it streams, at a cost per render that does not grow with the text.

    blocks = MarkdownBlocks()
    blocks.update(text)                 # at each render: the text so far
    blocks.finished, blocks.live        # HTML of the blocks that cannot change; of the rest
    shown = LiveHTML(); shown.show(blocks)   # the same in ipywidgets, sending only what changed

A streamed answer only grows, and Markdown is a sequence of top-level blocks (paragraphs,
headings, lists, fences, tables, quotes). A block is *finished* once a later block has begun on
a complete line, or (a paragraph, heading, table or quote) once a blank line under it is
complete: nothing appended can change it any more. Finished blocks are rendered once and
kept; each render re-renders only the rest, so the HTML of ``finished`` joined, then ``live``,
is what rendering the whole text gives, for every prefix of it (tests/test_long_answers.py
checks it over every prefix of many documents).

Why "a later block on a complete line", and not the token stream of the text as it is: a line
still being written can still change what comes before it ("Foo" then "***" is a paragraph and
a rule, "***x" makes one paragraph of both; "| a |" then "|---|" starts a table that "|---|x"
undoes; "===" under a paragraph makes it a heading). Only complete lines decide; a fenced code
block, a list or a table that is still growing is one block, the last, so it stays live.

Reference definitions (``[label]: url``) are the one thing that reaches backwards: one defined
late turns an earlier ``[label]`` into a link. Each kept block remembers the definitions it was
rendered with; when they change for a label that block mentions, everything is rendered afresh
(``resets`` counts these: rare, a model seldom writes reference links). Text that changes
before the point the kept blocks relied on (a citation marker moving) resets too.

``LiveHTML`` shows a :class:`MarkdownBlocks` in a notebook without re-sending what the front
end already has: ipywidgets can only replace an HTML widget's whole value, so finished HTML
waits in the live child (the last one) and is *sealed* into a child of its own (never updated
again) once keeping it there would have cost about what a new child costs (rent or buy: a
render re-sends the live child whole; a new child is ~3 KB of messages). A render sends the
live child, the block being written and the finished HTML not sealed yet: the same at token
100 as at token 20,000. How often to render is the view's choice (``sent`` and ``shown``
tell it what rendering has cost).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

__all__ = ["MESSAGE_BYTES", "LiveHTML", "MarkdownBlocks", "markdown_parser"]

_md: MarkdownIt | None = None


def markdown_parser() -> MarkdownIt:
    """The one Markdown parser of the live views: CommonMark and tables, raw HTML escaped
    (the model's text cannot inject markup). Built on first use: markdown-it is not imported
    by ``%load_ext``."""
    global _md
    if _md is None:
        from markdown_it import MarkdownIt

        _md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    return _md


def _normalized(text: str) -> str:
    """What markdown-it does to its input first (so line numbers agree with offsets here)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\0", "\ufffd") if "\0" in text else text


def _line_offset(text: str, line: int) -> int:
    """Offset of the start of ``line`` (from 0) in ``text``."""
    offset = 0
    for _ in range(line):
        offset = text.index("\n", offset) + 1
    return offset


def _refs_of(md: MarkdownIt, text: str, known: dict[str, Any]) -> dict[str, Any]:
    """``known`` plus the reference definitions in ``text`` (the first of a label wins)."""
    if "]:" not in text:  # no definition without it: skip the parse
        return known
    env: dict[str, Any] = {"references": dict(known)}
    md.parse(text, env)
    found: dict[str, Any] = env["references"]
    return found if found != known else known


#: Blocks that a blank line ends for good (nothing written after it can join or change them).
#: Not lists, indented code or fences: a blank line may sit inside those.
_ENDED_BY_BLANK = frozenset(
    {"paragraph_open", "heading_open", "table_open", "blockquote_open", "hr"}
)


def _blank_after(complete: str, line: int) -> bool:
    """Whether ``complete`` (whole lines) has a line after ``line`` and only blank lines."""
    rest = complete[_line_offset(complete, line) :]
    return bool(rest) and not rest.strip(" \t\n")


class MarkdownBlocks:
    """A growing Markdown text as HTML: ``finished`` (one entry per render that finished
    blocks, never changed afterwards unless ``resets`` goes up) and ``live`` (the rest)."""

    def __init__(self) -> None:
        self._md = markdown_parser()
        self.finished: list[str] = []
        self.live = ""
        #: How many times the kept blocks were dropped and everything rendered afresh.
        self.resets = 0
        self._kept = 0  # characters of the text that `finished` renders
        self._basis = ""  # the text the decisions so far relied on (a prefix of every update)
        self._refs: dict[str, Any] = {}  # reference definitions inside text[:_kept]
        self._decided = 0  # length of the complete lines looked at by the last decision
        # (start, end, definitions it was rendered with) of each entry of `finished`.
        self._pieces: list[tuple[int, int, dict[str, Any]]] = []
        self._all_refs: dict[str, Any] = {}  # every definition, as the last update saw them
        self._text = ""

    def update(self, text: str) -> None:
        """Render ``text`` (the whole text so far): keep what is finished, re-render the rest."""
        md = self._md
        text = _normalized(text)
        if text == self._text:
            return  # nothing new (the thinking, while the answer streams)
        self._text = text
        if not text.startswith(self._basis):
            self._reset()
        tail = text[self._kept :]
        refs = _refs_of(md, tail, self._refs)
        if refs is not self._all_refs and refs != self._all_refs:
            if self._stale(text, refs):
                self._reset()
                tail = text
                refs = _refs_of(md, tail, self._refs)
            self._all_refs = refs
        complete = tail[: tail.rfind("\n") + 1]
        if complete and self._kept + len(complete) > self._decided:
            self._decided = self._kept + len(complete)
            self._finish(text, complete, refs)
            tail = text[self._kept :]
        self.live = md.render(tail, {"references": dict(self._refs)}) if tail else ""

    def _finish(self, text: str, complete: str, refs: dict[str, Any]) -> None:
        """Keep every block of ``complete`` (the tail's complete lines) but the last."""
        md = self._md
        env: dict[str, Any] = {"references": dict(refs)}
        tokens: list[Token] = md.parse(complete, env)
        starts = [i for i, t in enumerate(tokens) if t.level == 0 and t.nesting >= 0 and t.map]
        if not starts:
            return
        last = tokens[starts[-1]].map
        assert last is not None
        if tokens[starts[-1]].type in _ENDED_BY_BLANK and _blank_after(complete, last[1]):
            # The last block is ended by the blank line under it: keep it now rather than
            # when the next block's first line is complete (a paragraph's is its last).
            cut, upto = _line_offset(complete, last[1]), len(tokens)
        elif len(starts) < 2:
            return  # one block: it may still change
        else:
            before_last = tokens[starts[-2]].map
            assert before_last is not None
            # Cut after the last finished block: what lies between it and the last block
            # (blank lines, reference definitions) stays with the live text.
            cut, upto = _line_offset(complete, before_last[1]), starts[-1]
        html: str = md.renderer.render(tokens[:upto], md.options, env)
        start = self._kept
        self._refs = _refs_of(md, complete[:cut], self._refs)
        self._kept += cut
        self._basis = text[: self._decided]
        self.finished.append(html)
        self._pieces.append((start, self._kept, refs))

    def _stale(self, text: str, refs: dict[str, Any]) -> bool:
        """Whether a kept block mentions a label whose definition is not the one it was
        rendered with (a definition added or changed later in the text)."""
        from markdown_it.common.utils import normalizeReference

        for start, end, used in self._pieces:
            if used is refs or used == refs:
                continue
            changed = {k for k in used.keys() | refs.keys() if used.get(k) != refs.get(k)}
            source = normalizeReference(text[start:end])
            if any(label in source for label in changed):
                return True
        return False

    def _reset(self) -> None:
        self.finished = []
        self._pieces = []
        self._kept = self._decided = 0
        self._basis = ""
        self._refs = {}
        self.resets += 1


#: What one widget message costs on the wire besides the state it carries: the kernel's
#: header, the request's header as parent, the signature, the comm id and the JSON around
#: them (~590 bytes measured with jupyter_client's Session).
MESSAGE_BYTES = 600
#: What sealing costs on the wire, roughly: a new HTML widget (its comm_open, ~1.5 KB
#: serialised), the page's children list sent again (~600 bytes plus ~45 a child) and the
#: child's comm_close when the view is retired (~600 bytes).
_SEAL_BYTES = 3000
#: Sealed children a page holds before a new page begins: a VBox sends its whole children
#: list at each change, so one flat list would make the answer quadratic again.
_PAGE_SIZE = 16


class LiveHTML:
    """A :class:`MarkdownBlocks` shown in ipywidgets: ``box``, a VBox of pages (VBoxes) of
    sealed HTML children, then the live child. Sealed children are never updated again; only
    the live child changes.

        shown = LiveHTML()
        shown.show(blocks, after="<p>Sources…</p>")   # ``after``: HTML under it, kept apart
        shown.value                                   # all the HTML shown, for tests
        shown.close()
    """

    def __init__(self, layout: Any = None, style: Any = None) -> None:
        """``layout`` and ``style``: a Layout and an HTMLStyle to share (their owner closes
        them); by default it makes its own."""
        import ipywidgets as widgets

        self._widgets = widgets
        # One layout and one style for every child: each child would otherwise open two
        # more comms of its own (~2 KB) for the same defaults.
        self._owns = layout is None
        self._layout = layout if layout is not None else widgets.Layout()
        self._live = widgets.HTML(
            layout=self._layout, **({} if style is None else {"style": style})
        )
        self._style = self._live.style
        self._after: Any = None
        self._resets = 0
        self._taken = 0
        self._sealed: list[str] = []
        self._sealed_size = 0
        self._pending = ""  # finished HTML in the live child, not sealed yet
        self._sent_pending = 0  # how much of it the front end has already
        self._rent = 0  # bytes of finished HTML re-sent since the last seal
        self._pages: list[Any] = []
        self.box = widgets.VBox([self._live], layout=self._layout)
        #: Bytes sent to the front end since it was built, estimated from what was set
        #: (values plus :data:`MESSAGE_BYTES` a message): what a render budget is kept by.
        self.sent = 0
        #: Characters of HTML it shows; of them, in the live child (re-sent by a render).
        self.shown = 0
        self.live_size = 0

    def _child(self, value: str) -> Any:
        return self._widgets.HTML(value=value, layout=self._layout, style=self._style)

    def _children(self) -> tuple[Any, ...]:
        after = () if self._after is None else (self._after,)
        return (*self._pages, self._live, *after)

    @property
    def value(self) -> str:
        """The HTML shown, joined (for tests and debugging: this costs the whole answer)."""
        after = str(self._after.value) if self._after is not None else ""
        return "".join(self._sealed) + str(self._live.value) + after

    def show(self, blocks: MarkdownBlocks, after: str = "") -> None:
        """Show ``blocks`` as they are now; ``after`` (HTML) goes under them, in its own child,
        sent only when it changes."""
        if blocks.resets != self._resets:
            self._restart(blocks.resets)
        fresh = blocks.finished[self._taken :]
        if fresh:
            self._taken = len(blocks.finished)
            self._pending += "".join(fresh)
        # Rent or buy: finished HTML left in the live child is re-sent by every render until
        # it is sealed; seal once what it has cost and would cost now reaches a seal's price.
        # New finished HTML worth that much goes straight into its sealed child, sent once.
        if self._pending and self._rent + len(self._pending) >= _SEAL_BYTES:
            self._seal()
        value = self._pending + blocks.live
        if value != self._live.value:
            self._rent += self._sent_pending
            self._set(self._live, value)
            self._sent_pending = len(self._pending)
        self.live_size = len(value)
        self.shown = self._sealed_size + self.live_size + len(after)
        if after or self._after is not None:
            if self._after is None:
                self._after = self._child(after)
                self.box.children = self._children()
                self.sent += _SEAL_BYTES + len(after)
            else:
                self._set(self._after, after)

    def _set(self, child: Any, value: str) -> None:
        """Set a child's value, counting what that sends (nothing when it is unchanged)."""
        if child.value != value:
            child.value = value
            self.sent += MESSAGE_BYTES + len(value)

    def _seal(self) -> None:
        """The finished HTML not sealed yet goes into a sealed child of its own, above the
        live child (which the render then sets to the rest)."""
        widgets = self._widgets
        sealed = self._child(self._pending)
        self._sealed.append(self._pending)
        self._sealed_size += len(self._pending)
        self.sent += _SEAL_BYTES + len(self._pending)
        self._pending = ""
        self._sent_pending = self._rent = 0
        if self._pages and len(self._pages[-1].children) < _PAGE_SIZE:
            page = self._pages[-1]
            page.children = (*page.children, sealed)
        else:
            self._pages.append(widgets.VBox([sealed], layout=self._layout))
            self.box.children = self._children()

    def _close_pages(self) -> None:
        for page in self._pages:
            for child in page.children:
                child.close()
            page.close()
        self._pages = []

    def _restart(self, resets: int) -> None:
        """The kept blocks were dropped: the sealed children go, the live child shows all."""
        self._close_pages()
        self._resets = resets
        self._taken = 0
        self._sealed = []
        self._sealed_size = 0
        self._pending = ""
        self._sent_pending = self._rent = 0
        self.box.children = self._children()
        self.sent += MESSAGE_BYTES

    def close(self) -> None:
        """Close every widget (the comms too): the live view is retired."""
        self._close_pages()
        self._live.close()
        if self._after is not None:
            self._after.close()
        self.box.close()
        if self._owns:
            self._layout.close()
            self._style.close()
