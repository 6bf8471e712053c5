"""Long answers in the live view: finished Markdown blocks are rendered once and sent once.

Two things are checked. The renderer: for every prefix of many documents, the kept blocks'
HTML followed by the live block's HTML is exactly the HTML of the whole prefix. The widget:
every message a real comm would send is serialised and signed as a kernel does, read back,
and applied by :class:`FrontEnd`, the front end's apply step (live_view.js) written again in
Python; what it then shows is exactly the whole text rendered, at every render. What is sent
grows linearly with the answer and a render costs the same at its end as at its start.
tests/browser/test_scenarios.py (1b) runs the real JavaScript on the same messages.
"""

from __future__ import annotations

import random
import statistics
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from shell_support import final, magics_of, ok

from claude_magics.api.streaming import MessageAccumulator, TextEvent
from claude_magics.emulator import Emulator
from claude_magics.notebook import views
from claude_magics.notebook.content import live_parts
from claude_magics.notebook.live_markdown import MarkdownBlocks, markdown_parser
from claude_magics.notebook.views import WidgetView, markdown_to_html

DOCUMENTS = [
    # Setext headings, lazy continuation, loose and tight lists, quotes, fences, tables.
    "# Title\n\nSome *text* here\nlazy line.\n\nFoo\n===\n\nBar\n---\n\n- a\n- b\n\n  cont\n"
    "- c\n\n1. one\n2. two\n\n> quote\nlazy\n> more\n\n```python\ncode\n\n```\n\n    indented\n\n"
    "    more\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nafter table\n***\nFoo\n***x\n\nEnd.\n",
    # Reference links used before their definitions, a multi-line title, a duplicate label.
    "See [foo] and [bar][] and [Foo Bar].\n\nA paragraph.\n\n- item [foo]\n\n[foo]: /url 'title'\n"
    "[bar]: /b\n'multi\nline'\n\n[foo]: /second\n\n[foo   bar]: <https://x.y>\n\nLast [bar].\n",
    # Fences that nest, unclosed to the end; lists interrupted by other lists.
    "Intro\n````md\n```\ninner\n```\n````\n- a\n* b\n+ c\n1. d\n1) e\n\n"
    "~~~\nnever closed\n\n# not a heading",
    # A paragraph a table interrupts; a table without a body; rows that are not rows.
    "text\n| a | b |\n|---|---|\n| 1 | 2 |\nnot a row\n\n| x |\n|:-:|\n\n| y\n|-\n",
    # CRLF and lone CR line ends, hard breaks, escapes, raw HTML (escaped: html is off).
    "one  \r\ntwo\\\r\nthree\r\rfour\r\n\r\n<div>\r\nhtml</div>\r\n\r\n\\- not a list\r\n",
    # Citation markers as the live view writes them, and emphasis across lines.
    "The total is 310 EUR.[1] It is due *in\nMarch*.[2]\n\nThe lease ends in 2027.[3]\n",
]

#: Lines that change how the lines around them parse: the fuzzed documents are made of them.
TRICKY = [
    "# H", "Foo", "===", "---", "***", "***x", "- a", "* b", "1. one", "2) two", "  indented",
    "    code", "> q", "```", "~~~", "| a | b |", "|---|---|", "| 1 | 2 |", "", "", "",
    "[foo]: /url", "[foo]", "[bar]: /b 'ti", "tle'", "text *em", "ph*", "-", "1.", "+ c",
    "> - x", "- > y", "\tcode", "a  ", "b\\", "| c |", "|:-|", "   ", " - nested", "   - deeper",
    "10. ten", "[a", "b](c)", "<!-- x -->", "&amp; &copy", "```js", "    ```", "- ```",
    "  code in item", "  ```", "> ```", ">", "> > deep", "___", "_ _ _", "#", "## h2 ##",
    "Bar\r", "x\r\ny", "    ", "\\- not list", "<http://x.y>", "![img](u)", "    - a", "| x",
    "x |", "|-", ":--|--:", "[Foo]: https://example.com", "see [FOO] here",
]  # fmt: skip


