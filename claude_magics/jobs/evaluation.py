"""Model labels measured against gold labels: accuracy with its interval, per-class scores,
Cohen's kappa, coverage and the confusion matrix.

    report = evaluate(df["sentiment"], df["gold"], status=df["claude_status"])
    report.accuracy, report.accuracy_ci, report.per_class, report.plot()

Every figure comes from one confusion matrix (gold labels down, predictions across, plus an
``(abstained)`` and an ``(invalid)`` column), so they always agree with each other and with what
the table shows. How each row counts:

* A row without a gold label is left out of everything (``unlabelled`` says how many).
* **Abstained**: the model gave no label. A missing prediction, or a ``claude_status`` of
  ``abstained`` (a label task's "unsure"), ``refusal``, ``errored:*``, ``expired``,
  ``canceled`` or ``pending``.
* **Invalid**: the model answered, but not with a label: ``claude_status`` ``invalid_output``
  or ``max_tokens``, or a predicted value outside ``labels``. A status other than
  ``succeeded`` wins over the predicted value (the status says what the model did).
* ``accuracy`` = correct / ``n``: abstained and invalid rows count as wrong. Its interval is
  Wilson's score interval (95%), which stays inside [0, 1] and is honest for small ``n``.
  ``answered_accuracy`` is correct / rows with a valid label.
* Per class: precision = correct / predicted as the class (abstained and invalid rows predict
  no class, so they never lower it); recall = correct / gold rows of the class (abstained and
  invalid rows are misses); F1 = 2·correct / (predicted + gold). A ratio with nothing to divide
  by is NaN (no prediction of the class: precision; no gold row: recall).
* ``macro_f1``: the mean F1 over the classes that occur in the gold labels or the predictions
  (scikit-learn's ``f1_score(average="macro")`` with ``zero_division=0``).
* ``kappa``: Cohen's kappa over all ``n`` rows, abstained and invalid rows being categories of
  their own that gold never has (scikit-learn's ``cohen_kappa_score`` on the same rows).
* ``coverage`` + ``abstained`` + ``invalid`` = 1: the shares of the ``n`` rows.

The arithmetic is a few lines over the matrix, so scikit-learn is not needed (the tests check
every figure against it); the heatmap needs matplotlib, imported when ``plot`` is first called.
"""

from __future__ import annotations

import html
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..prompt import PromptError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["ABSTAINED", "INVALID", "Evaluation", "EvaluationError", "aligned", "evaluate"]

ABSTAINED = "(abstained)"
INVALID = "(invalid)"

# The 97.5th percentile of the standard normal distribution: a two-sided 95% interval.
_Z95 = 1.959963984540054

# claude_status values of an answer that came but is not a label; other non-success statuses
# mean no answer at all.
_INVALID_STATUSES = frozenset({"invalid_output", "max_tokens"})


class EvaluationError(PromptError):
    """Labels that cannot be compared (lengths or indexes that differ, nothing labelled, no
    label in common, several labels per row): one line saying what is wrong."""


