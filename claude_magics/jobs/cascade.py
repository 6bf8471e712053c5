"""A cascade: every row to a small model first, and only the rows it is unsure of to bigger ones.

    out = cascade(df, "review", labels, models=[small, big], gold=df["gold"], target=0.95)
    out["label"], out["confidence"], out["claude_model"], out.attrs["cascade"]

The function behind ``df.claude.label(..., cascade=[...])``. Each model but the last labels
with ``confidence=True`` and ``abstain=True``; a row it abstains on, answers invalidly (or not
at all), or answers with a confidence below the threshold goes to the next model. The last
model answers the rest (with ``confidence=True`` and the caller's own ``abstain``).

* **The threshold.** Given (``threshold=0.7``), or chosen on gold labels: with ``gold`` (labels
  for some rows), the gold rows go through every model first, and the threshold is the lowest
  one whose cascade agrees with gold on at least ``target`` of them, which is the one that
  sends the fewest rows on. If none does, every row goes to the last model, and the report
  says so. The gold rows then keep the answers they got on the way. Neither: one line.
* **Durable.** Each stage is an ordinary job (its own request-set hash) on the rows that reach
  it, so it is stored, replayed and attached to like any other: after a restart, running the
  same call again finds the finished stages in the job store and goes on at the first one not
  done, sending nothing twice. The threshold, chosen from stored answers, comes out the same.
* **Asked first.** Before the first stage is sent: the expected cost (the escalated share as
  measured on the gold rows at the threshold, or, without gold, an assumed
  :data:`ASSUMED_SHARE` at each stage, said to be an assumption) against labeling every row
  with the last model, checked against the budget and, above ``confirm_above_usd``, confirmed
  (``yes=True`` skips).
* **The result.** A DataFrame on the frame's index: the label, ``rationale`` when asked,
  ``confidence``, ``claude_model`` (which model's answer the row has) and ``claude_status``;
  ``.attrs["cascade"]`` is a :class:`CascadeReport` (per stage: rows sent, rows answered,
  cost; the totals against every row on the last model; the agreement on gold and its 95%
  interval).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..cost.pricing import format_usd, price_usage
from ..cost.usage import Usage
from ..prompt import PromptError
from .progress import say
from .runner import Runner
from .tasks import Task, label_task

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["ASSUMED_SHARE", "CascadeReport", "CascadeStage", "cascade"]

#: Without gold rows, the share of rows each model is assumed to pass on to the next, for the
#: estimate made before anything is sent (an assumption, and said to be one).
ASSUMED_SHARE = 0.3


@dataclass(frozen=True)
class CascadeStage:
    """One model of a cascade: the rows sent to it (gold rows included), the rows whose final
    answer is its own, what its answers cost (priced at the mode each of its jobs ran in;
    replayed answers as first billed; None: price unknown) and its jobs."""

    model: str
    rows: int
    answered: int
    cost_usd: float | None
    jobs: tuple[str, ...]


@dataclass(frozen=True)
class CascadeReport:
    """What a cascade did: its stages, the threshold and how it was set, the agreement on the
    gold rows (None without gold), the total cost against every row on the last model."""

    models: tuple[str, ...]
    rows: int
    threshold: float
    how: str
    target: float | None
    gold_rows: int
    agreement: float | None
    agreement_ci: tuple[float, float] | None
    stages: tuple[CascadeStage, ...]
    cost_usd: float | None
    #: What labeling every row with the last model would cost (estimated: see ``single_note``).
    single_model_usd: float | None
    single_note: str

    @property
    def ratio(self) -> float | None:
        """The cascade's cost over the last model's on every row."""
        if self.cost_usd is None or not self.single_model_usd:
            return None
        return self.cost_usd / self.single_model_usd

    def _threshold_text(self) -> str:
        return (
            "none (every row to the last model)"
            if math.isinf(self.threshold)
            else (f"{self.threshold:.2f}")
        )

    def _lines(self) -> list[str]:
        lines = [f"threshold {self._threshold_text()}: {self.how}"]
        if self.agreement is not None and self.agreement_ci is not None:
            low, high = self.agreement_ci
            target = f" (target {self.target:.3f})" if self.target is not None else ""
            lines.append(
                f"agreement with gold on {self.gold_rows:,} rows: {self.agreement:.3f} "
                f"(95% CI {low:.3f}–{high:.3f}){target}"
            )
        ratio = f" ({self.ratio:.2f}x)" if self.ratio is not None else ""
        lines.append(
            f"cost {format_usd(self.cost_usd)} against {format_usd(self.single_model_usd)} "
            f"for every row on {self.models[-1]}{ratio}; {self.single_note}"
        )
        return lines

    def _stage_rows(self) -> list[list[str]]:
        return [
            [stage.model, f"{stage.rows:,}", f"{stage.answered:,}", format_usd(stage.cost_usd)]
            for stage in self.stages
        ]

    _HEADER = ("model", "rows sent", "rows answered", "cost")

    def __repr__(self) -> str:
        rows = [list(self._HEADER), *self._stage_rows()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(self._HEADER))]
        table = [
            "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in rows
        ]
        title = f"Cascade of {len(self.models)} models over {self.rows:,} rows"
        return "\n".join([title, *table, *self._lines()])

    def _repr_markdown_(self) -> str:
        body = "\n".join(
            "| " + " | ".join(html.escape(c, quote=False) for c in row) + " |"
            for row in self._stage_rows()
        )
        return (
            f"**Cascade of {len(self.models)} models over {self.rows:,} rows**\n\n"
            f"| {' | '.join(self._HEADER)} |\n|---|---:|---:|---:|\n{body}\n\n"
            + "  \n".join(html.escape(line, quote=False) for line in self._lines())
            + "\n"
        )


# -- the threshold ---------------------------------------------------------------------------


def _accepted(table: pd.DataFrame, threshold: float) -> np.ndarray:
    """Which answers a model keeps: succeeded, with a confidence at least ``threshold``."""
    succeeded = table["claude_status"].astype(object).eq("succeeded").to_numpy()
    confidence = table["confidence"].astype("Float64").fillna(-1.0).to_numpy(dtype=float)
    return succeeded & (confidence >= threshold)  # type: ignore[no-any-return]


def _final_stage(tables: Sequence[pd.DataFrame], threshold: float) -> np.ndarray:
    """For rows answered by every model (``tables``, one per model, the same rows), the model
    whose answer each row keeps."""
    import numpy as np

    last = len(tables) - 1
    stage = np.full(len(tables[0]), last)
    open_ = np.ones(len(tables[0]), dtype=bool)
    for k, table in enumerate(tables[:-1]):
        here = open_ & _accepted(table, threshold)
        stage[here] = k
        open_ &= ~here
    return stage


def _pick(tables: Sequence[pd.DataFrame], stage: np.ndarray) -> pd.DataFrame:
    """Each row's answer from the model ``stage`` says."""
    picked = tables[-1].copy()
    for k, table in enumerate(tables[:-1]):
        rows = stage == k
        picked.loc[rows] = table.loc[rows, picked.columns]
    return picked


