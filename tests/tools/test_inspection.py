"""The read-only kernel tools on real values: a DataFrame with gaps, a fake key, figures."""

from __future__ import annotations

import sys
import types
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from claude_magics.prompt.budget import estimate_tokens
from claude_magics.tools import ToolBox, ToolOutput, inspection_tools

from .support import FAKE_KEY, PNG_MAGIC, REDACTED, call, images_of, redact, text_of


def make_frame(n: int = 1000) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "city": rng.choice(["Oslo", "Lima", "Pune"], n),
            "score": rng.normal(size=n).round(3),
        }
    )
    frame.loc[[3, 10, 11], "score"] = np.nan
    frame.loc[[5], "city"] = None
    return frame


class Watched:
    """An object whose length and repr are user code: list_variables must call neither."""

    calls: ClassVar[list[str]] = []

    def __len__(self) -> int:
        Watched.calls.append("len")
        return 3

    def __repr__(self) -> str:
        Watched.calls.append("repr")
        return "Watched()"


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


def helper(x: int) -> int:
    """Double x."""
    return 2 * x


def namespace(**extra: Any) -> dict[str, Any]:
    ns: dict[str, Any] = {
        "df": make_frame(),
        "In": [""],
        "Out": {},
        "exit": object(),
        "get_ipython": lambda: None,
        "_private": 1,
        "np": np,
        "helper": helper,
        "Watched": Watched,
        "watched": Watched(),
        "numbers": list(range(50)),
    }
    ns.update(extra)
    return ns


def box_for(ns: dict[str, Any], budget: int = 2000, *, fixed_names: bool = False) -> ToolBox:
    tools = inspection_tools(ns, redact=redact, budget_tokens=budget, fixed_names=fixed_names)
    return ToolBox(tools, redact=redact)


def text(output: ToolOutput) -> str:
    assert not output.is_error, output.content
    return text_of(output)


# -- list_variables ----------------------------------------------------------------------------


def test_list_variables_shows_user_variables_sorted_with_type_size_and_memory() -> None:
    Watched.calls.clear()
    ns = namespace()
    listing = text(call(box_for(ns), "list_variables")[1])
    lines = listing.splitlines()
    names = [line.split(":")[0] for line in lines[1:] if line]
    assert names == ["Watched", "df", "helper", "numbers", "watched"]  # sorted, IPython's gone
    memory = int(ns["df"].memory_usage(deep=False).sum()) / 1024
    assert f"df: DataFrame, 1,000 rows x 3 columns, {memory:,.1f} KB" in listing
    assert "helper: function helper(x: int) -> int" in listing
    assert "Watched: class Watched" in listing
    assert "numbers: list, 50 items, " in listing
    assert "watched: tools.Watched, 56 B" in listing  # the type, never the repr
    assert Watched.calls == []  # neither __len__ nor __repr__ of user objects ran


def test_list_variables_pages_with_start_when_cut() -> None:
    ns = {f"v{i:03d}": i for i in range(300)}
    box = box_for(ns, budget=200)
    first = text(call(box, "list_variables")[1])
    assert estimate_tokens(first) <= 200
    assert first.startswith("300 variables")
    shown = sum(1 for line in first.splitlines() if line.startswith("v"))
    assert 5 < shown < 300
    assert f"Variables 1-{shown} of 300 shown; ask list_variables with start={shown}" in first
    second = text(call(box, "list_variables", start=shown)[1])
    assert second.splitlines()[1].startswith(f"v{shown:03d}: int")


def test_list_variables_never_shows_values() -> None:
    listing = text(call(box_for(namespace(secret=FAKE_KEY)), "list_variables")[1])
    assert f"secret: str, {len(FAKE_KEY)} characters" in listing
    assert "sk-ant" not in listing


# -- describe_variable: DataFrames and Series --------------------------------------------------


def test_a_dataframe_is_described_with_dtypes_missing_head_and_describe() -> None:
    output = call(box_for(namespace()), "describe_variable", name="df")[1]
    described = text(output)
    assert output.summary == "df: 1,000 x 3 DataFrame"
    from claude_magics.tools.inspection import _memory

    # The memory is pandas' own figure (23.6 KB with object strings, 27.6 KB with pandas 3's
    # Arrow-backed ones), said as _memory says it.
    memory = _memory(make_frame())
    assert memory in ("23.6 KB", "27.6 KB")
    assert described.startswith(
        f"df: DataFrame, 1,000 rows x 3 columns, memory {memory}; index: RangeIndex 0..999\n"
    )
    assert "  id: int64, 0 missing\n" in described
    assert "  score: float64, 3 missing\n" in described
    assert "city: " in described and ", 1 missing\n" in described
    head = described.split("first rows (CSV):\n")[1].splitlines()
    assert head[0] == ",id,city,score"
    assert head[1].startswith("0,0,")
    assert head[4] == "3,3,{},".format(make_frame()["city"][3])  # the missing score is empty
    assert "First 5 of 1,000 rows shown; ask with rows='5:25'" in described
    stats = described.split("describe():\n")[1]
    assert stats.startswith(",count,unique,top,freq,mean,std,min,25%,50%,75%,max")
    assert "score,997" in stats  # count leaves the three gaps out
    assert estimate_tokens(described) <= 2000


