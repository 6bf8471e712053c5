"""Cell text, {{references}}, values, DataFrames and attachments into content blocks."""

from __future__ import annotations

import base64
import csv
import io
import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from spec_validation import validate

from claude_magics import prompt
from claude_magics.errors import ClaudeError
from claude_magics.prompt import (
    PromptError,
    build_user_content,
    dataframe_block,
    dataframe_text,
    estimate_tokens,
    file_block,
    find_last_error,
    format_error,
    image_block,
    interpolate_text,
    pdf_block,
    render_value,
)

MB = 1024 * 1024
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(16)
GIF = b"GIF89a" + bytes(16)
WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8 " + bytes(16)


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x = x
        self.y = y
        self._hidden = "secret"

    @property
    def broken(self) -> int:
        raise RuntimeError("sensor offline")

    def __repr__(self) -> str:
        return f"Point({self.x}, {self.y})"


@pytest.fixture
def ns() -> dict[str, Any]:
    return {
        "name": "Ada",
        "x": 41,
        "df": pd.DataFrame({"a": [1, 2], "b": ["u", "v"]}),
        "cfg": {"k": [1, 2], "nested": {"deep": "yes"}, "when": date(2024, 5, 1)},
        "items": [10, 20, 30],
        "pt": Point(3, 4),
        "In": ["", "x = 41", "print(x)", "df.describe()"],
        "Out": {3: "the description"},
        "_": "last output",
        "__": "output before",
        "_3": "output three",
        "_i2": "print(x)",
    }


def fill(text: str, namespace: dict[str, Any], **options: Any) -> str:
    return interpolate_text(text, namespace, **options)


# ------------------------------------------------------------------------------------------
# References


CODE_AND_MARKUP = r"""Nothing here is a reference, and all of it must arrive byte for byte:
squares = {k: v * v for k, v in zip(a, b)}
evens = {n for n in range(10) if n % 2 == 0}
print(f"{x} and {x!r:>10} and {{ and }} and {{{x}}}")
template = "{{" + "x" + "}}"
empty = "{{}}"
jinja = "{% for x in items %}{{ x | upper }}{% endfor %}{# note #}"
call = "{{ x() }} {{x.}} {{x[ 0 ]}} {{ x + 1 }} {{x[y]}} {{x[1:2]}} {{'x'}} {{x['a\'b']}}"
shell = "$VAR ${HOME} $(pwd) %env"
latex = r"\frac{a}{b} + \sqrt{x^{2}} + {{a}\over{b}} + \{x\}"
data = {"a": {"b": [1, {"c": null}]}, "d": "{{}"}
weird = "{{\nx\n}} {{ {x} }} {x} { {x} } }}x{{"
"""


def test_code_and_markup_pass_through_byte_for_byte(ns: dict[str, Any]) -> None:
    assert fill(CODE_AND_MARKUP, ns) == CODE_AND_MARKUP
    blocks = build_user_content(CODE_AND_MARKUP, ns)
    assert blocks == [{"type": "text", "text": CODE_AND_MARKUP}]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hi {{name}}!", "Hi Ada!"),
        ("Hi {{ name }}!", "Hi Ada!"),
        ("Hi {{\tname  }}!", "Hi Ada!"),
        ("{{x}}+1", "41+1"),
        ("{{pt.x}},{{pt.y}}", "3,4"),
        ("{{items[0]}} {{items[-1]}} {{items[-3]}}", "10 30 10"),
        ("{{cfg['nested']['deep']}}", "yes"),
        ('{{cfg["nested"]["deep"]}}', "yes"),
        ("{{cfg['k'][1].real}}", "2"),
        ("{{df.columns[0]}}", "a"),
        ("{{df['b'][1]}}", "v"),
        ("{{In[3]}} -> {{Out[3]}}", "df.describe() -> the description"),
        (
            "{{_}} / {{__}} / {{_3}} / {{_i2}}",
            "last output / output before / output three / print(x)",
        ),
        ("{{pt}}", "Point(3, 4)"),
        ("a{{name}}{{name}}b", "aAdaAdab"),
    ],
)
def test_references_are_replaced(ns: dict[str, Any], text: str, expected: str) -> None:
    assert fill(text, ns) == expected