@dataclass(frozen=True, eq=False)
class Evaluation:
    """How the predictions in ``pred`` compare with the gold labels in ``gold``.

    ``confusion``: counts, gold labels down (index ``gold``), predictions across (columns
    ``predicted``: each label, then ``(abstained)`` and ``(invalid)``). ``per_class``: precision,
    recall, f1 and support (gold rows) per label. The module docstring says how abstained and
    invalid rows count in each figure.
    """

    pred: str
    gold: str
    n: int
    accuracy: float
    accuracy_ci: tuple[float, float]
    answered_accuracy: float
    macro_f1: float
    kappa: float
    coverage: float
    abstained: float
    invalid: float
    unlabelled: int
    confusion: pd.DataFrame
    per_class: pd.DataFrame

    @property
    def labels(self) -> list[str]:
        return [str(label) for label in self.per_class.index]

    # -- rendering ------------------------------------------------------------------------------

    def _headline(self) -> str:
        low, high = self.accuracy_ci
        return (
            f"accuracy {self.accuracy:.3f} (95% CI {low:.3f}–{high:.3f}) · "
            f"macro-F1 {_num(self.macro_f1)} · kappa {_num(self.kappa)}"
        )

    def _coverage_line(self) -> str:
        counts = self.confusion[[ABSTAINED, INVALID]].sum()
        line = (
            f"{self.n} rows · coverage {self.coverage:.0%} "
            f"({counts[ABSTAINED]} abstained, {counts[INVALID]} invalid)"
        )
        if self.coverage and not math.isnan(self.answered_accuracy):
            line += f" · accuracy on answered rows {self.answered_accuracy:.3f}"
        if self.unlabelled:
            line += f" · {self.unlabelled} rows without a gold label left out"
        return line

    def _title(self) -> str:
        return f"{self.pred!r} against {self.gold!r}"

    def _per_class_shown(self) -> pd.DataFrame:
        shown = self.per_class.copy()
        for name in ("precision", "recall", "f1"):
            shown[name] = shown[name].map(_num)
        return shown

    def __repr__(self) -> str:
        tables = (
            f"{self._per_class_shown().to_string()}\n\nconfusion (gold down, predicted across):\n"
            f"{self.confusion.to_string()}"
        )
        return (
            f"Evaluation of {self._title()}: {self._headline()}\n{self._coverage_line()}\n\n"
            + tables
        )

    def _repr_markdown_(self) -> str:
        return (
            f"**Evaluation of {_md(self._title())}**: {self._headline()}  \n"
            f"{self._coverage_line()}\n\n"
            f"{_markdown_table(self._per_class_shown(), 'label')}\n\n"
            f"Confusion (gold down, predicted across):\n\n"
            f"{_markdown_table(self.confusion, 'gold')}\n"
        )

    def _repr_html_(self) -> str:
        style = 'style="display:inline-block;vertical-align:top;margin-right:2em"'
        return (
            f"<div><b>Evaluation of {html.escape(self._title())}</b>: "
            f"{html.escape(self._headline())}<br>{html.escape(self._coverage_line())}</div>"
            f"<div {style}>{self._per_class_shown().to_html()}</div>"
            f"<div {style}><i>gold down, predicted across</i>{self.confusion.to_html()}</div>"
        )

    # -- the heatmap ----------------------------------------------------------------------------

    def plot(self, ax: Axes | None = None, *, normalize: bool = False) -> Axes:
        """The confusion matrix as a heatmap (gold down, predicted across, counts in the
        cells; ``normalize=True``: each gold row's shares). Returns the matplotlib Axes."""
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise EvaluationError(
                "the heatmap needs matplotlib: pip install 'claude-magics[eval]' "
                "(or pip install matplotlib)"
            ) from None
        counts = self.confusion.to_numpy()
        values = counts.astype(float)
        if normalize:
            totals = values.sum(axis=1, keepdims=True)
            values = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
        if ax is None:
            rows, columns = counts.shape
            _, ax = plt.subplots(figsize=(1.2 + 0.9 * columns, 1.0 + 0.7 * rows))
        top = values.max() if values.size else 0.0
        ax.imshow(values, cmap="Blues", vmin=0, vmax=top or 1, aspect="auto")
        for (row, column), value in np.ndenumerate(values):
            text = f"{value:.2f}" if normalize else str(counts[row, column])
            dark = top and value > top / 2
            ax.text(column, row, text, ha="center", va="center", color="white" if dark else "black")
        ax.set_xticks(range(counts.shape[1]), [str(c) for c in self.confusion.columns])
        ax.set_yticks(range(counts.shape[0]), [str(i) for i in self.confusion.index])
        ax.tick_params(axis="x", labelrotation=30)
        ax.set_xlabel(f"predicted ({self.pred})")
        ax.set_ylabel("gold" if self.gold == "gold" else f"gold ({self.gold})")
        ax.set_title(f"accuracy {self.accuracy:.3f} · n = {self.n}")
        return ax


def _num(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3f}"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def _markdown_table(frame: pd.DataFrame, corner: str) -> str:
    header = [corner, *(str(c) for c in frame.columns)]
    lines = ["| " + " | ".join(_md(h) for h in header) + " |", "|" + "---|" * len(header)]
    for label, row in frame.iterrows():
        cells = [str(label), *(str(v) for v in row)]
        lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    return "\n".join(lines)


# -- inputs ---------------------------------------------------------------------------------------


