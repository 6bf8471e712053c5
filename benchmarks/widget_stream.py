"""A long stream through the live widget view, against the client alone, on the same emulator.

    python benchmarks/widget_stream.py [--deltas 20000] [--rounds 5] [--comm serialising|dummy]

What is measured: the CPU time (``time.process_time()``) of this process while it consumes one
reply of ``--deltas`` text deltas (one token each, no pacing) from an emulator in its own process
(``python -m claude_magics.emulator``), so the server's work is not counted:

(a) client alone: ``client.messages.stream(...)``, iterating every event;
(b) widget view: the same stream through ``claude_magics.notebook.cell.send`` into a
    ``claude_magics.notebook.views.WidgetView``, exactly as ``%%claude`` sends it:
    ``view.start()``, ``view.event(event, stream.accumulator)`` for every event, then the
    final static output and ``view.finish(...)``.

Runs are interleaved (a, b, a, b, ...) after one warm-up each; figures are medians. For (b) it
also counts the view's renders, their rate, the most renders in any one-second window and the
shortest gap between two, and the messages and bytes the kernel would send to the front end.

(b) runs inside an IPython ``InteractiveShell`` so that ``display`` works. Without a kernel,
widgets would not do their real work: ``comm.create_comm`` gives a ``DummyComm`` whose
``publish_msg`` drops every message unserialised (ipywidgets still builds the state dict), and
once ipykernel is imported its comms have ``kernel=None``, so ipywidgets skips state syncing
altogether. So by default (``--comm serialising``) every widget comm message (the live
widget's custom messages too) and every display message is built and serialised as ipykernel
does it, with a ``jupyter_client.Session`` (JSON and an HMAC-SHA256 signature); only the
socket write is left out. ``--comm dummy`` measures with the default dummy comm instead.

A paced variant (``--paced-deltas 4000`` at ``--paced-rate 2000`` tokens a second, a stream that
lasts seconds) shows that the renders-per-second cap holds over time, not just in a short burst.

A long answer (issue 16): ``--long-tokens 20000`` tokens of varied Markdown (headings, paragraphs,
lists, code, tables, quotes), scripted into the emulator and paced at ``--long-rate`` tokens a
second, through (b) and through (c), the view as it was before issue 16, which re-rendered the
whole answer into one HTML widget at every render. For each: bytes sent to the front end against
the size of the final answer's HTML, renders a second, and the CPU and bytes of one render in
the last 10% of renders against the first 10%.

Targets (issue 3): (b) at most 1.3x the CPU time of (a) on the 20,000-delta stream, and at most
15 view updates a second. Issue 16: on the long answer, a render costs the same at its end as at
its start (CPU and bytes), and bytes sent grow linearly with the answer.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

MODEL = "claude-sonnet-4-6"
CPU_TARGET = 1.3
RENDERS_TARGET = 15
BYTES_TARGET = 3
A = "(a) client alone"
B = "(b) client + WidgetView"
C = "(c) full re-render (before)"


@dataclass
class Run:
    """One consumed stream: CPU and wall seconds, text deltas, and the view's render times."""

    cpu: float
    wall: float
    deltas: int
    renders: list[float] = field(default_factory=list)
    render_cpu: float = 0.0
    start_finish_cpu: float = 0.0
    wire_messages: int = 0
    wire_bytes: int = 0
    render_cpus: list[float] = field(default_factory=list)
    render_bytes: list[int] = field(default_factory=list)
    render_html: list[int] = field(default_factory=list)  # HTML each render added
    answer_html: int = 0
    status_bytes: int = 0
    static_bytes: int = 0
    status_changes: list[float] = field(default_factory=list)

    @property
    def max_renders_in_a_second(self) -> int:
        return _most_in_a_second(self.renders)

    @property
    def min_gap(self) -> float | None:
        gaps = [b - a for a, b in zip(self.renders, self.renders[1:], strict=False)]
        return min(gaps) if gaps else None


