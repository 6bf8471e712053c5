"""Running a streamed job: the table opened, its cost asked, the job found or made.

    job = run_table("reviews.parquet", "review", label_task(labels))
    job.write("labels.parquet", key=["id"])

How a streamed job reads, sends and keeps its results is in ``stream_job``. Here: the table is
opened (an in-memory one written to a snapshot), a sample of its rows laid out as requests
and checked against the model's rules, the job named by a hash of the task, the shared
request and the table's bytes (the same call again attaches to it), its worst case checked
against the budget and confirmed, and the job written to the job store before anything is sent.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson

from ..prompt import PromptError
from .progress import say
from .store import JobRecord, JobStore
from .stream_job import StreamJob, job_folder
from .wire import BatchLimits

if TYPE_CHECKING:
    from ..api.client import Client
    from ..api.uploads import Uploads
    from ..config import Settings
    from ..cost.ledger import Ledger
    from .estimate import JobEstimate
    from .rows import Prompts, RowTemplate
    from .tables import TableSource
    from .tasks import Task

__all__ = ["estimate_streamed", "run_table"]


def _key(
    task: Task, before: bytes, after: bytes, fingerprint: str, template: Any, files: Any
) -> str:
    digest = hashlib.blake2b(digest_size=32)
    digest.update(b"table\x00batch\x00")
    digest.update(orjson.dumps(task.to_spec()))
    digest.update(before + b"\x00" + after + b"\x00")
    digest.update(fingerprint.encode() + b"\x00" + str(template).encode())
    if files is not None:  # (without files, the hash jobs have always had)
        digest.update(b"\x00files\x00" + str(files).encode())
    return digest.hexdigest()


def _open(
    table: Any, template: Any, task: Task, store: JobStore, files: str | None = None
) -> tuple[list[str], RowTemplate, TableSource]:
    """The table's columns, its row template, and the table as a source: a Parquet path or
    dataset as it is, an in-memory table as a snapshot (beside ``store``) of the columns its
    prompts read (and ``files``, the column of each row's file)."""
    from .rows import _missing_column, make_template
    from .tables import column_names, open_table, table_kind

    all_columns = column_names(table)
    if files is not None and files not in all_columns:
        raise _missing_column(str(files), all_columns, bare=True)
    row_template = make_template(all_columns, template, task, files=files is not None)
    needed = sorted({str(f.column) for f in row_template.fields} | ({files} if files else set()))
    scratch = store.path.parent / "jobs-tables"
    source = open_table(table, needed if table_kind(table) != "parquet" else None, scratch)
    return all_columns, row_template, source


def _sample(
    source: TableSource,
    template: RowTemplate,
    task: Task,
    *,
    model: str,
    system: str | None,
    max_tokens: int | None,
    effort: str | None = None,
    files: str | None = None,
) -> Prompts:
    """The prompts of the table's first rows (its first row group, 2,000 rows at most): the
    shared request, laid out as every row's will be (with ``files``, each with its file)."""
    from .documents import read_files
    from .rows import build_prompts

    needed = {str(f.column) for f in template.fields} | ({files} if files else set())
    sample_batch = next(source.batches(sorted(needed), 2_000), None)
    if sample_batch is None:
        raise PromptError(f"{source.display} has no rows: nothing to send")
    frame = sample_batch.to_pandas()
    return build_prompts(
        frame,
        template,
        task,
        model=model,
        max_tokens=max_tokens,
        system=system,
        effort=effort,
        files=None if files is None else read_files(frame[files]),
    )


def estimate_streamed(
    table: Any,
    template: Any,
    task: Task,
    *,
    model: str | None = None,
    system: str | None = None,
    max_tokens: int | None = None,
    compare: Any = None,
    files: str | None = None,
    client: Client | None = None,
    store: JobStore | None = None,
    settings: Settings | None = None,
) -> JobEstimate:
    """What a streamed job over ``table`` would cost, as ``df.claude.estimate`` says it, with
    the table read as the job reads it: a row group at a time, each chunk's prompts rendered
    and hashed (``stream_job.scan``), the local estimate of each distinct prompt's tokens
    summed and the prompt itself let go. Nothing is sent; nothing but the hashes (16 bytes a
    distinct prompt) is held. ``compare``: the models to price beside (default as
    ``df.claude.estimate``). With ``files``, the documents of the first rows are counted
    by count_tokens (``client``), as a pandas estimate counts them, and scaled to every
    distinct prompt with a file."""
    from ..config import current_settings, shared_client
    from .entry import default_store
    from .estimate import comparison_models, document_tokens, prompt_tokens
    from .estimate import estimate_job as _estimate
    from .stream_job import scan

    settings = settings if settings is not None else current_settings()
    model = model or settings.job_model
    store = store or default_store()
    _columns, row_template, source = _open(table, template, task, store, files)
    try:
        sample = _sample(
            source,
            row_template,
            task,
            model=model,
            system=system,
            max_tokens=max_tokens,
            files=files,
        )
        rows = prompts = fresh = with_file = 0
        for chunk in scan(source, row_template, files):
            rows += len(chunk.texts)
            prompts += len(chunk.new_rows)
            new = chunk.new_rows.tolist()
            fresh += sum(prompt_tokens(chunk.texts[r]) for r in new)
            if chunk.files is not None:
                with_file += sum(chunk.files[r].error is None for r in new)
    finally:
        source.remove()
    documents = (0, "")
    if files is not None:
        counted, _how = document_tokens(sample, range(sample.n_prompts), client or shared_client())
        in_sample = sum(f.error is None for f in sample.files or [])
        total = round(counted * with_file / in_sample) if in_sample else 0
        documents = (
            total,
            f"documents about {total:,} tokens (an estimate: count_tokens on a few files of "
            f"the first rows, scaled to {with_file:,} prompts with a file)",
        )
    if compare is None:
        compare = comparison_models(model, settings.model)
    shape = _estimate(sample, settings.price_overrides, compare=compare)
    return replace(
        shape,
        rows=rows,
        prompts=prompts,
        fresh_tokens=fresh + documents[0],
        document_tokens=documents[0],
        document_note=documents[1],
        read_note=(
            f"{source.display} read a row group at a time; distinct prompts told apart by a "
            "64-bit hash of each, as the streamed job does"
        ),
    )


def run_table(
    table: Any,
    template: Any,
    task: Task,
    *,
    model: str | None = None,
    system: str | None = None,
    max_tokens: int | None = None,
    effort: str | None = None,
    yes: bool = False,
    wait: bool = True,
    fresh: bool = False,
    progress: bool = True,
    client: Client | None = None,
    store: JobStore | None = None,
    ledger: Ledger | None = None,
    limits: BatchLimits | None = None,
    settings: Settings | None = None,
    what: str | None = None,
    files: Any = None,
    uploads: Uploads | None = None,
) -> StreamJob:
    """Run ``task`` over every row of ``table`` (a Parquet path or dataset, a pyarrow Table, a
    Polars DataFrame or LazyFrame, a Dask DataFrame) in batches, streamed: see the module's
    docstring. Returns the job, done unless ``wait=False``; ``job.write(out)`` or
    ``job.table()`` gives the results. The same call again attaches to the job."""
    from ..api.rules import check_request
    from ..config import check_budget, current_settings, shared_client, shared_ledger
    from .entry import confirm, default_store, model_info
    from .estimate import estimate_job
    from .spend import settle_owed

    settings = settings if settings is not None else current_settings()
    model = model or settings.job_model
    client = client or shared_client()
    store = store or default_store()
    ledger = ledger if ledger is not None else shared_ledger()
    limits = limits or BatchLimits()
    all_columns, row_template, source = _open(table, template, task, store, files)
    keep_source = False
    try:
        sample = _sample(
            source,
            row_template,
            task,
            model=model,
            system=system,
            max_tokens=max_tokens,
            effort=effort,
            files=files,
        )
        check_request(sample.body(batch=True), model_info(client, model), client.api_version)
        before, after = sample.template(batch=True)
        fingerprint = source.fingerprint()
        key = _key(task, before, after, fingerprint, template, files)
        if fresh:
            store.replace(key)
        settle_owed(store, ledger)
        existing = store.find(key)
        common: dict[str, Any] = {
            "client": client,
            "ledger": ledger,
            "progress": progress,
            "limits": limits,
            "settings": settings,
        }
        if existing is not None:
            job = StreamJob(store, existing, uploads=uploads, **common)
            if not job.done:
                say(
                    f"Attaching to {job.id}, started earlier on this same table: nothing is "
                    "sent twice."
                )
            if wait:
                job.wait()
                job.renew_lost_files()
            return job
        # What it may cost: the sample's requests, scaled to every row (each distinct, at
        # worst; expected at the sample's share of distinct rows).
        documents = (0, "")
        if files is not None:
            from .estimate import document_tokens

            documents = document_tokens(sample, range(sample.n_prompts), client)
        estimate = estimate_job(sample, settings.price_overrides, documents=documents)
        scale = source.n_rows / max(sample.n_rows, 1)
        worst = estimate.worst_case("batch")
        expected = estimate.cost("batch")
        worst = None if worst is None else worst * scale * sample.n_rows / sample.n_prompts
        expected = None if expected is None else expected * scale
        label = what or f"This {task.kind} job ({source.n_rows:,} rows of {source.display}, batch)"
        check_budget(worst, label)
        if not yes and worst is not None and worst > settings.confirm_above_usd:
            confirm(label, expected, worst, settings.confirm_above_usd)
        job_id = "job_" + secrets.token_hex(5)
        folder = job_folder(store, job_id)
        if source.snapshot:
            folder.mkdir(parents=True, exist_ok=True)
            kept = folder / "table.parquet"
            os.replace(source.files[0], kept)
            source.files = [kept]
        keep_source = True
        record = JobRecord(
            id=job_id,
            key=key,
            created=time.time(),
            mode="batch",
            kind=task.kind,
            model=model,
            n_rows=source.n_rows,
            n_prompts=0,
            state="running",
            description=str(template)[:200],
            spec={
                "task": task.to_spec(),
                "cacheable": sample.cacheable,
                "instruction_tokens": sample.instruction_tokens,
                "max_tokens": sample.max_tokens,
                "pid": os.getpid(),
                **({"effort": sample.effort} if sample.effort else {}),
                "table": {
                    "template": template if isinstance(template, str) else str(template),
                    "columns": all_columns,
                    "readable": source.columns,
                    "files": source.stamp(),
                    "display": source.display,
                    "fingerprint": fingerprint,
                    "read": False,
                    **({"files_column": str(files)} if files is not None else {}),
                },
            },
            before=before,
            after=after,
        )
        store.create(record, texts=[], row_prompt=[], row_index=None)
    finally:
        if not keep_source:
            source.remove()
    job = StreamJob(store, record, source=source, template=row_template, uploads=uploads, **common)
    job.start()
    if wait:
        job.wait()
        job.renew_lost_files()
    return job
