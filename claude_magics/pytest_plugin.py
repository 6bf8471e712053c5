"""pytest plugin: the ``claude_emulator`` fixture (a local Anthropic API per test).

    def test_hello(claude_emulator):
        claude_emulator.add_reply("Hi!")   # ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY point at it
                                           # (and ANTHROPIC_BEDROCK_BASE_URL, _VERTEX_BASE_URL)

    @pytest.mark.claude_emulator(tokens_per_second=50)   # options for this test's emulator
    def test_slow_stream(claude_emulator): ...

Registered through the ``pytest11`` entry point, so it loads in every pytest run: it imports
nothing heavy at module level, and the emulator itself only when the fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from claude_magics.emulator import Emulator

__all__ = ["TEST_API_KEY", "TEST_DEFAULTS", "claude_emulator"]

TEST_API_KEY = "sk-ant-emulator-test-key"
# Faster than the emulator's own defaults so batch tests do not wait.
TEST_DEFAULTS: dict[str, Any] = {"batch_processing_seconds": 0.2, "batch_cancel_seconds": 0.05}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "claude_emulator(**options): EmulatorOptions for the claude_emulator fixture of a test",
    )


@pytest.fixture
def claude_emulator(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Emulator]:
    """A started `Emulator`; the environment points Anthropic clients at it."""
    from claude_magics.emulator import Emulator

    options = dict(TEST_DEFAULTS)
    for marker in reversed(list(request.node.iter_markers("claude_emulator"))):
        options.update(marker.kwargs)  # closest marker wins
    with Emulator(**options) as emulator:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", emulator.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
        # Bedrock and Vertex clients (ours and the official SDK's) reach its platform routes.
        monkeypatch.setenv("ANTHROPIC_BEDROCK_BASE_URL", emulator.url)
        monkeypatch.setenv("ANTHROPIC_VERTEX_BASE_URL", emulator.url + "/v1")
        yield emulator
