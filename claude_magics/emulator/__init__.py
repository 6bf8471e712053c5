"""A local Anthropic API for tests, notebooks and offline demos (like moto for AWS).

    from claude_magics.emulator import Emulator
    with Emulator() as emu:          # ANTHROPIC_BASE_URL=emu.url, any non-empty key
        emu.add_reply("Hello!")

It serves /v1/messages (JSON and SSE), count_tokens, models, Message Batches and files on
127.0.0.1, validates requests like the API, generates deterministic replies, and emulates
prompt caching, rate limits and injected faults. Stdlib and orjson only. ``python -m
claude_magics.emulator`` runs it as a process; the pytest plugin offers it as the
``claude_emulator`` fixture.

The models, their limits and their rules come from the bundled model table
(`claude_magics.model_table`, ``data/models.json``), the same one the client falls back on;
``Emulator(models=[...])``, ``--model`` and ``POST /_emulator/models`` add models it does not
know yet.

Modules: `core` (Emulator), `options` (EmulatorOptions, Fault), `app` (endpoints and state),
`server` (HTTP), `validation` (request shapes), `rules` (per model, API version and
conversation), `catalog` (the served models), `tokens` (token accounting), `media`,
`generation`, `server_tools` (tool definitions; web search, fetch and code execution on fake
data), `labeling` (the simulated labeler: label tasks answered with each model's error rate;
``simulated_label(text, labels)`` is its truth), `instances` (JSON Schema instances), `caching`,
`ratelimit`, `batches`, `files` (the Files API, in memory), `errors`.
Names below load on first use (PEP 562), so ``import claude_magics.emulator`` costs next to
nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import RecordedRequest
    from .core import Emulator
    from .labeling import LABEL_RULE, label_error_rate, simulated_label, simulated_labels
    from .options import EmulatorOptions, Fault

__all__ = [
    "LABEL_RULE",
    "Emulator",
    "EmulatorOptions",
    "Fault",
    "RecordedRequest",
    "label_error_rate",
    "simulated_label",
    "simulated_labels",
]

_LAZY = {
    "Emulator": ".core",
    "EmulatorOptions": ".options",
    "Fault": ".options",
    "RecordedRequest": ".app",
    "LABEL_RULE": ".labeling",
    "label_error_rate": ".labeling",
    "simulated_label": ".labeling",
    "simulated_labels": ".labeling",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
