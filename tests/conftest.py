"""Shared fixtures for the test suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from IPython.core.interactiveshell import InteractiveShell
from shell_support import magics_of
from spec_validation import Api, validator

from claude_magics.emulator import Emulator

if TYPE_CHECKING:
    from batch_support import Jobs


@pytest.fixture(autouse=True)
def _private_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep ledgers and job files of every test out of the user's real cache directory."""
    monkeypatch.setenv("CLAUDE_MAGICS_HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture(scope="session")
def shell() -> InteractiveShell:
    """The IPython shell the magics tests drive (history off, as a test shell should be)."""
    ip = InteractiveShell.instance()
    ip.history_manager.enabled = False
    return ip


@pytest.fixture
def ip(shell: InteractiveShell, emulator: Emulator) -> Iterator[InteractiveShell]:
    """The shell with ``%load_ext claude_magics`` done, talking to ``emulator``; answers shown
    as Markdown. Afterwards the extension is unloaded, ``%config ClaudeMagics`` forgotten and
    every ``t_*`` variable removed, so no test leaks into the next."""
    shell.run_line_magic("load_ext", "claude_magics")
    magics_of(shell).display = "markdown"
    yield shell
    shell.run_line_magic("unload_ext", "claude_magics")
    shell.config.pop("ClaudeMagics", None)
    for name in [k for k in shell.user_ns if k.startswith("t_")]:
        del shell.user_ns[name]


@pytest.fixture
def emulator(claude_emulator: Emulator) -> Emulator:
    """The emulator from the ``claude_emulator`` plugin fixture, under a shorter name."""
    return claude_emulator


@pytest.fixture
def emulator_api(emulator: Emulator) -> Iterator[Api]:
    """An HTTP helper bound to ``emulator`` that validates every response against the spec."""
    validator("Message")  # load the spec now, not in the middle of a timing-sensitive test
    with Api(emulator.url) as api:
        yield api


@pytest.fixture
def jobs(emulator: Emulator, tmp_path: Path) -> Jobs:
    """DataFrame jobs against ``emulator``, with their own job store and spend ledger under
    ``tmp_path``, polling fast, no progress bar (``batch_support.Jobs``)."""
    from batch_support import make_jobs

    return make_jobs(emulator, tmp_path)