def aligned(values: Any, index: pd.Index, what: str) -> pd.Series:
    """``values`` as a Series on ``index``: a Series by its index (the same labels, in any
    order), anything else (a list, an array) by position. Raises :class:`EvaluationError` when
    the lengths or the index labels differ."""
    if isinstance(values, pd.DataFrame):
        raise EvaluationError(f"{what}: a DataFrame; give one column (a name or a Series)")
    if not isinstance(values, pd.Series):
        values = pd.Series(_as_list(values, what), dtype=object)
        if len(values) != len(index):
            raise EvaluationError(f"{what} has {len(values)} values for {len(index)} rows")
        return values.set_axis(index)
    if len(values) != len(index):
        raise EvaluationError(f"{what} has {len(values)} values for {len(index)} rows")
    if values.index.equals(index):
        return values
    if (
        values.index.is_unique
        and index.is_unique
        and values.index.sort_values().equals(index.sort_values())
    ):
        return values.reindex(index)
    raise EvaluationError(
        f"{what}: its index is not the rows' index; align it first "
        "(e.g. .reindex(df.index), or .to_numpy() to match by position)"
    )


def _as_list(values: Any, what: str) -> list[Any]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise EvaluationError(
            f"{what}: a column name, a Series or a list of labels, not {type(values).__name__}"
        )
    return list(values)


def _texts(values: pd.Series, what: str) -> pd.Series:
    """Labels as text (numbers as their text, as label tasks use them), missing values as NA."""
    present = values.notna()
    if present.any():
        sample = values[present]
        if sample.map(lambda v: isinstance(v, (list, tuple, set, np.ndarray))).any():
            raise EvaluationError(
                f"{what} holds several labels per row (lists); evaluate compares one label a row"
            )
    out = pd.Series(pd.NA, index=values.index, dtype=object)
    out[present] = values[present].map(str)
    return out


def _class_order(
    pred: pd.Series, gold: pd.Series, pred_t: pd.Series, gold_t: pd.Series
) -> list[str]:
    """The labels: the categories of categorical inputs first (the task's own order), then
    every other value seen, sorted."""
    order: list[str] = []
    for series in (pred, gold):
        if isinstance(series.dtype, pd.CategoricalDtype):
            order += [str(c) for c in series.cat.categories if str(c) not in order]
    seen = set(pred_t.dropna()) | set(gold_t.dropna())
    return order + sorted(seen - set(order))


def _outcomes(pred_t: pd.Series, status: pd.Series | None, classes: Sequence[str]) -> pd.Series:
    """Per row: the predicted label, ``(abstained)`` or ``(invalid)``."""
    known = set(classes)
    outcome = pred_t.map(lambda v: ABSTAINED if v is pd.NA else v if v in known else INVALID)
    if status is not None:
        text = status.astype(object).where(status.notna(), None)
        answered = text.isna() | (text == "succeeded")
        invalid = text.isin(list(_INVALID_STATUSES))
        outcome = outcome.where(answered, ABSTAINED).where(~invalid, INVALID)
    return outcome


# -- the figures ----------------------------------------------------------------------------------


def _wilson(successes: int, n: int, z: float = _Z95) -> tuple[float, float]:
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    out = np.full(top.shape, np.nan)
    np.divide(top, bottom, out=out, where=bottom > 0)
    return out


