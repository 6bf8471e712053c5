"""Several label jobs run as one piece of work: the settings they share, one plan and one
confirmation for all of them, then each run as a job of its own.

    runner = Runner.make("review", mode="batch")
    plans = [runner.plan(sample, task, model) for model in models]
    runner.confirm("This comparison", plans, yes=False)
    jobs = [runner.run(sample, task, model) for model in models]

``compare`` (the same task on several models) and ``cascade`` (rows passed from a small model
to bigger ones) are made of ordinary jobs: each is planned, stored, replayed, attached to and
resumed by ``entry`` like any other, so a restart picks up at the first job not yet done and
nothing already answered is paid for again. What this module adds is the whole: one estimate
and one confirmation before the first of them is sent, after which each job is run with
``yes=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import entry

if TYPE_CHECKING:
    import pandas as pd

    from ..api.client import Client
    from ..config import Settings
    from ..cost.ledger import Ledger
    from ..cost.replay import Replayer
    from .job import Job
    from .store import JobStore
    from .tasks import Task
    from .wire import BatchLimits

__all__ = ["Runner"]


@dataclass
class Runner:
    """What the jobs of one comparison or cascade share: the row template, the request
    options, where they are sent and stored, and the settings. Use :meth:`make`."""

    template: Any
    client: Client
    store: JobStore
    settings: Settings
    #: The replayer as given (``entry.run`` resolves it again, the same way).
    replayer: Replayer | None
    #: The replayer jobs will use (``entry.job_replayer``): what plans look up.
    replay_with: Replayer | None
    system: str | None = None
    max_tokens: int | None = None
    mode: str = "auto"
    ledger: Ledger | None = None
    limits: BatchLimits | None = None
    progress: bool = True
    fresh: bool = False
    #: The column of each row's PDF or image (``files=``), sent with its prompt; None: none.
    files: Any = None

    @classmethod
    def make(
        cls,
        template: Any,
        *,
        system: str | None = None,
        max_tokens: int | None = None,
        mode: str = "auto",
        client: Client | None = None,
        store: JobStore | None = None,
        ledger: Ledger | None = None,
        limits: BatchLimits | None = None,
        settings: Settings | None = None,
        replayer: Replayer | None = None,
        progress: bool = True,
        fresh: bool = False,
        files: Any = None,
    ) -> Runner:
        """The session's client, job store and settings unless given (as ``entry.run``)."""
        from ..config import current_settings, shared_client

        entry.resolve_mode(mode, 0, 1)  # a bad mode: one line, before anything else
        settings = settings if settings is not None else current_settings()
        return cls(
            template=template,
            client=client or shared_client(),
            store=store or entry.default_store(),
            settings=settings,
            replayer=replayer,
            replay_with=entry.job_replayer(replayer, settings),
            system=system,
            max_tokens=max_tokens,
            mode=mode,
            ledger=ledger,
            limits=limits,
            progress=progress,
            fresh=fresh,
            files=files,
        )

    def plan(
        self, frame: pd.DataFrame, task: Task, model: str, effort: str | None = None
    ) -> entry.JobPlan:
        """The job ``run`` would make for these rows, before anything is sent."""
        return entry.plan_job(
            frame,
            self.template,
            task,
            model=model,
            client=self.client,
            store=self.store,
            settings=self.settings,
            replayer=self.replay_with,
            system=self.system,
            max_tokens=self.max_tokens,
            effort=effort,
            mode=self.mode,
            fresh=self.fresh,
            files=self.files,
        )

    def costs(self, plans: Sequence[entry.JobPlan]) -> tuple[float, float]:
        """``(expected, worst case)`` dollars of running ``plans`` (jobs already in the store
        and replayed prompts cost nothing)."""
        overrides = self.settings.price_overrides
        pairs = [plan.costs(overrides) for plan in plans]
        return sum(p[0] for p in pairs), sum(p[1] for p in pairs)

    def confirm(self, what: str, expected: float, worst: float, *, yes: bool) -> None:
        """The budget, then, above ``confirm_above_usd`` and without ``yes``, the person's
        go-ahead, for the whole of the work (``entry.confirm``)."""
        from ..config import check_budget

        check_budget(worst, what)
        threshold = self.settings.confirm_above_usd
        if not yes and worst > threshold:
            entry.confirm(what, expected, worst, threshold)

    def run(
        self,
        frame: pd.DataFrame,
        task: Task,
        model: str,
        effort: str | None = None,
        *,
        yes: bool = True,
    ) -> Job:
        """One job, to the end (``entry.run``: attached to when the store has it)."""
        return entry.run(
            frame,
            self.template,
            task,
            model=model,
            system=self.system,
            max_tokens=self.max_tokens,
            effort=effort,
            mode=self.mode,
            yes=yes,
            fresh=self.fresh,
            progress=self.progress,
            client=self.client,
            store=self.store,
            ledger=self.ledger,
            limits=self.limits,
            settings=self.settings,
            replayer=self.replayer,
            files=self.files,
        )
