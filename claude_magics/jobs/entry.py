"""Making, finding and listing DataFrame jobs: ``run``, ``attach``, ``cancel``, ``list_jobs``.

    job = run(df, "Classify {{review}}", label_task(["pos", "neg"]), mode="batch", wait=False)
    attach(job.id).result(), list_jobs()

The plain functions behind ``df.claude`` and ``%%claude --batch``, usable without either.

* **Cheap.** Identical prompts are sent once; the shared instruction is cached (``rows``); batch
  mode is half price; labels have a tight ``max_tokens``.
* **Asked first.** The job's worst case (``estimate``) is checked against the session budget,
  and above ``confirm_above_usd`` the person is asked before anything is sent.
* **Checked first.** The request is checked against its model's rules (``api.rules``, with
  what ``GET /v1/models`` and the bundled table say of the model) before anything is sent: a
  ``max_tokens`` above the model's most is one line, not 100,000 errored rows. Jobs ask for
  structured answers with ``output_config.format``, never a forced ``tool_choice`` and never
  a prefill, which the newest models refuse.
* **Durable.** Before anything is sent the job is in the SQLite job store (``store``): the
  request-set hash, the prompts, the row map, the frame's index (``indexes``: given back
  exactly by ``attach`` in a fresh kernel). Running the same call again finds the job by its
  hash and attaches to it: nothing is paid twice (``sending`` has the rest); started in two
  processes at once, it is worked on by one while the other waits for its results (``claim``).
  Spend a killed process left unwritten is written to the ledger by the next run (``spend``).
* **Any server.** Where there is no Message Batches API (a gateway without
  ``/v1/messages/batches``, or a model the server does not batch), ``mode="batch"`` says so and
  suggests ``mode="realtime"``; ``mode="auto"`` sends in realtime and says so in one line.

Settings (the job model, thresholds, poll timings, price overrides) come from
``config.current_settings`` (``%config ClaudeMagics.*`` when the extension is loaded), or from a
``settings`` argument. Jobs have a model of their own, ``Settings.job_model`` (a small, cheap
model sold for classification and extraction), not the ``%%claude`` cells' ``Settings.model``.
"""

from __future__ import annotations

import os
import secrets
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..config import Settings, active_magics, ask, in_ipython
from ..cost.pricing import format_usd
from ..errors import (
    ClaudeError,
    EndpointNotFoundError,
    JobNotFoundError,
    PlatformUnsupportedError,
)
from .claim import StoppedWaiting, say_if_busy
from .documents import session_uploads
from .job import Job
from .progress import say
from .sending import JobDetached, JobInterrupted
from .spend import settle_owed
from .store import JobRecord, JobStore
from .wire import BatchLimits

if TYPE_CHECKING:
    import pandas as pd

    from ..api.client import Client
    from ..api.models import ModelCatalog, ModelInfo
    from ..api.uploads import Uploads
    from ..cost.ledger import Ledger
    from ..cost.replay import Replayer, StoredAnswer
    from .documents import RowFile
    from .estimate import JobEstimate
    from .replaying import JobReplay
    from .rows import Prompts, RowTemplate
    from .tasks import Task

__all__ = [
    "BatchesUnavailableError",
    "ConfirmationDeclined",
    "JobPlan",
    "attach",
    "cancel",
    "confirm",
    "default_store",
    "list_jobs",
    "plan_job",
    "resolve_mode",
    "run",
]


class ConfirmationDeclined(ClaudeError):
    """A job above ``confirm_above_usd`` was not confirmed; nothing was sent."""


class BatchesUnavailableError(ClaudeError):
    """``mode="batch"`` where no batch can be made: the server has no Message Batches endpoint,
    or does not batch the model. Nothing was sent; ``mode="realtime"`` works there."""


# One catalog per client outside IPython (inside, the magics' own), so ``GET /v1/models`` is
# asked once per session, not once per job.
_catalogs: weakref.WeakKeyDictionary[Any, ModelCatalog] = weakref.WeakKeyDictionary()


def model_info(client: Client, model: str) -> ModelInfo:
    """What the server (``GET /v1/models``, asked once per client) and the bundled table know
    of ``model``: the limits and rules a job's requests are checked against."""
    from ..api.models import ModelCatalog

    magics = active_magics()
    if magics is not None and magics.client is client:
        catalog: ModelCatalog = magics.catalog
    elif client in _catalogs:
        catalog = _catalogs[client]
    else:
        catalog = _catalogs[client] = ModelCatalog(client)
    return catalog.get(model)


