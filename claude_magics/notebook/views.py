"""How a call is shown: live while it streams, then as a static output that survives saving.

    view = make_view("auto", shell, model=model)
    view.start(); view.event(event, accumulator); ...; view.finish(result, bundle, metadata)

Three views share one interface, the :class:`View` protocol (``cell.send`` drives any object
that has its four methods, so tests hand it a small fake):

- ``WidgetView`` (Jupyter with ipywidgets): one small anywidget (:mod:`.live_widget`),
  displayed once, updated at most ``updates_per_second`` times a second: status line, thinking
  in a collapsible section, the answer rendered as Markdown. Finished Markdown blocks are
  rendered once (:mod:`.live_markdown`) and its front end appends them once; a render sends
  one message with only what changed (the new words of the block being written), so a render
  costs the same at token 100 and at token 20,000 and what is sent grows linearly. Renders
  are also kept within a byte budget (each message carries ~600 bytes of kernel envelope):
  see :class:`WidgetView`. Without anywidget (a partial install) it is ``MarkdownView``.
- ``MarkdownView`` (Jupyter without widgets): a display-id placeholder updated with Markdown
  (a display update can only replace the whole output, so this one re-sends the answer).
- ``PlainView`` (terminal IPython): text printed as it arrives, never re-rendered.

Thinking shows even when its text does not come back (new models omit it unless asked): the
status line reads "thinking… 3.2 s" while a thinking block is open and "thought 3.2 s" after
(a :class:`~.result.ThinkingClock` times the blocks), and both moments are shown at once,
whatever the render throttle.

When the stream ends, the live output is replaced by an empty ``text/plain`` and the answer is
displayed afresh as static Markdown with a ``text/plain`` twin. The saved notebook then holds the
answer without widget state (so it shows on GitHub, nbviewer and after reopening), and nbval,
which ignores display updates and compares only a widget's ``text/plain``, sees the same
outputs on every run: an empty placeholder, then the answer.
"""

from __future__ import annotations

import html
import importlib.util
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Protocol

from ..api.streaming import (
    CitationEvent,
    ContentBlockStartEvent,
    ContentBlockStopEvent,
    MessageAccumulator,
    MessageStopEvent,
    StreamEvent,
    TextEvent,
    ThinkingEvent,
)
from ..cost.pricing import price_usage
from ..cost.usage import Usage
from ..prompt import estimate_tokens
from .content import Footnotes, live_parts, live_text
from .live_markdown import MESSAGE_BYTES, LiveSection, MarkdownBlocks, markdown_parser
from .live_widget import new_live_widget
from .result import ClaudeResult, ThinkingClock, status_line

__all__ = ["MarkdownView", "PlainView", "View", "WidgetView", "make_view", "markdown_to_html"]


def markdown_to_html(text: str) -> str:
    """Markdown as HTML for the live widget; raw HTML in the model's text is escaped."""
    return str(markdown_parser().render(text))


def display(obj: Any, **kwargs: Any) -> Any:
    """IPython's ``display`` (imported on first use; it is untyped)."""
    from IPython.display import display as ipython_display

    return ipython_display(obj, **kwargs)  # type: ignore[no-untyped-call]


class View(Protocol):
    """What ``cell.send`` needs of a view: four calls, in this order."""

    def start(self) -> None:
        """Show the live view (streamed calls only; called before the request is sent)."""

    def event(self, event: StreamEvent, acc: MessageAccumulator) -> None:
        """Called for every stream event; views decide when to re-render."""

    def finish(
        self, result: ClaudeResult, bundle: dict[str, Any], metadata: dict[str, Any]
    ) -> None:
        """Show the final answer (``bundle`` is a MIME bundle) and retire the live view."""

    def abandon(self) -> None:
        """Retire the live view without a final answer (the call failed before any text)."""


