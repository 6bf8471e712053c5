"""Driving a JupyterLab page as a person would: open a notebook, Run All, save, look.

    lab.write_notebook("a.ipynb", ["%load_ext claude_magics", "%%claude\\nHi"])
    lab.open("a.ipynb"); lab.run_all(); lab.wait_until_run(2); lab.screenshot("a")

Selectors and waits follow ../shared/BROWSER_NOTES.md: JupyterLab's own "idle" indicator fires
before the kernel is usable, so readiness also waits for the spinner to go and for the status
bar to read "| Idle"; Run All goes through the Run menu (Shift+Enter would add a cell).
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import nbformat

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Locator, Page

__all__ = ["Lab", "Server"]

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

# True once the kernel can run code: see the module docstring for why one signal is not enough.
_KERNEL_READY_JS = """() => {
    if (document.querySelector('.jp-Spinner')) return false;
    const items = [...document.querySelectorAll('.jp-StatusBar-Item')].map(e => e.textContent);
    const idle = items.some(t => t.trim().endsWith('| Idle'));
    return idle && !items.some(t => t.includes('No Kernel'));
}"""

# Records every distinct state of the widget outputs, from before a run starts (polling from
# Python misses renders that last less than its round trip): the texts of the HTML widgets,
# each progress bar as its width and the text of its row ("label:  40% | 2/5 [00:01<00:01]"),
# and each live %%claude view as its status line and answer text.
_RECORD_WIDGETS_JS = """() => {
    const seen = [];
    window.__widgetStates = seen;
    const snap = () => {
        const texts = [...document.querySelectorAll('.jp-OutputArea .widget-html-content')]
            .map(e => e.textContent);
        const bars = [...document.querySelectorAll('.jp-OutputArea .widget-hprogress')]
            .map(bar => {
                const fill = bar.querySelector('.progress-bar');
                const row = bar.closest('.widget-hbox') || bar;
                return {width: fill ? fill.style.width : '', row: row.textContent,
                        success: !!(fill && fill.classList.contains('progress-bar-success'))};
            });
        const live = [...document.querySelectorAll('.jp-OutputArea .claude-answer')]
            .map(answer => {
                const view = answer.parentElement;
                return {status: view.querySelector('.claude-status').textContent,
                        answer: answer.textContent};
            });
        const state = {texts, bars, live};
        const last = seen[seen.length - 1];
        if (!last || JSON.stringify(last) !== JSON.stringify(state)) seen.push(state);
    };
    new MutationObserver(snap).observe(document.body,
        {subtree: true, childList: true, characterData: true, attributes: true});
}"""


class Server(Protocol):
    """What the page needs from the JupyterLab server fixture."""

    root: Path
    url: str
    token: str


class Lab:
    """One browser page on the shared JupyterLab server."""

    def __init__(self, context: BrowserContext, server: Server, screenshots: Path) -> None:
        self.context = context
        self.server = server
        self.screenshots = screenshots
        self.page: Page = context.new_page()
        self.page.set_default_timeout(30_000)

    # -- notebooks on disk ----------------------------------------------------------------------

    def write_notebook(self, name: str, cells: list[str]) -> Path:
        """A notebook of code cells in the server's root, as a person would have saved it."""
        notebook = nbformat.v4.new_notebook(metadata={"kernelspec": KERNELSPEC})
        notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
        path = self.server.root / name
        nbformat.write(notebook, path)
        return path

    def saved_outputs(self, name: str) -> list[list[dict[str, Any]]]:
        """The outputs of each code cell as saved on disk."""
        notebook = nbformat.read(self.server.root / name, as_version=4)
        return [list(cell.outputs) for cell in notebook.cells if cell.cell_type == "code"]

    # -- the page -------------------------------------------------------------------------------

    def open(self, name: str) -> None:
        """Open ``name`` in a workspace of its own and wait until its kernel can run code.

        A fresh workspace, so JupyterLab does not also reopen (and start kernels for) the
        notebooks other tests left in the default one.
        """
        workspace = f"w{secrets.token_hex(4)}"
        self.page.goto(
            f"{self.server.url}/lab/workspaces/{workspace}/tree/{name}?token={self.server.token}"
        )
        self.page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        self.page.wait_for_function(_KERNEL_READY_JS, timeout=60_000)

    def reopen(self, name: str) -> None:
        """Close this page and open ``name`` again in a new one (the caller ends the kernel)."""
        self.page.close()
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.open(name)

    def record_widgets(self) -> None:
        """Start recording widget outputs (call before running the cells)."""
        self.page.evaluate(_RECORD_WIDGETS_JS)

    def widget_texts(self) -> list[list[str]]:
        """Every distinct set of HTML-widget texts seen since `record_widgets`."""
        states = self.page.evaluate("() => window.__widgetStates || []")
        texts: list[list[str]] = []
        for state in states:
            if not texts or texts[-1] != state["texts"]:
                texts.append(state["texts"])
        return texts

    def live_views(self) -> list[list[dict[str, str]]]:
        """Every distinct set of live ``%%claude`` views (status line, answer text) seen since
        `record_widgets`."""
        states = self.page.evaluate("() => window.__widgetStates || []")
        views: list[list[dict[str, str]]] = []
        for state in states:
            if state["live"] and (not views or views[-1] != state["live"]):
                views.append(state["live"])
        return views

    def progress_bars(self) -> list[list[dict[str, Any]]]:
        """Every distinct set of progress bars seen since `record_widgets`."""
        states = self.page.evaluate("() => window.__widgetStates || []")
        bars: list[list[dict[str, Any]]] = []
        for state in states:
            if state["bars"] and (not bars or bars[-1] != state["bars"]):
                bars.append(state["bars"])
        return bars

    def run_all(self) -> None:
        """Run > Run All Cells, through the menu as a person would."""
        self.page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        self.page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()

    def cells(self) -> Locator:
        return self.page.locator(".jp-Notebook .jp-Cell.jp-CodeCell")

    def prompts(self) -> list[str]:
        """The execution prompts, "[1]:", "[*]:" or "[ ]:", one per code cell."""
        return [p.strip() for p in self.cells().locator(".jp-InputPrompt").all_inner_texts()]

    def wait_until_run(self, ran: int, timeout: float = 60) -> list[str]:
        """Wait until the first ``ran`` code cells have run and nothing is queued or running."""
        deadline = time.monotonic() + timeout
        prompts: list[str] = []
        while time.monotonic() < deadline:
            prompts = self.prompts()
            done = all(p[1:-2].isdigit() for p in prompts[:ran])
            if done and not any("*" in p for p in prompts):
                return prompts
            time.sleep(0.1)
        raise AssertionError(f"cells did not finish running within {timeout:.0f} s: {prompts}")

    def output(self, cell: int) -> Locator:
        """The output area of the ``cell``-th code cell (0-based)."""
        return self.cells().nth(cell).locator(".jp-OutputArea")

    def notebook_text(self) -> str:
        """What the notebook reads once widget outputs have settled.

        A widget output first reads "Loading widget..." and only later, when its model cannot be
        found, "Error displaying widget": reading the page earlier would miss the error.
        """
        self.page.wait_for_function(
            "() => !document.querySelector('.jp-Notebook').innerText.includes('Loading widget')"
        )
        return self.page.locator(".jp-Notebook").inner_text()

    def save(self) -> None:
        """Control+S, then wait until the tab is no longer marked as modified."""
        # docmanager:save is bound on the whole page; the notebook is the current document.
        self.page.keyboard.press("Control+s")
        self.page.wait_for_function(
            """() => {
                const tab = document.querySelector('.lm-DockPanel .lm-TabBar-tab.jp-mod-current');
                return tab && !tab.classList.contains('jp-mod-dirty');
            }"""
        )

    def screenshot(self, name: str) -> Path:
        path = self.screenshots / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def close(self) -> None:
        if not self.page.is_closed():
            self.page.close()