def _no_batches(reason: str) -> BatchesUnavailableError:
    return BatchesUnavailableError(
        f'{reason}: nothing was sent; run the job with mode="realtime" '
        "(--mode realtime in a %%claude --batch cell)"
    )


def default_store() -> JobStore:
    """The job store beside the spend ledger (``<home>/jobs.sqlite``)."""
    from ..config import shared_ledger

    return JobStore(shared_ledger().path.parent / "jobs.sqlite")


def confirm(what: str, expected: float | None, worst: float | None, threshold: float) -> None:
    """Ask before a job whose worst case is above ``threshold``; refuse where one cannot ask."""
    cached = (
        f" (about {format_usd(expected)} if the shared prefix is read from cache)"
        if expected is not None and worst is not None and expected < worst * 0.99
        else ""
    )
    message = (
        f"{what} could cost up to {format_usd(worst)}{cached}, above "
        f"ClaudeMagics.confirm_above_usd = {format_usd(threshold)}."
    )
    if not in_ipython():
        raise ConfirmationDeclined(
            message + " Nothing was sent: pass yes=True to send it (outside IPython there is "
            "no one to ask)."
        )
    answer = ask(message + " Send it? [y/N] ")
    if answer is None:
        # A kernel without a front end to answer (nbclient, nbval) cannot read stdin.
        error = ConfirmationDeclined(message + " Nothing was sent: no way to ask here.")
        error.hint = "Pass yes=True (or --yes) to send it."
        raise error
    if answer.strip().lower() not in ("y", "yes"):
        raise ConfirmationDeclined("Not confirmed: nothing was sent.")


def job_replayer(replayer: Replayer | None, settings: Settings) -> Replayer | None:
    """The replayer a job uses: the one given, else the session's (``config.shared_replayer``)
    without its store when ``Settings.replay`` is off (a cassette still works: CI asks for
    it). None when there is neither store nor cassette."""
    from ..config import shared_replayer
    from ..cost.replay import Replayer

    chosen = replayer if replayer is not None else shared_replayer()
    if not settings.replay and chosen.store is not None:
        chosen = Replayer(None, chosen.cassette)
    return chosen if chosen.active else None


def prompts_replay(prompts: Prompts, client: Client, replayer: Replayer | None) -> JobReplay | None:
    """The replay side of a job about to be made from ``prompts`` (None: no replay)."""
    if replayer is None:
        return None
    from .replaying import JobReplay

    # Either mode's layout gives the same keys (cache marks are no part of a key): the batch
    # one, which the large jobs lay out next anyway.
    before, after = prompts.template(batch=True)
    return JobReplay(replayer, client, before, after, prompts.texts, prompts.documents)


def row_files(frame: pd.DataFrame, files: Any, task: Task) -> list[RowFile] | None:
    """Each row's file from the column ``files`` (None: a job without files). Reading them
    fails no row's neighbours: a file that cannot be had is that row's error."""
    from ..prompt import PromptError
    from .documents import read_files
    from .rows import _missing_column

    if files is None:
        if task.citations:
            raise PromptError("citations=True cites each row's document: name them with files=")
        return None
    if files not in list(frame.columns):
        raise _missing_column(str(files), list(frame.columns), bare=True)
    return read_files(frame[files])


def resolve_mode(mode: str, n_prompts: int, threshold: int) -> str:
    """``batch`` or ``realtime``: ``auto`` picks batches from ``threshold`` prompts up."""
    if mode not in ("auto", "batch", "realtime"):
        raise ClaudeError(f"mode must be 'auto', 'batch' or 'realtime', not {mode!r}")
    if mode == "auto":
        return "batch" if n_prompts >= threshold else "realtime"
    return mode


