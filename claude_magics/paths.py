"""Where claude_magics keeps its files: the spend ledger, the job store, the model list cache.

    default_home() / "ledger.sqlite"

``$CLAUDE_MAGICS_HOME`` when set (tests and the demo point it at a temporary folder), else the
user cache directory (platformdirs). A leaf: any wing may import it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_home"]


def default_home() -> Path:
    """``$CLAUDE_MAGICS_HOME`` or the user cache directory; not created here."""
    env = os.environ.get("CLAUDE_MAGICS_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("claude_magics", appauthor=False))