def _check_prefixes(text: str, steps: Iterator[int]) -> MarkdownBlocks:
    """Feed ``text`` to one MarkdownBlocks prefix by prefix, checking each against a whole
    render; returns it, fed the whole text."""
    md = markdown_parser()
    blocks = MarkdownBlocks()
    end = 0
    while True:
        prefix = text[:end]
        blocks.update(prefix)
        assert "".join(blocks.finished) + blocks.live == md.render(prefix), repr(prefix)
        if end >= len(text):
            return blocks
        end = min(len(text), end + next(steps))


def _every(step: int) -> Iterator[int]:
    while True:
        yield step


@pytest.mark.parametrize("document", DOCUMENTS)
def test_kept_and_live_html_is_the_html_of_every_prefix(document: str) -> None:
    blocks = _check_prefixes(document, _every(1))
    assert blocks.finished, "a document of many blocks keeps some of them"


@pytest.mark.parametrize("seed", range(4))
def test_fuzzed_documents_fed_in_uneven_pieces(seed: int) -> None:
    rng = random.Random(seed)
    kept = 0
    for _ in range(120):
        lines = [rng.choice(TRICKY) for _ in range(rng.randint(3, 40))]
        document = "\n".join(lines) + rng.choice(["", "\n"])
        steps = iter(lambda: rng.choice([1, 1, 2, 3, 7, 20]), None)
        kept += len(_check_prefixes(document, steps).finished)
    assert kept > 100


def test_a_line_still_being_written_decides_nothing() -> None:
    blocks = MarkdownBlocks()
    # "***" under a paragraph is a rule, "***x" would continue the paragraph: wait for the line.
    blocks.update("Foo\n***")
    assert blocks.finished == []
    blocks.update("Foo\n***\nbar")
    assert blocks.finished == ["<p>Foo</p>\n"]
    # A header row is a paragraph line until the delimiter row under it is complete.
    blocks = MarkdownBlocks()
    blocks.update("Intro\n| a | b |\n|---|---|")
    assert blocks.finished == []
    blocks.update("Intro\n| a | b |\n|---|---|\n| 1 | 2 |\n\nnext")
    # The table is ended by the blank line under it; the paragraph begun mid-line is live.
    assert "".join(blocks.finished).startswith("<p>Intro</p>\n<table>")
    assert blocks.live == "<p>next</p>\n"
    # A growing fence, list or table is one block, the last: it stays live whatever its length.
    blocks = MarkdownBlocks()
    blocks.update("```\n" + "x = 1\n\n" * 200)
    assert blocks.finished == []


def test_a_blank_line_ends_a_paragraph_but_not_a_list_or_a_fence() -> None:
    blocks = MarkdownBlocks()
    blocks.update("A paragraph.\n")
    assert blocks.finished == []  # "===" on the next line would make it a heading
    blocks.update("A paragraph.\n\n")
    assert blocks.finished == ["<p>A paragraph.</p>\n"] and blocks.live == ""
    blocks = MarkdownBlocks()
    blocks.update("- one\n- two\n\n")  # "  more" next would be a second paragraph of "two"
    assert blocks.finished == []
    blocks.update("```\ncode\n\n")  # still inside the fence
    assert blocks.finished == []


def test_a_reference_defined_late_links_what_came_before() -> None:
    text = "See [the docs].\n\n" + "A paragraph.\n\n" * 5 + "[the docs]: https://example.com\n"
    blocks = _check_prefixes(text, _every(1))
    assert '<a href="https://example.com">the docs</a>' in "".join(blocks.finished) + blocks.live
    assert blocks.resets >= 1  # the kept link text was rendered afresh


