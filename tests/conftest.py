"""Shared fixtures for the test suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell
from spec_validation import Api, validator

from claude_magics.emulator import Emulator


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
def emulator(claude_emulator: Emulator) -> Emulator:
    """The emulator from the ``claude_emulator`` plugin fixture, under a shorter name."""
    return claude_emulator


@pytest.fixture
def emulator_api(emulator: Emulator) -> Iterator[Api]:
    """An HTTP helper bound to ``emulator`` that validates every response against the spec."""
    validator("Message")  # load the spec now, not in the middle of a timing-sensitive test
    with Api(emulator.url) as api:
        yield api