def test_a_column_gives_its_value_counts() -> None:
    frame = make_frame()
    described = text(call(box_for(namespace()), "describe_variable", name="df", column="city")[1])
    counts = frame["city"].value_counts(dropna=False)
    assert "column 'city': length 1,000, " in described
    assert "1 missing, 3 distinct" in described
    assert "value counts (missing included; top 4 of 4 distinct):" in described
    for city in ("Oslo", "Lima", "Pune"):
        assert f"  {city}: {counts[city]:,}\n" in described
    assert "  missing: 1\n" in described


def test_a_row_slice_shows_those_rows_and_how_to_ask_for_the_rest() -> None:
    frame = make_frame()
    box = box_for(namespace(), budget=400)
    described = text(call(box, "describe_variable", name="df", rows="10:900")[1])
    assert estimate_tokens(described) <= 400
    lines = described.splitlines()
    assert lines[1] == ",id,city,score"
    assert lines[2] == f"10,10,{frame['city'][10]},"
    assert lines[4] == f"12,12,{frame['city'][12]},{frame['score'][12]}"
    shown = sum(1 for line in lines if line[:1].isdigit())
    last = 10 + shown
    assert f"Rows 10-{last - 1} of the 890 asked (10:900) shown; ask with rows='{last}:900'" in (
        described
    )
    tail = text(call(box, "describe_variable", name="df", rows="-2:")[1]).splitlines()
    assert tail[2].startswith("998,998,") and tail[3].startswith("999,999,")


def test_a_series_is_described_too() -> None:
    ns = namespace(s=make_frame()["city"])
    described = text(call(box_for(ns), "describe_variable", name="s")[1])
    assert described.startswith("s: Series 'city', length 1,000, ")
    assert "value counts (missing included; top 4 of 4 distinct):" in described
    rows = text(call(box_for(ns), "describe_variable", name="s", rows="3:5")[1])
    assert rows.splitlines()[1:3] == [",city", f"3,{ns['s'][3]}"]


def test_a_fixed_namespace_names_its_variables_in_the_schema() -> None:
    ns = namespace()
    (describe,) = [t for t in inspection_tools(ns, redact=redact) if t.name == "describe_variable"]
    # The user's variables: not IPython's (In, Out, exit, ...), modules or _private ones.
    assert describe.input_schema["properties"]["name"]["enum"] == [
        "Watched",
        "df",
        "helper",
        "numbers",
        "watched",
    ]
    output = call(box_for(ns, fixed_names=True), "describe_variable", name="dff")[1]
    assert output.is_error and 'expected one of "' in str(output.content)
    (loose,) = [
        t
        for t in inspection_tools(ns, redact=redact, fixed_names=False)
        if t.name == "describe_variable"
    ]
    assert "enum" not in loose.input_schema["properties"]["name"]


@pytest.mark.parametrize(
    ("tool_input", "message"),
    [
        ({"name": "dff"}, "no variable named `dff` (did you mean `df`?)"),
        ({"name": "df", "column": "town"}, "`df` has no column 'town'; its columns: 'id', "),
        ({"name": "numbers", "column": "x"}, "column= applies to DataFrames; `numbers` is a list"),
        ({"name": "helper", "rows": "1:2"}, "rows= applies to DataFrames, Series, lists"),
        ({"name": "df", "rows": "ten"}, 'describe_variable was not run: input.rows: string "ten"'),
    ],
)
def test_requests_that_cannot_be_answered_say_what_to_ask(
    tool_input: dict[str, Any], message: str
) -> None:
    output = call(box_for(namespace()), "describe_variable", **tool_input)[1]
    assert output.is_error
    assert isinstance(output.content, str) and output.content.startswith(message)


# -- describe_variable: everything else --------------------------------------------------------


