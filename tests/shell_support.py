"""Helpers for tests that drive the magics in an IPython shell (the ``ip`` fixture)."""

from __future__ import annotations

from IPython.core.interactiveshell import InteractiveShell

from claude_magics.notebook.magics import ClaudeMagics


def magics_of(ip: InteractiveShell) -> ClaudeMagics:
    """The loaded ``ClaudeMagics`` instance of ``ip``."""
    return ip.magics_manager.registry["ClaudeMagics"]  # type: ignore[no-any-return]