@dataclass(frozen=True)
class _Choice:
    threshold: float
    how: str
    agreement: float | None = None
    agreement_ci: tuple[float, float] | None = None
    #: The share of the gold rows that reach each model (None: no gold, assumed).
    shares: tuple[float, ...] | None = None


def _agreement(picked: pd.DataFrame, gold: pd.Series, labels: Sequence[str], key: str) -> Any:
    from .evaluation import evaluate

    return evaluate(picked[key], gold, status=picked["claude_status"], labels=list(labels))


def _choose(
    tables: Sequence[pd.DataFrame],
    gold: pd.Series,
    labels: Sequence[str],
    key: str,
    target: float,
    given: float | None,
    last_model: str,
) -> _Choice:
    """The threshold: ``given``, or the lowest that reaches ``target`` on the gold rows."""
    n = len(gold)

    def shares(stage: np.ndarray) -> tuple[float, ...]:
        return tuple(float((stage >= k).mean()) for k in range(len(tables)))

    def scored(threshold: float) -> tuple[Any, np.ndarray]:
        stage = _final_stage(tables, threshold)
        return _agreement(_pick(tables, stage), gold, labels, key), stage

    if given is not None:
        report, stage = scored(given)
        return _Choice(
            given,
            f"given; measured on the {n:,} gold rows",
            report.accuracy,
            report.accuracy_ci,
            shares(stage),
        )
    levels: set[float] = set()
    for table in tables[:-1]:
        levels.update(table["confidence"].astype("Float64").dropna().astype(float).tolist())
    best: tuple[float, float] | None = None
    # Higher thresholds send more rows on: the first that reaches the target sends the fewest.
    for threshold in [0.0, *sorted(levels), math.inf]:
        report, stage = scored(threshold)
        if best is None or report.accuracy > best[0]:
            best = (report.accuracy, threshold)
        if report.accuracy >= target:
            how = (
                f"the lowest whose answers agree with the {n:,} gold rows at least "
                f"{target:.3f} of the time"
                if not math.isinf(threshold)
                else f"only every row on {last_model} agrees with the {n:,} gold rows at least "
                f"{target:.3f} of the time"
            )
            return _Choice(threshold, how, report.accuracy, report.accuracy_ci, shares(stage))
    assert best is not None
    report, stage = scored(math.inf)
    at = "every row on the last model" if math.isinf(best[1]) else f"threshold {best[1]:.2f}"
    how = (
        f"no threshold reached the target {target:.3f} on the {n:,} gold rows (the best was "
        f"{best[0]:.3f}, at {at}): every row goes to {last_model}"
    )
    return _Choice(math.inf, how, report.accuracy, report.accuracy_ci, shares(stage))


