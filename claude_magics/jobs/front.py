"""``label``, ``extract`` and ``map`` over any table: pandas, Polars, Arrow, Parquet, Dask.

    from claude_magics import jobs
    jobs.label("reviews.parquet", "review", labels=["pos", "neg"], out="labels.parquet")
    jobs.label(polars_df, "review", labels=["pos", "neg"])        # a Polars Series

A pandas DataFrame goes to ``entry.run`` as ``df.claude`` sends it. Any other table is
streamed (``streaming``: batches, bounded memory) when the job is a batch job: ``mode="batch"``,
or ``mode="auto"`` with at least ``ClaudeMagics.batch_threshold`` rows (or an unknown count:
a LazyFrame, a Dask frame), ``files=`` too. A smaller table, ``mode="realtime"``,
``citations=True`` or ``usage=True`` reads the columns the job needs into pandas and runs as a
pandas job, which has every option. Both take their options as one ``JobOptions`` (``options``),
as ``df.claude`` does. ``estimate_cost`` says what either would cost, reading the table as the
job would.

The result comes back in the table's kind: a Polars Series (one value column) or DataFrame
for Polars input, a pyarrow Table for Arrow or Parquet input, pandas for pandas and Dask
input; with ``out=`` a Parquet file of the table's ``key`` columns (default ``row``, the row
number) beside the result columns, written a chunk at a time, and its path is returned. An
in-memory table's key columns are not in its snapshot (a key changes nothing of what is
asked, so the same rows are the same job with a key or without): they are kept with the job
in a snapshot of their own, read beside the results.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..prompt import PromptError
from .options import (
    JobOptions,
    estimate_task,
    label_options,
    label_status,
    refuse_label_citations,
    run_rows,
)
from .tables import need, row_count, table_kind
from .tasks import Task, extract_task, label_task, map_task

if TYPE_CHECKING:
    import pandas as pd

    from ..config import Settings
    from .store import JobStore
    from .stream_job import StreamJob

__all__ = ["estimate_cost", "extract", "label", "map"]


def _as_pandas(table: Any, kind: str, columns: Sequence[str]) -> pd.DataFrame:
    """The ``columns`` of a table as a pandas frame (a job small enough to hold, or one that
    needs pandas-only options)."""
    if kind == "parquet":
        from .tables import open_parquet

        source = open_parquet(table)
        pa = need("pyarrow")
        parts = [pa.Table.from_batches([b]) for b in source.batches(columns, 65_536)]
        frame: pd.DataFrame = pa.concat_tables(parts).to_pandas() if parts else None
        if frame is None:
            import pandas as pd

            frame = pd.DataFrame({c: [] for c in columns})
        return frame
    if kind == "arrow":
        return table.select(list(columns)).to_pandas()
    if kind == "polars":
        return table.select(list(columns)).to_pandas()
    if kind == "polars-lazy":
        return table.select(list(columns)).collect().to_pandas()
    if kind == "dask":
        return table[list(columns)].compute()
    return table[list(columns)]


def _back(result: Any, kind: str) -> Any:
    """A pandas result in the kind of the table it came from."""
    if kind in ("polars", "polars-lazy"):
        pl = need("polars")
        if hasattr(result, "to_frame") and not hasattr(result, "columns"):  # a Series
            return pl.from_pandas(result.reset_index(drop=True))
        return pl.from_pandas(result.reset_index(drop=True))
    if kind in ("arrow", "parquet"):
        pa = need("pyarrow")
        frame = result.to_frame() if not hasattr(result, "columns") else result
        return pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    return result


def _arrow_back(table: Any, kind: str, status: bool | None) -> Any:
    """A streamed job's Arrow result in the kind of the table it came from."""
    single = table.num_columns == 1 and not status
    if kind in ("polars", "polars-lazy"):
        pl = need("polars")
        frame = pl.from_arrow(table)
        return frame.to_series(0) if single else frame
    if kind == "dask":
        result = table.to_pandas()
        return result[table.column_names[0]] if single else result
    return table


def _write_pandas(result: Any, frame: pd.DataFrame, out: Any, key: Sequence[str]) -> Path:
    """A pandas job's result written as ``out`` (key columns or the row number first)."""
    pa = need("pyarrow")
    pq = need("pyarrow.parquet")
    values = result.to_frame() if not hasattr(result, "columns") else result
    values = values.reset_index(drop=True)
    columns: dict[str, Any] = {}
    if key:
        for name in key:
            columns[name] = pa.array(frame[name].tolist())
    else:
        columns["row"] = pa.array(builtins.range(len(values)), pa.int64())
    table = pa.Table.from_pandas(values, preserve_index=False)
    for name in table.column_names:
        columns[name] = table.column(name)
    target = Path(os.fspath(out)).expanduser()
    pq.write_table(pa.table(columns), target)
    return target