@dataclass
class JobPlan:
    """A job as it would be run, before anything is sent: its prompts, the answers replay
    already has (``hits``), what is left to send (``misses``), the mode, the request-set
    hash, and the job already in the store under that hash (``existing``)."""

    prompts: Prompts
    row_template: RowTemplate
    replay: JobReplay | None
    hits: dict[int, StoredAnswer]
    misses: list[int]
    mode: str
    key: str
    existing: JobRecord | None
    #: Said before the job runs (a batch job sent in realtime, and why), or None.
    note: str | None = None
    #: With ``files=``: the client whose count_tokens sizes the documents.
    client: Client | None = None
    _documents: tuple[int, str] | None = None

    def estimate(self, overrides: Mapping[str, Any] | None = None) -> JobEstimate:
        """What sending the misses costs (local estimates; replayed prompts at $0; with
        ``files=``, the documents counted on a sample of files and scaled)."""
        from .estimate import document_tokens, estimate_job

        if self._documents is None:
            self._documents = (0, "")
            if self.prompts.files is not None and self.client is not None:
                self._documents = document_tokens(self.prompts, self.misses, self.client)
        return estimate_job(self.prompts, overrides, replayed=self.hits, documents=self._documents)

    def costs(self, overrides: Mapping[str, Any] | None = None) -> tuple[float, float]:
        """``(expected, worst case)`` dollars of running the plan: nothing for a job already
        in the store (it is attached to, not sent again); an unknown price counts as 0."""
        if self.existing is not None or not self.misses:
            return 0.0, 0.0
        estimate = self.estimate(overrides)
        return estimate.cost(self.mode) or 0.0, estimate.worst_case(self.mode) or 0.0


def plan_job(
    frame: pd.DataFrame,
    template: Any,
    task: Task,
    *,
    model: str,
    client: Client,
    store: JobStore,
    settings: Settings,
    replayer: Replayer | None,
    system: str | None = None,
    max_tokens: int | None = None,
    effort: str | None = None,
    mode: str = "auto",
    fresh: bool = False,
    files: Any = None,
) -> JobPlan:
    """Everything :func:`run` decides before it sends: the prompts, the replay hits, the mode
    (``mode="batch"`` where the server does not batch the model raises
    :class:`BatchesUnavailableError`), the request checked against the model's rules, and the
    job the store already has for these requests. Nothing is sent or written; ``replayer`` is
    the one :func:`job_replayer` chose."""
    from ..api.rules import check_request
    from .rows import build_prompts, make_template

    row_template = make_template(list(frame.columns), template, task, files=files is not None)
    prompts = build_prompts(
        frame,
        row_template,
        task,
        model=model,
        max_tokens=max_tokens,
        system=system,
        effort=effort,
        files=row_files(frame, files, task),
    )
    replay = prompts_replay(prompts, client, replayer)
    # Answers already paid for: looked up in bulk before anything else, since what is left to
    # send decides the mode, the estimate and the confirmation.
    hits = replay.lookup(range(prompts.n_prompts)) if replay is not None and not fresh else {}
    broken = {n for n, f in enumerate(prompts.files or ()) if f.error is not None}
    misses = [n for n in range(prompts.n_prompts) if n not in hits and n not in broken]
    chosen = resolve_mode(mode, len(misses), settings.batch_threshold)
    info = model_info(client, model)
    note = None
    if chosen == "batch" and info.batch is False:
        reason = f"this server ({client.base_url}) does not batch {model}"
        if mode == "batch":
            raise _no_batches(reason)
        note = f"{reason}: sending the {len(misses):,} requests in realtime instead."
        chosen = "realtime"
    batch = chosen == "batch"
    # Before anything is sent, and in one line: a max_tokens above the model's most, say. The
    # API version is the one the client sends (the magics' client: ClaudeMagics.api_version).
    check_request(prompts.body(batch=batch), info, client.api_version)
    key = prompts.key(batch=batch)
    return JobPlan(
        prompts=prompts,
        row_template=row_template,
        replay=replay,
        hits=hits,
        misses=misses,
        mode=chosen,
        key=key,
        existing=None if fresh else store.find(key),
        note=note,
        client=client,
    )