# -- the cascade -----------------------------------------------------------------------------


def _check(models: Sequence[str], target: float, threshold: float | None, gold: Any) -> None:
    if isinstance(models, str) or len(models) < 2 or not all(isinstance(m, str) for m in models):
        raise PromptError(
            "cascade: a list of at least two models, smallest first, e.g. [small_model, "
            "big_model] (for one model, use model=...)"
        )
    if len(set(models)) != len(models):
        raise PromptError(f"cascade: each model once, got {list(models)}")
    if gold is None and threshold is None:
        raise PromptError(
            "cascade needs gold= (labels for some rows, to choose the threshold that reaches "
            "target=) or threshold= (e.g. 0.7: answers less confident go to the next model)"
        )
    if threshold is not None and (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not 0 <= threshold <= 1
    ):
        raise PromptError(f"threshold: a confidence from 0 to 1, got {threshold!r}")
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target <= 1:
        raise PromptError(f"target: the agreement to reach, above 0 and at most 1; got {target!r}")


def _stage_tasks(
    labels: Sequence[str] | str,
    models: Sequence[str],
    *,
    descriptions: Mapping[str, str] | None,
    examples: Iterable[tuple[str, Any]] | None,
    abstain: bool,
    rationale: bool,
) -> list[Task]:
    examples = list(examples) if examples is not None else None
    shared = {"descriptions": descriptions, "examples": examples, "rationale": rationale}
    early = label_task(labels, abstain=True, confidence=True, **shared)  # type: ignore[arg-type]
    last = label_task(labels, abstain=abstain, confidence=True, **shared)  # type: ignore[arg-type]
    return [early] * (len(models) - 1) + [last]


def _cost(jobs: Iterable[Any]) -> float | None:
    total = 0.0
    for job in jobs:
        cost = job.answers_cost()
        if cost is None:
            return None
        total += cost
    return total


def _table(job: Any, frame: pd.DataFrame, positions: list[int]) -> pd.DataFrame:
    """A job's answers for these rows, indexed by their positions in the whole frame, as plain
    objects (so that answers of several jobs can be put together row by row)."""
    table: pd.DataFrame = job.result(frame.iloc[positions], status=True)
    return table.astype(object).set_axis(positions)