def test_keywords_are_not_names(ns: dict[str, Any]) -> None:
    # No variable can be called `and` or `None`, so these are text (f-string escapes, mostly).
    text = 'f"{{ and }} {{None}} {{for}} {{True.real}}"'
    assert fill(text, ns) == text
    ns["match"] = "soft keywords are names"
    assert fill("{{match}}", ns) == "soft keywords are names"


def test_only_exactly_two_braces_make_a_reference(ns: dict[str, Any]) -> None:
    # f"{{{x}}}" is Python for "{41}": it must reach Claude as code, not as "{41}".
    assert fill('f"{{{x}}}" {{{{x}}}}', ns) == 'f"{{{x}}}" {{{{x}}}}'


def test_inserted_values_are_not_scanned_again(ns: dict[str, Any]) -> None:
    ns["tricky"] = "{{name}} and {{missing}}"
    assert fill("{{tricky}}", ns) == "{{name}} and {{missing}}"


def test_quoted_keys_keep_their_text(ns: dict[str, Any]) -> None:
    ns["d"] = {"a b": 1, "it]s": 2, "-1": "string key", -1: "int key"}
    assert fill("{{d['a b']}} {{d['it]s']}} {{d['-1']}} {{d[-1]}}", ns) == (
        "1 2 string key int key"
    )


def test_unknown_name_is_an_error_with_a_suggestion(ns: dict[str, Any]) -> None:
    with pytest.raises(PromptError) as info:
        fill("Describe {{dff}} please", ns)
    message = str(info.value)
    assert message == "{{dff}}: no variable named 'dff' in the notebook (did you mean 'df'?)"
    assert "\n" not in message


def test_unknown_name_without_a_close_match_has_no_suggestion(ns: dict[str, Any]) -> None:
    with pytest.raises(PromptError, match=r"no variable named 'zzzqqq' in the notebook$"):
        fill("{{zzzqqq}}", ns)


def test_prompt_error_is_a_value_error_and_a_claude_error() -> None:
    assert issubclass(PromptError, ValueError)
    assert issubclass(PromptError, ClaudeError)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("{{pt.brokn}}", r"^\{\{pt\.brokn\}\}: pt \(Point\) has no attribute 'brokn' \(did you"),
        ("{{pt.z}}", r"^\{\{pt\.z\}\}: pt \(Point\) has no attribute 'z'$"),
        ("{{df.colums}}", r"has no attribute 'colums' \(did you mean 'columns'\?\)"),
        ("{{cfg['nestd']}}", r"\{\{cfg\['nestd'\]\}\}: cfg \(dict\) has no key 'nestd' \(did you"),
        ("{{df['c']}}", r"df \(DataFrame\) has no key 'c'"),
        ("{{items[3]}}", r"index 3 is out of range for items \(list of length 3\)"),
        ("{{items[-4]}}", r"index -4 is out of range"),
        ("{{items['a']}}", r"items \(list\) cannot be indexed with 'a'"),
        ("{{x[0]}}", r"x \(int\) cannot be indexed with 0"),
        ("{{cfg['nested']['deep'][9]}}", r"for cfg\['nested'\]\['deep'\] \(str of length 3\)"),
        ("{{pt.broken}}", r"\{\{pt\.broken\}\}: reading pt\.broken raised RuntimeError: sensor"),
    ],
)
def test_failing_steps_name_the_reference(ns: dict[str, Any], text: str, pattern: str) -> None:
    with pytest.raises(PromptError, match=pattern):
        fill(text, ns)


@pytest.mark.parametrize(
    "text", ["{{pt._hidden}}", "{{pt.__class__}}", "{{pt.__dict__}}", "{{df.__init__.__globals__}}"]
)
def test_private_attributes_are_refused(ns: dict[str, Any], text: str) -> None:
    with pytest.raises(PromptError, match="attributes starting with '_' cannot be referenced"):
        fill(text, ns)


@pytest.mark.parametrize("text", ["{{__builtins__}}", "{{_secret}}", "{{__name__}}"])
def test_private_names_are_refused(ns: dict[str, Any], text: str) -> None:
    ns.update({"__builtins__": __builtins__, "_secret": "hunter2", "__name__": "__main__"})
    with pytest.raises(PromptError, match="names starting with '_' are private"):
        fill(text, ns)


