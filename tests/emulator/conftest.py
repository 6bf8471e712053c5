"""Fixtures of the emulator tests: spec-checking HTTP clients that speak other API versions.

``emulator`` and ``emulator_api`` (anthropic-version 2023-06-01, x-api-key) come from
tests/conftest.py; the clients here send what newer SDKs send.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from spec_validation import Api

from claude_magics.emulator import Emulator

#: What the 2026 SDKs send: the new API version and the key as a bearer token.
NEW_SDK_HEADERS = {"authorization": "Bearer test-key", "anthropic-version": "2026-10-21"}


@pytest.fixture
def api_2026(emulator: Emulator) -> Iterator[Api]:
    """An `Api` on ``emulator`` speaking API version 2026-10-21 with a bearer key."""
    with Api(emulator.url, headers=NEW_SDK_HEADERS) as api:
        yield api


@pytest.fixture
def beta_api(emulator: Emulator) -> Iterator[Api]:
    """An `Api` on ``emulator`` that sends an ``anthropic-beta`` header, as beta clients do."""
    headers = {
        "x-api-key": "test-key",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "structured-outputs-2025-11-13,fast-mode-2026-02-01",
    }
    with Api(emulator.url, headers=headers) as api:
        yield api