def _most_in_a_second(times: list[float]) -> int:
    """The most of ``times`` that fall in any half-open window [t, t + 1 s)."""
    best = 0
    end = 0
    for start, at in enumerate(times):
        while end < len(times) and times[end] < at + 1.0:
            end += 1
        best = max(best, end - start)
    return best


class _Wire:
    """What a kernel does to each iopub message short of writing it to the socket."""

    def __init__(self) -> None:
        from jupyter_client.session import Session

        self.session = Session(key=b"benchmark-signing-key", signature_scheme="hmac-sha256")
        # A kernel's iopub message carries the request it answers as its parent header.
        request = {"code": "%%claude\nA long answer, please.", "silent": False}
        self.parent = self.session.msg("execute_request", request)["header"]
        self.messages: Counter[str] = Counter()
        self.bytes = 0
        self.static = 0  # bytes of the final static outputs (display_data with the Markdown)
        self.by_comm: Counter[str] = Counter()  # bytes of each widget's comm
        self.status = 0  # bytes of the status line inside the live widget's render messages

    def send(self, msg_type: str, content: dict[str, Any], metadata: dict[str, Any]) -> None:
        msg = self.session.msg(msg_type, content, parent=self.parent, metadata=metadata)
        frames = self.session.serialize(msg)
        # The zmq topic frame ipykernel sends first: b"comm-<id>" for a comm's messages.
        topic = f"comm-{content['comm_id']}" if "comm_id" in content else msg_type
        size = len(topic) + sum(len(frame) for frame in frames)
        self.messages[msg_type] += 1
        self.bytes += size
        if "comm_id" in content:
            self.by_comm[content["comm_id"]] += size
            # The live widget's status line rides in its render messages: count its share.
            custom = content["data"].get("content") if content["data"].get("method") else None
            if isinstance(custom, dict) and "s" in custom:
                self.status += len(self.session.pack({"s": custom["s"]})) - 2
        if msg_type == "display_data" and "text/markdown" in content.get("data", {}):
            self.static += size


def _install_wire(shell: Any) -> _Wire:
    """Route widget comms and the shell's display messages through a serialising ``_Wire``."""
    import comm
    from comm.base_comm import BaseComm
    from IPython.core.displaypub import DisplayPublisher

    wire = _Wire()

    class SerialisingComm(BaseComm):
        # No ``kernel`` attribute: ipywidgets then syncs state as it does in a live kernel.
        def publish_msg(
            self,
            msg_type: str,
            data: dict[str, Any] | None = None,
            metadata: dict[str, Any] | None = None,
            buffers: list[bytes] | None = None,
            **keys: Any,
        ) -> None:
            content = {"data": data or {}, "comm_id": self.comm_id, **keys}
            wire.send(msg_type, content, metadata or {})

    class SerialisingDisplayPublisher(DisplayPublisher):
        def publish(
            self,
            data: dict[str, Any],
            metadata: dict[str, Any] | None = None,
            source: Any = None,
            *,
            transient: dict[str, Any] | None = None,
            update: bool = False,
            **kwargs: Any,
        ) -> None:
            content = {"data": data, "metadata": metadata or {}, "transient": transient or {}}
            wire.send("update_display_data" if update else "display_data", content, {})

        def clear_output(self, wait: bool = False) -> None:
            wire.send("clear_output", {"wait": wait}, {})

    comm.create_comm = SerialisingComm
    publisher = SerialisingDisplayPublisher(parent=shell, shell=shell)  # type: ignore[no-untyped-call]
    shell.display_pub = publisher
    return wire


@contextmanager
def _emulator(*flags: str) -> Iterator[str]:
    """An emulator in its own process (its CPU is not ours); yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "claude_magics.emulator", "--port", "0", *flags],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http"):
            raise SystemExit(f"emulator did not start: {url!r}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _client_alone(client: Any, deltas: int) -> Callable[[], Run]:
    """(a): the client's stream, every event iterated, nothing shown."""
    body = _body(deltas)

    def run() -> Run:
        count = 0
        wall, cpu = time.perf_counter(), time.process_time()
        with client.messages.stream(**body) as stream:
            for event in stream:
                if event.type == "text":
                    count += 1
        return Run(time.process_time() - cpu, time.perf_counter() - wall, count)

    return run


