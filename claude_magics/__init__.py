"""Claude inside Jupyter.

    %load_ext claude_magics             # then: %%claude, %claude, %claude_history, ...
    from claude_magics import Client
    Client().messages.create(model=MODEL, max_tokens=256, messages=[...])
    await AsyncClient().messages.create(...)     # the same, for asyncio and top-level await

Importing this package is cheap on purpose: it pulls in neither httpx, pandas, ipywidgets nor
the emulator. Names below are resolved on first use.
"""

from __future__ import annotations

import importlib

from ._version import __version__

# `typing` costs more to import than this whole module: keep it to type checkers.
TYPE_CHECKING = False


if TYPE_CHECKING:
    from typing import Any

    from .api.client import AsyncClient, Client
    from .emulator import Emulator

# name -> module that defines it; imported lazily by __getattr__ (PEP 562).
_LAZY = {
    "AsyncClient": "claude_magics.api.client",
    "Client": "claude_magics.api.client",
    "Emulator": "claude_magics.emulator",
}

__all__ = [
    "AsyncClient",
    "Client",
    "Emulator",
    "__version__",
    "load_ipython_extension",
    "unload_ipython_extension",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'claude_magics' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext claude_magics``: register ``%%claude`` and the ``%claude_*`` magics.

    Only IPython's own magic machinery is imported here; the client, pandas and ipywidgets load
    when a magic first needs them.
    """
    from traitlets import TraitError

    from .notebook.magics import ClaudeMagics
    from .notebook.settings import SettingRefused, _without_keys

    existing = _registered(ipython)
    if existing is not None:
        return
    try:
        magics = ClaudeMagics(shell=ipython)
    except TraitError as error:
        # A bad value in ipython_config.py (c.ClaudeMagics...): one line, never the value if
        # it could be a key, instead of traitlets' traceback.
        raise SettingRefused(
            f"a ClaudeMagics setting in your IPython configuration is refused: "
            f"{_without_keys(str(error), None)}"
        ) from None
    ipython.register_magics(magics)
    _register_accessor_when_pandas(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext claude_magics``: remove the magics and unhook from the shell."""
    hook = _accessor_hooks.pop(id(ipython), None)
    if hook is not None:
        ipython.events.unregister("pre_run_cell", hook)
    magics = _registered(ipython)
    if magics is None:
        return
    magics.unload()
    table = ipython.magics_manager.magics
    for kind, names in magics.magics.items():
        for name in names:
            table[kind].pop(name, None)
    ipython.magics_manager.registry.pop(type(magics).__name__, None)
    ipython.configurables[:] = [c for c in ipython.configurables if c is not magics]


def _registered(ipython: Any) -> Any:
    return ipython.magics_manager.registry.get("ClaudeMagics")


# shell id -> its pre_run_cell hook that registers df.claude, while it waits for pandas.
_accessor_hooks: dict[int, Any] = {}


def _register_accessor_when_pandas(ipython: Any) -> None:
    """Register ``df.claude`` without making ``%load_ext`` import pandas: now if pandas is
    already imported, else just before the first cell that imports pandas or uses ``.claude``
    (a check per cell until then, which then removes itself). Polars frames get theirs the
    same way, but only once Polars is imported (by the user: never here)."""
    import sys

    if "polars" in sys.modules:
        importlib.import_module("claude_magics.jobs.polars")
    if "pandas" in sys.modules and "polars" in sys.modules:
        importlib.import_module("claude_magics.jobs.accessor")
        return
    if id(ipython) in _accessor_hooks:
        return
    pending = {"pandas": "claude_magics.jobs.accessor", "polars": "claude_magics.jobs.polars"}
    if "pandas" in sys.modules:
        importlib.import_module(pending.pop("pandas"))

    def register_before(info: Any) -> None:
        cell = getattr(info, "raw_cell", None) or ""
        for name, module in list(pending.items()):
            # A cell that names the library is about to import it; pandas is imported for
            # .claude too (Polars never: a cell using Polars imports it).
            wanted = name in sys.modules or name in cell or (name == "pandas" and ".claude" in cell)
            if wanted:
                importlib.import_module(module)
                pending.pop(name)
        if not pending:
            ipython.events.unregister("pre_run_cell", register_before)
            _accessor_hooks.pop(id(ipython), None)

    _accessor_hooks[id(ipython)] = register_before
    ipython.events.register("pre_run_cell", register_before)
