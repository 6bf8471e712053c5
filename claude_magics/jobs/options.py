"""The options every job takes, whatever its table: checked once, passed on as they are.

    options = JobOptions.take(extra, model=model, mode=mode, yes=yes)   # TypeError if unknown
    job = entry.run(frame, template, task, **options.run_args())

``df.claude`` (``accessor``) and the jobs over any table (``front``, and Polars' ``frame.claude``
through it) both gather their keywords here, so an option added to :class:`JobOptions` is
taken by every one of them, with the same default (``None``: the session's, from
``ClaudeMagics``/``config``) and the same one-line error for a name that is none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from .progress import say

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence

    import pandas as pd

    from ..api.client import Client
    from ..api.uploads import Uploads
    from ..config import Settings
    from ..cost.ledger import Ledger
    from ..cost.replay import Replayer
    from .job import Job
    from .store import JobStore
    from .tasks import Task
    from .wire import BatchLimits

__all__ = [
    "WHERE",
    "JobOptions",
    "cited",
    "estimate_task",
    "label_options",
    "label_status",
    "refuse_label_citations",
    "run_rows",
]

#: Where a job is sent and stored, and with what settings: what a comparison or a cascade,
#: which name their own models and modes, take beside their own keywords.
WHERE = (
    *("client", "store", "ledger", "limits", "settings", "fresh", "progress", "what"),
    *("replayer", "uploads"),
)

# What only a job over rows held in memory (``entry.run``) uses: a streamed job keeps its
# answers in its own job store, not the replay store, and is a batch job by then.
_HELD_ONLY = ("replayer", "mode")
# Decided by the caller, not passed to the runners.
_CALLER = ("status", "usage", "citations")


@dataclass(frozen=True)
class JobOptions:
    """How to run one job: what to ask (model, effort, system, max_tokens), how (mode, yes,
    wait), what to give back (status, usage), each row's document (files, citations), and
    where to send and store it (client, store, ledger, limits, settings, fresh, progress,
    what, replayer, uploads; ``None``: the session's)."""

    model: str | None = None
    effort: str | None = None
    system: str | None = None
    max_tokens: int | None = None
    mode: str = "auto"
    yes: bool = False
    wait: bool = True
    status: bool | None = None
    usage: bool = False
    files: Any = None
    citations: bool = False
    client: Client | None = None
    store: JobStore | None = None
    ledger: Ledger | None = None
    limits: BatchLimits | None = None
    settings: Settings | None = None
    fresh: bool = False
    progress: bool = True
    what: str | None = None
    replayer: Replayer | None = None
    uploads: Uploads | None = None

    def __post_init__(self) -> None:
        from .entry import resolve_mode

        resolve_mode(self.mode, 0, 1)  # a bad mode is one line, before anything is read

    @classmethod
    def take(
        cls, extra: Mapping[str, Any], *, only: Collection[str] | None = None, **given: Any
    ) -> JobOptions:
        """The options of a call: ``given`` (its named keywords) and ``extra`` (its
        ``**options``; ``only``: the names it may hold, default any option); a name that is
        none of them is a ``TypeError`` naming it."""
        known = set(only) if only is not None else {f.name for f in fields(cls)}
        unknown = sorted(set(extra) - known)
        if unknown:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
        return cls(**{**given, **extra})

    def settings_now(self) -> Settings:
        """The settings this job uses: as given, else the session's (``%config``)."""
        from ..config import current_settings

        return self.settings if self.settings is not None else current_settings()

    def run_args(self) -> dict[str, Any]:
        """The keywords of ``entry.run`` (a job over rows held in memory)."""
        return {k: v for k, v in _shallow(self).items() if k not in _CALLER}

    def stream_args(self) -> dict[str, Any]:
        """The keywords of ``streaming.run_table`` (a streamed job)."""
        return {k: v for k, v in self.run_args().items() if k not in _HELD_ONLY}

    def finished(self, job: Job) -> bool:
        """Whether ``job``'s results are to be given back (the call waited); says in one line
        how many rows did not succeed, and why, when any did not."""
        if not self.wait:
            return False
        note = job.failures_note()
        if note:
            say(note)
        return True


def _shallow(options: JobOptions) -> dict[str, Any]:
    """The fields of ``options`` as they are (``dataclasses.asdict`` would copy the client,
    the store and the rest deeply)."""
    return {f.name: getattr(options, f.name) for f in fields(options)}


def label_status(status: bool | None, abstain: bool) -> bool | None:
    """``label``'s ``status``: None gives ``claude_status`` beside several columns; abstaining
    always gives it (an abstention is a status, not a value)."""
    return status if status is not None else (True if abstain else None)


def cited(task: Task, citations: bool) -> Task:
    """``task`` asking for citations of each row's document when ``citations`` is set."""
    from dataclasses import replace

    return replace(task, citations=True) if citations else task


def refuse_label_citations(citations: bool) -> None:
    """Labels are structured output, which the API allows no citations with: one line."""
    if citations:
        raise TypeError(
            "citations=True: not with label (the API allows no citations with structured "
            "output); use extract(..., files=..., citations=True) to cite each field"
        )


def run_rows(frame: pd.DataFrame, template: Any, task: Task, options: JobOptions) -> Any:
    """Run ``task`` over the rows of a pandas frame (``entry.run``) and give back its result as
    ``df.claude`` does (the job itself when the call does not wait)."""
    from . import entry

    job = entry.run(frame, template, cited(task, options.citations), **options.run_args())
    if not options.finished(job):
        return job
    return job.result(frame, status=options.status, usage=options.usage)


def label_options(
    descriptions: Mapping[str, str] | None,
    examples: Iterable[tuple[str, Any]] | None,
    **flags: bool,
) -> dict[str, Any]:
    """The options of ``label`` given to ``estimate`` or ``count_tokens`` (only those set)."""
    given: dict[str, Any] = {"descriptions": descriptions, "examples": examples, **flags}
    return {
        name: value for name, value in given.items() if value is not None and value is not False
    }


def _only_for_labels(options: dict[str, Any], labels: bool, schema: bool) -> None:
    """``label``'s options need ``labels=`` (``descriptions`` may go with ``schema=`` too):
    given without them they would be dropped, and the figures would not be the job's."""
    misplaced = [k for k in options if not labels and not (schema and k == "descriptions")]
    if misplaced:
        raise TypeError(
            f"{', '.join(misplaced)}: only with labels= (descriptions also with schema=)"
        )


def estimate_task(
    template: Any,
    columns: Sequence[Any],
    *,
    labels: Sequence[str] | str | None,
    multi: bool,
    schema: Any,
    label_options: dict[str, Any],
    citations: bool,
) -> Task:
    """The task an estimate or a token count prices: ``label``'s with ``labels``,
    ``extract``'s with ``schema`` and a bare column (or field descriptions), else ``map``'s."""
    from .tasks import extract_task, label_task, map_task

    if labels is not None and schema is not None:
        raise TypeError("give labels or schema, not both")
    _only_for_labels(label_options, labels is not None, schema is not None)
    descriptions = label_options.get("descriptions")
    if labels is not None:
        task = label_task(labels, multi=multi, **label_options)
    elif schema is not None:
        bare_column = not isinstance(template, str) or template in columns
        # Field descriptions are extract's (a template with a schema may be either).
        if bare_column or descriptions is not None:
            task = extract_task(schema, descriptions=descriptions)
        else:
            task = map_task(schema)
    else:
        task = map_task()
    return cited(task, citations)