def _old_status_html(text: str) -> str:
    """The status line as it was sent before issue 16: its style inline in every value."""
    import html

    style = "color: var(--jp-ui-font-color2, #777); font-size: 85%"
    return f'<span style="{style}">{html.escape(text)}</span>'


def _html_shown(view: Any) -> int:
    """Characters of HTML the view shows (0 for (c), which does not count them)."""
    parts = [getattr(view, name, None) for name in ("_answer", "_thinking")]
    return sum(part.shown for part in parts if hasattr(part, "shown"))


def _per_kb(run: Run, last: bool) -> float:
    """CPU of the renders in the first (or last) 10% over the KB of HTML they added."""
    cpu = sum(_tenth(run.render_cpus, last))
    added = sum(_tenth(run.render_html, last))
    return cpu / max(added, 1) * 1e6  # ms per 1,000 characters


def _full_rerender_view() -> type[Any]:
    """(c): ``WidgetView`` as it was before issue 16: one HTML widget for the answer, and
    the whole answer (and thinking) rendered again and sent whole at every render."""
    from claude_magics.notebook.views import WidgetView, display, markdown_to_html

    class FullRerenderView(WidgetView):
        def start(self) -> None:
            import ipywidgets as widgets

            markdown_to_html("")

            class _LiveBox(widgets.VBox):  # type: ignore[misc]
                def __repr__(self) -> str:
                    return ""

            self._status_widget = widgets.HTML(value=_old_status_html("starting…"))
            self._whole_thinking = widgets.HTML()
            self._thinking = widgets.Accordion(
                children=[self._whole_thinking], titles=("Thinking",)
            )
            self._thinking.layout.display = "none"
            self._whole = widgets.HTML()
            self._box = _LiveBox([self._status_widget, self._thinking, self._whole])
            self._handle = display(self._box, display_id=True)

        def render(self, acc: Any) -> None:
            self.renders += 1
            if acc.thinking:
                self._thinking.layout.display = None
                self._whole_thinking.value = markdown_to_html(acc.thinking)
            self._whole.value = markdown_to_html(self._answer_markdown(acc))
            self._status_text = self._status(acc)
            self._status_widget.value = _old_status_html(self._status_text)

        def _retire(self) -> None:
            self._handle.update({"text/plain": ""}, raw=True)
            for child in (self._status_widget, self._whole_thinking, self._thinking, self._whole):
                child.close()
            self._box.close()

    return FullRerenderView