class _Throttled(ABC):
    """Shared timing for the views that re-render: at most N renders a second."""

    def __init__(
        self,
        model: str,
        updates_per_second: float,
        price_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.price_overrides = price_overrides
        self.interval = 1.0 / max(updates_per_second, 0.1)
        self.started = time.monotonic()
        self.clock = ThinkingClock()
        self._next = 0.0
        self.renders = 0
        self._cited = False
        self._arrived = 0  # characters of answer and thinking received so far

    @abstractmethod
    def render(self, acc: MessageAccumulator) -> None:
        """Redraw the live view from the message so far."""

    def _answer_markdown(self, acc: MessageAccumulator) -> str:
        """The answer's Markdown so far: its text, and once anything is cited, ``[n]`` after
        each cited block and the sources under it (a few blocks: cheap at every render)."""
        return live_text(acc.text_parts()) if self._cited else acc.text

    def event(self, event: StreamEvent, acc: MessageAccumulator) -> None:
        if isinstance(event, TextEvent):
            self._arrived += len(event.text)
        elif isinstance(event, ThinkingEvent):
            self._arrived += len(event.thinking)
        elif isinstance(event, CitationEvent):
            self._cited = True
        now = time.monotonic()
        # Thinking starting or ending is shown at once: with its text omitted, nothing else
        # arrives while the model thinks, so a skipped render would hide it for seconds.
        changed = self.clock.feed(event, now)
        if not changed:
            if now < self._next:
                return
            if not self._worth(now, isinstance(event, MessageStopEvent)):
                return
        self.render(acc)
        spent = time.monotonic() - now
        # A render that is slow for some other reason (a huge block still being written, a
        # busy machine) must not eat the kernel: space renders at least 10x their own cost,
        # keeping the view under ~10% of a core, but never leave it still for over a second.
        self._next = now + min(max(self.interval, 10 * spent), 1.0)

    def _worth(self, now: float, end: bool) -> bool:
        """Whether a render the throttle allows is worth its cost (``end``: the message is
        complete). Views that re-send the whole answer render whenever they may."""
        return True

    def _status(self, acc: MessageAccumulator) -> str:
        # Read in place, not through acc.message: this runs up to 15 times a second.
        usage = Usage.from_api(acc._usage)
        # The API reports output tokens only in the final message_delta (message_start says 1),
        # so until then count what has arrived: otherwise the line reads "1 out" while the
        # answer visibly grows. The exact figure replaces it when the stream ends.
        arrived = estimate_tokens(acc.text) + estimate_tokens(acc.thinking)
        if arrived > usage.output:
            usage = usage.with_output(arrived)
        cost = price_usage(usage, self.model, overrides=self.price_overrides)
        now = time.monotonic()
        return status_line(
            self.model,
            usage,
            cost,
            now - self.started,
            thinking_seconds=self.clock.seconds(now),
            still_thinking=self.clock.thinking,
            streaming=True,
        )


class WidgetView(_Throttled):
    """The live widget view: one :mod:`.live_widget`, whose front end appends.

    A render is one message carrying only what changed (the new words of the block being
    written, blocks that finished, the status line when it changed), so what it costs is
    mostly the message itself: ~600 bytes of kernel envelope. A render is made only when it is
    worth it: when the bytes sent so far, this render included, stay within
    :attr:`BYTES_PER_HTML_BYTE` times the HTML shown (plus a little for the start), or when
    the text has waited :attr:`LONGEST_WAIT` seconds or the status line is due, so it keeps
    moving whatever the pace. The first text is shown at once. The status line changes at
    most :attr:`STATUS_PER_SECOND` times a second (and at once when thinking starts or stops);
    it rides in the render's message, so it costs no envelope of its own."""

    #: The render budget: bytes sent against the bytes of HTML shown.
    BYTES_PER_HTML_BYTE = 2.4
    #: Bytes the budget allows beyond that: the first renders of a short answer.
    BUDGET_SLACK = 8_000
    #: The longest new text waits for a render, in seconds.
    LONGEST_WAIT = 1.0
    #: How often the status line may change.
    STATUS_PER_SECOND = 1.0

    def __init__(
        self,
        model: str,
        updates_per_second: float = 15.0,
        price_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(model, updates_per_second, price_overrides)
        self._widget: Any = None
        self._handle: Any = None
        self._answer_blocks = MarkdownBlocks()
        self._thinking_blocks = MarkdownBlocks()
        self._answer = LiveSection()
        self._thinking = LiveSection()
        self._sources = ("", "")  # the sources list: Markdown, and its HTML
        self._status_text = ""  # the status line as the front end shows it
        self._rendered_at = 0.0  # when the last render was
        self._arrived_shown = 0  # what ``_arrived`` was at the last render
        self._status_at = -1.0  # when the status line was last due
        self._thinking_state: tuple[bool, int] = (False, 0)  # as the status line shows it
        #: Bytes sent to the front end by renders, estimated (:data:`MESSAGE_BYTES` a message).
        self.sent = 0

    def start(self) -> None:
        try:
            widget = new_live_widget()
        except ImportError as exc:  # pragma: no cover - anywidget is a dependency
            raise RuntimeError(
                f"anywidget could not be imported ({exc}): pip install -U anywidget, "
                "or %config ClaudeMagics.display = 'markdown'"
            ) from exc
        markdown_to_html("")  # build the parser now, so its one-time cost is not a render's
        self._widget = widget
        self._handle = display(widget, display_id=True)
        # Something to see while the request waits for its first event.
        self._send({"s": "starting…"})

    def _worth(self, now: float, end: bool) -> bool:
        new = self._arrived - self._arrived_shown
        # The status line is due: it rides in the render's message, new text or not.
        if now - self._status_at >= 1.0 / self.STATUS_PER_SECOND:
            return True
        if not new:
            return False
        if not self._arrived_shown or end or now - self._rendered_at >= self.LONGEST_WAIT:
            return True
        shown = self._answer.shown + self._thinking.shown + len(self._sources[1])
        # This render: a message (the status line in it) and the new text.
        cost = MESSAGE_BYTES + len(self._status_text) + new
        return self.sent + cost <= self.BYTES_PER_HTML_BYTE * (shown + new) + self.BUDGET_SLACK

    def render(self, acc: MessageAccumulator) -> None:
        self.renders += 1
        now = time.monotonic()
        self._rendered_at = now
        self._arrived_shown = self._arrived
        message: dict[str, Any] = {}
        thinking = acc.thinking
        if thinking:
            self._thinking_blocks.update(thinking)
            if step := self._thinking.step(self._thinking_blocks):
                message["t"] = step
        if self._cited:
            answer, sources = live_parts(acc.text_parts())
        else:
            answer, sources = acc.text, ""
        if sources != self._sources[0]:  # it changes only when a new source is cited
            self._sources = (sources, markdown_to_html(sources) if sources else "")
            message["f"] = self._sources[1]
        self._answer_blocks.update(answer)
        if step := self._answer.step(self._answer_blocks):
            message["a"] = step
        thinking_state = self.clock.thinking, self.clock.blocks
        if now - self._status_at >= 1.0 / self.STATUS_PER_SECOND or (
            thinking_state != self._thinking_state
        ):
            status = self._status(acc)
            self._status_at, self._thinking_state = now, thinking_state
            if status != self._status_text:
                message["s"] = self._status_text = status
        if message:
            self._send(message)

    def _send(self, message: dict[str, Any]) -> None:
        self._widget.send(message)
        self.sent += MESSAGE_BYTES + _payload(message)

    def _retire(self) -> None:
        if self._handle is not None:
            self._handle.update({"text/plain": ""}, raw=True)
        if self._widget is not None:
            # Its layout is a widget too: left open, each live view would leave it in the
            # kernel's widget registry for good.
            self._widget.layout.close()
            self._widget.close()

    def finish(
        self, result: ClaudeResult, bundle: dict[str, Any], metadata: dict[str, Any]
    ) -> None:
        self._retire()
        display(bundle, raw=True, metadata=metadata)

    def abandon(self) -> None:
        self._retire()


def _payload(message: dict[str, Any]) -> int:
    """About the bytes of a render message's content: its strings and some JSON around them."""
    size = 40
    for value in message.values():
        size += len(value) + 8 if isinstance(value, str) else len(value[1]) + 24
    return size


class MarkdownView(_Throttled):
    """Live Markdown through a display-id placeholder, for front ends without widgets."""

    def __init__(
        self,
        model: str,
        updates_per_second: float = 15.0,
        price_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(model, updates_per_second, price_overrides)
        self._handle: Any = None

    def start(self) -> None:
        self._handle = display({"text/plain": ""}, raw=True, display_id=True)

    def render(self, acc: MessageAccumulator) -> None:
        self.renders += 1
        status = html.escape(self._status(acc))
        self._handle.update(
            {
                "text/markdown": f"{self._answer_markdown(acc)}\n\n<sub>{status}</sub>",
                "text/plain": "",
            },
            raw=True,
        )

    def finish(
        self, result: ClaudeResult, bundle: dict[str, Any], metadata: dict[str, Any]
    ) -> None:
        self.abandon()
        display(bundle, raw=True, metadata=metadata)

    def abandon(self) -> None:
        if self._handle is not None:
            self._handle.update({"text/plain": ""}, raw=True)


class PlainView:
    """Terminal IPython: print text as it arrives; a status line at the end. Thinking prints
    as ``[thinking…] <text, if any> [thought 3.2 s]`` before the answer."""

    def __init__(self, model: str, stream: Any = None) -> None:
        self.model = model
        self._out = stream or sys.stdout
        self._clock = ThinkingClock()
        self._printed_any = False
        self._thinking_text = False
        self._notes = Footnotes()
        self.renders = 0

    def start(self) -> None:
        pass

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    def event(self, event: StreamEvent, acc: MessageAccumulator) -> None:
        now = time.monotonic()
        if isinstance(event, TextEvent):
            self._write(event.text)
            self._printed_any = True
        elif isinstance(event, ThinkingEvent):
            if event.thinking:
                self._write((" " if not self._thinking_text else "") + event.thinking)
                self._thinking_text = True
        elif isinstance(event, ContentBlockStartEvent):
            if self._clock.feed(event, now):
                self._write("[thinking…]")
                self._thinking_text = False
        elif isinstance(event, ContentBlockStopEvent):
            if self._clock.feed(event, now):
                took = self._clock.seconds(now) or 0.0
                self._write(f" [thought {took:.1f} s]\n\n")
            elif event.block.get("type") == "text" and event.block.get("citations"):
                # Its text is printed: the markers follow it, the sources come at the end.
                numbers = self._notes.numbers(event.block["citations"])
                self._write("".join(f"[{n}]" for n in numbers))

    def finish(
        self, result: ClaudeResult, bundle: dict[str, Any], metadata: dict[str, Any]
    ) -> None:
        if not self._printed_any:
            # Non-streamed calls and formats that re-shape the answer print it whole.
            self._out.write(bundle.get("text/plain", result.text))
        elif self._notes.entries:
            self._out.write("\n\n" + self._notes.plain())
        self._out.write(f"\n\n[{result.status()}]\n")
        self._out.flush()

    def abandon(self) -> None:
        if self._printed_any or self._clock.blocks:
            self._write("\n")


def make_view(
    mode: str,
    shell: Any,
    model: str,
    updates_per_second: float = 15.0,
    price_overrides: Mapping[str, Any] | None = None,
) -> View:
    """The view for ``mode`` (auto, widget, markdown, plain) in this kind of shell; the live
    status line prices with ``price_overrides`` (see :func:`~claude_magics.cost.price_usage`)."""
    if mode == "auto":
        if getattr(shell, "kernel", None) is None:
            mode = "plain"  # terminal IPython: no front end to render anything
        else:
            try:
                import ipywidgets  # noqa: F401
            except ImportError:  # pragma: no cover - ipywidgets is a dependency
                mode = "markdown"
            else:
                mode = "widget"
    if mode == "widget":
        if importlib.util.find_spec("anywidget") is not None:  # found, not imported
            return WidgetView(model, updates_per_second, price_overrides)
        # anywidget is a dependency; without it (a partial install) the answer still streams,
        # as display updates that re-send it whole.
        mode = "markdown"
    if mode == "markdown":
        return MarkdownView(model, updates_per_second, price_overrides)
    return PlainView(model)
