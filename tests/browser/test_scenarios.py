"""The five scenarios of issue 6: what a person sees of claude_magics, in a real front end.

1-4 run in a real JupyterLab in headless Chromium: each test writes a notebook, opens it, runs
it through the Run menu and looks at the page as a person would. 5 types ``%%claude`` into
terminal IPython through a pseudo-terminal and checks two records of the session: the raw text
IPython wrote, where a view that re-rendered the answer would show as the text written twice or
as cursor movements inside it (even when the final screen looks right), and the screen itself
as a terminal emulator (pyte) draws it from those bytes. Each scenario leaves a screenshot under
build/browser/ for a person to look at. 1b runs the live view's JavaScript on a blank page,
fed the kernel's messages of streamed answers.

One module on purpose: when this machine cannot run them, pytest reports all of them skipped
in one line.
"""

from __future__ import annotations

import html
import os
import random
import re
import sys
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from lab_processes import SCREENSHOTS, EmulatorProcess, JupyterLabServer
from labpage import Lab

from claude_magics.notebook.live_markdown import LiveSection, MarkdownBlocks
from claude_magics.notebook.views import markdown_to_html

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.browser

LOAD = "%load_ext claude_magics"
WIDGET_ERROR = "Error displaying widget"

# -- 1. Streaming ----------------------------------------------------------------------------------

# About 190 tokens: some 2.4 s at the emulator's 80 tokens a second, so the stream is visible.
STREAMED_REPLY = """## Cleaning the sales data

Three steps keep the numbers honest:

- drop the rows whose `amount` is missing
- parse the `date` column once, as UTC
- group by region before averaging

```python
clean = df.dropna(subset=["amount"])
clean["date"] = pd.to_datetime(clean["date"], utc=True)
clean.groupby("region")["amount"].mean()
```

The grouped mean is what the quarterly report should show: the raw mean mixes regions with \
very different volumes and hides the drop in the north, which is the one thing the report \
is meant to make visible to the people who read it."""


