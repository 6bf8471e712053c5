"""``df.claude.review``: the annotator driven as a person would (buttons, the key box) in an
IPython shell that has a kernel, the sample that survives a re-run, and the terminal loop."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

import claude_magics.jobs.accessor  # noqa: F401  (registers df.claude)
from claude_magics.prompt import PromptError
from claude_magics.widgets.review import ReviewSession, prompt_loop, sample_rows

LABELS = ["positive", "negative", "neutral"]


def _reviews(n: int = 12) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "review": [f"review number {i}" for i in range(n)],
            "stars": range(n),
            "sentiment": pd.Categorical([LABELS[i % 3] for i in range(n)], categories=LABELS),
        },
        index=[f"r{i}" for i in range(n)],
    )


@pytest.fixture
def kernel(shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    """The test shell, looking like a kernel's (what ``review`` checks to show a widget)."""
    monkeypatch.setattr(shell, "kernel", object(), raising=False)
    yield shell
    for name in ("t_reviews", "t_session"):
        shell.user_ns.pop(name, None)


def _gold(frame: pd.DataFrame, rows: list[str]) -> list[str | None]:
    return [None if pd.isna(v) else v for v in frame.loc[rows, "gold"]]


def _run(shell: InteractiveShell, code: str) -> None:
    result = shell.run_cell(code)
    result.raise_error()


def test_buttons_write_gold_labels_into_the_frame(kernel: InteractiveShell) -> None:
    frame = _reviews()
    kernel.user_ns["t_reviews"] = frame
    _run(kernel, "t_session = t_reviews.claude.review('sentiment', n=5)")
    session: ReviewSession = kernel.user_ns["t_session"]
    widget = session.widget
    assert widget is not None
    # As a cell's value, the session shows as the widget.
    bundle, _ = kernel.display_formatter.format(session)
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert str(frame["gold"].dtype) == "string" and frame["gold"].isna().all()
    assert widget.progress.value == "<b>0 of 5 labelled · row 1 of 5</b>"
    assert [b.description for b in widget.buttons] == [
        "1 · positive",
        "2 · negative",
        "3 · neutral",
    ]

    first = session.view().index
    assert f"index {first}" in widget.row.value and "review number" in widget.row.value
    widget.buttons[1].click()  # negative
    assert frame.loc[first, "gold"] == "negative"
    assert widget.progress.value.startswith("<b>1 of 5 labelled")
    second = session.view().index
    widget.skip_button.click()
    widget.buttons[0].click()  # the third row: positive
    assert pd.isna(frame.loc[second, "gold"])
    widget.back_button.click()  # back to the row just labelled: its button is lit
    assert [b.button_style for b in widget.buttons] == ["success", "", ""]
    widget.buttons[2].click()  # changed to neutral
    assert frame["gold"].notna().sum() == 2
    assert session.labelled == 2

    # Run again: the same sample, in the same order, starting at the first unlabelled row
    # (the skipped one).
    _run(kernel, "t_session = t_reviews.claude.review('sentiment', n=5)")
    again: ReviewSession = kernel.user_ns["t_session"]
    assert again.positions == session.positions
    assert again.view().index == second
    assert again.widget is not None
    assert again.widget.progress.value == "<b>2 of 5 labelled · row 2 of 5</b>"
    for _ in range(3):
        again.widget.buttons[0].click()
    assert again.done and again.widget.progress.value == "<b>5 of 5 labelled</b>"
    assert all(b.disabled for b in again.widget.buttons)
    # Only the sampled rows got a gold label.
    sampled = list(frame.index[again.positions])
    assert set(frame.index[frame["gold"].notna()]) == set(sampled)


def test_the_key_box_labels_skips_and_goes_back(kernel: InteractiveShell) -> None:
    frame = _reviews()
    session = frame.claude.review("sentiment", n=6)
    keys = session.widget.keys  # type: ignore[union-attr]
    order = list(frame.index[session.positions])

    keys.value = "1"  # positive
    keys.value = "12"  # negative
    keys.value = "12s"  # skip
    keys.value = "12s3"  # neutral
    assert _gold(frame, order[:4]) == ["positive", "negative", None, "neutral"]
    keys.value = "12s"  # Backspace: back to the row just labelled
    assert session.current == 3
    keys.value = "12s2"
    assert frame.loc[order[3], "gold"] == "negative"
    keys.value = "12s2x"
    assert "'x' is not a key here" in session.widget.note.value  # type: ignore[union-attr]
    keys.value = "12s2xb"  # b: back as well
    assert session.current == 3


def test_the_model_label_and_its_reasons_are_shown(kernel: InteractiveShell) -> None:
    frame = _reviews(3)
    frame["sentiment_rationale"] = ["says it <loves> it", "angry", None]
    frame["sentiment_confidence"] = [0.91, 0.5, 0.7]
    frame["claude_status"] = ["succeeded", "succeeded", "succeeded"]
    session = frame.claude.review("sentiment", n=3)
    assert session.widget is not None
    shown = {session.view(i).index: session.view(i) for i in range(3)}
    view = shown["r0"]
    assert view.model == "positive"
    assert view.notes == [
        ("sentiment_rationale", "says it <loves> it"),
        ("sentiment_confidence", "0.91"),
    ]
    assert [name for name, _ in view.fields] == ["review"]  # the text columns
    session.current = session.positions.index(0)
    session.widget.render()
    assert "says it &lt;loves&gt; it" in session.widget.row.value

    # Bare names, as a label task's result columns are called, and a long text cut short.
    other = pd.DataFrame(
        {"text": ["x" * 5000], "label": ["positive"], "rationale": ["why"], "confidence": [0.2]}
    )
    seen = other.claude.review("label", n=1, labels=LABELS).view()
    assert [name for name, _ in seen.notes] == ["rationale", "confidence"]
    assert len(seen.fields[0][1]) == 1000 and seen.fields[0][1].endswith("…")