def cascade(
    frame: pd.DataFrame,
    template: Any,
    labels: Sequence[str] | str,
    *,
    models: Sequence[str],
    target: float = 0.95,
    threshold: float | None = None,
    gold: pd.Series | None = None,
    descriptions: Mapping[str, str] | None = None,
    examples: Iterable[tuple[str, Any]] | None = None,
    abstain: bool = False,
    rationale: bool = False,
    yes: bool = False,
    runner: Runner | None = None,
) -> pd.DataFrame:
    """Label every row of ``frame`` with ``models`` in turn, smallest first (see the module
    docstring). ``gold``: labels for some rows (a Series on the frame's index, missing where
    unknown), to choose the threshold that reaches ``target``; else ``threshold`` (0..1).
    ``descriptions``, ``examples``, ``abstain`` and ``rationale`` are ``label``'s. ``runner``:
    the template, request options, client, stores and settings of the jobs."""
    import numpy as np

    _check(models, target, threshold, gold)
    models = list(models)
    tasks = _stage_tasks(
        labels,
        models,
        descriptions=descriptions,
        examples=examples,
        abstain=abstain,
        rationale=rationale,
    )
    task_labels = tasks[-1].labels
    key = tasks[-1].fields[0]
    runner = runner or Runner.make(template)
    if gold is not None:
        from .evaluation import aligned

        gold = aligned(gold, frame.index, "gold")
    last = len(models) - 1
    known = gold.notna().to_numpy() if gold is not None else np.zeros(len(frame), dtype=bool)
    gold_positions = [int(i) for i in np.flatnonzero(known)]
    rest = [int(i) for i in np.flatnonzero(~known)]
    if gold is not None and not gold_positions:
        raise PromptError(
            "gold: no row has a gold label; label a few first (df.claude.review) or give "
            "threshold= instead"
        )
    jobs: list[list[Any]] = [[] for _ in models]
    sent = [0] * len(models)
    answers: list[pd.DataFrame] = []  # the kept answers, indexed by position
    final = np.full(len(frame), last)

    # 1. The gold rows through every model, then the threshold.
    if gold is not None:
        calibration = []
        for k, model in enumerate(models):
            job = _stage(runner, frame, gold_positions, tasks[k], model, k, len(models), yes)
            jobs[k].append(job)
            sent[k] += len(gold_positions)
            calibration.append(_table(job, frame, gold_positions))
        gold_labels = gold.iloc[gold_positions].set_axis(gold_positions)
        choice = _choose(calibration, gold_labels, task_labels, key, target, threshold, models[-1])
        stage = _final_stage(calibration, choice.threshold)
        answers.append(_pick(calibration, stage))
        final[gold_positions] = stage
    else:
        assert threshold is not None
        choice = _Choice(float(threshold), "given; no gold rows, so the agreement is not measured")

    # 2. The estimate and the confirmation, unless the first stage already ran (a restart).
    first = last if math.isinf(choice.threshold) else 0
    confirmed = False
    if rest:
        plans = [runner.plan(frame.iloc[rest], tasks[k], models[k]) for k in range(first, last + 1)]
        if plans[0].existing is None:
            gold_cost = _cost(job for stage_jobs in jobs for job in stage_jobs)
            _announce(
                runner,
                frame,
                tasks,
                models,
                plans,
                first,
                choice,
                (len(gold_positions), gold_cost),
                yes=yes,
            )
            confirmed = True

    # 3. The other rows, model by model.
    pending = rest
    for k in range(first, last + 1):
        if not pending:
            break
        job = _stage(runner, frame, pending, tasks[k], models[k], k, len(models), yes or confirmed)
        jobs[k].append(job)
        sent[k] += len(pending)
        table = _table(job, frame, pending)
        if k < last:
            kept = _accepted(table, choice.threshold)
            answers.append(table[kept])
            final[[p for p, ok in zip(pending, kept, strict=True) if ok]] = k
            pending = [p for p, ok in zip(pending, kept, strict=True) if not ok]
        else:
            answers.append(table)
            final[pending] = k
            note = job.failures_note()
            if note:
                say(note)

    out = _assemble(frame, answers, tasks[-1], models, final)
    stages = tuple(
        CascadeStage(
            model,
            sent[k],
            int((final == k).sum()),
            _cost(jobs[k]),
            tuple(job.id for job in jobs[k]),
        )
        for k, model in enumerate(models)
    )
    costs = [stage.cost_usd for stage in stages]
    single, single_note = _single_model(runner, frame, tasks[-1], models[-1], jobs[-1])
    out.attrs["cascade"] = CascadeReport(
        models=tuple(models),
        rows=len(frame),
        threshold=choice.threshold,
        how=choice.how,
        target=target if gold is not None else None,
        gold_rows=len(gold_positions),
        agreement=choice.agreement,
        agreement_ci=choice.agreement_ci,
        stages=stages,
        cost_usd=None if any(c is None for c in costs) else sum(c or 0.0 for c in costs),
        single_model_usd=single,
        single_note=single_note,
    )
    return out


def _stage(
    runner: Runner,
    frame: pd.DataFrame,
    positions: list[int],
    task: Task,
    model: str,
    k: int,
    n: int,
    yes: bool,
) -> Any:
    """Model ``k``'s job on these rows; an interrupt says how the cascade goes on."""
    from .sending import JobDetached, JobInterrupted

    try:
        return runner.run(frame.iloc[positions], task, model, yes=yes)
    except (JobDetached, JobInterrupted) as stopped:
        say(
            f"cascade: stopped at model {k + 1} of {n} ({model}, {stopped.job.id}); running "
            "the same call again goes on from there, sending nothing twice."
        )
        raise


