"""``Job``: one DataFrame job, what it says about itself, and its results as a DataFrame.

    job = claude_magics.jobs.run(df, "Classify {{review}}", label_task(labels), wait=False)
    job.wait().result()                 # a Series aligned to df's index; attach(job.id) later

Every row is accounted for: ``claude_status`` per row is succeeded, errored:<type>, expired,
canceled, max_tokens, refusal, invalid_output, abstained (a label task's "unsure": no label;
and pending while a job runs). Answers outside the labels or the schema are invalid, never
coerced (``tasks``). ``job.retry(statuses=[...])``
sends only those rows again; a realtime job run again (or attached) also sends again the rows
whose request failed (``errored:*``: no answer came, or none that could be read).

A job is worked on (sent, polled, fetched) by one process at a time: ``start``, ``wait``,
``refresh`` and ``retry`` hold its claim (``claim``), waiting while another process holds it.

The state (record, prompts, stored results) is ``state.JobState``; sending is ``sending``
(the batch protocol and the realtime runner); the functions that make, find and list jobs are
in ``entry``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..cost.pricing import price_usage
from ..cost.usage import Usage
from ..errors import ClaudeError
from .progress import say
from .realtime import run_realtime
from .replaying import REPLAY_SOURCE
from .sending import Batches
from .state import JobState
from .store import ResultRow

if TYPE_CHECKING:
    import pandas as pd

    from .progress import Progress

__all__ = ["FAILED_STATUSES", "Job"]

FAILED_STATUSES = ("errored", "expired", "canceled")


class Job(JobState):
    """One DataFrame job, live or attached from the job store. Use ``run`` or ``attach``."""

    # -- what it says about itself ---------------------------------------------------------------

    def summary(self) -> str:
        counts = self.counts()
        order = sorted(counts, key=lambda s: (s != "succeeded", s == "pending", s))
        parts = ", ".join(f"{counts[s]:,} {s}" for s in order)
        return (
            f"{self.id}: {self.task.kind} of {self.record.n_rows:,} rows "
            f"({self.record.n_prompts:,} distinct prompts) via {self.mode}, "
            f"{self.record.model}: {parts}"
        )

    def __repr__(self) -> str:
        return f"<Job {self.summary()}>"

    def _repr_markdown_(self) -> str:
        counts = self.counts()
        rows = "\n".join(f"| {status} | {n:,} |" for status, n in sorted(counts.items()))
        return (
            f"**{self.id}** · {self.task.kind} · {self.mode} · {self.record.model} · "
            f"{self.record.n_rows:,} rows, {self.record.n_prompts:,} distinct prompts\n\n"
            f"| claude_status | rows |\n|---|---:|\n{rows}"
        )

    def failures_note(self) -> str | None:
        """One line about rows that did not succeed, or None when all did."""
        counts = self.counts()
        bad = {s: n for s, n in counts.items() if s != "succeeded"}
        if not bad:
            return None
        from .documents import FILE_ERROR

        parts = ", ".join(f"{n:,} {s}" for s, n in sorted(bad.items()))
        # A row whose file could not be read was never sent: a retry leaves it as it is.
        files = (
            " (not the file_error ones: fix their files, then fresh=True)"
            if FILE_ERROR in bad
            else ""
        )
        if set(bad) == {FILE_ERROR}:
            return (
                f"{bad[FILE_ERROR]:,} of {self.record.n_rows:,} rows did not succeed ({parts}); "
                "their values are missing. status=True shows which; fix or replace their "
                "files, then run the same call with fresh=True."
            )
        again = (
            "running the same call again sends the errored ones again, and "
            if self.mode != "batch" and any(s.startswith("errored") for s in bad)
            else ""
        )
        return (
            f"{sum(bad.values()):,} of {self.record.n_rows:,} rows did not succeed ({parts}); "
            f"their values are missing. status=True shows which; {again}"
            f"claude_magics.jobs.attach({self.id!r}).retry() sends them again{files}."
        )

    def to_send(self) -> list[int]:
        """The prompts a run sends: those without a result and, in realtime, those whose
        request failed (no answer came, or none that could be read; nothing was billed for
        them, or nothing usable came of it). Answered prompts are never sent again."""
        never = self.unsendable()
        if self.mode == "batch":
            return [n for n in self.unanswered() if n not in never]
        statuses = self.statuses()
        return [
            n
            for n in range(self.record.n_prompts)
            if (n not in statuses or statuses[n].startswith("errored")) and n not in never
        ]

    # -- sending (the work is done in ``sending``) -------------------------------------------------

    def start(self, prompts: Sequence[int] | None = None, *, wait: bool = True) -> Job:
        """Send ``prompts`` (default: :meth:`to_send`): plan and create the batches, or run them
        in realtime (blocking, with progress). While another process works on the job, wait
        for it and then send what is left (``wait=False``: say so in one line and return)."""
        with self.claimed(wait=wait) as mine:
            if not mine:
                return self
            # Prompts asked for by name (a retry) are always sent anew.
            todo = list(prompts) if prompts is not None else self._replayed(self.to_send())
            if not todo:
                if self.done:  # every prompt replayed: nothing was, or will be, sent
                    self.set_state("done")
                return self
            if self.mode == "batch":
                Batches(self).send(todo)
            else:
                run_realtime(self, todo)
        return self

    def _replayed(self, todo: list[int]) -> list[int]:
        """Put the answers already paid for among ``todo`` into the results (``replaying``)
        and return the prompts still to send. A cassette in replay mode that lacks one of them
        fails here, in one line, with nothing sent."""
        replay = self.replay
        if replay is None or self.fresh or not todo:
            return todo
        hits = replay.lookup(todo)
        rest = [n for n in todo if n not in hits]
        replay.require(rest)
        self.put_replayed(hits)
        return rest

    def refresh(self, bar: Progress | None = None) -> int:
        """Check the batches once; fetch the results of those that ended. Returns how many
        batches are still running (or not yet created)."""
        with self.claimed():
            return Batches(self).refresh(bar)

    def ingest(
        self,
        lines: Iterable[Mapping[str, Any]],
        batch_id: str,
        attempt: int = 0,
        *,
        bar: Progress | None = None,
    ) -> int:
        """Store a batch's result lines (parsed JSON) as they come. Returns how many lines
        carried someone else's ``custom_id``."""
        return Batches(self).ingest(lines, batch_id, attempt, bar=bar)

    def wait(self, *, progress: bool | None = None, timeout: float | None = None) -> Job:
        """Block until every result is in (batch mode: poll with backoff; realtime: send what
        is left). An interrupt detaches (batch) or stops (realtime), keeping everything. While
        another process works on the job, wait for it first (``claim``).

        A wait that ends early says so in one line naming the job and how to attach
        (:class:`~.sending.JobWaitError`; :class:`~.sending.JobWaitTimeout` for ``timeout``)."""
        if progress is not None:
            self.progress = progress
        with self.claimed():
            if self.mode != "batch":
                self.start()
            else:
                Batches(self).wait(timeout=timeout)
        return self

    def batches(self, *, check: bool = True) -> list[dict[str, Any]]:
        """The job's batches: id, attempt, requests, state in the job store and, with
        ``check``, the API's processing status and request counts now (read-only: nothing is
        sent or fetched)."""
        return Batches(self).describe(check=check)

    def cancel(self) -> list[str]:
        """Cancel the job's running batches (results already in stay); returns their ids."""
        return Batches(self).cancel()

    def retry(self, statuses: Iterable[str] = FAILED_STATUSES, *, wait: bool = True) -> Job:
        """Send again only the prompts whose status starts with one of ``statuses`` (e.g.
        ``["errored", "expired"]`` or ``["invalid_output"]``); the others stay as they are."""
        wanted = tuple(statuses)
        if isinstance(statuses, str):
            wanted = (statuses,)
        never = self.unsendable()  # a row whose file failed stays as it is
        with self.claimed():
            matching = [
                prompt
                for prompt, status in self.statuses().items()
                if any(status == s or status.startswith(s + ":") for s in wanted)
            ]
            chosen = [prompt for prompt in matching if prompt not in never]
            unsent = self.never_uploaded(matching)
            if unsent:
                say(
                    f"{self.id}: {len(unsent):,} of these prompts were replayed, so their files "
                    "were never uploaded and they cannot be sent from here; run the same call "
                    "again with fresh=True to send every row anew."
                )
            if chosen:
                self.start(sorted(chosen))  # realtime: blocks until they are answered
            if wait and self.mode == "batch":
                self.wait()
        return self

    # -- what the answers cost -------------------------------------------------------------------

    def answer_usage(self) -> tuple[Usage, int]:
        """The tokens of every answered prompt, summed, and how many prompts were answered
        (replayed answers with their tokens as first billed)."""
        total, answered = Usage(), 0
        for row in self.stored_results().values():
            if row.answered:
                total += row.usage
                answered += 1
        return total, answered

    def answers_cost(self, *, batch: bool | None = None) -> float | None:
        """What the job's answers cost, each priced from its usage by the model that answered
        it (``batch``: at batch prices or not; default: as the job was sent). Replayed answers
        count as they were first billed: this is the price of the answers, not of one run
        (``usage=True`` on :meth:`result` shows what this run paid). None when a model's
        price is unknown."""
        batch = self.mode == "batch" if batch is None else batch
        total = 0.0
        for row in self.stored_results().values():
            if not row.answered:
                continue
            cost = price_usage(
                row.usage,
                row.model or self.record.model,
                batch=batch,
                overrides=self.price_overrides,
            )
            if cost is None:
                return None
            total += cost.total
        return total

    # -- results -------------------------------------------------------------------------------

    def result(
        self,
        frame: pd.DataFrame | None = None,
        *,
        status: bool | None = None,
        usage: bool = False,
    ) -> pd.Series | pd.DataFrame:
        """The answers, one per row of the original frame, in its order and with its index
        (``frame`` gives the index; else the one stored with the job, exactly as it was:
        type, dtype, names, time zone and frequency; else, for an index that could not be
        stored, positions).

        A Series for one value column (``label``, text ``map``), else a DataFrame with one
        typed column per field and ``claude_status``. ``status=True`` returns a DataFrame with
        ``claude_status`` always, ``status=False`` never; ``usage=True`` adds tokens and cost
        (a shared prompt's cost on its first row) and ``replayed``: whether the answer came
        from the replay store or a cassette (its tokens as first billed; its cost here $0).
        """
        import pandas as pd

        index = self._index(frame)
        n_prompts = self.record.n_prompts
        prompt_status = ["pending"] * n_prompts
        prompt_value: list[Any] = [None] * n_prompts
        prompt_row: list[ResultRow | None] = [None] * n_prompts
        interpret = self.task.interpret
        # Many answers are the same text (labels): interpret each distinct one once.
        seen: dict[tuple[str, str | None], tuple[str, Any]] = {}
        for prompt, row in self.stored_results().items():
            if row.status == "succeeded":
                key = (row.text or "", row.stop_reason)
                if key not in seen:
                    seen[key] = interpret(*key)
                prompt_status[prompt], prompt_value[prompt] = seen[key]
            else:
                prompt_status[prompt] = row.status
            prompt_row[prompt] = row
        row_prompt = self.row_prompt
        statuses = [prompt_status[p] for p in row_prompt]
        values = [prompt_value[p] for p in row_prompt]
        columns = self._columns(values)
        single = len(columns) == 1 and not status and not usage
        if single:
            ((name, data),) = columns.items()
            result: pd.Series | pd.DataFrame = pd.Series(data, index=index, name=name)
        else:
            result = pd.DataFrame(columns, index=index)
            if status or (status is None and len(columns) > 1):
                result["claude_status"] = pd.Categorical(statuses)
            if usage:
                self._add_usage(result, row_prompt, prompt_row)
        # Only plain values in attrs: pandas compares attrs when it combines frames.
        result.attrs["claude_job"] = self.id
        return result

    def _index(self, frame: pd.DataFrame | None) -> Any:
        import pandas as pd

        from .indexes import decode_index

        n = self.record.n_rows
        if frame is not None:
            if len(frame) != n:
                raise ClaudeError(
                    f"{self.id} has {n:,} rows but the frame given has {len(frame):,}"
                )
            return frame.index
        blob = self.store.row_index(self.id)
        if blob:
            return decode_index(blob)
        return pd.RangeIndex(n)

    def _columns(self, values: list[Any]) -> dict[str, Any]:
        import pandas as pd

        columns: dict[str, Any] = {}
        for name, (dtype, categories) in self.task.dtypes().items():
            if not self.task.by_field:
                data = values
            else:
                data = [None if v is None else v.get(name) for v in values]
            try:
                if dtype == "category":
                    columns[name] = pd.Categorical(data, categories=categories)
                elif dtype == "object":
                    columns[name] = pd.array(data, dtype=object)
                else:
                    columns[name] = pd.array(data, dtype=dtype)
            except (TypeError, ValueError):
                columns[name] = pd.array(data, dtype=object)
        return columns

    def _add_usage(
        self, table: pd.DataFrame, row_prompt: list[int], rows: list[ResultRow | None]
    ) -> None:
        seen: set[int] = set()
        fields = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens")
        data: dict[str, list[Any]] = {f: [] for f in (*fields, "cost_usd", "replayed")}
        batch = self.mode == "batch"
        for prompt in row_prompt:
            row = rows[prompt]
            first = prompt not in seen
            seen.add(prompt)
            replayed = row is not None and row.source == REPLAY_SOURCE
            data["replayed"].append(replayed)
            if row is None or not first:
                for f in fields:
                    data[f].append(0)
                data["cost_usd"].append(0.0 if row is not None else None)
                continue
            usage = row.usage
            data["input_tokens"].append(usage.input)
            data["output_tokens"].append(usage.output)
            data["cache_write_tokens"].append(usage.cache_write)
            data["cache_read_tokens"].append(usage.cache_read)
            if replayed:
                # Paid for by an earlier run: its tokens as billed then, nothing this time.
                data["cost_usd"].append(0.0)
                continue
            cost = price_usage(
                usage, row.model or self.record.model, batch=batch, overrides=self.price_overrides
            )
            data["cost_usd"].append(None if cost is None else cost.total)
        for name, column in data.items():
            table[name] = column
