"""``import claude_magics`` must stay cheap: no pandas, ipywidgets, httpx or emulator until used."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ["pandas", "ipywidgets", "httpx", "claude_magics.emulator", "IPython", "orjson"]


def _loaded_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    return set(out.stdout.split())


def test_import_pulls_in_nothing_heavy() -> None:
    assert _loaded_after("import claude_magics") == set()


def test_names_resolve_lazily_on_first_use() -> None:
    assert _loaded_after("import claude_magics; claude_magics.Client") == {"httpx", "orjson"}
    assert _loaded_after("import claude_magics; claude_magics.AsyncClient") == {"httpx", "orjson"}
    assert "claude_magics.emulator" in _loaded_after("import claude_magics; claude_magics.Emulator")


def test_unknown_attribute_is_an_attribute_error() -> None:
    import claude_magics

    with pytest.raises(AttributeError, match="NoSuchThing"):
        claude_magics.NoSuchThing  # noqa: B018
