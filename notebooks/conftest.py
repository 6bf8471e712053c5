"""Run the notebooks under ``pytest --nbval`` against a local emulator, never the real API.

nbval starts each notebook's kernel before any fixture runs, and the kernel inherits this
process's environment, so the emulator is started at configure time and the variables set then.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import pytest

_state: dict[str, Any] = {}


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("--nbval", default=False) or "emulator" in _state:
        return
    from claude_magics.emulator import Emulator

    emulator = Emulator(batch_processing_seconds=1.0).start()
    _state["emulator"] = emulator
    keys = ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "CLAUDE_MAGICS_HOME")
    _state["saved"] = {k: os.environ.get(k) for k in keys}
    os.environ["ANTHROPIC_BASE_URL"] = emulator.url
    os.environ["ANTHROPIC_API_KEY"] = "emulator-key"
    # Emulated spend must not land in the user's real ledger.
    os.environ["CLAUDE_MAGICS_HOME"] = tempfile.mkdtemp(prefix="claude-magics-nbval-")


def pytest_unconfigure(config: pytest.Config) -> None:
    emulator = _state.pop("emulator", None)
    if emulator is None:
        return
    emulator.stop()
    for key, value in _state.pop("saved").items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
