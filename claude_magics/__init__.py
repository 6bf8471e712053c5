"""Claude inside Jupyter.

    from claude_magics import Client
    Client().messages.create(model="claude-sonnet-4-6", max_tokens=256, messages=[...])

Importing this package is cheap on purpose: it pulls in neither httpx, pandas, ipywidgets nor
the emulator. Names below are resolved on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .client import Client
    from .emulator import Emulator

# name -> module that defines it; imported lazily by __getattr__ (PEP 562).
_LAZY = {
    "Client": "claude_magics.client",
    "Emulator": "claude_magics.emulator",
}

__all__ = ["Client", "Emulator", "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'claude_magics' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