def _widget_view(
    client: Any,
    deltas: int,
    wire: _Wire | None,
    *,
    view_class: type[Any] | None = None,
    body: dict[str, Any] | None = None,
    before: Callable[[], None] | None = None,
) -> Callable[[], Run]:
    """(b): the same stream through ``WidgetView``, sent by ``cell.send`` as ``%%claude`` does
    (or through ``view_class``; ``before`` runs before each stream, untimed)."""
    from IPython.utils.capture import capture_output

    from claude_magics.notebook import cell
    from claude_magics.notebook.views import WidgetView, markdown_to_html

    body = body or _body(deltas)
    view_class = view_class or WidgetView

    def run() -> Run:
        if before is not None:
            before()
        count = 0
        render_times: list[float] = []
        render_cpu: list[float] = []
        render_bytes: list[int] = []
        start_finish_cpu: list[float] = []
        messages, sent = (wire.messages.copy(), wire.bytes) if wire else (Counter[str](), 0)
        status_sent = wire.status if wire else 0
        static = wire.static if wire else 0
        status_times: list[float] = []
        render_html: list[int] = []
        by_comm = wire.by_comm.copy() if wire else Counter[str]()
        view = view_class(MODEL, 15.0, price_overrides={})
        render, event, start, finish = view.render, view.event, view.start, view.finish

        # The view's own methods, wrapped to time them and count the text deltas it is fed.
        def timed_render(acc: Any) -> None:
            render_times.append(time.monotonic())
            on_wire = wire.bytes if wire else 0
            status = view._status_text
            shown = _html_shown(view)
            before = time.process_time()
            render(acc)
            render_cpu.append(time.process_time() - before)
            render_html.append(_html_shown(view) - shown)
            render_bytes.append((wire.bytes if wire else 0) - on_wire)
            if view._status_text != status:
                status_times.append(render_times[-1])

        def counted_event(ev: Any, acc: Any) -> None:
            nonlocal count
            if ev.type == "text":
                count += 1
            event(ev, acc)

        status_comm: list[str] = []

        def timed_start() -> None:
            before = time.process_time()
            start()
            start_finish_cpu.append(time.process_time() - before)
            if hasattr(view, "_status_widget"):  # (c): the status line is a widget of its own
                status_comm.append(view._status_widget.comm.comm_id)

        def timed_finish(*args: Any) -> None:
            before = time.process_time()
            finish(*args)
            start_finish_cpu.append(time.process_time() - before)

        view.render = timed_render  # type: ignore[method-assign]
        view.event = counted_event  # type: ignore[method-assign]
        view.start = timed_start  # type: ignore[method-assign]
        view.finish = timed_finish  # type: ignore[method-assign]
        # Without the wire, the shell's plain display publisher would print the answer: capture.
        with capture_output() if wire is None else nullcontext():
            wall, cpu = time.perf_counter(), time.process_time()
            result = cell.send(client, body, view, stream=True, fmt="markdown", price_overrides={})
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if view.renders != len(render_times):
            raise SystemExit("WidgetView.render was not the only way the view re-rendered")
        origin = render_times[0] if render_times else 0.0
        result_run = Run(
            cpu,
            wall,
            count,
            renders=[t - origin for t in render_times],
            render_cpu=sum(render_cpu),
            start_finish_cpu=sum(start_finish_cpu),
            render_cpus=render_cpu,
            render_bytes=render_bytes,
            render_html=render_html,
            answer_html=len(markdown_to_html(result.text).encode()),
        )
        if wire is not None:
            new = wire.messages - messages
            result_run.wire_messages = new.total()
            result_run.wire_bytes = wire.bytes - sent
            if status_comm:
                result_run.status_bytes = (wire.by_comm - by_comm)[status_comm[0]]
            else:
                result_run.status_bytes = wire.status - status_sent
            result_run.static_bytes = wire.static - static
            result_run.status_changes = [t - origin for t in status_times]
            if new["comm_msg"] < len(render_times) // 2:
                raise SystemExit("widget updates did not reach the serialising comm")
        return result_run

    return run


def _body(deltas: int) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": deltas + 10,
        "messages": [{"role": "user", "content": f"Benchmark reply [[reply_tokens={deltas}]]"}],
    }


