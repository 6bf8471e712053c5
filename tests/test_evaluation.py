"""``df.claude.evaluate``: the figures against a confusion matrix worked out by hand, how
abstained and invalid rows count, inputs, errors, the heatmap and the report."""

from __future__ import annotations

import math
import sys

import numpy as np
import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

import claude_magics.jobs.accessor  # noqa: F401  (registers df.claude)
from claude_magics.jobs.evaluation import ABSTAINED, INVALID, EvaluationError, evaluate
from claude_magics.prompt import PromptError

LABELS = ["pos", "neg", "neu"]
OK = "succeeded"

# The hand-worked example. Gold down, predicted across:
#
#             pos  neg  neu  (abstained)  (invalid) | gold rows
#     pos       6    1    0            1          0 |  8
#     neg       1    5    1            0          0 |  7
#     neu       1    0    2            1          1 |  5
#     ----------------------------------------------+---
#     predicted 8    6    3            2          1 | 20
#
# plus two rows without a gold label, which are left out.
HAND_ROWS = [
    *[("pos", "pos", OK)] * 6,
    ("pos", "neg", OK),
    ("pos", None, "abstained"),  # the model said "unsure"
    *[("neg", "neg", OK)] * 5,
    ("neg", "pos", OK),
    ("neg", "neu", OK),
    *[("neu", "neu", OK)] * 2,
    ("neu", "pos", OK),
    ("neu", None, "errored:overloaded_error"),  # no answer: abstained
    ("neu", None, "invalid_output"),  # an answer that is not a label: invalid
    (None, "pos", OK),
    (None, "neg", OK),
]


def _frame(rows: list[tuple[str | None, str | None, str]]) -> pd.DataFrame:
    gold, pred, status = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "review": [f"review {i}" for i in range(len(rows))],
            "sentiment": pd.Categorical(pred, categories=LABELS),
            "claude_status": list(status),
            "gold": pd.array(gold, dtype="string"),
        }
    )


@pytest.fixture
def hand() -> pd.DataFrame:
    return _frame(HAND_ROWS)


def test_the_hand_worked_example(hand: pd.DataFrame) -> None:
    report = hand.claude.evaluate("sentiment", "gold")

    assert report.n == 20 and report.unlabelled == 2
    # 13 correct (the diagonal) of 20.
    assert report.accuracy == 13 / 20
    assert report.answered_accuracy == 13 / 17
    # Wilson, z = 1.96: centre (0.65 + z²/40) / (1 + z²/20) = 0.62583, half-width
    # z·sqrt(0.65·0.35/20 + z²/1600) / (1 + z²/20) = 0.19298.
    assert report.accuracy_ci == pytest.approx((0.43285, 0.81881), abs=1e-5)
    assert (report.coverage, report.abstained, report.invalid) == (17 / 20, 2 / 20, 1 / 20)

    expected = pd.DataFrame(
        {
            # precision: correct / predicted as the class
            "precision": [6 / 8, 5 / 6, 2 / 3],
            # recall: correct / gold rows (abstained and invalid rows are misses)
            "recall": [6 / 8, 5 / 7, 2 / 5],
            # F1 = 2·correct / (predicted + gold rows)
            "f1": [12 / 16, 10 / 13, 4 / 8],
            "support": [8, 7, 5],
        },
        index=pd.Index(LABELS, name="label"),
    )
    pd.testing.assert_frame_equal(report.per_class, expected)
    # (3/4 + 10/13 + 1/2) / 3 = (39 + 40 + 26) / 156
    assert report.macro_f1 == pytest.approx(105 / 156)
    # p_o = 260/400; p_e = (8·8 + 7·6 + 5·3) / 400 = 121/400; (260 - 121) / (400 - 121)
    assert report.kappa == pytest.approx(139 / 279)

    confusion = pd.DataFrame(
        [[6, 1, 0, 1, 0], [1, 5, 1, 0, 0], [1, 0, 2, 1, 1]],
        index=pd.Index(LABELS, name="gold"),
        columns=pd.Index([*LABELS, ABSTAINED, INVALID], name="predicted"),
    )
    pd.testing.assert_frame_equal(report.confusion, confusion, check_dtype=False)
    assert report.labels == LABELS