def test_nothing_is_ever_called_or_evaluated(ns: dict[str, Any], tmp_path: Path) -> None:
    calls: list[str] = []

    def spy(*args: Any) -> str:
        calls.append("called")
        return "CALLED"

    ns["spy"] = spy
    ns["__import__"] = spy
    marker = tmp_path / "pwned"
    text = (
        f"{{{{__import__('os').system('touch {marker}')}}}} {{{{spy()}}}} {{{{spy(1)}}}} "
        "{{x if spy() else x}} {{[spy() for _ in 'a']}} {{spy(x)}} {{ lambda: spy() }}"
    )
    assert fill(text, ns) == text
    with pytest.raises(PromptError, match="starting with '_'"):
        fill("{{spy.__call__}}", ns)
    assert calls == []
    assert not marker.exists()
    # Naming a function shows it; it does not run it.
    assert fill("{{spy}}", ns).startswith("<function ")
    assert calls == []


def test_interpolation_can_be_turned_off(ns: dict[str, Any]) -> None:
    text = "keep {{name}} and {{unknown}} as written"
    assert build_user_content(text, ns, interpolate=False) == [{"type": "text", "text": text}]


def test_error_reference_renders_the_last_exception(ns: dict[str, Any]) -> None:
    try:
        {}["missing"]
    except KeyError as exc:
        error = exc
    text = fill("Why? {{_error}}", ns, last_error=error)
    assert text.startswith("Why? Traceback (most recent call last):")
    assert '{}["missing"]' in text  # the source line of the failing frame
    assert text.endswith("KeyError: 'missing'")
    assert fill("{{_error.args[0]}}", ns, last_error=error) == "missing"


def test_error_reference_without_an_error(ns: dict[str, Any]) -> None:
    with pytest.raises(PromptError, match=r"\{\{_error\}\}: there is no error to show"):
        fill("{{_error}}", ns, last_error=None)


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch) -> Any:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    # The shell writes sys.last_*; monkeypatch puts back whatever was there before.
    for attribute in ("last_type", "last_value", "last_traceback", "last_exc"):
        monkeypatch.setattr(sys, attribute, None, raising=False)
    config = Config()
    config.HistoryManager.enabled = False
    return InteractiveShell.instance(config=config)