def _section(
    title: str,
    runners: dict[str, Callable[[], Run]],
    rounds: int,
    deltas: int,
    wire: _Wire | None,
    *,
    cpu_target: bool,
) -> None:
    """Run (a) and (b) interleaved and print their figures side by side, then the ratios."""
    for run in runners.values():  # warm up connections, imports, markdown-it
        run()
    runs: dict[str, list[Run]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            outcome = run()
            if outcome.deltas != deltas:
                raise SystemExit(f"{name} saw {outcome.deltas} text deltas, expected {deltas}")
            runs[name].append(outcome)

    print(title)
    cpu = {name: statistics.median(r.cpu for r in values) for name, values in runs.items()}
    for name, values in runs.items():
        print(
            f"  {name:<24} CPU median {cpu[name] * 1000:7.1f} ms"
            f"  (min {min(r.cpu for r in values) * 1000:.1f}, "
            f"max {max(r.cpu for r in values) * 1000:.1f});"
            f"  wall median {statistics.median(r.wall for r in values) * 1000:.1f} ms"
        )
    view_runs = runs[B]
    renders = statistics.median(len(r.renders) for r in view_runs)
    rate = statistics.median(len(r.renders) / r.wall for r in view_runs)
    worst = max(r.max_renders_in_a_second for r in view_runs)
    gaps = [g for g in (r.min_gap for r in view_runs) if g is not None]
    gap = f"{min(gaps) * 1000:.1f} ms" if gaps else "n/a (one render)"
    print(
        f"  view renders: median {renders:g} a stream = {rate:.1f} a second of stream; "
        f"most in any 1 s window {worst}; shortest gap {gap}"
    )
    in_renders = statistics.median(r.render_cpu for r in view_runs)
    per_render = statistics.median(r.render_cpu / len(r.renders) for r in view_runs if r.renders)
    start_finish = statistics.median(r.start_finish_cpu for r in view_runs)
    print(
        f"  extra CPU of the view, (b) - (a): {(cpu[B] - cpu[A]) * 1000:.1f} ms a stream; "
        f"inside renders {in_renders * 1000:.1f} ms ({per_render * 1000:.2f} ms a render), "
        f"start + finish {start_finish * 1000:.1f} ms"
    )
    if wire is not None:
        median_run = sorted(view_runs, key=lambda r: r.cpu)[len(view_runs) // 2]
        print(
            f"  sent to the front end (median run): {median_run.wire_messages} messages, "
            f"{median_run.wire_bytes / 1e6:.2f} MB serialised"
        )
    ratio = cpu[B] / cpu[A]
    verdict = (
        f"{'meets' if ratio <= CPU_TARGET else 'MISSES'} the {CPU_TARGET}x target"
        if cpu_target
        else "for information: a paced stream mostly waits"
    )
    renders_verdict = "meet" if worst <= RENDERS_TARGET else "MISS"
    print(
        f"  CPU ratio (b)/(a): {ratio:.2f}x ({verdict}); "
        f"renders {renders_verdict} the {RENDERS_TARGET}/s target"
    )


#: The words of the long answer's sentences.
_VOCABULARY = (
    "the data frame groups sales by region and month so that each total can be compared with "
    "last year while missing values are filled from the nearest store that reported on time"
)


def _long_document(tokens: int, seed: int = 16) -> str:
    """About ``tokens`` emulator tokens of the Markdown a model writes: headings, paragraphs
    with emphasis, code spans and links, lists (some nested), fenced code, tables, quotes."""
    import random

    from claude_magics.emulator.tokens import count_pieces

    rng = random.Random(seed)
    words = _VOCABULARY.split()

    def sentence() -> str:
        chosen = [rng.choice(words) for _ in range(rng.randint(6, 18))]
        at = rng.randrange(len(chosen))
        word = chosen[at]
        marked = [f"*{word}*", f"**{word}**", f"`{word}()`", f"[{word}](https://example.com/{at})"]
        chosen[at] = rng.choice(marked)
        return " ".join(chosen).capitalize() + "."

    blocks: list[str] = []
    used = 0
    section = 0
    while used < tokens:
        kind = rng.choice(["p", "p", "p", "list", "code", "table", "quote", "heading"])
        if kind == "heading" or not blocks:
            section += 1
            block = f"## {section}. {sentence()[:-1]}"
        elif kind == "p":
            block = " ".join(sentence() for _ in range(rng.randint(2, 6)))
        elif kind == "list":
            items = []
            for number in range(1, rng.randint(3, 7)):
                marker = f"{number}." if section % 2 else "-"
                items.append(f"{marker} {sentence()}")
                if rng.random() < 0.3:
                    items.append(f"   - {sentence()}")
            block = "\n".join(items)
        elif kind == "code":
            lines = [
                f"    {rng.choice(words)}_{n} = frame[{n}].sum()" for n in range(rng.randint(3, 20))
            ]
            block = "```python\ndef step():\n" + "\n".join(lines) + "\n    return frame\n```"
        elif kind == "table":
            rows = [
                f"| {rng.choice(words)} | {rng.randint(1, 999)} | {rng.random():.2f} |"
                for _ in range(rng.randint(3, 9))
            ]
            block = "| name | count | share |\n|---|---:|---:|\n" + "\n".join(rows)
        else:
            block = "> " + sentence() + "\n> " + sentence()
        blocks.append(block)
        used += count_pieces(block) + 1
    return "\n\n".join(blocks) + "\n"


def _tenth(values: list[Any], last: bool) -> list[Any]:
    """The first (or last) 10% of ``values``, at least one."""
    size = max(1, len(values) // 10)
    return values[-size:] if last else values[:size]


def _long_section(
    url: str, client: Any, tokens: int, rate: int, rounds: int, wire: _Wire, old: bool
) -> None:
    """(b) and (c) on one long paced answer, interleaved; printed side by side, then ratios."""
    import httpx

    from claude_magics.emulator.tokens import count_pieces

    document = _long_document(tokens)
    deltas = count_pieces(document)
    body = {
        "model": MODEL,
        "max_tokens": deltas + 10,
        "messages": [{"role": "user", "content": "Benchmark: a long answer"}],
    }

    def queue() -> None:  # the emulator answers the next request with the document
        httpx.post(f"{url}/_emulator/replies", json={"text": document}).raise_for_status()

    runners = {B: _widget_view(client, deltas, wire, body=body, before=queue)}
    if old:
        runners[C] = _widget_view(
            client, deltas, wire, body=body, before=queue, view_class=_full_rerender_view()
        )
    runs: dict[str, list[Run]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            outcome = run()
            if outcome.deltas != deltas:
                raise SystemExit(f"{name} saw {outcome.deltas} text deltas, expected {deltas}")
            runs[name].append(outcome)

    html = runs[B][0].answer_html
    print(
        f"{deltas:,}-token Markdown answer ({len(document) / 1e3:.0f} KB of Markdown, "
        f"{html / 1e3:.0f} KB of HTML) paced at {rate:,} tokens/s, {rounds} round(s); "
        "every iopub message counted as a kernel sends it (zmq topic, signature, header, "
        "the request's header as parent, metadata, content)"
    )
    figures: dict[str, dict[str, float]] = {}
    for name, values in runs.items():
        for n, r in enumerate(values, 1):
            live = r.wire_bytes - r.static_bytes
            verdict = "PASS" if live <= BYTES_TARGET * html else "MISS"
            print(
                f"  {name:<28} run {n}: live view sent {live / 1e3:7.1f} KB = "
                f"{live / html:5.2f}x the answer's HTML (target {BYTES_TARGET}x: {verdict}; "
                f"the status line {r.status_bytes / html:.2f}x); {len(r.renders)} renders, "
                f"{len(r.renders) / r.wall:.1f}/s, most in 1 s {r.max_renders_in_a_second}, "
                f"longest gap {_longest_gap(r.renders):.2f} s; status changes "
                f"{len(r.status_changes)}, most in 1 s {_most_in_a_second(r.status_changes)}"
            )
        static = statistics.median(r.static_bytes for r in values)
        sent = statistics.median(r.wire_bytes for r in values)
        first = statistics.median(statistics.median(_tenth(r.render_cpus, False)) for r in values)
        last = statistics.median(statistics.median(_tenth(r.render_cpus, True)) for r in values)
        first_b = statistics.median(
            statistics.median(_tenth(r.render_bytes, False)) for r in values
        )
        last_b = statistics.median(statistics.median(_tenth(r.render_bytes, True)) for r in values)
        cpu = statistics.median(r.cpu for r in values)
        figures[name] = {"sent": sent, "last": last, "cpu": cpu, "last_b": last_b}
        print(
            f"  {'':<28} then the final static output (Markdown + text/plain, the same for "
            f"every view) {static / 1e3:.1f} KB: {sent / html:.2f}x in all; CPU {cpu:.2f} s"
        )
        print(
            f"  {'':<28} a render, first 10% -> last 10% (medians): CPU {first * 1000:.2f} -> "
            f"{last * 1000:.2f} ms ({last / first:.1f}x), sent {first_b / 1e3:.2f} -> "
            f"{last_b / 1e3:.2f} KB"
        )
        if any(r.render_html for r in values):
            # Later renders are sparser (the byte budget) and each brings more text: the
            # CPU per KB of HTML added is what would grow if a render redid old work.
            per_first = statistics.median(_per_kb(r, False) for r in values)
            per_last = statistics.median(_per_kb(r, True) for r in values)
            print(
                f"  {'':<28} render CPU per KB of HTML added, first 10% -> last 10%: "
                f"{per_first:.2f} -> {per_last:.2f} ms ({per_last / per_first:.1f}x)"
            )
    if old:
        new, before = figures[B], figures[C]
        print(
            f"  ratios (b)/(c): bytes sent {new['sent'] / before['sent']:.3f}x, "
            f"CPU {new['cpu'] / before['cpu']:.2f}x, a late render's CPU "
            f"{new['last'] / before['last']:.3f}x"
        )


def _longest_gap(times: list[float]) -> float:
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deltas", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--paced-deltas", type=int, default=4_000)
    parser.add_argument("--paced-rate", type=int, default=2_000, help="tokens per second")
    parser.add_argument("--paced-rounds", type=int, default=3)
    parser.add_argument("--long-tokens", type=int, default=20_000)
    parser.add_argument("--long-rate", type=int, default=1_000, help="tokens per second")
    parser.add_argument("--long-rounds", type=int, default=1)
    parser.add_argument("--only-long", action="store_true", help="skip the first two sections")
    parser.add_argument("--no-old", action="store_true", help="skip (c) on the long answer")
    parser.add_argument("--comm", choices=("serialising", "dummy"), default="serialising")
    args = parser.parse_args()

    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    from claude_magics.api.client import Client

    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    wire = _install_wire(shell) if args.comm == "serialising" else None
    comm_note = (
        "widget comms and display messages serialised as ipykernel does (JSON + HMAC)"
        if wire
        else "default dummy comm: widget messages are dropped unserialised"
    )

    with ExitStack() as stack:
        url = stack.enter_context(_emulator())
        paced_url = stack.enter_context(_emulator("--tokens-per-second", str(args.paced_rate)))
        client = stack.enter_context(closing(Client(api_key="bench", base_url=url)))
        paced_client = stack.enter_context(closing(Client(api_key="bench", base_url=paced_url)))
        long_url = stack.enter_context(_emulator("--tokens-per-second", str(args.long_rate)))
        long_client = stack.enter_context(closing(Client(api_key="bench", base_url=long_url)))
        if not args.only_long:
            _section(
                f"{args.deltas:,} text deltas, no pacing, {args.rounds} interleaved rounds "
                f"(emulator at {url}; {comm_note})",
                {
                    A: _client_alone(client, args.deltas),
                    B: _widget_view(client, args.deltas, wire),
                },
                args.rounds,
                args.deltas,
                wire,
                cpu_target=True,
            )
            _section(
                f"{args.paced_deltas:,} text deltas paced at {args.paced_rate:,} tokens/s, "
                f"{args.paced_rounds} interleaved rounds",
                {
                    A: _client_alone(paced_client, args.paced_deltas),
                    B: _widget_view(paced_client, args.paced_deltas, wire),
                },
                args.paced_rounds,
                args.paced_deltas,
                wire,
                cpu_target=False,
            )
        if wire is None:
            print("(the long answer needs --comm serialising: it counts the bytes sent)")
        else:
            _long_section(
                long_url,
                long_client,
                args.long_tokens,
                args.long_rate,
                args.long_rounds,
                wire,
                old=not args.no_old,
            )


if __name__ == "__main__":
    main()