def _write_streamed(
    job: StreamJob, table: Any, kind: str, out: Any, keys: Sequence[str], status: bool | None
) -> Path:
    """A streamed job's result written as ``out``. An in-memory table's snapshot holds only
    the columns its prompts read (so that the same rows are the same job, with a key or
    without): its key columns are kept with the job in a snapshot of their own, read beside
    the results (and again by ``attach(ID).write(out, key=...)``)."""
    if keys and kind != "parquet":
        from .tables import snapshot

        job.keep_keys(snapshot(table, kind, keys, job.folder))
    return job.write(out, key=keys, status=status is not False)


def _streams(kind: str, rows: int | None, options: JobOptions) -> bool:
    """Whether a job over a table of ``kind`` and ``rows`` (None: unknown) is streamed: a
    batch job over anything but pandas, without what only a pandas job has."""
    if kind == "pandas" or options.usage or options.citations:
        return False
    threshold = options.settings_now().batch_threshold
    return options.mode == "batch" or (
        options.mode == "auto" and (rows is None or rows >= threshold)
    )


def _kind(table: Any) -> str:
    kind = table_kind(table)
    if kind is None:
        raise PromptError(
            f"not a table: {type(table).__name__} (give a pandas, Polars or Dask DataFrame, a "
            "Polars LazyFrame, a pyarrow Table, or a Parquet file or folder)"
        )
    return kind


def _keys(key: Sequence[str] | str | None, columns: Sequence[str]) -> list[str]:
    """The key columns, each checked to be a column of the table (one line naming them)."""
    keys = [key] if isinstance(key, str) else list(key or ())
    for name in keys:
        if name not in columns:
            from .rows import _missing_column

            raise PromptError(f"key: {_missing_column(name, columns, bare=True)}")
    return keys


def _out_path(out: Any) -> Path:
    """``out`` checked before anything is sent: a file name in a folder that exists (else one
    line: a job's answers would be paid for and then have nowhere to go)."""
    if not isinstance(out, (str, os.PathLike)):
        raise PromptError(f"out: give a file path such as labels.parquet, not {type(out).__name__}")
    target = Path(os.fspath(out)).expanduser()
    if target.is_dir():
        raise PromptError(f"out: {out} is a folder; give a file name such as labels.parquet")
    if not target.parent.is_dir():
        raise PromptError(f"out: {target.parent} is not a folder; create it or give another path")
    return target


def _written(write: Callable[[], Path], target: Path, job_id: Any) -> Path:
    """Run ``write``; a file system that refuses it (full, read-only, gone) is one line that
    says the answers are kept and how to have them again without paying."""
    try:
        return write()
    except OSError as error:
        raise PromptError(
            f"out: {target} could not be written ({error.strerror or error}); the answers are "
            f"kept in job {job_id}: the same call with another out= writes them, sending nothing"
        ) from None


def _run(table: Any, template: Any, task: Task, *, out: Any, key: Any, options: JobOptions) -> Any:
    from .tables import column_names

    target = _out_path(out) if out is not None else None
    kind = _kind(table)
    rows = row_count(table)
    columns = column_names(table)
    keys = _keys(key, columns)
    if _streams(kind, rows, options):
        from .streaming import run_table

        streamed_job = run_table(table, template, task, **options.stream_args())
        if not options.finished(streamed_job):
            return streamed_job
        if target is not None:
            return _written(
                lambda: _write_streamed(streamed_job, table, kind, target, keys, options.status),
                target,
                streamed_job.id,
            )
        return _arrow_back(streamed_job.table(status=options.status), kind, options.status)
    from .rows import make_template

    row_template = make_template(columns, template, task, files=options.files is not None)
    needed = {str(f.column) for f in row_template.fields} | set(keys)
    if options.files is not None:
        needed.add(options.files)
    frame = table if kind == "pandas" else _as_pandas(table, kind, sorted(needed))
    if out is not None and options.status is not False:
        # A results file has claude_status, streamed or not (status=False leaves it out).
        options = replace(options, status=True)
    result = run_rows(frame, template, task, options)
    if not options.wait:
        return result
    if target is not None:
        job_id = getattr(result, "attrs", {}).get("claude_job")
        return _written(lambda: _write_pandas(result, frame, target, keys), target, job_id)
    return _back(result, kind)