def evaluate(
    pred: Any,
    gold: Any,
    *,
    status: Any = None,
    labels: Sequence[Hashable] | None = None,
) -> Evaluation:
    """Compare predicted labels with gold labels (Series on the same index, or lists by
    position). ``status``: the job's ``claude_status`` for the same rows (optional; it tells
    abstentions from invalid answers). ``labels``: the classes, in order (default: the
    categories of categorical inputs, then every value seen, sorted); a gold value outside them
    is an error, a predicted one is invalid. See the module docstring for how rows count.
    """
    if isinstance(pred, pd.Series):
        pred_s = pred
    else:
        pred_s = aligned(pred, pd.RangeIndex(len(_as_list(pred, "pred"))), "pred")
    gold_s = aligned(gold, pred_s.index, "gold")
    status_s = aligned(status, pred_s.index, "status") if status is not None else None
    pred_name = str(pred_s.name) if pred_s.name is not None else "pred"
    gold_name = str(gold_s.name) if gold_s.name is not None else "gold"
    if not len(pred_s):
        raise EvaluationError("nothing to evaluate: there are no rows")

    pred_t, gold_t = _texts(pred_s, pred_name), _texts(gold_s, gold_name)
    has_gold = gold_t.notna()
    n = int(has_gold.sum())
    if n == 0:
        raise EvaluationError(
            f"no row has a gold label ({gold_name!r} is all missing); label a sample first, "
            f"e.g. df.claude.review({pred_name!r})"
        )
    if labels is not None:
        classes = _given_labels(labels)
        outside = sorted(set(gold_t[has_gold]) - set(classes))
        if outside:
            shown = ", ".join(repr(v) for v in outside[:5])
            raise EvaluationError(
                f"{gold_name} has labels that are not in labels=: {shown}; add them or fix the gold"
            )
    else:
        classes = _class_order(pred_s, gold_s, pred_t, gold_t)
    possible = (
        {str(c) for c in pred_s.cat.categories}
        if isinstance(pred_s.dtype, pd.CategoricalDtype)
        else set(pred_t.dropna())
    )
    gold_seen = set(gold_t[has_gold])
    if possible and not possible & gold_seen:
        raise EvaluationError(
            f"no label in common between {pred_name} ({_few(possible)}) and {gold_name} "
            f"({_few(gold_seen)}): are they the same labels?"
        )

    outcome = _outcomes(pred_t, status_s, classes)[has_gold]
    columns = [*classes, ABSTAINED, INVALID]
    position = {label: i for i, label in enumerate(columns)}
    matrix = np.zeros((len(classes), len(columns)), dtype=np.int64)
    np.add.at(
        matrix,
        (gold_t[has_gold].map(position).to_numpy(int), outcome.map(position).to_numpy(int)),
        1,
    )
    return _figures(matrix, classes, pred_name, gold_name, unlabelled=len(gold_t) - n)


def _given_labels(labels: Sequence[Hashable]) -> list[str]:
    if isinstance(labels, str):
        labels = [part.strip() for part in labels.split(",")]
    classes = [str(label) for label in labels]
    if not classes:
        raise EvaluationError("labels= is empty: give the labels to compare")
    if len(set(classes)) != len(classes):
        raise EvaluationError(f"labels= repeats a label: {classes}")
    if {ABSTAINED, INVALID} & set(classes):
        raise EvaluationError(f"{ABSTAINED} and {INVALID} are not labels: they are outcomes")
    return classes


def _few(values: set[str]) -> str:
    shown = sorted(values)
    return ", ".join(shown[:5]) + (", ..." if len(shown) > 5 else "")


def _figures(
    matrix: np.ndarray, classes: list[str], pred: str, gold: str, *, unlabelled: int
) -> Evaluation:
    k = len(classes)
    n = int(matrix.sum())
    correct_per_class = np.diag(matrix[:, :k]).astype(float)
    predicted = matrix[:, :k].sum(axis=0).astype(float)
    support = matrix.sum(axis=1)
    correct = int(correct_per_class.sum())
    answered = int(predicted.sum())

    precision = _ratio(correct_per_class, predicted)
    recall = _ratio(correct_per_class, support.astype(float))
    f1 = _ratio(2 * correct_per_class, predicted + support)
    expected = float((support * predicted).sum()) / (n * n)
    accuracy = correct / n
    kappa = (accuracy - expected) / (1 - expected) if expected < 1 else math.nan

    per_class = pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": support},
        index=pd.Index(classes, name="label"),
    )
    confusion = pd.DataFrame(
        matrix,
        index=pd.Index(classes, name="gold"),
        columns=pd.Index([*classes, ABSTAINED, INVALID], name="predicted"),
    )
    defined = f1[~np.isnan(f1)]
    return Evaluation(
        pred=pred,
        gold=gold,
        n=n,
        accuracy=accuracy,
        accuracy_ci=_wilson(correct, n),
        answered_accuracy=correct / answered if answered else math.nan,
        macro_f1=float(defined.mean()) if defined.size else math.nan,
        kappa=kappa,
        coverage=answered / n,
        abstained=int(matrix[:, k].sum()) / n,
        invalid=int(matrix[:, k + 1].sum()) / n,
        unlabelled=unlabelled,
        confusion=confusion,
        per_class=per_class,
    )
