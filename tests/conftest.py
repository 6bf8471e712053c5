"""Shared fixtures for the test suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from claude_magics.emulator import Emulator

from spec_validation import Api


@pytest.fixture
def emulator(claude_emulator: Emulator) -> Emulator:
    """The emulator from the ``claude_emulator`` plugin fixture, under a shorter name."""
    return claude_emulator


@pytest.fixture
def emulator_api(emulator: Emulator) -> Iterator[Api]:
    """An HTTP helper bound to ``emulator`` that validates every response against the spec."""
    with Api(emulator.url) as api:
        yield api