def run(
    frame: pd.DataFrame,
    template: Any,
    task: Task,
    *,
    model: str | None = None,
    system: str | None = None,
    max_tokens: int | None = None,
    effort: str | None = None,
    mode: str = "auto",
    yes: bool = False,
    wait: bool = True,
    fresh: bool = False,
    progress: bool = True,
    client: Client | None = None,
    store: JobStore | None = None,
    ledger: Ledger | None = None,
    limits: BatchLimits | None = None,
    what: str | None = None,
    settings: Settings | None = None,
    replayer: Replayer | None = None,
    files: Any = None,
    uploads: Uploads | None = None,
) -> Job:
    """Run ``task`` over the rows of ``frame``: the function behind ``df.claude.map``,
    ``label`` and ``extract``. Returns the job, finished unless ``wait=False``.

    ``model`` defaults to ``Settings.job_model`` (``%config ClaudeMagics.job_model``), not the
    cells' model; ``effort`` is the model's effort level (default: the model's own). The
    request is checked against the model's rules before anything is sent
    (:class:`~claude_magics.api.rules.RequestNotAllowedError`). The same call with the same
    inputs attaches to the job it started before (``fresh=True`` starts over). ``settings``
    replaces the current settings (``%config ClaudeMagics``) for this job: the job model, the
    thresholds, the poll timings, the price overrides.

    **Replay.** Each distinct prompt is looked up first (``replayer``: default the session's
    replay store and cassette, ``config.shared_replayer``): answers already paid for go into
    the job's results at $0 (``source`` "replay"), and only the rest is sent, estimated,
    confirmed and checked against the budget; ``mode="auto"`` picks by what is sent.
    ``fresh=True`` looks nothing up. Every fresh answer is kept for replay.

    **Files.** ``files`` names a column holding each row's PDF or image (a path, bytes or an
    ``http(s)`` URL; ``documents``), sent before the row's text. Each distinct file is uploaded
    once (``uploads``: default the session's, ``files.sqlite`` beside the ledger) and sent by
    ``file_id``; the ids are kept with the job, so attaching or running again uploads nothing.
    A row whose file cannot be read or uploaded is ``errored:file_error``, never sent.
    """
    from ..config import check_budget, current_settings, shared_client, shared_ledger

    settings = settings if settings is not None else current_settings()
    model = model or settings.job_model
    client = client or shared_client()
    replayer = job_replayer(replayer, settings)
    store = store or default_store()
    plan = plan_job(
        frame,
        template,
        task,
        model=model,
        client=client,
        store=store,
        settings=settings,
        replayer=replayer,
        system=system,
        max_tokens=max_tokens,
        effort=effort,
        mode=mode,
        fresh=fresh,
        files=files,
    )
    prompts, replay, hits, misses = plan.prompts, plan.replay, plan.hits, plan.misses
    chosen, key, row_template = plan.mode, plan.key, plan.row_template
    batch = chosen == "batch"
    if ledger is None:
        ledger = shared_ledger()
    limits = limits or BatchLimits()
    if plan.note:
        say(plan.note)
    if fresh:
        store.replace(key)
    # Spend that a process killed mid-job left unwritten: written now (exactly once).
    settle_owed(store, ledger)
    existing = store.find(key)
    if existing is not None:
        job = Job(
            store,
            existing,
            client=client,
            ledger=ledger,
            progress=progress,
            limits=limits,
            settings=settings,
            replayer=replayer,
        )
        if not job.done:
            say(
                f"Attaching to {job.id}, started earlier on these same rows: nothing is sent twice."
            )
        if wait:
            job.wait()
            if prompts.files is not None:
                _renew_lost_files(job, prompts, client, uploads)
        else:
            say_if_busy(job)
        return job

    if replay is not None:
        replay.require(misses)  # a CI cassette without one of them: one line, nothing sent
    estimate = plan.estimate(settings.price_overrides)
    replayed = f"; {len(hits):,} more replayed at $0" if hits else ""
    label = what or f"This {task.kind} job ({len(misses):,} requests, {chosen}{replayed})"
    worst = estimate.worst_case(chosen)
    check_budget(worst, label)
    if not yes and worst is not None and worst > settings.confirm_above_usd:
        confirm(label, estimate.cost(chosen), worst, settings.confirm_above_usd)

    from .indexes import encode_index

    documents: dict[str, Any] = {}
    failed_files: dict[int, str] = {}
    if prompts.files is not None:
        documents, failed_files = _upload(prompts, misses, client, uploads)
    before, after = prompts.template(batch=batch)
    row_index = encode_index(frame.index)
    record = JobRecord(
        id="job_" + secrets.token_hex(5),
        key=key,
        created=time.time(),
        mode=chosen,
        kind=task.kind,
        model=model,
        n_rows=prompts.n_rows,
        n_prompts=prompts.n_prompts,
        state="running",
        description=str(row_template.source)[:200],
        spec={
            "task": task.to_spec(),
            "cacheable": prompts.cacheable,
            "instruction_tokens": prompts.instruction_tokens,
            "max_tokens": prompts.max_tokens,
            "pid": os.getpid(),
            **({"effort": prompts.effort} if prompts.effort else {}),
            **documents,
        },
        before=before,
        after=after,
    )
    store.create(record, texts=prompts.texts, row_prompt=prompts.row_prompt, row_index=row_index)
    if row_index is None and len(frame):
        say(
            f"{record.id}: this frame's index holds values that cannot be stored exactly, so "
            f"claude_magics.jobs.attach({record.id!r}).result() gives rows by position; "
            ".result(df) gives them this frame's index."
        )
    job = Job(
        store,
        record,
        client=client,
        ledger=ledger,
        progress=progress,
        limits=limits,
        settings=settings,
        texts=prompts.texts,
        row_prompt=prompts.row_prompt,
        replayer=replayer,
        replay=replay,
        fresh=fresh,
    )
    job.put_replayed(hits)
    if failed_files:
        from .documents import FILE_ERROR
        from .wire import failed_row

        job.put_results(
            [failed_row(n, FILE_ERROR, why, "files", 0) for n, why in failed_files.items()]
        )
        misses = [n for n in misses if n not in failed_files]
    try:
        job.start(misses)  # realtime: blocks until every request is answered or has failed
    except KeyboardInterrupt as exc:
        if isinstance(exc, (JobDetached, JobInterrupted, StoppedWaiting)):
            raise
        # Interrupted while creating batches: what was sent is in the store; say how to go on.
        raise JobDetached(job) from None
    except EndpointNotFoundError as missing:
        if not batch:
            raise
        # A gateway without the Message Batches API: no batch was made. Retire this job, so
        # that the same call does not attach to it, and send in realtime or say how to.
        store.set_state(job.id, "failed")
        store.replace(key)
        reason = (
            missing.message  # Bedrock and Vertex name themselves
            if isinstance(missing, PlatformUnsupportedError)
            else f"this server ({client.base_url}) has no Message Batches endpoint"
        )
        if mode == "batch":
            raise _no_batches(reason) from None
        say(f"{reason}: sending the {len(misses):,} requests in realtime instead.")
        return run(
            frame,
            template,
            task,
            model=model,
            system=system,
            max_tokens=max_tokens,
            effort=effort,
            mode="realtime",
            yes=yes,
            wait=wait,
            fresh=fresh,
            progress=progress,
            client=client,
            store=store,
            ledger=ledger,
            limits=limits,
            what=what,
            settings=settings,
            replayer=replayer,
            files=files,
            uploads=uploads,
        )
    if wait and job.mode == "batch":
        job.wait()
    if wait and prompts.files is not None:
        _renew_lost_files(job, prompts, client, uploads)
    return job