def test_error_from_a_real_ipython_cell(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_cell(
        "def ratio(a, b):\n"
        "    return a / b\n"
        "try:\n"
        "    ratio(1, 0)\n"
        "except ZeroDivisionError as exc:\n"
        "    raise ValueError('\\x1b[31mbad\\x1b[0m ratio') from exc\n"
    )
    assert "ValueError" in capsys.readouterr().out  # IPython showed it, coloured
    error = find_last_error()
    assert isinstance(error, ValueError)
    text = format_error(error)
    assert "\x1b" not in text
    assert "interactiveshell.py" not in text  # IPython's own run_code frame is hidden
    assert "    return a / b" in text
    assert "ZeroDivisionError: division by zero" in text
    assert "The above exception was the direct cause of the following exception" in text
    assert text.endswith("ValueError: bad ratio")
    blocks = build_user_content("Why did this fail?\n{{_error}}", shell.user_ns, last_error=error)
    assert blocks[0]["text"] == "Why did this fail?\n" + text


def test_find_last_error_is_none_before_any_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for attribute in ("last_exc", "last_value"):
        monkeypatch.delattr(sys, attribute, raising=False)
    assert find_last_error() is None


def test_long_traceback_keeps_its_start_and_its_end(ns: dict[str, Any]) -> None:
    def dive(depth: int) -> None:
        if depth == 0:
            raise LookupError("bottom reached")
        [dive][0](depth - 1)  # a different line each level keeps traceback from folding them

    try:
        dive(40)
    except LookupError as exc:
        error = exc
    text = fill("{{_error}}", ns, last_error=error, value_budget=100)
    assert text.startswith("Traceback (most recent call last):")
    assert text.endswith("LookupError: bottom reached")
    assert "characters here; budget 100 tokens — raise ClaudeMagics.value_token_budget]" in text
    assert len(text) < len(format_error(error))


# ------------------------------------------------------------------------------------------
# Values as text


def test_containers_become_json(ns: dict[str, Any]) -> None:
    assert json.loads(fill("{{cfg}}", ns)) == {
        "k": [1, 2],
        "nested": {"deep": "yes"},
        "when": "2024-05-01",  # not JSON: str()
    }
    assert fill("{{items}}", ns) == "[10, 20, 30]"
    assert render_value((1, "two", None, True)) == '[1, "two", null, true]'
    assert render_value({3, 1, 2}) == "[1, 2, 3]"
    assert render_value({"é": "ü"}) == '{"é": "ü"}'  # readable, not \u escapes
    assert render_value([np.int64(3), np.float64(0.5)]) == "[3, 0.5]"


def test_containers_json_cannot_hold_fall_back_to_repr() -> None:
    assert render_value({(1, 2): "pair"}) == "{(1, 2): 'pair'}"
    loop: list[Any] = [1]
    loop.append(loop)
    assert render_value(loop) == "[1, [...]]"


def test_scalars_and_objects_use_repr() -> None:
    assert render_value("as is\n") == "as is\n"
    assert render_value(0.1) == "0.1"
    assert render_value(10**20) == "100000000000000000000"
    assert render_value(np.float64(3.5)) == "3.5"
    assert render_value(None) == "None"
    assert render_value(Point(1, 2)) == "Point(1, 2)"


def test_broken_repr_is_a_prompt_error() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("nope")

    with pytest.raises(PromptError, match=r"\{\{thing\}\}: could not turn it into text"):
        fill("{{thing}}", {"thing": Broken()})


def test_long_values_are_cut_with_a_marker_naming_the_budget(ns: dict[str, Any]) -> None:
    ns["log"] = "x" * 10_000
    text = fill("{{log}}", ns, value_budget=100)
    kept = 350  # 100 tokens at 3.5 characters each
    assert text == (
        "x" * kept + "… [cut: 9,650 more characters; budget 100 tokens — "
        "raise ClaudeMagics.value_token_budget]"
    )
    assert fill("{{log}}", ns, value_budget=3000) == ns["log"]  # fits: untouched


def test_estimate_tokens_is_length_over_three_and_a_half() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("a") == 1
    assert estimate_tokens("abcdefg") == 2
    assert estimate_tokens("abcdefgh") == 3
    assert estimate_tokens("x" * 3500) == 1000


# ------------------------------------------------------------------------------------------
# DataFrames


def sales(rows: int = 1000) -> pd.DataFrame:
    position = np.arange(rows)
    return pd.DataFrame(
        {
            "id": position,
            "price": np.where(position % 10 == 0, np.nan, position * 1.5),
            "city": pd.Series(["Paris", "Oslo", None, "Rome"] * (rows // 4 + 1))[:rows].values,
            "ok": position % 2 == 0,
        }
    )


def table_rows(text: str) -> list[list[str]]:
    """The CSV rows of a rendered block, header first, without the gap line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("id,"))
    body = [line for line in lines[start:-1] if not line.startswith("…")]
    return list(csv.reader(body))


def test_small_frame_in_full_and_round_trips() -> None:
    frame = sales(8)
    text = dataframe_text(frame, "df")
    assert text.startswith('<dataframe name="df" shape="8x4">\n')
    assert text.endswith("</dataframe>")
    assert "all 8 rows shown." in text
    assert "index:" not in text  # default RangeIndex: no index column
    table = text.split("all 8 rows shown.\n")[1].removesuffix("</dataframe>")
    back = pd.read_csv(io.StringIO(table), na_values=["NaN"], keep_default_na=False)
    assert back["id"].tolist() == frame["id"].tolist()
    assert back["price"].equals(frame["price"])
    assert back["ok"].tolist() == frame["ok"].tolist()


def test_dtypes_and_missing_counts() -> None:
    frame = sales(1000)
    text = dataframe_text(frame, "sales", budget=300)
    assert "  id: int64, 0 missing\n" in text
    assert "  price: float64, 100 missing\n" in text
    assert f"  city: {frame['city'].dtype}, 250 missing\n" in text
    assert "  ok: bool, 0 missing\n" in text


@pytest.mark.parametrize("budget", [300, 1000, 4000])
def test_large_frame_shows_head_and_tail_with_true_counts(budget: int) -> None:
    frame = sales(1000)
    text = dataframe_text(frame, "sales", budget=budget)
    ids = [int(row[0]) for row in table_rows(text)[1:]]
    head = [i for i in ids if i < 500]
    tail = [i for i in ids if i >= 500]
    assert head == list(range(len(head)))
    assert tail == list(range(1000 - len(tail), 1000))
    assert len(head) - len(tail) in (0, 1)
    omitted = 1000 - len(ids)
    assert (
        f"rows 0-{len(head) - 1} and {1000 - len(tail)}-999 of 1,000 shown; "
        f"{omitted:,} rows omitted (budget {budget:,} tokens — raise ClaudeMagics.df_token_budget)."
    ) in text
    assert f"\n… {omitted:,} rows omitted …\n{1000 - len(tail)}," in text
    assert estimate_tokens(text) <= budget
    assert estimate_tokens(text) > budget * 0.8  # and uses most of it


def test_budget_too_small_for_any_row() -> None:
    text = dataframe_text(sales(1000), "sales", budget=50)
    assert "no rows shown of 1,000: the budget of 50 tokens is too small" in text
    assert "id,price" not in text


def test_sample_is_seeded_ordered_and_says_so() -> None:
    frame = sales(1000)
    first = dataframe_text(frame, "sales", budget=800, sample=True, seed=7)
    assert first == dataframe_text(frame, "sales", budget=800, sample=True, seed=7)
    assert first != dataframe_text(frame, "sales", budget=800, sample=True, seed=8)
    assert "index: row number (first column)" in first
    rows = [line for line in first.splitlines() if line[:1].isdigit()]
    labels = [int(line.split(",")[0]) for line in rows]
    assert labels == sorted(set(labels))  # in frame order, no repeats
    assert [int(line.split(",")[1]) for line in rows] == labels  # label is the row's position
    assert labels[-1] - labels[0] > 500  # spread over the frame, not a head
    assert (
        f"a random sample of {len(rows)} of 1,000 rows (seed 7), shown in their original order; "
        f"{1000 - len(rows)} rows omitted"
    ) in first
    assert "…" not in first.split("omitted")[-1]  # no gap marker inside a sample


def test_sample_of_a_small_frame_is_the_whole_frame() -> None:
    text = dataframe_text(sales(5), sample=True)
    assert "all 5 rows shown (sampling left nothing out)." in text


def test_non_default_index_is_shown() -> None:
    frame = sales(4).set_index(pd.date_range("2024-01-01", periods=4, freq="D", name="day"))
    text = dataframe_text(frame, "daily")
    assert "index: DatetimeIndex 'day' of datetime64" in text
    assert "day,id,price,city,ok\n2024-01-01 00:00:00,0," in text
    shifted = sales(3)
    shifted.index = pd.RangeIndex(10, 13)
    assert "\n10,0,NaN,Paris,True\n" in dataframe_text(shifted)


def test_multiindex_levels_are_columns() -> None:
    frame = pd.DataFrame(
        {"v": [1, 2, 3]},
        index=pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)], names=["key", None]),
    )
    text = dataframe_text(frame)
    assert "index: MultiIndex with levels key, (unnamed) (first 2 columns)" in text
    assert "key,,v\na,1,1\na,2,2\nb,1,3\n" in text


def test_wide_frames_cap_columns_and_name_the_rest() -> None:
    frame = pd.DataFrame(np.ones((3, 100)), columns=[f"c{i}" for i in range(100)])
    frame["c50"] = "text"
    text = dataframe_text(frame, "wide", max_columns=10)
    assert "columns (dtype, missing values), 10 of 100 shown:" in text
    assert (
        "90 columns not shown (positions 5-94; 89 float64, 1 str): c5, c6, c7, c8, c9, c10, "
    ) in text
    assert ", c24, …" in text
    assert "\nc0,c1,c2,c3,c4,c95,c96,c97,c98,c99\n" in text


def test_long_cells_are_cut_and_counted() -> None:
    frame = pd.DataFrame({"note": ["short", "y" * 500, "z" * 300]})
    text = dataframe_text(frame, max_cell_chars=50)
    assert "\n" + "y" * 49 + "…\n" in text
    assert "\n" + "z" * 49 + "…\n" in text
    assert "2 cells longer than 50 characters cut, ending in “…”." in text


def test_markdown_format() -> None:
    frame = pd.DataFrame({"name": ["a|b", "line1\nline2"], "n": [1, 2]}, index=["x", "y"])
    text = dataframe_text(frame, "t", df_format="markdown")
    assert "|  | name | n |\n| --- | --- | ---: |\n" in text
    assert "| x | a\\|b | 1 |\n| y | line1<br>line2 | 2 |\n" in text
    big = dataframe_text(sales(1000), budget=500, df_format="markdown")
    assert "\n| … | … | … | … |\n" in big


def test_series_render_as_a_series_block() -> None:
    series = pd.Series([1.5, None, 3.0], name="score")
    text = dataframe_text(series, "s")
    assert text.startswith('<series name="s" length="3">\n')
    assert "  score: float64, 1 missing\n" in text
    assert "score\n1.5\nNaN\n3.0\n</series>" in text


def test_empty_frame() -> None:
    text = dataframe_text(pd.DataFrame({"a": pd.Series([], dtype="int64")}), "e")
    assert '<dataframe name="e" shape="0x1">' in text
    assert "no rows: the frame is empty." in text


def test_frames_inline_through_references(ns: dict[str, Any]) -> None:
    ns["data"] = {"train": sales(3)}
    text = fill("Look:\n{{data['train']}}\nand {{df}}", ns)
    assert '<dataframe name="data[\'train\']" shape="3x4">' in text
    assert '<dataframe name="df" shape="2x2">' in text
    assert "a,b\n1,u\n2,v\n</dataframe>" in text
    md = fill("{{df}}", ns, df_format="markdown")
    assert "| a | b |\n| ---: | --- |\n| 1 | u |" in md
    assert '"b"' not in md  # a frame is never dumped as JSON


def test_frame_name_is_escaped_in_the_tag() -> None:
    assert '<dataframe name="d[&quot;x&quot;] &lt;&amp;&gt;" shape' in dataframe_text(
        sales(1), 'd["x"] <&>'
    )


def test_unknown_format_is_refused() -> None:
    with pytest.raises(PromptError, match="unknown DataFrame format 'html'"):
        dataframe_text(sales(1), df_format="html")  # type: ignore[arg-type]


def test_dataframe_block() -> None:
    block = dataframe_block(sales(3), "sales", budget=500, df_format="markdown")
    assert block == {
        "type": "text",
        "text": dataframe_text(sales(3), "sales", df_format="markdown"),
    }
    with pytest.raises(PromptError, match="cfg is a dict, not a pandas DataFrame or Series"):
        dataframe_block({"a": 1}, "cfg")


def test_a_million_rows_formats_only_what_it_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    n = 1_000_000
    frame = pd.DataFrame(
        {
            "i": np.arange(n),
            "x": np.linspace(0.0, 1.0, n),
            "label": pd.Categorical(np.array(["cat", "dog"])[np.arange(n) % 2]),
        }
    )
    formatted: list[int] = []
    real = prompt.dataframes._format_rows

    def counting(formatter: Any, positions: list[int]) -> list[tuple[str, int]]:
        formatted.append(len(positions))
        return real(formatter, positions)

    monkeypatch.setattr(prompt.dataframes, "_format_rows", counting)
    for sample in (False, True):
        formatted.clear()
        text = dataframe_text(frame, "big", budget=4000, sample=sample)
        shown = len([line for line in text.splitlines() if line[:1].isdigit()])
        assert 50 < shown < 2000
        assert sum(formatted) <= shown + 1024  # the rows shown and at most one more chunk
        assert "of 1,000,000" in text


def test_importing_prompt_does_not_import_pandas() -> None:
    code = "import sys, claude_magics.prompt; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------------------------
# Attachments


def test_image_media_type_comes_from_the_bytes(tmp_path: Path) -> None:
    disguised = tmp_path / "photo.jpg"  # a PNG under a JPEG name
    disguised.write_bytes(PNG)
    block = image_block(disguised)
    assert block == {
        "type": "image",
        "source": {
            "type": "base64",
            "media_type": "image/png",
            "data": base64.b64encode(PNG).decode(),
        },
    }
    assert image_block(str(disguised)) == block


@pytest.mark.parametrize(
    ("data", "media_type"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"), (WEBP, "image/webp")],
)
def test_image_bytes(data: bytes, media_type: str) -> None:
    source = image_block(data)["source"]
    assert source["media_type"] == media_type
    assert base64.b64decode(source["data"]) == data
    assert image_block(bytearray(data))["source"] == source


def test_unsupported_image_types_are_refused(tmp_path: Path) -> None:
    bmp = tmp_path / "scan.png"
    bmp.write_bytes(b"BM" + bytes(60))
    with pytest.raises(PromptError, match=r"scan\.png is not a PNG, JPEG, GIF or WebP image"):
        image_block(bmp)
    with pytest.raises(PromptError, match="it is a PDF: attach it with --pdf"):
        image_block(b"%PDF-1.7\n")
    with pytest.raises(PromptError, match="pass a path, PNG/JPEG/GIF/WebP bytes, a PIL image"):
        image_block(42)


def test_image_size_limit_counts_the_base64_the_api_measures() -> None:
    largest = 5 * MB * 3 // 4  # 3.75 MB raw is exactly 5 MB of base64
    assert image_block(PNG + bytes(largest - len(PNG)))["type"] == "image"
    with pytest.raises(PromptError) as info:
        image_block(PNG + bytes(largest - len(PNG) + 1))
    assert str(info.value) == (
        "the image is 3.8 MB, 5.1 MB once base64-encoded; the API accepts images up to 5 MB "
        "encoded (about 3.75 MB of raw bytes)"
    )


def test_missing_and_unreadable_paths(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "chart.png"
    for make in (image_block, pdf_block, file_block):
        with pytest.raises(PromptError, match=f"no such file: {missing}"):
            make(missing)
    with pytest.raises(PromptError, match="is a directory, not a file"):
        file_block(tmp_path)


def test_pil_image_is_sent_as_png() -> None:
    image_module = pytest.importorskip("PIL.Image")
    picture = image_module.new("RGB", (4, 3), (255, 0, 0))
    source = image_block(picture)["source"]
    assert source["media_type"] == "image/png"
    decoded = image_module.open(io.BytesIO(base64.b64decode(source["data"])))
    assert decoded.size == (4, 3)
    assert decoded.getpixel((0, 0)) == (255, 0, 0)


def test_matplotlib_figure_is_sent_as_png() -> None:
    figure_module = pytest.importorskip("matplotlib.figure")
    figure = figure_module.Figure(figsize=(2, 1), dpi=50)
    figure.add_subplot().plot([0, 1], [1, 0])
    source = image_block(figure)["source"]
    assert source["media_type"] == "image/png"
    assert base64.b64decode(source["data"]).startswith(b"\x89PNG\r\n\x1a\n")


def test_figures_and_pictures_are_duck_typed() -> None:
    calls: list[dict[str, Any]] = []

    class FakeFigure:
        def savefig(self, target: io.BytesIO, **options: Any) -> None:
            calls.append(options)
            target.write(PNG)

    class Model:  # has a .save, but is no picture: must not be asked to save itself
        def save(self, target: Any, **options: Any) -> None:
            raise AssertionError("save() must not be called")

    assert image_block(FakeFigure())["source"]["data"] == base64.b64encode(PNG).decode()
    assert calls == [{"format": "png", "bbox_inches": "tight"}]
    with pytest.raises(PromptError, match="cannot make an image from a Model"):
        image_block(Model())


def make_pdf(pages: int) -> bytes:
    """A small PDF with ``pages`` page objects (enough structure for counting, not rendering)."""
    kids = " ".join(f"{3 + i} 0 R" for i in range(pages))
    parts = [
        b"%PDF-1.7\n",
        b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n",
        f"2 0 obj\n<< /Type /Pages /Kids [{kids}] /Count {pages} >>\nendobj\n".encode(),
    ]
    for i in range(pages):
        parts.append(f"{3 + i} 0 obj\n<< /Type /Page /Parent 2 0 R >>\nendobj\n".encode())
    parts.append(b"trailer\n<< /Root 1 0 R >>\n%%EOF\n")
    return b"".join(parts)


def test_pdf_from_path_and_bytes(tmp_path: Path) -> None:
    data = make_pdf(3)
    path = tmp_path / "report.pdf"
    path.write_bytes(data)
    assert pdf_block(path) == {
        "type": "document",
        "source": {
            "type": "base64",
            "media_type": "application/pdf",
            "data": base64.b64encode(data).decode(),
        },
        "title": "report.pdf",
    }
    assert "title" not in pdf_block(data)


def test_pdf_magic_is_required(tmp_path: Path) -> None:
    fake = tmp_path / "fake.pdf"
    fake.write_text("just text")
    with pytest.raises(PromptError, match=r"fake\.pdf is not a PDF \(no %PDF- header\)"):
        pdf_block(fake)
    with pytest.raises(PromptError, match="it is an image: attach it with --image"):
        pdf_block(PNG)


def test_pdf_pages_are_counted_and_limited() -> None:
    assert prompt.attachments._pdf_pages(make_pdf(100)) == 100  # /Type /Pages is not a page
    assert pdf_block(make_pdf(100))["type"] == "document"
    with pytest.raises(PromptError, match="has about 101 pages; the API accepts at most 100"):
        pdf_block(make_pdf(101))


def test_pdf_pages_in_compressed_streams_fall_back_to_the_tree_count() -> None:
    hidden = make_pdf(120).replace(b"/Type /Page ", b"/Type /XPage ")  # scanner sees no pages
    assert prompt.attachments._pdf_pages(hidden) == 120
    assert prompt.attachments._pdf_pages(b"%PDF-1.5\n(no page objects, no tree)") is None
    assert pdf_block(b"%PDF-1.5\n(no page objects, no tree)")["type"] == "document"


def test_pdf_size_limit() -> None:
    largest = 32 * MB * 3 // 4
    with pytest.raises(
        PromptError, match=r"is 24\.1 MB, 32\.1 MB once base64-encoded; .* up to 32"
    ):
        pdf_block(make_pdf(1) + bytes(largest))


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_bytes("\ufeff# Notes\r\ncafé ✓\n".encode())
    assert file_block(path) == {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "# Notes\r\ncafé ✓\n"},
        "title": "notes.md",
    }


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (
            b"abc\x00\x01\x02",
            r"is not UTF-8 text \(binary data at byte 3\): attach PDFs with --pdf",
        ),
        ("naïve".encode("latin-1"), r"is not UTF-8 text \(binary data at byte 2\)"),
        (make_pdf(1), "is a PDF, not a text file: attach it with --pdf"),
        (PNG, "is an image, not a text file: attach it with --image"),
        (b"  \n\t\n", "is empty"),
        (b"", "is empty"),
    ],
)
def test_text_file_refusals(tmp_path: Path, content: bytes, pattern: str) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(content)
    with pytest.raises(PromptError, match=pattern):
        file_block(path)


# ------------------------------------------------------------------------------------------
# The user turn


def test_attachments_come_first_and_match_the_api_spec(ns: dict[str, Any], tmp_path: Path) -> None:
    text_file = tmp_path / "spec.txt"
    text_file.write_text("the spec")
    attachments = [
        pdf_block(make_pdf(2)),
        image_block(PNG),
        file_block(text_file),
        dataframe_block(sales(5), "sales"),
    ]
    blocks = build_user_content("Compare {{name}}'s chart with {{df}}", ns, attachments=attachments)
    assert [b["type"] for b in blocks] == ["document", "image", "document", "text", "text"]
    assert blocks[:4] == attachments
    assert blocks[-1]["text"].startswith("Compare Ada's chart with <dataframe")
    validate({"role": "user", "content": blocks}, "InputMessage")


def test_empty_cells(ns: dict[str, Any]) -> None:
    with pytest.raises(PromptError, match="nothing to send: the cell is empty"):
        build_user_content("  \n", ns)
    # The API refuses whitespace-only text blocks: an image alone is sent as it is.
    assert build_user_content(" \n", ns, attachments=[image_block(GIF)]) == [image_block(GIF)]


def test_attachments_must_be_content_blocks(ns: dict[str, Any]) -> None:
    with pytest.raises(PromptError, match="not a content block"):
        build_user_content("hi", ns, attachments=[{"kind": "image"}])


def test_budgets_and_format_reach_inline_values(ns: dict[str, Any]) -> None:
    ns["log"] = "y" * 1000
    ns["big"] = sales(1000)
    text = build_user_content(
        "{{log}}\n{{big}}", ns, value_budget=10, df_budget=300, df_format="markdown"
    )[0]["text"]
    assert "… [cut: 965 more characters; budget 10 tokens" in text
    assert "budget 300 tokens — raise ClaudeMagics.df_token_budget" in text
    assert "| id | price | city | ok |" in text
    sampled = build_user_content("{{big}}", ns, df_budget=300, sample=True, seed=3)[0]["text"]
    assert "a random sample of " in sampled
    assert "(seed 3)" in sampled
    with pytest.raises(PromptError, match="unknown DataFrame format"):
        build_user_content("hi", ns, df_format="xml")  # type: ignore[arg-type]