def test_other_values_are_a_bounded_repr() -> None:
    ns = namespace(big={f"k{i}": "v" * 50 for i in range(1000)}, bad=BadRepr())
    big = text(call(box_for(ns, budget=300), "describe_variable", name="big")[1])
    assert big.startswith("big: dict, 1,000 keys, ")
    assert big.splitlines()[1].startswith("{'k0': 'vvvv")
    assert "more characters left out; the rest of the value is not shown" in big
    assert estimate_tokens(big) <= 300
    bad = text(call(box_for(ns), "describe_variable", name="bad")[1])
    assert "<BadRepr object; its repr raised RuntimeError: repr exploded>" in bad


def test_functions_show_their_source() -> None:
    described = text(call(box_for(namespace()), "describe_variable", name="helper")[1])
    assert 'def helper(x: int) -> int:\n    """Double x."""\n    return 2 * x' in described


def test_list_items_by_rows() -> None:
    described = text(call(box_for(namespace()), "describe_variable", name="numbers", rows="5:8")[1])
    assert described.splitlines()[1:] == ["[5] 5", "[6] 6", "[7] 7"]


@pytest.mark.parametrize(
    "holder",
    [
        lambda: FAKE_KEY,
        lambda: {"api_key": FAKE_KEY, "other": list(range(10))},
        lambda: "x" * 5000 + FAKE_KEY + "y" * 5000,  # longer than any repr limit
        lambda: types.SimpleNamespace(key=FAKE_KEY),
        lambda: pd.DataFrame({"name": ["a", "b"], "token": [FAKE_KEY, "z"]}),
    ],
)
def test_the_api_key_never_shows(holder: Any) -> None:
    ns = namespace(holder=holder())
    box = box_for(ns)
    outputs = [
        call(box, "list_variables")[1],
        call(box, "describe_variable", name="holder")[1],
    ]
    if isinstance(ns["holder"], pd.DataFrame):
        outputs.append(call(box, "describe_variable", name="holder", rows="0:2")[1])
        outputs.append(call(box, "describe_variable", name="holder", column="token")[1])
    for output in outputs:
        shown = text_of(output) + output.summary
        assert "sk-ant" not in shown and "Zq7Zq7" not in shown
    assert REDACTED in text_of(outputs[1]) or "…" in text_of(outputs[1])


# -- show_figure -------------------------------------------------------------------------------


def test_show_figure_by_name_gives_a_png_block() -> None:
    fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
    ax.plot([1, 2, 3])
    ax.set_title("Sales")
    ax.set_xlabel("month")
    try:
        for name in ("fig", "ax"):
            output = call(box_for(namespace(fig=fig, ax=ax)), "show_figure", name=name)[1]
            assert not output.is_error
            assert isinstance(output.content, list)
            assert [b["type"] for b in output.content] == ["text", "image"]
            assert output.content[1]["source"]["media_type"] == "image/png"
            (png,) = images_of(output)
            assert png.startswith(PNG_MAGIC)
            assert text_of(output).endswith("400x300 px PNG; axes 'Sales', x: 'month'")
    finally:
        plt.close(fig)


def test_the_image_shrinks_to_the_budget() -> None:
    fig = plt.figure(figsize=(16, 12), dpi=100)  # 1600x1200: over the edge and the budget
    try:
        output = call(box_for({"fig": fig}, budget=400), "show_figure", name="fig")[1]
        (png,) = images_of(output)
        width = int.from_bytes(png[16:20], "big")
        height = int.from_bytes(png[20:24], "big")
        assert width * height / 750 <= 400
        assert f"{width}x{height} px" in text_of(output)
    finally:
        plt.close(fig)


def test_show_figure_without_a_name_uses_the_current_figure() -> None:
    box = box_for(namespace())
    plt.close("all")
    nothing = call(box, "show_figure")[1]
    assert nothing.is_error
    assert "pyplot has no open figure" in text_of(nothing)
    fig = plt.figure()
    try:
        assert images_of(call(box, "show_figure")[1])[0].startswith(PNG_MAGIC)
    finally:
        plt.close(fig)


def test_show_figure_never_imports_pyplot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "matplotlib.pyplot")
    output = call(box_for(namespace()), "show_figure")[1]
    assert output.is_error
    assert "matplotlib.pyplot is not imported" in text_of(output)
    assert "matplotlib.pyplot" not in sys.modules


def test_show_figure_of_something_else_says_what_it_is() -> None:
    output = call(box_for(namespace()), "show_figure", name="df")[1]
    assert output.is_error
    assert output.content == "`df` is a pandas.DataFrame, not a matplotlib Figure or Axes"