def test_every_figure_agrees_with_scikit_learn() -> None:
    from sklearn.metrics import (
        accuracy_score,
        cohen_kappa_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    rng = np.random.default_rng(7)
    n = 300
    gold = rng.choice(LABELS, n, p=[0.5, 0.3, 0.2])
    pred = np.where(rng.random(n) < 0.7, gold, rng.choice(LABELS, n)).astype(object)
    status = np.full(n, OK, dtype=object)
    pred[rng.random(n) < 0.05] = None  # abstained
    status[rng.random(n) < 0.04] = "invalid_output"
    report = evaluate(pd.Series(pred), pd.Series(gold), status=pd.Series(status), labels=LABELS)

    # The same rows as scikit-learn sees them: abstained and invalid as labels of their own.
    seen = [
        INVALID if s != OK else ABSTAINED if p is None else p
        for p, s in zip(pred, status, strict=True)
    ]
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, seen, labels=LABELS, zero_division=np.nan
    )
    assert report.accuracy == pytest.approx(accuracy_score(gold, seen))
    assert report.per_class["precision"].tolist() == pytest.approx(precision)
    assert report.per_class["recall"].tolist() == pytest.approx(recall)
    assert report.per_class["f1"].tolist() == pytest.approx(f1)
    assert report.per_class["support"].tolist() == support.tolist()
    assert report.macro_f1 == pytest.approx(
        f1_score(gold, seen, labels=LABELS, average="macro", zero_division=0)
    )
    assert report.kappa == pytest.approx(cohen_kappa_score(gold, seen))
    columns = [*LABELS, ABSTAINED, INVALID]
    full = confusion_matrix(gold, seen, labels=columns)[: len(LABELS)]
    assert report.confusion.to_numpy().tolist() == full.tolist()


# -- abstained and invalid --------------------------------------------------------------------


def test_without_a_status_a_missing_prediction_is_abstained() -> None:
    frame = pd.DataFrame({"pred": ["a", None, "b", "a"], "gold": ["a", "a", "b", "b"]})
    report = frame.claude.evaluate("pred", "gold")
    assert report.confusion[ABSTAINED].tolist() == [1, 0]
    assert report.confusion[INVALID].sum() == 0
    assert report.accuracy == 2 / 4 and report.coverage == 3 / 4
    # The abstention is a miss for recall, never a false positive for precision.
    assert report.per_class.loc["a", "recall"] == 1 / 2
    assert report.per_class.loc["a", "precision"] == 1 / 2  # one of the two "a" is wrong


def test_a_prediction_outside_the_labels_is_invalid() -> None:
    frame = pd.DataFrame({"pred": ["a", "maybe", "b"], "gold": ["a", "a", "b"]})
    report = frame.claude.evaluate("pred", "gold", labels=["a", "b"])
    assert report.confusion.loc["a", INVALID] == 1
    assert report.labels == ["a", "b"] and report.invalid == 1 / 3


def test_the_status_says_what_the_model_did() -> None:
    frame = pd.DataFrame(
        {
            "pred": ["a", "a", "b", "b", "a"],
            "gold": ["a", "a", "b", "b", "a"],
            "claude_status": [OK, "max_tokens", "refusal", "expired", None],
        }
    )
    report = frame.claude.evaluate("pred", "gold")
    # A status other than succeeded wins over the value; a missing status leaves it be.
    assert report.confusion.loc["a", INVALID] == 1  # max_tokens: an answer, not a label
    assert report.confusion.loc["b", ABSTAINED] == 2  # refusal, expired: no answer
    assert report.accuracy == 2 / 5
    # status=None: the column is not consulted.
    assert frame.claude.evaluate("pred", "gold", status=None).accuracy == 1.0


def test_classes_seen_nowhere_have_no_f1_and_do_not_count_in_macro() -> None:
    frame = pd.DataFrame(
        {"pred": pd.Categorical(["a", "a", "b"], categories=["a", "b", "c"]), "gold": list("aab")}
    )
    report = frame.claude.evaluate("pred", "gold")
    assert report.labels == ["a", "b", "c"]
    row = report.per_class.loc["c"]
    assert math.isnan(row["precision"]) and math.isnan(row["recall"]) and math.isnan(row["f1"])
    assert report.macro_f1 == 1.0
    # Every gold row one class, every prediction that class: chance agreement is total.
    same = pd.DataFrame({"pred": ["a", "a"], "gold": ["a", "a"]})
    assert math.isnan(same.claude.evaluate("pred", "gold").kappa)


# -- inputs -------------------------------------------------------------------------------------


def test_series_and_lists_are_taken_for_the_frame_rows(hand: pd.DataFrame) -> None:
    by_name = hand.claude.evaluate("sentiment", "gold")
    shuffled = hand["gold"].sample(frac=1, random_state=3)  # the same index, another order
    by_series = hand.claude.evaluate(hand["sentiment"], shuffled)
    assert by_series.accuracy == by_name.accuracy
    pd.testing.assert_frame_equal(by_series.confusion, by_name.confusion)
    as_list = hand.claude.evaluate("sentiment", hand["gold"].tolist())
    assert as_list.kappa == by_name.kappa
    # The plain function takes Series without a frame.
    plain = evaluate(hand["sentiment"], hand["gold"], status=hand["claude_status"])
    assert plain.macro_f1 == by_name.macro_f1