def test_a_long_answer_keeps_all_but_the_block_being_written() -> None:
    paragraphs = [f"Paragraph {n} says something *useful* about `step_{n}()`." for n in range(300)]
    text = "\n\n".join(paragraphs)
    blocks = MarkdownBlocks()
    for n in range(1, len(paragraphs)):
        blocks.update("\n\n".join(paragraphs[: n + 1]))
        # Only the paragraph being written (and the one before it, until a complete line
        # follows) is rendered again: the work of a render does not grow with the answer.
        assert len(blocks.live) <= 2 * len(markdown_to_html(paragraphs[n]))
    assert "".join(blocks.finished) + blocks.live == markdown_to_html(text)
    assert blocks.resets == 0


def test_a_moving_citation_marker_is_rendered_where_it_is_now() -> None:
    # The live view writes [n] after a cited block's text, so the text does not only grow.
    blocks = MarkdownBlocks()
    cited: list[dict[str, Any]] = [
        {"type": "char_location", "cited_text": "x", "document_index": 0}
    ]
    grown = ""
    for piece in ["First paragraph.\n\n", "Second, cited", " and longer.\n\n", "Third"]:
        grown += piece
        answer, _ = live_parts([("Intro.\n\n", None), (grown, cited)])
        blocks.update(answer)
        assert "".join(blocks.finished) + blocks.live == markdown_to_html(answer)
    shown = "".join(blocks.finished) + blocks.live
    assert "Third[1]" in shown and "paragraph.[1]" not in shown
    assert blocks.resets >= 1  # the marker had been kept after "First paragraph."


# -- The widget: what a real comm sends, and what the front end makes of it --------------------

#: Characters outside the Basic Multilingual Plane are two UTF-16 code units in JavaScript: the
#: offsets of a step must count them so (and a cut never splits one).
ASTRAL = (
    "# Résumé 🎉\n\nA *growing* 𝔭aragraph with 😀 emoji, `código` and 漢字,\nmore 👍🏽 here.\n\n"
    "- 🍎 one\n- 🍐 two\n\n```\n🐍 = 1\n```\n\n| 🅰 | b |\n|---|---|\n| 𝟙 | 2 |\n\nEnd 🏁.\n"
)


class FrontEnd:
    """What live_view.js keeps of a live widget, built from its messages exactly as the
    JavaScript does, offsets in UTF-16 code units (the tail is kept as UTF-16 bytes)."""

    def __init__(self) -> None:
        self.done: dict[str, list[str]] = {"t": [], "a": []}
        self.tail = {"t": b"", "a": b""}
        self.status = ""
        self.after = ""

    def receive(self, message: dict[str, Any]) -> None:
        for key in ("t", "a"):
            if key not in message:
                continue
            offset, suffix, cut = message[key]
            if offset < 0:
                self.done[key] = []
                tail = b""
            else:
                assert 0 <= offset <= len(self.tail[key]) // 2
                tail = self.tail[key][: 2 * offset]
            tail += suffix.encode("utf-16-le")
            finished, self.tail[key] = tail[: 2 * cut], tail[2 * cut :]
            if finished:  # decoding fails if a cut split a surrogate pair
                self.done[key].append(finished.decode("utf-16-le"))
        self.status = message.get("s", self.status)
        self.after = message.get("f", self.after)

    def html(self, key: str = "a") -> str:
        """The section's HTML as shown: its finished nodes, then its live element."""
        return "".join(self.done[key]) + self.tail[key].decode("utf-16-le")