def _upload(
    prompts: Prompts, misses: list[int], client: Client, uploads: Uploads | None
) -> tuple[dict[str, Any], dict[int, str]]:
    """Upload the files of the prompts to send (each distinct one once; what ``files.sqlite``
    knows is not sent again): the job's ``documents`` and ``file_ids`` to keep in its record,
    and the prompts that cannot be sent, with why (said in one line)."""
    from .documents import upload_files

    files = prompts.files or []
    uploads = uploads if uploads is not None else session_uploads()
    ids, failed = upload_files([files[n] for n in misses], client, uploads)
    for notice in uploads.notices:
        say(notice)
    uploads.notices.clear()
    why: dict[int, str] = {}
    for n, row_file in enumerate(files):
        if row_file.error is not None:
            why[n] = row_file.error
        elif row_file.sha256 in failed:
            why[n] = f"upload failed: {failed[row_file.sha256]}"
    if why:
        rows = [i for i, p in enumerate(prompts.row_prompt) if p in why]
        first = why[prompts.row_prompt[rows[0]]]
        say(
            f"{len(rows):,} of {prompts.n_rows:,} rows have no file to send (errored:file_error; "
            f"the first: {first}); the other rows are sent."
        )
    return {"documents": prompts.documents, "file_ids": ids}, why