def test_streaming_answer_grows_then_renders_as_markdown(
    lab: Lab, emulator: EmulatorProcess
) -> None:
    emulator.add_reply(STREAMED_REPLY)
    lab.write_notebook("streaming.ipynb", [LOAD, "%%claude\nHow should I clean the sales data?"])
    lab.open("streaming.ipynb")
    lab.record_widgets()
    lab.run_all()

    # Mid-stream (the list is on screen, the code not yet): the picture of a live answer. The
    # live view is an anywidget: it shows only if JupyterLab loaded anywidget's extension.
    lab.page.wait_for_function(
        "() => (window.__widgetStates || []).some(s => s.live.some(v => "
        "v.answer.includes('by region')))"
    )
    lab.screenshot("1-streaming-live")
    lab.wait_until_run(2)
    lab.screenshot("1-streaming-done")

    live = [views[0] for views in lab.live_views()]
    answers: list[str] = []
    for view in live:
        if view["answer"].strip() and view["answer"] not in answers:
            answers.append(view["answer"])
    assert len(answers) >= 3, f"the answer did not visibly grow; texts seen: {answers}"
    lengths = [len(a) for a in answers]
    assert lengths[0] < lengths[len(lengths) // 2] < lengths[-1], lengths

    # The status line counts tokens and money while it streams.
    statuses = [view["status"] for view in live if "streaming…" in view["status"]]
    assert statuses, f"no streaming status line among {live[:5]}"
    out_tokens = [int(m.group(1)) for s in statuses if (m := re.search(r"([\d,]+) out", s))]
    assert len(set(out_tokens)) >= 2 and out_tokens == sorted(out_tokens), statuses
    assert all(re.search(r"\d+ in · ", s) and "$" in s for s in statuses), statuses[-1]

    # At the end the live widget is gone and the answer is one rendered Markdown output.
    output = lab.output(1)
    assert output.locator(".claude-answer").count() == 0
    markdown = output.locator(".jp-RenderedMarkdown")
    assert markdown.count() == 1
    assert markdown.locator("h2").inner_text().startswith("Cleaning the sales data")
    assert markdown.locator("li").count() == 3
    assert "groupby" in markdown.locator("pre code").inner_text()
    footer = markdown.locator("sub").inner_text()
    assert re.search(r"\d+ in · \d+ out", footer) and "$" in footer, footer
    assert "streaming" not in footer
    # Every text the live view showed is the start of the answer (spaces aside: the browser
    # lays out blocks its own way; JupyterLab adds a ¶ to headings; a code span still open
    # shows its backtick), and it had shown most of it before it was replaced.
    final = re.sub(r"\s+|¶", "", markdown.inner_text())
    for answer in answers:
        assert final.startswith(re.sub(r"\s+|`", "", answer)), answer
    assert len(re.sub(r"\s+", "", answers[-1])) > 0.6 * len(final)
    assert WIDGET_ERROR not in lab.notebook_text()


# -- 1b. The live view's JavaScript --------------------------------------------------------------
# claude_magics/notebook/live_view.js in Chromium, fed the messages the kernel sends for a streamed
# answer, loaded as anywidget loads it (an import from a Blob URL) with a model that hands it the
# messages: after every message, each view's DOM must be the DOM of the whole text rendered.
# tests/test_long_answers.py checks the same against a Python copy of the apply step, through a
# real kernel wire; this checks the JavaScript itself, with no JupyterLab in between.

# Loads the module as anywidget does, initializes it with a model that records its listeners,
# and renders one view (a second one is made later, from the state alone).
_LOAD = """async (esm) => {
    const url = URL.createObjectURL(new Blob([esm], {type: "text/javascript"}));
    const module = await import(url);
    const widget = typeof module.default === "function" ? await module.default() : module.default;
    const listeners = [];
    const model = {
        on: (name, callback) => { if (name === "msg:custom") listeners.push(callback); },
        off: () => {}, get: () => undefined, set: () => {}, save_changes: () => {},
        send: () => {},
    };
    await widget.initialize({model});
    const view = () => {
        const el = document.createElement("div");
        document.body.append(el);
        widget.render({model, el});
        return el;
    };
    window.live = {listeners, views: [view()], view};
}"""

# Sends each message to the listeners, then compares every view with the expected HTML
# (parsed by the same browser, so both sides are serialised alike). Returns the mismatches.
_FEED = """([messages, expected, secondAt]) => {
    const parse = (html) => {
        const div = document.createElement("div");
        div.innerHTML = html;
        return div.innerHTML;
    };
    const shown = (body) => [...body.childNodes].map((node) =>
        node.classList && node.classList.contains("claude-live") ? node.innerHTML
            : node.outerHTML ?? node.textContent).join("");
    const wrong = [];
    messages.forEach((message, n) => {
        for (const listener of live.listeners) listener(message, []);
        if (n === secondAt) live.views.push(live.view());
        live.views.forEach((el, v) => {
            const [answer, thinking, status] = expected[n];
            const got = {
                answer: shown(el.querySelector(".claude-answer")),
                thinking: shown(el.querySelector(".claude-thinking .claude-body")),
                hidden: el.querySelector(".claude-thinking").hidden,
                status: el.querySelector(".claude-status").textContent,
            };
            const want = {answer: parse(answer), thinking: parse(thinking),
                          hidden: !thinking, status};
            for (const key of Object.keys(want)) {
                if (got[key] !== want[key]) wrong.push({n, v, key, got: got[key], want: want[key]});
            }
        });
    });
    return wrong.slice(0, 3);
}"""

ASTRAL = (
    "# Résumé 🎉\n\nA *growing* 𝔭aragraph with 😀 emoji, `código` and 漢字,\nmore 👍🏽 here.\n\n"
    "- 🍎 one\n- 🍐 two\n\n```\n🐍 = 1\n```\n\n| 🅰 | b |\n|---|---|\n| 𝟙 | 2 |\n\nEnd 🏁.\n"
)
# A reference defined late: the kept blocks are rendered again and the front end told so.
REFERENCES = (
    "See [the guide] first.\n\n"
    + "".join(f"## Part {n}\n\nSome *words* about `x_{n}`.\n\n- a\n- b\n\n" for n in range(6))
    + "[the guide]: https://example.com\n\nDone."
)
LINES = [
    "# H", "Foo", "===", "---", "***x", "- a", "1. one", "    code", "> q", "```", "| a | b |",
    "|---|---|", "| 1 | 2 |", "", "", "[foo]: /url", "[foo]", "text *em", "ph*", "🎉 *x*", "a  ",
]  # fmt: skip


def _messages(
    answer: str, thinking: str, step: int
) -> Iterator[tuple[dict[str, Any], tuple[str, str, str]]]:
    """The messages a render every ``step`` characters sends (thinking first, then the answer),
    each with what the front end must show after it: answer HTML, thinking HTML, status."""
    blocks = {"t": MarkdownBlocks(), "a": MarkdownBlocks()}
    sections = {"t": LiveSection(), "a": LiveSection()}
    texts = {"t": "", "a": ""}
    status = ""
    for key, text in (("t", thinking), ("a", answer)):
        for end in range(step, len(text) + step, step):
            texts[key] = text[:end]
            blocks[key].update(texts[key])
            message: dict[str, Any] = {}
            if entry := sections[key].step(blocks[key]):
                message[key] = entry
            if end % (5 * step) == 0:
                message["s"] = status = f"claude-sonnet-4-6 · {end:,} out · streaming…"
            if message:
                html = {k: markdown_to_html(v) if v else "" for k, v in texts.items()}
                yield message, (html["a"], html["t"], status)


def _check(page: Page, answer: str, thinking: str = "", step: int = 7) -> list[dict[str, Any]]:
    """Feed the messages of ``answer`` (and ``thinking``) to the real module; the messages."""
    esm = files("claude_magics.notebook").joinpath("live_view.js").read_text(encoding="utf-8")
    page.evaluate(_LOAD, esm)
    pairs = list(_messages(answer, thinking, step))
    messages, expected = [m for m, _ in pairs], [e for _, e in pairs]
    wrong = page.evaluate(_FEED, [messages, expected, len(messages) // 2])
    assert wrong == [], wrong
    return messages


@pytest.fixture
def blank_page(chromium: BrowserContext) -> Iterator[Page]:
    page = chromium.new_page()
    page.set_content("<!doctype html><html><body></body></html>")
    try:
        yield page
    finally:
        page.close()


@pytest.mark.parametrize("step", [1, 5, 23])
def test_the_live_view_js_shows_the_whole_render_after_every_message(
    blank_page: Page, step: int
) -> None:
    messages = _check(blank_page, ASTRAL + "\n" + REFERENCES, thinking=ASTRAL, step=step)
    assert any(m["a"][0] == -1 for m in messages if "a" in m)  # "replace all" was applied


def test_the_live_view_js_on_fuzzed_documents(blank_page: Page) -> None:
    rng = random.Random(6)
    for _ in range(15):
        text = "\n".join(rng.choice(LINES) for _ in range(rng.randint(5, 40)))
        _check(blank_page, text, step=rng.choice([1, 3, 8]))


# -- 2. Save and reopen ----------------------------------------------------------------------------


def test_saved_notebook_reopens_with_answers_and_no_widget_errors(
    lab: Lab, jupyter_server: JupyterLabServer, emulator: EmulatorProcess
) -> None:
    emulator.add_reply("## First answer\n\n- one point\n- another point")
    emulator.add_reply("## Second answer\n\nA paragraph with `code` in it.")
    lab.write_notebook(
        "reopen.ipynb", [LOAD, "%%claude\nFirst question", "%%claude\nSecond question"]
    )
    lab.open("reopen.ipynb")
    lab.run_all()
    lab.wait_until_run(3)
    lab.save()

    # On disk: the answers as Markdown, and no widget view that would need live widget state.
    saved = lab.saved_outputs("reopen.ipynb")
    for cell, heading in ((1, "## First answer"), (2, "## Second answer")):
        mimetypes = {mime for output in saved[cell] for mime in output.get("data", {})}
        assert "application/vnd.jupyter.widget-view+json" not in mimetypes, saved[cell]
        bundles = [output["data"] for output in saved[cell] if "data" in output]
        markdown = [bundle["text/markdown"] for bundle in bundles if "text/markdown" in bundle]
        assert len(markdown) == 1 and markdown[0].startswith(heading), saved[cell]

    # Closed, kernel shut down, opened again with a new kernel.
    jupyter_server.shutdown_kernels()
    lab.reopen("reopen.ipynb")
    headings = [lab.output(i).locator(".jp-RenderedMarkdown h2").inner_text() for i in (1, 2)]
    assert [h.strip().rstrip("¶").strip() for h in headings] == ["First answer", "Second answer"]
    assert lab.output(1).locator(".jp-RenderedMarkdown li").count() == 2
    assert WIDGET_ERROR not in lab.notebook_text()
    assert lab.page.locator(".jp-OutputArea .widget-html-content, .claude-answer").count() == 0
    lab.screenshot("2-reopened")


# -- 3. A DataFrame job ----------------------------------------------------------------------------

REVIEWS = [
    "Arrived early and works perfectly.",
    "Broke after two days, very disappointed.",
    "It is a lamp. It gives light.",
    "Best purchase I made this year!",
    "The box was damaged and a part was missing.",
    "Does what the description says.",
    "Customer service never answered my emails.",
    "Lovely colour, my kids adore it.",
]
LABELS = ["positive", "negative", "neutral"]


def test_dataframe_job_shows_a_moving_progress_bar_then_a_table(
    lab: Lab, emulator: EmulatorProcess
) -> None:
    # Long enough that the bar is on screen, waiting, for a few seconds before it ends.
    emulator.reset(batch_processing_seconds=3.0)
    lab.write_notebook(
        "labels.ipynb",
        [
            LOAD,
            f"import pandas as pd\nreviews = pd.DataFrame({{'review': {REVIEWS!r}}})",
            "reviews['sentiment'] = reviews.claude.label(\n"
            f"    'review', labels={LABELS!r}, mode='batch', yes=True\n)",
            "reviews",
        ],
    )
    lab.open("labels.ipynb")
    lab.record_widgets()
    lab.run_all()
    lab.page.wait_for_selector(".jp-OutputArea .widget-hprogress", timeout=60_000)
    lab.page.wait_for_timeout(2_500)  # mid-job: the batch takes 3 s, polled every 2 s or more
    lab.screenshot("3-batch-progress")
    lab.wait_until_run(4, timeout=90)
    lab.screenshot("3-batch-table")

    # What the bar's row said over time, once tqdm had drawn it ("k/8 [elapsed...]").
    total = len(REVIEWS)
    count = re.compile(rf"(\d+)/{total}\s*\[")  # tqdm separates them with a no-break space
    drawn = [bars[0] for bars in lab.progress_bars() if count.search(bars[0]["row"])]
    assert drawn, f"no progress bar was drawn: {lab.progress_bars()}"
    counts = [int(match.group(1)) for s in drawn if (match := count.search(s["row"]))]
    assert counts == sorted(counts), f"the bar went backwards: {counts}"
    # While the batch ran, the bar moved on: its count or its elapsed time ("[00:02<...") changed.
    # (tqdm draws a new bar in a few steps; those all read 00:00 and do not count.) A bar frozen
    # at 00:00 for the whole job looks hung.
    elapsed = re.compile(r"\[(\d+:\d+)")
    waiting = {
        (n, match.group(1))
        for s, n in zip(drawn, counts, strict=True)
        if n < total and (match := elapsed.search(s["row"]))
    }
    assert len(waiting) >= 2, f"the bar did not move while the job ran: {[s['row'] for s in drawn]}"
    # It ended full, in the colour that says so, and says it is over.
    final = drawn[-1]
    assert counts[-1] == total and final["width"] == "100%" and final["success"], final
    assert "running" not in final["row"], f"the finished bar still says: {final['row']}"

    # Then the labelled DataFrame renders as a table, one row per review, labels from the set.
    table = lab.output(3).locator("table.dataframe")
    assert table.count() == 1
    headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    assert "review" in headers and "sentiment" in headers, headers
    rows = table.locator("tbody tr")
    assert rows.count() == len(REVIEWS)
    column = headers.index("sentiment")
    labels = [rows.nth(i).locator("th, td").nth(column).inner_text() for i in range(len(REVIEWS))]
    assert set(labels) <= set(LABELS), labels
    assert WIDGET_ERROR not in lab.notebook_text()


# -- 4. Errors -------------------------------------------------------------------------------------


def _run_into_error(lab: Lab, case: str, cell: str) -> str:
    """Run All on [load, assignment, ``cell``, print]; the error text, once checked short."""
    name = f"error-{case}.ipynb"
    lab.write_notebook(name, [LOAD, "sales_2030 = [1, 2, 3]", cell, 'print("ran after the error")'])
    lab.open(name)
    lab.run_all()
    prompts = lab.wait_until_run(3)
    lab.screenshot(f"4-error-{case}")

    error = lab.output(2).locator(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
    )
    assert error.count() == 1
    text = error.inner_text().strip()
    lines = text.splitlines()
    assert len(lines) <= 6, f"an error wall of {len(lines)} lines:\n{text}"
    for marker in ("Traceback", "File ", "---->", "site-packages"):
        assert marker not in text, f"traceback detail {marker!r} in:\n{text}"
    # Run All stopped at the error: the last cell never ran.
    assert prompts[3] == "[ ]:", prompts
    assert lab.output(3).inner_text().strip() == ""
    return text


def test_unknown_variable_is_a_short_error_that_stops_run_all(
    lab: Lab, emulator: EmulatorProcess
) -> None:
    text = _run_into_error(lab, "unknown-variable", "%%claude\nSummarise {{sales_2031}} for me.")
    assert "sales_2031" in text and "did you mean 'sales_2030'" in text, text
    assert not [r for r in emulator.requests() if r["path"] == "/v1/messages"], "it was sent"


def test_unknown_model_is_a_short_error_that_stops_run_all(
    lab: Lab, emulator: EmulatorProcess
) -> None:
    text = _run_into_error(lab, "unknown-model", "%%claude -m claude-sonnet-9\nHello there.")
    assert "404" in text and "claude-sonnet-9" in text, text
    assert "Did you mean claude-sonnet-" in text, text  # the closest id the server lists
    assert "Current models:" in text and "claude-sonnet-5-5" in text, text


# -- 4b. A tool loop -------------------------------------------------------------------------------

ROOM_AREA = (
    "def room_area(width: float, length: float) -> float:\n"
    '    """The floor area of a room, in square metres."""\n'
    "    return width * length"
)


def test_a_tool_loop_shows_its_steps_live_then_in_the_saved_answer(
    lab: Lab, jupyter_server: JupyterLabServer, emulator: EmulatorProcess
) -> None:
    # Each call waits 2 s for its first token: the step line is on screen while the second
    # call (the one that reads the tool's result) is under way.
    emulator.reset(time_to_first_token=2.0)
    lab.write_notebook(
        "tools.ipynb",
        [LOAD, ROOM_AREA, "%%claude --tools room_area\nHow big is a 3 by 4 room? Use room_area."],
    )
    lab.open("tools.ipynb")
    lab.run_all()

    live = lab.output(2).locator("details summary", has_text="room_area(")
    live.first.wait_for(timeout=30_000)
    assert "→" in live.first.inner_text()
    lab.screenshot("4b-tool-step-live")
    lab.wait_until_run(3)
    lab.screenshot("4b-tool-loop-done")

    # At the end the live lines are gone; the answer lists the step above the words.
    assert lab.output(2).locator("details summary", has_text="room_area(").count() == 0
    markdown = lab.output(2).locator(".jp-RenderedMarkdown")
    assert markdown.count() == 1
    text = markdown.inner_text()
    assert "Tools" in text and "room_area(" in text, text
    calls = [r for r in emulator.requests() if r["path"] == "/v1/messages"]
    assert len(calls) == 2
    lab.save()

    jupyter_server.shutdown_kernels()
    lab.reopen("tools.ipynb")
    reopened = lab.output(2).locator(".jp-RenderedMarkdown")
    assert reopened.count() == 1 and "room_area(" in reopened.inner_text()
    assert WIDGET_ERROR not in lab.notebook_text()
    lab.screenshot("4b-tool-loop-reopened")


# -- 4d. A cited answer ----------------------------------------------------------------------------

INVOICE_PDF = """\
import matplotlib
matplotlib.use("agg")
import matplotlib.pyplot as plt
from matplotlib.backends.backend_pdf import PdfPages

with PdfPages("invoice.pdf", metadata={"CreationDate": None}) as pdf:
    for line in ["Invoice 1042 from Acme Tools. Total due: 310 EUR.",
                 "Paid on 3 March by bank transfer."]:
        page = plt.figure(figsize=(5, 3))
        page.text(0.05, 0.5, line)
        pdf.savefig(page)
        plt.close(page)"""


def test_a_cited_answer_shows_its_pages_and_passages_after_save_and_reopen(
    lab: Lab, jupyter_server: JupyterLabServer
) -> None:
    lab.write_notebook(
        "cited.ipynb",
        [LOAD, INVOICE_PDF, "%%claude --pdf invoice.pdf --cite\nWhen was it paid, and how?"],
    )
    lab.open("cited.ipynb")
    lab.run_all()
    lab.wait_until_run(3)
    lab.save()

    jupyter_server.shutdown_kernels()
    lab.reopen("cited.ipynb")
    answer = lab.output(2).locator(".jp-RenderedMarkdown")
    assert answer.count() == 1
    assert answer.locator("sup", has_text="[1]").count() == 1
    sources = answer.locator("ol li").first.inner_text()
    assert "invoice.pdf, page 2" in sources, sources
    assert "“Paid on 3 March by bank transfer.”" in sources, sources
    assert WIDGET_ERROR not in lab.notebook_text()
    lab.screenshot("4d-cited-answer-reopened")


# -- 4c. Reviewing labels by hand ----------------------------------------------------------------

SENTIMENTS = ["positive", "negative", "negative", "neutral", "positive", "neutral"]


def test_review_writes_gold_labels_and_resumes_after_a_rerun(
    lab: Lab, emulator: EmulatorProcess
) -> None:
    import pandas as pd

    from claude_magics.widgets.review import sample_rows

    frame_code = (
        "import pandas as pd\n"
        f"reviews = pd.DataFrame({{'review': {REVIEWS[:6]!r},\n"
        f"    'sentiment': pd.Categorical({SENTIMENTS!r}, categories={LABELS!r})}})"
    )
    show_gold = "print([None if pd.isna(g) else g for g in reviews['gold']])"
    lab.write_notebook(
        "review.ipynb", [LOAD, frame_code, "reviews.claude.review('sentiment', n=5)", show_gold]
    )
    # The rows the widget will show, in its order: the sample is a function of the index.
    frame = pd.DataFrame({"review": REVIEWS[:6], "sentiment": SENTIMENTS})
    order = sample_rows(frame, 5)

    lab.open("review.ipynb")
    lab.run_all()
    lab.wait_until_run(4)
    widget = lab.output(2)
    progress = widget.locator(".widget-html-content").first
    assert progress.inner_text().strip() == "0 of 5 labelled · row 1 of 5"
    assert REVIEWS[order[0]] in widget.inner_text()
    assert lab.output(3).inner_text().strip() == str([None] * 6)

    def wait_for(text: str) -> None:
        widget.locator(".widget-html-content", has_text=text).first.wait_for(timeout=15_000)

    def press(key: str) -> None:
        """Press ``key`` once the widget's key box has the focus (the kernel gives it the focus
        when the widget appears and after each click: a round trip that takes a moment)."""
        lab.page.wait_for_function(
            "() => { const e = document.activeElement;"
            " return !!e && e.matches('.jp-OutputArea input[type=text]'); }",
            timeout=15_000,
        )
        lab.page.keyboard.press(key)

    def shows(text: str) -> None:
        """Wait until the widget shows ``text`` anywhere: its parts are redrawn one by one, so
        the progress line can change before the row below it does."""
        widget.locator("*", has_text=text).first.wait_for(timeout=15_000)

    def run_again(cell: int) -> None:
        """Click into the cell's code and run it with Ctrl+Enter; wait until it has run."""
        before = lab.prompts()[cell]
        lab.cells().nth(cell).locator(".jp-InputArea-editor").click()
        lab.page.keyboard.press("Control+Enter")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = lab.prompts()[cell]
            if now != before and now[1:-2].isdigit():
                return
            time.sleep(0.1)
        raise AssertionError(f"cell {cell} did not run again: {lab.prompts()}")

    # The key box has the focus as soon as the widget is there: keys label rows at once.
    press("1")
    wait_for("1 of 5 labelled")
    # Buttons, then the keyboard: after a click the key box has the focus again, so keys
    # typed straight away label the next rows; Backspace goes back one row.
    widget.locator("button", has_text="2 · negative").click()
    wait_for("2 of 5 labelled")
    press("3")
    wait_for("3 of 5 labelled · row 4 of 5")
    press("Backspace")
    wait_for("3 of 5 labelled · row 3 of 5")
    shows("gold: neutral")
    press("1")  # row 3 is positive after all
    wait_for("3 of 5 labelled · row 4 of 5")
    shows(REVIEWS[order[3]])
    lab.screenshot("4c-review-labelling")

    # Run the widget's cell again: a new widget (an empty key box), the same sample, resumed
    # at the first unlabelled row.
    run_again(2)
    wait_for("3 of 5 labelled · row 4 of 5")
    shows(REVIEWS[order[3]])
    assert widget.locator("input[type=text]").input_value() == ""
    widget.locator("button", has_text="skip (s)").click()
    wait_for("3 of 5 labelled · row 5 of 5")
    lab.screenshot("4c-review-resumed")

    # A later cell sees the gold labels in the frame.
    run_again(3)
    expected: list[str | None] = [None] * 6
    for position, label in zip(order[:3], ["positive", "negative", "positive"], strict=True):
        expected[position] = label
    lab.output(3).get_by_text(str(expected)).wait_for(timeout=15_000)
    lab.screenshot("4c-review-gold-printed")
    assert WIDGET_ERROR not in lab.notebook_text()


# -- 5. The terminal -------------------------------------------------------------------------------


IPYTHON = Path(sys.executable).with_name("ipython")
# About 130 tokens: some 1.6 s at 80 tokens a second.
REPLY = (
    "## Reading the logs\n\n"
    "- sort the entries by time before you look for gaps\n"
    "- count the errors per minute, not per file\n\n"
    "The spike at noon lines up with the deploy, and the errors that follow it all come from the "
    "same worker: restart that worker first, then read what it wrote in the minute before the "
    "deploy, because that is where the first failed health check is."
)


def _screen(raw: str, columns: int = 120, lines: int = 40) -> str:
    """What a terminal of that size shows after receiving ``raw``."""
    import pyte

    screen = pyte.Screen(columns, lines)
    pyte.Stream(screen).feed(raw)
    return "\n".join(line.rstrip() for line in screen.display).rstrip()


def _render_transcript(chromium: BrowserContext, text: str, path: Path) -> None:
    """A picture of the terminal for a person to look at (Chromium is already running)."""
    page = chromium.new_page()
    try:
        page.set_viewport_size({"width": 1080, "height": 480})
        page.set_content(
            '<pre style="margin:0;padding:12px;background:#111;color:#ddd;'
            'font:14px DejaVu Sans Mono,monospace;white-space:pre;min-height:100vh">'
            f"{html.escape(text)}</pre>"
        )
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.close()


def test_terminal_prints_the_reply_once_as_it_arrives(
    emulator: EmulatorProcess, chromium: BrowserContext, tmp_path: Path
) -> None:
    import pexpect

    emulator.add_reply(REPLY)
    env = {
        **os.environ,
        "ANTHROPIC_BASE_URL": emulator.url,
        "ANTHROPIC_API_KEY": "emulator-key",
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "TERM": "xterm-256color",
        # No terminal answers prompt_toolkit's cursor-position queries here; a person's does.
        "PROMPT_TOOLKIT_NO_CPR": "1",
    }
    child = pexpect.spawn(
        str(IPYTHON),
        ["--no-banner", "--colors=NoColor", "--no-confirm-exit"],
        env=env,
        encoding="utf-8",
        dimensions=(40, 120),
        timeout=30,
    )
    try:
        child.expect(r"In \[1\]:")
        child.send("%load_ext claude_magics\r")
        child.expect(r"In \[2\]:")
        # A cell magic is typed line by line; an empty line twice ends the cell and runs it.
        for line in ("%%claude", "What do the logs say?", "", ""):
            child.send(line + "\r")
            time.sleep(0.2)
        reads: list[tuple[float, str]] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                reads.append((time.monotonic(), child.read_nonblocking(4096, timeout=0.5)))
            except pexpect.TIMEOUT:
                continue
            if "In [3]:" in reads[-1][1]:
                break
        child.send("exit\r")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)

    raw = "".join(text for _, text in reads)
    shown = _screen(raw)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "5-terminal.txt").write_text(shown)
    _render_transcript(chromium, shown, SCREENSHOTS / "5-terminal.png")

    assert "In [3]:" in shown, f"the cell did not finish:\n{shown}"
    # Printed once and never re-rendered: the terminal received the reply verbatim, once, as
    # one run of plain text (no cursor movement, line erasing or carriage return inside it).
    on_the_wire = REPLY.replace("\n", "\r\n")
    assert raw.count(on_the_wire) == 1, repr(raw)
    assert shown.count("## Reading the logs") == 1, shown
    # The screen wraps long lines at 120 columns; unwrapped, the reply ends as written.
    assert "where the first failed health check is." in shown.replace("\n", "")
    # As it arrives: the reply came in many reads spread over the stream, not in one piece.
    start = raw.index(on_the_wire)
    end = start + len(on_the_wire)
    arrivals, offset = [], 0
    for at, text in reads:
        if offset < end and offset + len(text) > start:
            arrivals.append(at)
        offset += len(text)
    assert len(arrivals) >= 3, reads
    assert arrivals[-1] - arrivals[0] >= 0.5, arrivals
    # One status line at the end, with tokens and cost.
    status = re.findall(r"^\[claude-sonnet-5-5 · .*\]$", shown, flags=re.MULTILINE)
    assert len(status) == 1, shown
    assert re.search(r"\d+ in · \d+ out", status[0]) and "$" in status[0], status