class Wire:
    """Every message the widgets publish, serialised and signed as a kernel sends it, then read
    back as the front end receives it; a :class:`FrontEnd` for every live widget."""

    def __init__(self) -> None:
        from jupyter_client.session import Session

        self.messages: list[tuple[str, str, dict[str, Any]]] = []
        self.front_ends: dict[str, FrontEnd] = {}
        self.bytes = 0
        self.steps: list[dict[str, Any]] = []  # every render message, in order
        # Messages are sized as a kernel sends them: signed, with the request as parent.
        self._session = Session(key=b"test-key", signature_scheme="hmac-sha256")
        self._parent = self._session.msg("execute_request", {"code": "%%claude\nhi"})["header"]

    def publish(self, msg_type: str, comm_id: str, data: dict[str, Any]) -> None:
        session = self._session
        content = {"data": data, "comm_id": comm_id}
        frames = session.serialize(session.msg(msg_type, content, self._parent))
        self.bytes += len(f"comm-{comm_id}") + sum(len(frame) for frame in frames)
        _, wire_frames = session.feed_identities(frames)
        received = session.deserialize(wire_frames)["content"]  # checks the signature too
        data = received["data"]
        self.messages.append((msg_type, comm_id, data))
        if msg_type == "comm_open" and data["state"].get("_model_name") == "AnyModel":
            self.front_ends[comm_id] = FrontEnd()
        elif data.get("method") == "custom":
            self.steps.append(data["content"])
            self.front_ends[comm_id].receive(data["content"])


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    """Widget comms that publish into a :class:`Wire` (with no ``kernel`` attribute, so
    ipywidgets syncs state as it does in a live kernel)."""
    import comm
    from comm.base_comm import BaseComm

    captured = Wire()

    class CapturingComm(BaseComm):  # type: ignore[misc]
        def publish_msg(
            self,
            msg_type: str,
            data: dict[str, Any] | None = None,
            metadata: dict[str, Any] | None = None,
            buffers: list[bytes] | None = None,
            **keys: Any,
        ) -> None:
            captured.publish(msg_type, self.comm_id, data or {})

    monkeypatch.setattr(comm, "create_comm", CapturingComm)
    return captured


def _front_end(wire: Wire, view: WidgetView) -> FrontEnd:
    return wire.front_ends[view._widget.comm.comm_id]


def _accumulator() -> MessageAccumulator:
    acc = MessageAccumulator()
    acc.feed({"type": "message_start", "message": {"model": "claude-sonnet-4-6", "content": [],
              "usage": {"input_tokens": 12, "output_tokens": 1}}})  # fmt: skip
    acc.feed(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    )
    return acc


def _stream(
    view: WidgetView,
    text: str,
    step: int,
    wire: Wire,
    pause: tuple[int, Callable[[], None]] | None = None,
) -> list[int]:
    """Stream ``text`` into ``view`` through a real accumulator, one render every ``step``
    characters, as the throttle would; the bytes each render sent. At every render, what the
    front end shows is compared with the whole text rendered. ``pause``: (n, f), f is called
    once the first n characters have been shown."""
    acc = _accumulator()
    sent = []
    for start in range(0, len(text), step):
        delta = {"type": "text_delta", "text": text[start : start + step]}
        acc.feed({"type": "content_block_delta", "index": 0, "delta": delta})
        before = wire.bytes
        view.render(acc)
        sent.append(wire.bytes - before)
        assert _front_end(wire, view).html() == markdown_to_html(acc.text), acc.text[-80:]
        if pause is not None and start + step >= pause[0]:
            pause[1]()
            pause = None
    return sent


def _answer(sections: int) -> str:
    rng = random.Random(sections)
    parts = []
    for n in range(sections):
        parts.append(
            f"## Part {n}\n\nThe figures for part {n} " + "rise and fall " * rng.randint(5, 30)
        )
        parts.append("\n".join(f"- item {k}: `value_{k}`" for k in range(rng.randint(2, 5))))
        parts.append(
            "```python\n" + "\n".join(f"x_{k} = {k}" for k in range(rng.randint(1, 8))) + "\n```"
        )
    return "\n\n".join(parts)


def _live_view() -> WidgetView:
    view = WidgetView("claude-sonnet-4-6", price_overrides={})
    view.start()
    return view


@pytest.mark.parametrize("step", [1, 3, 17])
@pytest.mark.parametrize("document", [*DOCUMENTS, ASTRAL])
def test_the_front_end_shows_the_whole_render_of_every_prefix(
    ip: InteractiveShell, wire: Wire, document: str, step: int
) -> None:
    view = _live_view()
    _stream(view, document, step, wire)
    view.abandon()


