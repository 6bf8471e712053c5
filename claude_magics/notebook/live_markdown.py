"""Markdown rendered while it streams, at a cost per render that does not grow with the text.

    blocks = MarkdownBlocks()
    blocks.update(text)                 # at each render: the text so far
    blocks.finished, blocks.live        # HTML of the blocks that cannot change; of the rest
    step = LiveSection().step(blocks)   # what the front end must change to show them

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

``LiveSection`` says what a front end that keeps finished HTML (appended once) and a live
tail must change to show a :class:`MarkdownBlocks` now: a common-prefix diff of the tail alone,
so a render sends the new words of the block being written, the same at token 100 as at token
20,000 (:mod:`.live_widget` is that front end). How often to render is the view's choice
(``shown`` tells it what is shown).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

__all__ = ["MESSAGE_BYTES", "LiveSection", "MarkdownBlocks", "markdown_parser"]

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


#: What one widget message costs on the wire besides what it carries: the kernel's header, the
#: request's header as parent, the signature, the comm id and the JSON around them (~590 bytes
#: measured with jupyter_client's Session).
MESSAGE_BYTES = 600


def _utf16(text: str) -> int:
    """Length of ``text`` in UTF-16 code units: what JavaScript's ``slice`` counts."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


def _common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix of ``a`` and ``b`` (slices compared in C)."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    same, differs = 0, n  # a[:same] == b[:same]; a[:differs] != b[:differs]
    while differs - same > 1:
        middle = (same + differs) // 2
        if a[same:middle] == b[same:middle]:
            same = middle
        else:
            differs = middle
    return same


class LiveSection:
    """What the front end of one section must do to show a :class:`MarkdownBlocks` as it is
    now, given what it was sent so far.

        section = LiveSection()
        step = section.step(blocks)     # None (nothing changed) or [offset, suffix, cut]

    The front end keeps finished HTML in nodes it appended once, and a *tail*: the HTML not
    yet finished, shown in one live element. A step says: cut the tail at ``offset``, append
    ``suffix``, then move its first ``cut`` characters into finished nodes (the blocks that
    just finished); ``offset`` -1 means drop everything first (the blocks were reset).
    Offsets count UTF-16 code units, as JavaScript strings do. A growing paragraph sends its
    new words and closing tags; a block that finishes sends nothing again. Only the tail is
    compared, never the whole answer, so a step costs the same at token 100 and 20,000.
    """

    def __init__(self) -> None:
        self._resets = 0
        self._taken = 0  # entries of blocks.finished the front end has
        self._tail = ""  # the front end's tail
        #: Characters of HTML the front end shows; of them, in its tail.
        self.shown = 0
        self.tail_size = 0

    def step(self, blocks: MarkdownBlocks) -> list[Any] | None:
        """The step to the front end that shows ``blocks`` now (None if it shows them)."""
        finished = blocks.finished
        if blocks.resets != self._resets:
            # Rare (reference definitions changed): every finished block is sent again.
            self._resets, self._taken, self._tail = blocks.resets, 0, ""
            self.shown = self.tail_size = 0
            offset = -1
        elif len(finished) == self._taken and blocks.live == self._tail:
            return None
        else:
            offset = 0
        fresh = "".join(finished[self._taken :])
        target = fresh + blocks.live
        same = _common_prefix(self._tail, target) if offset == 0 else 0
        self._taken = len(finished)
        self._tail = blocks.live
        self.shown += len(target) - self.tail_size
        self.tail_size = len(blocks.live)
        if offset == 0:
            offset = _utf16(target[:same])
        return [offset, target[same:], _utf16(fresh)]
