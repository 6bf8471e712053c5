"""Which model (and effort) to label with: the same label task on one sample, run on each,
side by side with what it costs and how often it agrees with gold labels.

    pilot = compare(df, "review", label_task(labels), models=[small, big], gold=df["gold"])
    pilot.table, pilot.plot()        # cost per 1,000 rows against agreement

The function behind ``df.claude.compare``. Every run is an ordinary label job on the same
deterministic sample (``widgets.review.sample_rows``: a hash of each row's key, so sorting the
frame draws the same rows), so it is stored, replayed and attached to like any other:
running the comparison again sends nothing, and a later ``df.claude.label`` with the same
model, effort and options over the whole frame replays the sampled rows at $0.

* **Efforts.** ``efforts=["low", "high"]`` runs each model at each level it has (the model
  catalog says: ``GET /v1/models``, else the bundled table); a model without a level is
  skipped and the table's note says so: it is never sent. ``None`` is the model's own default.
* **Agreement.** With ``gold`` (labels for some rows), the sample is drawn from the rows that
  have one, and each run is scored against them; without, against the labels of the strongest
  run: the most expensive model in the price table, at its highest effort (the note says which).
  Figures come from ``evaluation.evaluate``: agreement (accuracy: abstained and invalid rows
  count as wrong) with its 95% Wilson interval, and the abstained and invalid shares.
* **Cost.** Per 1,000 rows at batch prices, from the answers' own usage priced by
  ``cost.pricing`` (a replayed answer as it was first billed), whatever mode the sample ran in.
* **Asked first.** One estimate for all the runs, checked against the budget and, above
  ``confirm_above_usd``, confirmed (``yes=True`` skips), before the first is sent.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..cost.pricing import PRICES_AS_OF, format_usd, model_price
from ..model_table import EFFORT_LEVELS
from ..prompt import PromptError
from .entry import model_info
from .progress import say
from .runner import Runner
from .tasks import Task

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from .job import Job

__all__ = ["Comparison", "compare"]

#: The columns of :attr:`Comparison.table`, in order.
COLUMNS = (
    "model",
    "effort",
    "cost_per_1000",
    "agreement",
    "agreement_low",
    "agreement_high",
    "invalid",
    "abstained",
    "rows",
    "seconds",
)
#: How an effort of ``None`` (the model's own default) is shown.
DEFAULT_EFFORT = "default"


@dataclass(frozen=True)
class Run:
    """One model at one effort: its job and how long it took here (replayed or attached
    runs take next to nothing)."""

    model: str
    effort: str | None
    job: Job
    seconds: float


@dataclass(frozen=True, eq=False)
class Comparison:
    """The same label task on each model (and effort), on one sample: ``table`` (a DataFrame,
    one row per run: see :data:`COLUMNS`), ``note`` (what the figures are measured against,
    and any run skipped), ``jobs`` (the job of each run, by (model, effort)).
    ``.plot()`` draws cost against agreement."""

    table: pd.DataFrame
    note: str
    reference: str
    jobs: Mapping[tuple[str, str | None], str] = field(default_factory=dict)

    def _shown(self) -> list[list[str]]:
        rows = []
        for record in self.table.itertuples(index=False):
            agreement = (
                "–"
                if math.isnan(record.agreement)
                else f"{record.agreement:.3f} ({record.agreement_low:.3f}–"
                f"{record.agreement_high:.3f})"
            )
            cost = (
                "cost unknown"
                if math.isnan(record.cost_per_1000)
                else format_usd(record.cost_per_1000)
            )
            rows.append(
                [
                    str(record.model),
                    str(record.effort),
                    cost,
                    agreement,
                    f"{record.invalid:.1%}",
                    f"{record.abstained:.1%}",
                    f"{record.rows:,}",
                    f"{record.seconds:.1f} s",
                ]
            )
        return rows

    _HEADER = (
        "model",
        "effort",
        "$ per 1,000 rows (batch)",
        "agreement (95% CI)",
        "invalid",
        "abstained",
        "rows",
        "time",
    )

    def __repr__(self) -> str:
        rows = [list(self._HEADER), *self._shown()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(self._HEADER))]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            for row in rows
        ]
        return "\n".join(
            [f"Comparison against {self.reference}", *(line.rstrip() for line in lines), self.note]
        )

    def _repr_markdown_(self) -> str:
        def cell(text: str) -> str:
            return html.escape(text, quote=False)

        header = "| " + " | ".join(self._HEADER) + " |"
        align = "|---|---|" + "---:|" * (len(self._HEADER) - 2)
        body = "\n".join("| " + " | ".join(map(cell, row)) + " |" for row in self._shown())
        return (
            f"**Comparison against {cell(self.reference)}**\n\n{header}\n{align}\n{body}"
            f"\n\n{cell(self.note)}\n"
        )

    def plot(self, ax: Axes | None = None) -> Axes:
        """Cost per 1,000 rows (across, log scale) against agreement (up, with its 95%
        interval), a point per run. Returns the matplotlib Axes."""
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise PromptError(
                "the plot needs matplotlib: pip install 'claude-magics[eval]' "
                "(or pip install matplotlib)"
            ) from None
        if ax is None:
            _, ax = plt.subplots(figsize=(6.4, 4.0))
        shown = self.table.dropna(subset=["cost_per_1000", "agreement"])
        for record in shown.itertuples(index=False):
            # Wilson's interval holds the point, up to rounding at 0 and 1.
            below = max(0.0, record.agreement - record.agreement_low)
            above = max(0.0, record.agreement_high - record.agreement)
            ax.errorbar(
                record.cost_per_1000,
                record.agreement,
                yerr=[[below], [above]],
                fmt="o",
                capsize=3,
            )
            name = (
                record.model
                if record.effort == DEFAULT_EFFORT
                else (f"{record.model} ({record.effort})")
            )
            ax.annotate(
                name,
                (record.cost_per_1000, record.agreement),
                textcoords="offset points",
                xytext=(6, -10),
                fontsize=8,
            )
        if len(shown):
            ax.set_xscale("log")
            ax.margins(x=0.25)  # room for the names beside the points
        ax.set_xlabel("$ per 1,000 rows at batch prices")
        ax.set_ylabel(f"agreement with {self.reference}")
        ax.set_title("Cost against quality")
        return ax


def _effort_rank(effort: str | None, default: str | None) -> int:
    level = effort if effort is not None else default
    return EFFORT_LEVELS.index(level) if level in EFFORT_LEVELS else -1


def _price_rank(model: str, overrides: Mapping[str, Any] | None) -> tuple[float, float]:
    price = model_price(model, overrides)
    return (-1.0, -1.0) if price is None else (price.input + price.output, price.output)


def _runs_asked(
    models: Sequence[str], efforts: Sequence[str | None], runner: Runner
) -> tuple[list[tuple[str, str | None]], list[str]]:
    """The (model, effort) pairs to run, each once, and a note per pair skipped because the
    model has no such effort level (never sent)."""
    pairs: list[tuple[str, str | None]] = []
    skipped: list[str] = []
    for model in dict.fromkeys(models):
        levels = model_info(runner.client, model).effort_levels
        for effort in dict.fromkeys(efforts):
            # Unknown levels (None: a model neither the server nor the table knows) refuse
            # nothing: the API has the last word.
            if effort is not None and levels is not None and effort not in levels:
                has = f"it has {', '.join(levels)}" if levels else "it takes no effort level"
                skipped.append(f"{model} at effort {effort} ({has})")
                continue
            pairs.append((model, effort))
    return pairs, skipped


def _check(models: Sequence[str], efforts: Sequence[str | None], sample: int) -> None:
    if isinstance(models, str) or not models or not all(isinstance(m, str) for m in models):
        raise PromptError("models: a list of model ids to compare, e.g. [small_model, big_model]")
    if isinstance(efforts, str) or not efforts:
        raise PromptError(
            "efforts: a list of effort levels, e.g. ['low', 'high'] (None: the model's default)"
        )
    unknown = [e for e in efforts if e is not None and e not in EFFORT_LEVELS]
    if unknown:
        raise PromptError(
            f"efforts: {', '.join(map(repr, unknown))} is not an effort level; "
            f"the levels are {', '.join(EFFORT_LEVELS)} (None: the model's default)"
        )
    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 1:
        raise PromptError(f"sample: the number of rows to compare on, at least 1; got {sample!r}")


def compare(
    frame: pd.DataFrame,
    template: Any,
    task: Task,
    *,
    models: Sequence[str],
    efforts: Sequence[str | None] = (None,),
    sample: int = 200,
    gold: pd.Series | None = None,
    seed: int = 0,
    key: Hashable | None = None,
    yes: bool = False,
    runner: Runner | None = None,
) -> Comparison:
    """Run the label ``task`` on a sample of ``sample`` rows of ``frame`` with each model in
    ``models`` at each level in ``efforts`` and compare them (see the module docstring).

    ``gold``: labels for some rows (a Series on the frame's index; missing where unknown). The
    sample is then drawn from the rows that have one. ``seed`` and ``key`` (a column; default
    the index) fix the sample. ``runner``: the template, request options, client, stores and
    settings of the jobs (default: ``Runner.make(template)``)."""
    from ..widgets.review import sample_rows
    from .evaluation import aligned, evaluate

    _check(models, efforts, sample)
    if task.kind != "label" or task.multi:
        raise PromptError("compare works on label tasks with one label a row (multi=False)")
    runner = runner or Runner.make(template)
    candidates = list(range(len(frame)))
    if gold is not None:
        gold = aligned(gold, frame.index, "gold")
        candidates = [i for i, known in enumerate(gold.notna().tolist()) if known]
        if not candidates:
            raise PromptError(
                "gold: no row has a gold label; label a few first (df.claude.review), or leave "
                "gold out to compare with the strongest model"
            )
    positions = [
        candidates[i] for i in sample_rows(frame.iloc[candidates], sample, seed=seed, key=key)
    ]
    rows = frame.iloc[positions]
    if not len(rows):
        raise PromptError("the frame has no rows to compare on")

    pairs, skipped = _runs_asked(models, efforts, runner)
    if not pairs:
        raise PromptError(f"nothing to compare: {'; '.join(skipped)}")
    for note in skipped:
        say(f"compare: skipped {note}; nothing sent for it.")
    plans = [runner.plan(rows, task, model, effort) for model, effort in pairs]
    expected, worst = runner.costs(plans)
    runner.confirm(
        f"This comparison ({len(pairs)} runs on {len(rows):,} rows)", expected, worst, yes=yes
    )

    runs: list[Run] = []
    for model, effort in pairs:
        started = time.perf_counter()
        job = runner.run(rows, task, model, effort)
        runs.append(Run(model, effort, job, time.perf_counter() - started))
    results = {(run.model, run.effort): run.job.result(rows, status=True) for run in runs}

    overrides = runner.settings.price_overrides
    if gold is not None:
        reference_labels = gold.iloc[positions].set_axis(rows.index)
        reference = f"the gold labels ({len(rows):,} rows)"
        against = f"agreement is with the gold labels on {len(rows):,} sampled rows"
    else:
        strongest = max(
            runs,
            key=lambda run: (
                _price_rank(run.model, overrides),
                _effort_rank(
                    run.effort,
                    model_info(runner.client, run.model).effort_default,
                ),
            ),
        )
        table = results[(strongest.model, strongest.effort)]
        reference_labels = (
            table[task.fields[0]]
            .astype(object)
            .where(table["claude_status"].astype(object) == "succeeded")
        )
        shown = _name(strongest.model, strongest.effort)
        reference = f"{shown}'s labels"
        against = (
            f"no gold labels: agreement is with {shown}, the strongest model here (the most "
            f"expensive in the price table of {PRICES_AS_OF}), on the {len(rows):,} sampled rows "
            "it labelled"
        )

    records = []
    for run in runs:
        table = results[(run.model, run.effort)]
        scored = evaluate(
            table[task.fields[0]],
            reference_labels,
            status=table["claude_status"],
            labels=list(task.labels),
        )
        cost = run.job.answers_cost(batch=True)
        records.append(
            {
                "model": run.model,
                "effort": run.effort if run.effort is not None else DEFAULT_EFFORT,
                "cost_per_1000": math.nan if cost is None else cost / len(rows) * 1000,
                "agreement": scored.accuracy,
                "agreement_low": scored.accuracy_ci[0],
                "agreement_high": scored.accuracy_ci[1],
                "invalid": scored.invalid,
                "abstained": scored.abstained,
                "rows": len(rows),
                "seconds": run.seconds,
            }
        )
    import pandas as pd

    frame_out = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    parts = [
        against,
        "cost per 1,000 rows at batch prices, from the answers' usage (replayed answers as "
        f"first billed), prices as of {PRICES_AS_OF}",
    ]
    if skipped:
        parts.append("skipped (never sent): " + "; ".join(skipped))
    note = "; ".join(parts) + "."
    frame_out.attrs["note"] = note
    return Comparison(
        table=frame_out,
        note=note,
        reference=reference,
        jobs={(run.model, run.effort): run.job.id for run in runs},
    )


def _name(model: str, effort: str | None) -> str:
    return model if effort is None else f"{model} at effort {effort}"
