"""``label``, ``extract`` and ``map`` over any table: pandas, Polars, Arrow, Parquet, Dask.

    from claude_magics import jobs
    jobs.label("reviews.parquet", "review", labels=["pos", "neg"], out="labels.parquet")
    jobs.label(polars_df, "review", labels=["pos", "neg"])        # a Polars Series

A pandas DataFrame goes to ``entry.run`` as ``df.claude`` sends it. Any other table is
streamed (``streaming``: batches, bounded memory) when the job is a batch job: ``mode="batch"``,
or ``mode="auto"`` with at least ``ClaudeMagics.batch_threshold`` rows (or an unknown count:
a LazyFrame, a Dask frame). A smaller table, ``mode="realtime"``, ``files=`` or ``usage=True``
reads the columns the job needs into pandas and runs as a pandas job, which has every option.

The result comes back in the table's kind: a Polars Series (one value column) or DataFrame
for Polars input, a pyarrow Table for Arrow or Parquet input, pandas for pandas and Dask
input; with ``out=`` a Parquet file of the table's ``key`` columns (default ``row``, the row
number) beside the result columns, written a chunk at a time, and its path is returned.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..prompt import PromptError
from .progress import say
from .tables import need, row_count, table_kind
from .tasks import Task, extract_task, label_task, map_task

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["extract", "label", "map"]

# Passed through to the runners: where to send and store, and the settings to use.
_PASSED = ("client", "store", "ledger", "limits", "settings", "fresh", "progress", "what")


def _options(options: dict[str, Any], *, pandas: bool) -> dict[str, Any]:
    known = (*_PASSED, "replayer", "uploads") if pandas else _PASSED
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
    return options


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


def _run(
    table: Any,
    template: Any,
    task: Task,
    *,
    out: Any,
    key: Sequence[str] | str | None,
    mode: str,
    status: bool | None,
    usage: bool,
    files: Any,
    model: str | None,
    system: str | None,
    max_tokens: int | None,
    effort: str | None,
    yes: bool,
    wait: bool,
    options: dict[str, Any],
) -> Any:
    from ..config import current_settings
    from .entry import resolve_mode
    from .rows import make_template
    from .tables import column_names

    kind = table_kind(table)
    if kind is None:
        raise PromptError(
            f"not a table: {type(table).__name__} (give a pandas, Polars or Dask DataFrame, a "
            "Polars LazyFrame, a pyarrow Table, or a Parquet file or folder)"
        )
    keys = [key] if isinstance(key, str) else list(key or ())
    resolve_mode(mode, 0, 1)  # a bad mode is one line before anything is read
    settings = options.get("settings") or current_settings()
    rows = row_count(table)
    streamed = (
        kind != "pandas"
        and files is None
        and not usage
        and (
            mode == "batch"
            or (mode == "auto" and (rows is None or rows >= settings.batch_threshold))
        )
    )
    columns = column_names(table)
    for name in keys:
        if name not in columns:
            from .rows import _missing_column

            raise PromptError(f"key: {_missing_column(name, columns, bare=True)}")
    if streamed:
        from .streaming import run_table

        streamed_job = run_table(
            table,
            template,
            task,
            model=model,
            system=system,
            max_tokens=max_tokens,
            effort=effort,
            yes=yes,
            wait=wait,
            **_options(options, pandas=False),
        )
        if not wait:
            return streamed_job
        note = streamed_job.failures_note()
        if note:
            say(note)
        if out is not None:
            if keys and kind != "parquet":
                raise PromptError("key: only for a Parquet table (the others give a column)")
            return streamed_job.write(out, key=keys, status=status is not False)
        return _arrow_back(streamed_job.table(status=status), kind, status)
    from . import entry

    row_template = make_template(columns, template, task)
    needed = {str(f.column) for f in row_template.fields} | set(keys)
    if files is not None:
        needed.add(files)
    frame = table if kind == "pandas" else _as_pandas(table, kind, sorted(needed))
    job = entry.run(
        frame,
        template,
        task,
        model=model,
        system=system,
        max_tokens=max_tokens,
        effort=effort,
        mode=mode,
        yes=yes,
        wait=wait,
        files=files,
        **_options(options, pandas=True),
    )
    if not wait:
        return job
    note = job.failures_note()
    if note:
        say(note)
    result = job.result(frame, status=status, usage=usage)
    if out is not None:
        return _write_pandas(result, frame, out, keys)
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
    files: Any = None,
    model: str | None = None,
    effort: str | None = None,
    system: str | None = None,
    max_tokens: int | None = None,
    mode: str = "auto",
    yes: bool = False,
    wait: bool = True,
    status: bool | None = None,
    usage: bool = False,
    **options: Any,
) -> Any:
    """A label per row of any table, as ``df.claude.label`` gives it (the options are its
    own). ``out``: write a Parquet file of ``key`` (the table's key columns; default ``row``,
    the row number) and the result columns, and return its path.

        jobs.label("reviews.parquet", "review", labels=["pos", "neg"], out="labels.parquet")
    """
    task = label_task(
        labels,
        multi=multi,
        descriptions=descriptions,
        examples=examples,
        abstain=abstain,
        rationale=rationale,
        confidence=confidence,
    )
    return _run(
        table,
        template_or_column,
        task,
        out=out,
        key=key,
        mode=mode,
        status=status if status is not None else (True if abstain else None),
        usage=usage,
        files=files,
        model=model,
        system=system,
        max_tokens=max_tokens,
        effort=effort,
        yes=yes,
        wait=wait,
        options=options,
    )


def extract(
    table: Any,
    template_or_column: Any,
    schema: Any,
    *,
    descriptions: Mapping[str, str] | None = None,
    out: Any = None,
    key: Sequence[str] | str | None = None,
    files: Any = None,
    model: str | None = None,
    system: str | None = None,
    max_tokens: int | None = None,
    mode: str = "auto",
    yes: bool = False,
    wait: bool = True,
    status: bool = True,
    usage: bool = False,
    **options: Any,
) -> Any:
    """Typed fields per row of any table, as ``df.claude.extract`` gives them."""
    return _run(
        table,
        template_or_column,
        extract_task(schema, descriptions=descriptions),
        out=out,
        key=key,
        mode=mode,
        status=status,
        usage=usage,
        files=files,
        model=model,
        system=system,
        max_tokens=max_tokens,
        effort=None,
        yes=yes,
        wait=wait,
        options=options,
    )


def map(
    table: Any,
    template: str,
    *,
    schema: Any = None,
    out: Any = None,
    key: Sequence[str] | str | None = None,
    files: Any = None,
    model: str | None = None,
    system: str | None = None,
    max_tokens: int | None = None,
    mode: str = "auto",
    yes: bool = False,
    wait: bool = True,
    status: bool = False,
    usage: bool = False,
    **options: Any,
) -> Any:
    """One answer per row of any table, as ``df.claude.map`` gives it."""
    return _run(
        table,
        template,
        map_task(schema),
        out=out,
        key=key,
        mode=mode,
        status=status or None,
        usage=usage,
        files=files,
        model=model,
        system=system,
        max_tokens=max_tokens,
        effort=None,
        yes=yes,
        wait=wait,
        options=options,
    )
