"""What one DataFrame job is, as the job store knows it: the base of ``Job``.

    state = JobState(store, store.get("job_3f9a2c1b7d"), client=client)
    state.counts()          # {"succeeded": 480, "errored:overloaded_error": 2, "pending": 18}

The job's record (mode, model, task, the shared request bytes), its distinct prompts and
row-to-prompt map, the latest result of every prompt, and what it works through: the client,
the spend ledger and the settings (poll timings, price overrides). ``sending`` works on this
state and ``job.Job`` adds the results as a DataFrame and the verbs; keeping the state here,
below both, lets ``Job`` call into ``sending`` without the two modules importing each other.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, TypeVar

import orjson

from ..config import DEFAULTS, Settings
from .store import JobRecord, JobStore, ResultRow
from .tasks import Task
from .wire import BatchLimits

if TYPE_CHECKING:
    from ..api.client import Client
    from ..cost.ledger import Ledger

__all__ = ["JobState"]

_State = TypeVar("_State", bound="JobState")


class JobState:
    """One job's record, prompts and results, read from the job store and kept up to date."""

    def __init__(
        self,
        store: JobStore,
        record: JobRecord,
        *,
        client: Client,
        ledger: Ledger | None = None,
        progress: bool = True,
        limits: BatchLimits | None = None,
        settings: Settings | None = None,
        texts: list[str] | None = None,
        row_prompt: list[int] | None = None,
    ) -> None:
        """``limits``: how much one batch may hold (default: the API's). ``settings`` gives the
        poll timings and price overrides (default: the built-in defaults; ``run`` and ``attach``
        pass the current ones). ``texts`` and ``row_prompt``,
        when the caller has them at hand, spare reading them back from the store."""
        self.store = store
        self.record = record
        self.client = client
        self.ledger = ledger
        self.progress = progress
        self.limits = limits if limits is not None else BatchLimits()
        self.settings = settings if settings is not None else DEFAULTS
        self.price_overrides = dict(self.settings.price_overrides or {}) or None
        self.task: Task = Task.from_spec(record.spec["task"])
        self._texts = texts
        self._row_prompt = row_prompt
        self._rows: dict[int, ResultRow] | None = None
        #: Dollars spent on this job by this object (what it recorded in the spend ledger).
        self.spent_usd = 0.0

    # -- identity ------------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def mode(self) -> str:
        return self.record.mode

    @property
    def tag(self) -> str:
        """What the job's ``custom_id``s start with (its id without ``job_``)."""
        return self.record.id.removeprefix("job_")

    @property
    def texts(self) -> list[str]:
        """The user-turn text of each distinct prompt (after the shared head)."""
        if self._texts is None:
            self._texts = self.store.texts(self.id)
        return self._texts

    @property
    def row_prompt(self) -> list[int]:
        """The distinct prompt of each row, by row position."""
        if self._row_prompt is None:
            self._row_prompt = self.store.row_prompt(self.id)
        return self._row_prompt

    def params(self, prompt: int) -> bytes:
        """The JSON request body of one distinct prompt, as sent."""
        return self.record.before + orjson.dumps(self.texts[prompt]) + self.record.after

    # -- results ---------------------------------------------------------------------------------

    def stored_results(self) -> dict[int, ResultRow]:
        """The latest result per prompt: read from the store once, then kept up to date by
        this object, which writes every new result through :meth:`put_results`."""
        if self._rows is None:
            self._rows = self.store.results(self.id)
        return self._rows

    def put_results(self, rows: list[ResultRow]) -> None:
        """Write new results to the store (one transaction) and to this object's view."""
        known = self.stored_results()  # read first, so that the view stays complete
        self.store.put_results(self.id, rows)
        known.update((row.prompt, row) for row in rows)

    def reload(self: _State) -> _State:
        """Forget what this object knows and read the store again."""
        self._rows = None
        return self

    def statuses(self) -> dict[int, str]:
        """The status of every prompt that has a result."""
        return {prompt: row.status for prompt, row in self.stored_results().items()}

    def counts(self) -> dict[str, int]:
        """Rows per status (``pending``: no result yet)."""
        by_prompt = self.statuses()
        counts: dict[str, int] = defaultdict(int)
        for prompt in self.row_prompt:
            counts[by_prompt.get(prompt, "pending")] += 1
        return dict(counts)

    def unanswered(self) -> list[int]:
        """The prompts that have no result yet."""
        answered = self.statuses()
        return [n for n in range(self.record.n_prompts) if n not in answered]

    @property
    def done(self) -> bool:
        return len(self.stored_results()) >= self.record.n_prompts