def _announce(
    runner: Runner,
    frame: pd.DataFrame,
    tasks: Sequence[Task],
    models: Sequence[str],
    plans: Sequence[Any],
    first: int,
    choice: _Choice,
    gold: tuple[int, float | None],
    *,
    yes: bool,
) -> None:
    """Say what the cascade is expected to cost against the last model on every row, then
    check the budget and ask (above ``confirm_above_usd``). ``gold``: how many gold rows went
    through every model already, and what their answers cost."""
    from .estimate import estimate_job

    overrides = runner.settings.price_overrides
    n_gold, gold_cost = gold
    expected = worst = 0.0
    parts = []
    for offset, plan in enumerate(plans):
        k = first + offset
        share = choice.shares[k] if choice.shares is not None else ASSUMED_SHARE**k
        low, high = plan.costs(overrides)
        expected += low * share
        worst += high
        parts.append(f"{models[k]} {'takes every row' if share == 1 else f'about {share:.0%}'}")
    single_plan = runner.plan(frame, tasks[-1], models[-1])
    single = estimate_job(single_plan.prompts, overrides).cost(single_plan.mode)
    if choice.shares is not None:
        basis = "the shares sent on from the gold rows at this threshold"
    else:
        basis = (
            f"an assumed {ASSUMED_SHARE:.0%} of rows sent on by each model (no gold rows to "
            "measure it)"
        )
    n_rest = len(frame) - n_gold
    if n_gold:
        done = f"the {n_gold:,} gold rows went through every model ({format_usd(gold_cost)}); "
        rest = f"of the other {n_rest:,}, "
    else:
        done, rest = "", ""
    total = expected + (gold_cost or 0.0)
    ratio = f" ({total / single:.2f}x)" if single else ""
    say(
        f"Cascade over {len(frame):,} rows: {done}{rest}{', then '.join(parts)}: expected "
        f"{format_usd(total)} in all, against {format_usd(single)} with {models[-1]} on every "
        f"row{ratio}, from {basis}; local token estimates, answers at their max_tokens."
    )
    runner.confirm(f"This cascade ({n_rest:,} rows)", expected, worst, yes=yes)


def _single_model(
    runner: Runner, frame: pd.DataFrame, task: Task, model: str, jobs: Sequence[Any]
) -> tuple[float | None, str]:
    """What every row on ``model`` would cost: its own answers' mean usage per prompt, for the
    frame's distinct prompts, at the price of the mode such a job would run in; or, when it
    answered nothing, the local estimate."""
    from .entry import resolve_mode
    from .estimate import estimate_job

    plan = runner.plan(frame, task, model)
    n = plan.prompts.n_prompts
    mode = resolve_mode(runner.mode, n, runner.settings.batch_threshold)
    total, answered = Usage(), 0
    for job in jobs:
        usage, count = job.answer_usage()
        total += usage
        answered += count
    overrides = runner.settings.price_overrides
    if answered:
        cost = price_usage(
            total, model, batch=mode == "batch", overrides=overrides, requests=answered
        )
        note = (
            f"that figure is {model}'s own answers here (the same task), per prompt, times "
            f"the {n:,} distinct prompts, at {mode} prices"
        )
        return (None if cost is None else cost.total / answered * n), note
    estimate = estimate_job(plan.prompts, overrides).cost(mode)
    return estimate, f"that figure is a local estimate ({mode}, answers at their max_tokens)"


def _assemble(
    frame: pd.DataFrame,
    answers: Sequence[pd.DataFrame],
    task: Task,
    models: Sequence[str],
    final: np.ndarray,
) -> pd.DataFrame:
    import pandas as pd

    parts = [part for part in answers if len(part)]
    merged = pd.concat(parts).sort_index() if parts else pd.DataFrame()

    def values(name: str) -> list[Any]:
        return merged[name].tolist() if name in merged else []

    columns: dict[str, Any] = {}
    for name, (dtype, categories) in task.dtypes().items():
        if dtype == "category":
            columns[name] = pd.Categorical(values(name), categories=categories)
        else:
            columns[name] = pd.array(values(name), dtype=dtype)
    columns["claude_model"] = pd.Categorical([models[k] for k in final], categories=list(models))
    columns["claude_status"] = pd.Categorical(values("claude_status"))
    return pd.DataFrame(columns, index=frame.index)
