"""The live view's real JavaScript (claude_magics/notebook/live_view.js) in Chromium, fed the
messages the kernel sends for a streamed answer.

The ES module is loaded as anywidget loads it (an import from a Blob URL) with a model that
hands it the messages; after every message, each view's DOM must be the DOM of the whole text
rendered. tests/test_long_answers.py checks the same against a Python copy of the apply step,
through a real kernel wire; this checks the JavaScript itself, with no JupyterLab in between
(tests/browser/test_scenarios.py shows the widget in a real JupyterLab).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import pytest

from claude_magics.notebook.live_markdown import LiveSection, MarkdownBlocks
from claude_magics.notebook.views import markdown_to_html

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.browser

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
def page(chromium: BrowserContext) -> Iterator[Page]:
    page = chromium.new_page()
    page.set_content("<!doctype html><html><body></body></html>")
    try:
        yield page
    finally:
        page.close()


@pytest.mark.parametrize("step", [1, 5, 23])
def test_the_views_show_the_whole_render_after_every_message(page: Page, step: int) -> None:
    messages = _check(page, ASTRAL + "\n" + REFERENCES, thinking=ASTRAL, step=step)
    assert any(m["a"][0] == -1 for m in messages if "a" in m)  # "replace all" was applied


def test_fuzzed_documents(page: Page) -> None:
    rng = random.Random(6)
    for _ in range(15):
        text = "\n".join(rng.choice(LINES) for _ in range(rng.randint(5, 40)))
        _check(page, text, step=rng.choice([1, 3, 8]))