def test_fuzzed_documents_through_the_front_end(ip: InteractiveShell, wire: Wire) -> None:
    rng = random.Random(16)
    for _ in range(40):
        lines = [rng.choice([*TRICKY, "🎉 *x*", "`😀`", "- 𝔭"]) for _ in range(rng.randint(3, 30))]
        view = _live_view()
        _stream(view, "\n".join(lines), rng.choice([1, 2, 5, 11]), wire)
        view.abandon()


def test_the_html_is_sent_once_and_renders_cost_the_same_throughout(
    ip: InteractiveShell, wire: Wire
) -> None:
    sent: dict[int, list[int]] = {}
    carried: dict[int, int] = {}
    for sections in (50, 100):
        view = _live_view()
        steps = len(wire.steps)
        sent[sections] = _stream(view, _answer(sections), 120, wire)
        carried[sections] = sum(len(m["a"][1]) for m in wire.steps[steps:] if "a" in m)
        view.abandon()
    html = len(markdown_to_html(_answer(100)))
    # Each render sends the new words of the block being written (and its closing tags), never
    # a block again: about the answer's HTML in all (the sealed HTML widgets re-sent 2-3x it).
    assert html <= carried[100] <= 1.2 * html, (carried[100], html)
    # Twice the answer, twice the bytes.
    assert sum(sent[100]) / sum(sent[50]) < 2.1, (sum(sent[50]), sum(sent[100]))
    # A render every 120 characters: a message (~600 bytes) and about 120 characters of HTML,
    # at the end as at the start.
    first, last = sent[100][: len(sent[100]) // 10], sent[100][-len(sent[100]) // 10 :]
    assert statistics.mean(last) <= 1.1 * statistics.mean(first), (first, last)
    assert max(sent[100]) < 1500, max(sent[100])


def test_changed_references_replace_everything_once(ip: InteractiveShell, wire: Wire) -> None:
    # A reference defined late re-renders the kept blocks: the front end is told to drop them.
    text = "Read [the guide] first.\n\n" + _answer(20) + "\n\n[the guide]: https://example.com\n"
    view = _live_view()
    shown: list[int] = []
    # The front end is checked at every render; its finished nodes are counted before the end.
    front = _front_end(wire, view)
    _stream(
        view, text, 60, wire, pause=(len(text) - 40, lambda: shown.append(len(front.done["a"])))
    )
    assert shown[0] > 10 and view._answer_blocks.resets == 1
    assert [m["a"][0] for m in wire.steps if "a" in m].count(-1) == 1
    assert '<a href="https://example.com">the guide</a>' in front.html()
    view.abandon()


def test_a_long_answer_through_the_magic(
    ip: InteractiveShell, emulator: Emulator, wire: Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    magics_of(ip).display = "widget"
    magics_of(ip).updates_per_second = 100.0
    document = _answer(40)
    emulator.add_reply(document)
    emulator.configure(tokens_per_second=2000)  # about 2 s: renders at most 1 s apart
    checked: list[int] = []
    original = views.WidgetView.render

    def spy(self: WidgetView, acc: Any) -> None:
        original(self, acc)
        # At every render the front end shows the answer so far, rendered whole.
        assert _front_end(wire, self).html() == markdown_to_html(acc.text)
        checked.append(len(acc.text))

    monkeypatch.setattr(views.WidgetView, "render", spy)
    captured = ok(ip, "%%claude\nA long answer, please.")
    assert len([n for n in checked if n]) >= 2
    first = captured.outputs[0]
    assert "application/vnd.jupyter.widget-view+json" in first.data
    assert first.data["text/plain"] == ""  # constant plain repr: nbval compares only this
    # The static output that replaces the live view is the answer's Markdown, as before.
    static = final(captured)
    assert static["text/markdown"].startswith(document)
    assert static["text/plain"].startswith(document)
    updates = [o.data for o in captured.outputs if getattr(o, "update", False)]
    assert updates[-1] == {"text/plain": ""}
    opened = {c for kind, c, _ in wire.messages if kind == "comm_open"}
    closed = {c for kind, c, _ in wire.messages if kind == "comm_close"}
    assert opened == closed  # no widget of the live view outlives it


def test_long_thinking_streams_the_same_way(
    ip: InteractiveShell, emulator: Emulator, wire: Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    magics_of(ip).display = "widget"
    magics_of(ip).updates_per_second = 100.0
    emulator.add_reply("The answer.", thinking=_answer(30))
    emulator.configure(tokens_per_second=2000)
    shown: list[int] = []
    original = views.WidgetView.render

    def spy(self: WidgetView, acc: Any) -> None:
        original(self, acc)
        front = _front_end(wire, self)
        assert front.html("t") == (markdown_to_html(acc.thinking) if acc.thinking else "")
        assert front.html("a") == markdown_to_html(acc.text)
        if acc.thinking:
            shown.append(len(acc.thinking))

    monkeypatch.setattr(views.WidgetView, "render", spy)
    captured = ok(ip, "%%claude -m claude-haiku-4-5 --thinking 4000\nThink at length.")
    assert len(shown) >= 2
    assert "<details><summary>Thinking</summary>" in final(captured)["text/markdown"]


def test_without_anywidget_the_answer_streams_as_display_updates(
    ip: InteractiveShell, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "anywidget", None)  # as if it were not installed
    magics_of(ip).display = "widget"
    emulator.add_reply("## Still here\n\nStreamed without the widget, " + "word " * 60)
    emulator.configure(tokens_per_second=200)
    captured = ok(ip, "%%claude\nHello")
    assert all("application/vnd.jupyter.widget-view+json" not in o.data for o in captured.outputs)
    live = [o.data.get("text/markdown", "") for o in captured.outputs if o.update]
    assert any("Still here" in update for update in live)
    assert final(captured)["text/markdown"].startswith("## Still here")


def _most_in_a_second(times: list[float]) -> int:
    return max((sum(1 for t in times if start <= t < start + 1.0) for start in times), default=0)


@pytest.mark.parametrize("tokens_per_second", [100, 300, 1000, 2000])
def test_a_paced_long_answer_sends_at_most_three_times_its_html(
    ip: InteractiveShell, wire: Wire, monkeypatch: pytest.MonkeyPatch, tokens_per_second: int
) -> None:
    # A fake clock that moves one token's time per token: the same renders on every run.
    clock = [0.0]
    monkeypatch.setattr(views.time, "monotonic", lambda: clock[0])
    text = _answer(120)
    view = WidgetView("claude-sonnet-4-6", price_overrides={})
    renders: list[float] = []
    statuses: list[float] = []
    original = view.render

    def spy(acc: MessageAccumulator) -> None:
        status = view._status_text
        original(acc)
        renders.append(clock[0])
        if view._status_text != status:
            statuses.append(clock[0])
            assert _front_end(wire, view).status == view._status_text
        assert _front_end(wire, view).html() == markdown_to_html(acc.text)

    view.render = spy  # type: ignore[method-assign]
    view.start()
    acc = _accumulator()
    gaps = []
    for start in range(0, len(text), 4):  # a token is about four characters
        piece = text[start : start + 4]
        acc.feed({"type": "content_block_delta", "index": 0,
                  "delta": {"type": "text_delta", "text": piece}})  # fmt: skip
        view.event(TextEvent(index=0, text=piece), acc)
        gaps.append(clock[0] - renders[-1])
        clock[0] += 1 / tokens_per_second
    view.abandon()
    html = len(markdown_to_html(text))
    # Everything the live view sent, from its widget's comm_open to its last comm_close.
    assert wire.bytes <= 3 * html, (wire.bytes / html, len(renders))
    assert _most_in_a_second(renders) <= 15  # the throttle's cap
    assert max(gaps) <= WidgetView.LONGEST_WAIT  # new text never waits longer than that
    assert _most_in_a_second(statuses) <= WidgetView.STATUS_PER_SECOND
    assert len(statuses) >= clock[0] * WidgetView.STATUS_PER_SECOND - 2  # and it keeps moving