def test_the_sample_is_fixed_by_the_keys_and_the_seed() -> None:
    frame = _reviews(40)
    picked = list(frame.index[sample_rows(frame, 10)])
    shuffled = frame.sample(frac=1, random_state=1)
    assert list(shuffled.index[sample_rows(shuffled, 10)]) == picked
    assert list(frame.index[sample_rows(frame, 10, seed=1)]) != picked
    # key=: a column identifies the rows instead of the index.
    renumbered = frame.reset_index(names="id")
    assert list(renumbered["id"][sample_rows(renumbered, 10, key="id")]) == picked


def test_stratify_deals_evenly_across_the_model_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _reviews(30)
    frame["sentiment"] = pd.Categorical(
        ["positive"] * 20 + ["negative"] * 5 + ["neutral"] * 4 + [None], categories=LABELS
    )
    rows = sample_rows(frame, 9, stratify="sentiment")
    labels = [None if pd.isna(v) else v for v in frame["sentiment"].iloc[rows]]
    # Dealt in turn, in the labels' order, missing last, until a stratum runs out.
    assert labels == [*LABELS, None, *LABELS, "positive", "negative"]
    many = sample_rows(frame, 20, stratify="sentiment")
    assert (
        frame["sentiment"].iloc[many].value_counts(dropna=False).to_dict()
        == {
            "positive": 10,
            "negative": 5,
            "neutral": 4,
            None: 1,
        }
        or frame["sentiment"].iloc[many].isna().sum() == 1
    )
    assert frame["sentiment"].iloc[many].value_counts()["positive"] == 10
    # The accessor's stratify=True: the model column itself.
    monkeypatch.setattr("builtins.input", lambda _prompt: "q")
    session = frame.claude.review("sentiment", n=9, stratify=True)
    assert session.positions == rows


def test_an_existing_gold_column_keeps_its_type() -> None:  # and the plain functions work alone
    frame = _reviews(4)
    frame["gold"] = pd.Categorical([None] * 4, categories=["positive"])
    answers = iter(["3", "1"])
    session = ReviewSession(frame, "sentiment", [2, 0], LABELS)
    prompt_loop(session, lambda _prompt: next(answers), say=lambda _line: None)
    assert session.labelled == 2
    assert isinstance(frame["gold"].dtype, pd.CategoricalDtype)
    assert set(frame["gold"].dropna()) == {"neutral", "positive"}


# -- the terminal ---------------------------------------------------------------------------------


def test_the_terminal_loop_reads_answers_with_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = _reviews()
    answers = iter(["2", "", "s", "what", "neutral", "b", "1", "q"])
    monkeypatch.setattr("builtins.input", lambda _prompt: next(answers))
    session = frame.claude.review("sentiment", n=5)
    order = list(frame.index[session.positions])
    assert _gold(frame, order[:3]) == ["negative", None, "positive"]
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Review of 'sentiment' into 'gold': 0 of 5 labelled · row 1 of 5"
    assert out[1] == "1 positive · 2 negative · 3 neutral · s skip · b back · q quit"
    assert out[2].startswith(f"[1/5] {order[0]} · review: review number")
    assert "model: " in out[2] and "stars:" not in out[2]  # the text columns only
    assert any(line.startswith("not an answer: 'what'") for line in out)
    assert out[-1] == "2 of 5 labelled · row 4 of 5"
    assert repr(session) == "<review of 'sentiment' into 'gold': 2 of 5 labelled>"

    # Run again: the labelled rows are skipped; end of input stops cleanly.
    def eof(_prompt: str) -> str:
        raise EOFError

    monkeypatch.setattr("builtins.input", eof)
    frame.claude.review("sentiment", n=5)
    out = capsys.readouterr().out.splitlines()
    assert out[2].startswith(f"[2/5] {order[1]} ·")
    assert out[-1] == "2 of 5 labelled · row 2 of 5"


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"column": "sentimnt"}, "column: no column named 'sentimnt' (did you mean 'sentiment'?)"),
        ({"n": 0}, "n: the number of rows to review, at least 1; got 0"),
        ({"stratify": "mood"}, "stratify: no column named 'mood'"),
        ({"key": "id"}, "key: no column named 'id'"),
        ({"show": ["reviw"]}, "show: no column named 'reviw'"),
        ({"gold": "sentiment"}, "gold: the gold labels need a column of their own"),
        ({"gold": "stars"}, "gold: column 'stars' holds int64 values, not labels"),
    ],
)
def test_bad_arguments_are_one_line(kwargs: dict[str, object], message: str) -> None:
    frame = _reviews()
    arguments = {"column": "sentiment", **kwargs}
    with pytest.raises(PromptError) as caught:
        frame.claude.review(**arguments)
    assert message in str(caught.value)
    assert len(caught.value._render_traceback_()) == 1
    assert "gold" not in frame.columns or kwargs.get("gold") == "stars"


def test_no_labels_and_no_rows_are_refused() -> None:
    blank = pd.DataFrame({"text": ["a"], "label": pd.Series([None], dtype="string")})
    with pytest.raises(PromptError, match="no labels to choose from"):
        blank.claude.review("label")
    with pytest.raises(PromptError, match="no rows to review"):
        blank.iloc[:0].claude.review("label", labels=["a"])


def test_the_widgets_package_imports_nothing_heavy() -> None:
    code = (
        "import sys, claude_magics.widgets, claude_magics.widgets.review\n"
        "print(sorted(m for m in ('pandas', 'ipywidgets', 'IPython') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
