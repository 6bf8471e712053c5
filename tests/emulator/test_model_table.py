"""The bundled model table (claude_magics/data/models.json) and its loader (model_table)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import claude_magics
from claude_magics.model_table import ModelEntry, ModelTable, RetiredModel, load

DATA = Path(claude_magics.__file__).parent / "data" / "models.json"
THINKING = {"types": ["adaptive"], "always_on": True, "budget": "rejected", "disabled": "accepted"}


def raw() -> dict[str, Any]:
    return json.loads(DATA.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_loaded_once_and_frozen() -> None:
    table = load()
    assert load() is table
    entry = table.models[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.max_tokens = 1  # type: ignore[misc]
    assert table.as_of == "2026-12-02"


def test_every_entry_round_trips_through_its_json_form() -> None:
    data = raw()
    table = ModelTable.from_dict(data)
    assert [m.to_dict() for m in table.models] == data["models"]
    assert [r.to_dict() for r in table.retired] == data["retired"]
    for entry in table.models:
        assert ModelEntry.from_dict(entry.to_dict()) == entry


def test_newest_first_and_statuses() -> None:
    table = load()
    dated = [m.created_at for m in table.models if not m.created_at.startswith("1970")]
    assert dated == sorted(dated, reverse=True)  # unknown dates are the epoch, as in the API
    assert [m.status for m in table.models[:4]] == ["active"] * 4
    for entry in table.models:
        if entry.status != "active":
            assert entry.replacement is not None and table.find(entry.replacement) is not None
        if entry.status == "deprecated":
            assert entry.retires_on is not None


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"sampling": "sometimes"}, "sampling: 'sometimes' is not one of"),
        ({"tokenizer": None}, "tokenizer"),
        ({"max_tokens": 0}, "max_tokens: expected a positive integer"),
        ({"max_tokens": True}, "max_tokens: expected a positive integer"),
        ({"colour": "red"}, "unknown field(s) colour"),
        ({"thinking": {**THINKING, "always_on": "yes"}}, "thinking.always_on"),
        ({"effort": {"levels": ["low"], "default": "high"}}, "effort.default"),
        ({"effort": {"levels": ["extreme"], "default": "extreme"}}, "effort.levels"),
        ({"capabilities": {"telepathy": True}}, "unknown field(s) telepathy"),
    ],
)
def test_a_bad_entry_fails_loudly(change: dict[str, Any], complaint: str) -> None:
    entry = {**raw()["models"][0], **change}
    with pytest.raises(ValueError, match="claude-fable-5-2") as caught:
        ModelEntry.from_dict(entry)
    assert complaint in str(caught.value)


def test_names_are_unique_and_never_both_served_and_retired() -> None:
    data = raw()
    twice = {**data, "models": [*data["models"], data["models"][0]]}
    with pytest.raises(ValueError, match="appears twice"):
        ModelTable.from_dict(twice)
    clash = RetiredModel("claude-opus-5-5", (), None, None).to_dict()
    with pytest.raises(ValueError, match="served and retired"):
        ModelTable.from_dict({**data, "retired": [clash]})


def test_the_wheel_ships_the_data_file() -> None:
    """Hatch puts every file under the listed package into the wheel, so the table ships as
    long as it lives inside claude_magics/ (a build checked this once: it is there)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    root = Path(claude_magics.__file__).parent.parent
    with (root / "pyproject.toml").open("rb") as handle:
        wheel = tomllib.load(handle)["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["packages"] == ["claude_magics"]
    assert "exclude" not in wheel and "only-include" not in wheel
    assert DATA.is_relative_to(root / "claude_magics")


def test_the_loader_is_a_cheap_leaf() -> None:
    code = (
        "import sys, claude_magics.model_table as t; t.load()\n"
        "print(' '.join(m for m in sys.modules if m.startswith('claude_magics')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # The package face loads only its version leaf; the table loads nothing of the package.
    assert set(out.stdout.split()) == {
        "claude_magics",
        "claude_magics._version",
        "claude_magics.model_table",
    }
