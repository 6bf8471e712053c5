"""Fixtures for the browser tests: the emulator, a JupyterLab server and headless Chromium.

    pytestmark = pytest.mark.browser      # in a test module of this folder

    def test_something(lab: Lab, emulator: EmulatorProcess) -> None: ...

One emulator process, one JupyterLab server and one Chromium are shared by the whole session
(each takes seconds to start on a 2-core machine); every test gets its own page and notebook.
Each is stopped at the end of the session, also when a test fails. When Chromium, Playwright or
JupyterLab is missing the browser tests are skipped with one line saying what is missing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from lab_processes import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    SCREENSHOTS,
    EmulatorProcess,
    JupyterLabServer,
    missing_requirement,
)
from labpage import Lab

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the browser tests, in one line saying why, when this machine cannot run them."""
    reason = missing_requirement()
    if reason is None:
        return
    # A skip marker rather than pytest.skip() in a fixture: pytest's -ra summary then folds all
    # of them into a single line (skips raised during setup are listed once per test).
    skip = pytest.mark.skip(reason=f"browser tests skipped: {reason}")
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def emulator_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """One emulator for the session, as a separate process like a user would start it."""
    emulator = EmulatorProcess(tmp_path_factory.mktemp("emulator") / "emulator.log")
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def emulator(emulator_process: EmulatorProcess) -> EmulatorProcess:
    """The session's emulator, reset so no reply scripted by another test is left over."""
    emulator_process.reset()
    return emulator_process


@pytest.fixture(scope="session")
def jupyter_server(
    emulator_process: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JupyterLabServer]:
    env = dict(os.environ)
    # Kernels inherit the server's environment: this is how %%claude finds the emulator.
    env["ANTHROPIC_BASE_URL"] = emulator_process.url
    env["ANTHROPIC_API_KEY"] = "emulator-key"
    server = JupyterLabServer(tmp_path_factory.mktemp("jupyterlab"), env)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """Headless Debian Chromium driven by Playwright (never `playwright install`). Module
    scope, not session: Playwright's sync API keeps an event loop running in the main thread
    until it stops, and the tests after the browser's (asyncio.run, top-level await) need none
    running."""
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()
    finally:
        playwright.stop()


@pytest.fixture
def lab(
    chromium: BrowserContext,
    jupyter_server: JupyterLabServer,
    emulator: EmulatorProcess,
    request: pytest.FixtureRequest,
) -> Iterator[Lab]:
    """A fresh page on the shared JupyterLab; its kernels are shut down after the test."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver = Lab(chromium, jupyter_server, SCREENSHOTS)
    try:
        yield driver
    finally:
        try:
            report = getattr(request.node, "rep_call", None)
            if report is not None and report.failed:
                # What the page showed when the test failed: the first thing to look at. The
                # page itself may be what broke, so this must not stop the cleanup below.
                with contextlib.suppress(Exception):
                    driver.screenshot(f"FAILED-{request.node.name}")
            driver.close()
        finally:
            jupyter_server.shutdown_kernels()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Keep each phase's report on the item so the `lab` fixture can tell a failed test.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