def label(
    table: Any,
    template_or_column: Any,
    labels: Sequence[str] | str,
    *,
    multi: bool = False,
    descriptions: Mapping[str, str] | None = None,
    examples: Iterable[tuple[str, Any]] | None = None,
    abstain: bool = False,
    rationale: bool = False,
    confidence: bool = False,
    out: Any = None,
    key: Sequence[str] | str | None = None,
    status: bool | None = None,
    **options: Any,
) -> Any:
    """A label per row of any table, as ``df.claude.label`` gives it, with its options
    (``model``, ``effort``, ``system``, ``max_tokens``, ``mode``, ``yes``, ``wait``, ``usage``,
    ``files``...: :class:`~claude_magics.jobs.options.JobOptions`). ``out``: write a Parquet
    file of ``key`` (the table's key columns; default ``row``, the row number) and the result
    columns, and return its path.

        jobs.label("reviews.parquet", "review", labels=["pos", "neg"], out="labels.parquet")
    """
    given = JobOptions.take(options, status=label_status(status, abstain))
    refuse_label_citations(given.citations)
    task = label_task(
        labels,
        multi=multi,
        descriptions=descriptions,
        examples=examples,
        abstain=abstain,
        rationale=rationale,
        confidence=confidence,
    )
    return _run(table, template_or_column, task, out=out, key=key, options=given)


def extract(
    table: Any,
    template_or_column: Any,
    schema: Any,
    *,
    descriptions: Mapping[str, str] | None = None,
    out: Any = None,
    key: Sequence[str] | str | None = None,
    status: bool = True,
    **options: Any,
) -> Any:
    """Typed fields per row of any table, as ``df.claude.extract`` gives them (its options:
    see :func:`label`)."""
    task = extract_task(schema, descriptions=descriptions)
    given = JobOptions.take(options, status=status)
    return _run(table, template_or_column, task, out=out, key=key, options=given)


def map(
    table: Any,
    template: str,
    *,
    schema: Any = None,
    out: Any = None,
    key: Sequence[str] | str | None = None,
    status: bool = False,
    **options: Any,
) -> Any:
    """One answer per row of any table, as ``df.claude.map`` gives it (its options: see
    :func:`label`)."""
    given = JobOptions.take(options, status=status or None)
    return _run(table, template, map_task(schema), out=out, key=key, options=given)


def estimate_cost(
    table: Any,
    template: Any,
    *,
    mode: str = "auto",
    store: JobStore | None = None,
    settings: Settings | None = None,
    **asked: Any,
) -> pd.DataFrame:
    """What ``label`` (``labels=``), ``extract`` or ``map`` (``schema=``, or neither) over any
    table would cost, as ``df.claude.estimate`` says it, with its keywords (``asked``);
    nothing is sent. A job that would be streamed (by ``mode``, as the job picks it) is
    estimated as it would run: the table read a row group at a time (a Parquet file is never
    loaded whole) and its distinct prompts told apart by the streamed job's hash, as the note
    says (with ``files=``, the documents of the first rows counted and scaled). A smaller
    job is estimated as the pandas job it would be (answers already paid for at $0).

        jobs.estimate_cost("reviews.parquet", "review", labels=["pos", "neg"])
    """
    import inspect

    from .accessor import ClaudeAccessor
    from .tables import column_names

    kind = _kind(table)
    # df.claude.estimate's own signature checks the keywords and fills in their defaults.
    bound = inspect.signature(ClaudeAccessor.estimate).bind(None, template, **asked)
    bound.apply_defaults()
    a = bound.arguments
    picked = JobOptions(mode=mode, citations=a["citations"], settings=settings)
    columns = column_names(table)
    if not _streams(kind, row_count(table), picked):
        frame = table if kind == "pandas" else _as_pandas(table, kind, columns)
        return ClaudeAccessor(frame).estimate(template, **asked)
    from .streaming import estimate_streamed

    flags = {name: a[name] for name in ("abstain", "rationale", "confidence")}
    task = estimate_task(
        template,
        columns,
        labels=a["labels"],
        multi=a["multi"],
        schema=a["schema"],
        label_options=label_options(a["descriptions"], a["examples"], **flags),
        citations=False,
    )
    return estimate_streamed(
        table,
        template,
        task,
        model=a["model"],
        system=a["system"],
        max_tokens=a["max_tokens"],
        compare=a["compare"],
        files=a["files"],
        client=a["client"],
        store=store,
        settings=settings,
    ).frame()