def test_integer_labels_compare_as_text() -> None:
    frame = pd.DataFrame({"stars": [1, 2, 3, 3], "gold": ["1", "2", "3", "2"]})
    report = frame.claude.evaluate("stars", "gold")
    assert report.accuracy == 3 / 4 and report.labels == ["1", "2", "3"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda f: f.claude.evaluate("sentimnet", "gold"), "did you mean 'sentiment'"),
        (lambda f: f.claude.evaluate("sentiment", "gould"), "gold: no column named 'gould'"),
        (lambda f: f.claude.evaluate("sentiment", ["pos"] * 3), "gold has 3 values for 22 rows"),
        (
            lambda f: f.claude.evaluate("sentiment", f["gold"].iloc[:5]),
            "gold has 5 values for 22 rows",
        ),
        (
            lambda f: f.claude.evaluate("sentiment", f["gold"].set_axis(range(100, 122))),
            "its index is not the rows' index",
        ),
        (lambda f: f.claude.evaluate("sentiment", f), "a DataFrame; give one column"),
        (
            lambda f: f.claude.evaluate("sentiment", pd.Series([None] * 22, dtype="string")),
            "no row has a gold label",
        ),
        (
            lambda f: f.claude.evaluate("sentiment", ["positive"] * 22),
            "no label in common between sentiment (neg, neu, pos) and gold (positive)",
        ),
        (
            lambda f: f.claude.evaluate("sentiment", "gold", labels=["pos", "neg"]),
            "gold has labels that are not in labels=: 'neu'",
        ),
        (
            lambda f: f.claude.evaluate("sentiment", "gold", status="state"),
            "status: no column named 'state'",
        ),
    ],
)
def test_bad_input_is_one_line(hand: pd.DataFrame, call: object, message: str) -> None:
    with pytest.raises(PromptError) as caught:
        call(hand)  # type: ignore[operator]
    assert message in str(caught.value)
    lines = caught.value._render_traceback_()  # what IPython shows instead of a traceback
    assert len(lines) == 1, lines


def test_empty_frames_and_lists_of_labels_are_refused() -> None:
    empty = pd.DataFrame({"pred": pd.Series([], dtype="string"), "gold": []})
    with pytest.raises(EvaluationError, match="there are no rows"):
        empty.claude.evaluate("pred", "gold")
    multi = pd.DataFrame({"pred": [["a", "b"], ["a"]], "gold": ["a", "b"]})
    with pytest.raises(EvaluationError, match="several labels per row"):
        multi.claude.evaluate("pred", "gold")


# -- the heatmap and the report ----------------------------------------------------------------


def test_the_heatmap_has_a_cell_per_count(hand: pd.DataFrame) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report = hand.claude.evaluate("sentiment", "gold")
    ax = report.plot()
    try:
        image = ax.get_images()[0]
        assert np.asarray(image.get_array()).tolist() == report.confusion.to_numpy().tolist()
        cells = {
            (round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts
        }
        assert cells[(0, 0)] == "6" and cells[(2, 4)] == "1" and cells[(1, 3)] == "0"
        assert len(cells) == 3 * 5
        assert [t.get_text() for t in ax.get_xticklabels()] == [*LABELS, ABSTAINED, INVALID]
        assert [t.get_text() for t in ax.get_yticklabels()] == LABELS
        assert "sentiment" in ax.get_xlabel() and "gold" in ax.get_ylabel()
        shares = report.plot(normalize=True)
        texts = [t.get_text() for t in shares.texts]
        assert texts[:5] == ["0.75", "0.12", "0.00", "0.12", "0.00"]  # 6/8, 1/8, 0, 1/8, 0
    finally:
        plt.close("all")


def test_the_heatmap_without_matplotlib_says_what_to_install(
    hand: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = hand.claude.evaluate("sentiment", "gold")
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(EvaluationError, match=r"pip install 'claude-magics\[eval\]'") as caught:
        report.plot()
    assert len(caught.value._render_traceback_()) == 1


def test_the_report_renders_compactly(hand: pd.DataFrame, shell: InteractiveShell) -> None:
    report = hand.claude.evaluate("sentiment", "gold")
    text = repr(report)
    assert text.startswith(
        "Evaluation of 'sentiment' against 'gold': accuracy 0.650 (95% CI 0.433–0.819) · "
        "macro-F1 0.673 · kappa 0.498"
    )
    assert "20 rows · coverage 85% (2 abstained, 1 invalid)" in text
    assert "2 rows without a gold label left out" in text
    assert "(abstained)" in text and "precision" in text

    bundle, _ = shell.display_formatter.format(report)
    markdown = bundle["text/markdown"]
    assert "| label | precision | recall | f1 | support |" in markdown
    assert "| pos | 0.750 | 0.750 | 0.750 | 8 |" in markdown
    assert "| neu | 1 | 0 | 2 | 1 | 1 |" in markdown
    page = bundle["text/html"]
    assert "<table" in page and "0.769" in page and "(invalid)" in page
    assert bundle["text/plain"] == text