def _renew_lost_files(job: Job, prompts: Prompts, client: Client, uploads: Uploads | None) -> None:
    """Rows that came back 404 because the API no longer has their file (deleted from another
    notebook, or by ``%claude_files delete``, after this job took its id): upload those files
    again, keep the new ids with the job, and send those rows once more (only once: a file
    lost again leaves its rows ``errored:not_found_error``)."""
    from .documents import block_sha, upload_files

    ids: dict[str, str] = dict(job.record.spec.get("file_ids") or {})
    keys = job.key_documents
    if not ids or keys is None or prompts.files is None or not job.done:
        return
    lost = {
        n: row
        for n, row in job.stored_results().items()
        if row.status == "errored:not_found_error" and block_sha(keys[n]) in ids
    }
    if not lost:
        return
    uploads = uploads if uploads is not None else session_uploads()
    used = sorted({ids[str(block_sha(keys[n]))] for n in lost})
    try:
        gone = set(uploads.missing(client, used, [row.error or "" for row in lost.values()]))
    except ClaudeError as error:
        say(f"{job.id}: could not ask the Files API about {len(used):,} files ({error}).")
        return
    if not gone:
        return
    uploads.forget(client, sorted(gone))
    shas = {sha for sha, file_id in ids.items() if file_id in gone}
    files = {f.sha256: f for f in prompts.files if f.sha256 in shas}
    renewed, failed = upload_files(list(files.values()), client, uploads)
    if renewed:
        job.renew_file_ids(renewed)
    again = sorted(n for n in lost if block_sha(keys[n]) in renewed)
    said = f"{job.id}: the API no longer had {len(gone):,} of this job's files; "
    if failed:
        said += f"{len(failed):,} could not be uploaded again ({next(iter(failed.values()))}); "
    if not again:
        say(said + "their rows stay errored:not_found_error.")
        return
    say(said + f"uploaded them again and sending their {len(again):,} requests once more.")
    job.start(again)
    if job.mode == "batch":
        job.wait()


def attach(
    job_id: str,
    *,
    wait: bool = True,
    progress: bool = True,
    store: JobStore | None = None,
    client: Client | None = None,
    ledger: Ledger | None = None,
    settings: Settings | None = None,
    replayer: Replayer | None = None,
) -> Job:
    """The job with this id (or a unique prefix of it), from the job store; waits for its
    results unless ``wait=False`` (a realtime job sends what is left: the rows never sent,
    and those whose request failed). Nothing already answered is sent again. Raises
    :class:`~claude_magics.errors.JobNotFoundError` when there is no such job."""
    from ..config import current_settings, shared_client, shared_ledger

    store = store or default_store()
    record = store.get(job_id)
    if record is None:
        raise JobNotFoundError(job_id, str(store.path))
    ledger = ledger if ledger is not None else shared_ledger()
    settle_owed(store, ledger)
    settings = settings if settings is not None else current_settings()
    common: dict[str, Any] = {
        "client": client or shared_client(),
        "ledger": ledger,
        "progress": progress,
        "settings": settings,
    }
    job: Job
    if "table" in record.spec:  # a streamed job: its state is compact, its rows on disk
        from .stream_job import StreamJob

        job = StreamJob(store, record, **common)
    else:
        job = Job(store, record, replayer=job_replayer(replayer, settings), **common)
    if wait:
        job.wait()
    return job


def cancel(job_id: str, *, store: JobStore | None = None, client: Client | None = None) -> Job:
    """Cancel the running batches of a job (results already in stay); returns the job."""
    job = attach(job_id, wait=False, progress=False, store=store, client=client)
    job.cancel()
    return job


def list_jobs(store: JobStore | None = None) -> pd.DataFrame:
    """Every job in the job store, newest first, with its rows per status."""
    import pandas as pd

    store = store or default_store()
    rows = []
    for record in store.jobs():
        statuses = store.result_statuses(record.id)
        succeeded = sum(1 for s in statuses.values() if s == "succeeded")
        rows.append(
            {
                "job": record.id,
                "created": datetime.fromtimestamp(record.created).strftime("%Y-%m-%d %H:%M"),
                "task": record.kind,
                "mode": record.mode,
                "model": record.model,
                "rows": record.n_rows,
                "prompts": record.n_prompts,
                "answered": len(statuses),
                "succeeded": succeeded,
                "state": record.state,
                "template": record.description.splitlines()[0][:60] if record.description else "",
            }
        )
    columns = [
        "job",
        "created",
        "task",
        "mode",
        "model",
        "rows",
        "prompts",
        "answered",
        "succeeded",
        "state",
        "template",
    ]
    return pd.DataFrame(rows, columns=columns)
