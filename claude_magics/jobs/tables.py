"""Any table as a job's rows: Parquet files and datasets, Arrow tables, Polars and Dask frames.

    source = open_table("reviews.parquet", folder)       # or a pyarrow Table, a Polars frame...
    for batch in source.batches(["review"], 20_000): ...  # pyarrow RecordBatches, in row order

A job streams its rows from a Parquet file (or a folder of them): read a row group at a time,
never whole, and named by a hash of the files' bytes, which with the template reproduces every
prompt. So the job store keeps no prompt: a prompt needed again (a retry, a batch body lost
before it was sent) is read again from the file, once the file is checked to be the same.

A table that is not a file (a pyarrow Table, a Polars DataFrame or LazyFrame, a Dask
DataFrame) is first written, only the columns the template reads, to a Parquet snapshot beside
the job store, a chunk at a time: a LazyFrame through Polars' streaming ``sink_parquet``, a Dask
frame partition by partition (never collected). From then on it is a file like any other, and
a job attached in a fresh kernel can still read its rows.

pyarrow, Polars and Dask are optional extras, imported on first use; a missing one is one line
naming the ``pip install`` that brings it.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..prompt import PromptError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["TableSource", "is_table", "need", "open_table", "table_kind"]

# The extra that brings each optional package.
_EXTRAS = {"pyarrow": "arrow", "polars": "polars", "dask": "dask"}
# Rows per row group of a snapshot.
_SNAPSHOT_ROWS = 65_536


def need(module: str) -> Any:
    """Import an optional package, or one line naming the ``pip install`` that brings it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        extra = _EXTRAS.get(top, top)
        raise PromptError(
            f"this needs {top}, which is not installed: pip install 'claude-magics[{extra}]'"
        ) from None


def table_kind(table: Any) -> str | None:
    """What kind of table ``table`` is ("parquet", "arrow", "polars", "polars-lazy", "dask",
    "pandas"), or None. Looks at the type's module only: nothing is imported."""
    if isinstance(table, (str, os.PathLike)):
        return "parquet"
    module = type(table).__module__.split(".")[0]
    name = type(table).__name__
    if module == "pyarrow" and name in ("Table", "RecordBatch"):
        return "arrow"
    if module == "pyarrow" and name in ("FileSystemDataset", "Dataset"):
        return "parquet"
    if module == "polars" and name == "DataFrame":
        return "polars"
    if module == "polars" and name == "LazyFrame":
        return "polars-lazy"
    if module == "dask" and name == "DataFrame":
        return "dask"
    if module == "pandas" and name == "DataFrame":
        return "pandas"
    return None


def is_table(value: Any) -> bool:
    return table_kind(value) is not None


@dataclass
class TableSource:
    """Parquet files read in row order, a row group at a time.

    ``files``: the files, in the order their rows count; ``display``: how the table is named
    in messages; ``snapshot``: the files are a snapshot of an in-memory table (owned by the
    job: removed when the snapshot turns out not to be needed)."""

    files: list[Path]
    display: str
    columns: list[str]
    n_rows: int
    snapshot: bool = False

    def batches(self, columns: Sequence[str], size: int) -> Iterator[pa.RecordBatch]:
        """The rows of ``columns`` (may be none: only the row counts), ``size`` at most a
        batch, file after file."""
        pq = need("pyarrow.parquet")
        for path in self.files:
            # Buffered reads of a megabyte, nothing read ahead: otherwise pyarrow holds whole
            # column chunks, and a big file's reading takes memory in proportion to it.
            reader = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
            try:
                yield from reader.iter_batches(
                    batch_size=size, columns=list(columns), use_threads=False
                )
            finally:
                reader.close()

    def fingerprint(self) -> str:
        """A hash of the files' bytes (and their order): equal only for the same rows."""
        digest = hashlib.blake2b(digest_size=20)
        for path in self.files:
            digest.update(b"\x00file\x00%d\x00" % path.stat().st_size)
            with open(path, "rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
        return digest.hexdigest()

    def stamp(self) -> list[list[Any]]:
        """Each file's path, size and modification time: what is checked before a file is read
        again for a job (the hash when these changed)."""
        stats = [(p, p.stat()) for p in self.files]
        return [[str(p), s.st_size, s.st_mtime_ns] for p, s in stats]

    def remove(self) -> None:
        """Remove a snapshot (never a user's file)."""
        if self.snapshot:
            for path in self.files:
                path.unlink(missing_ok=True)


def _parquet_files(where: Any) -> tuple[list[Path], str]:
    """The Parquet files of a path (a file, or a folder holding a dataset) or of a pyarrow
    dataset, in a fixed order; one line for anything else."""
    if not isinstance(where, (str, os.PathLike)):
        files = [Path(f) for f in getattr(where, "files", [])]
        if not files:
            raise PromptError("this pyarrow dataset lists no files: give its path instead")
        return sorted(files), f"a dataset of {len(files)} files"
    path = Path(os.fspath(where)).expanduser()
    shown = str(where)
    if not path.exists():
        raise PromptError(f"{shown}: no such file or folder (give a Parquet file or a folder)")
    if path.is_dir():
        ds = need("pyarrow.dataset")
        try:
            dataset = ds.dataset(path, format="parquet")
            files = sorted(Path(f) for f in dataset.files)
        except (OSError, ValueError) as error:
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise PromptError(f"{shown}: not a Parquet dataset ({first})") from None
        if not files:
            raise PromptError(f"{shown}: the folder holds no Parquet files")
        return files, shown
    if not path.is_file():
        raise PromptError(f"{shown}: not a regular file (a device or a pipe?): give a Parquet file")
    return [path], shown


def open_parquet(where: Any) -> TableSource:
    """A Parquet file, a folder of them, or a pyarrow dataset, as a source (its schema and row
    count read from the footers; no row is read)."""
    pq = need("pyarrow.parquet")
    files, shown = _parquet_files(where)
    columns: list[str] | None = None
    n_rows = 0
    for path in files:
        try:
            meta = pq.read_metadata(path)
            names = list(pq.read_schema(path).names)
        except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise PromptError(f"{path}: not a Parquet file ({first})") from None
        if columns is None:
            columns = names
        elif names != columns:
            raise PromptError(f"{path}: its columns differ from {files[0].name}'s")
        n_rows += meta.num_rows
    return TableSource(files, shown, columns or [], n_rows)


def _arrow_batches(table: Any, kind: str, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
    """The batches of an in-memory table's ``columns``, a part at a time."""
    if kind == "arrow":
        yield from table.select(list(columns)).to_batches(max_chunksize=_SNAPSHOT_ROWS)
    elif kind == "polars":
        for start in range(0, table.height, _SNAPSHOT_ROWS):
            part = table.slice(start, _SNAPSHOT_ROWS).select(list(columns))
            yield from part.to_arrow().to_batches()
    elif kind == "dask":
        pa = need("pyarrow")
        for i in range(table.npartitions):
            # One partition computed at a time: the frame is never collected.
            part = table.partitions[i][list(columns)].compute()
            yield from pa.Table.from_pandas(part, preserve_index=False).to_batches()
    else:  # pragma: no cover - callers pass only the kinds above
        raise AssertionError(kind)


def _columns_of(table: Any, kind: str) -> list[str]:
    if kind == "polars-lazy":
        return list(table.collect_schema().names())
    if kind == "arrow":
        return list(table.schema.names)
    return [str(c) for c in table.columns]


def snapshot(table: Any, kind: str, columns: Sequence[str], folder: Path) -> TableSource:
    """An in-memory table's ``columns`` written to a Parquet file in ``folder``, a part at a
    time (a LazyFrame by Polars' streaming engine; a Dask frame a partition at a time). The
    writer is deterministic, so the same rows give the same bytes and the same job."""
    pa = need("pyarrow")
    pq = need("pyarrow.parquet")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"snapshot-{secrets.token_hex(6)}.parquet"
    try:
        if kind == "polars-lazy":
            table.select(list(columns)).sink_parquet(path, row_group_size=_SNAPSHOT_ROWS)
        else:
            writer = None
            # Row groups of a fixed size whatever the table's own chunks: the same rows give
            # the same bytes.
            pending: list[Any] = []
            held = 0
            try:
                for batch in _arrow_batches(table, kind, columns):
                    part = pa.Table.from_batches([batch])
                    pending.append(part.cast(_plain_schema(pa, part.schema)))
                    held += part.num_rows
                    while held >= _SNAPSHOT_ROWS:
                        whole = pa.concat_tables(pending).combine_chunks()
                        if writer is None:
                            writer = pq.ParquetWriter(path, whole.schema)
                        writer.write_table(whole.slice(0, _SNAPSHOT_ROWS))
                        pending, held = [whole.slice(_SNAPSHOT_ROWS)], held - _SNAPSHOT_ROWS
                if held or writer is None:
                    whole = (
                        pa.concat_tables(pending).combine_chunks()
                        if pending
                        else pa.table({c: pa.array([], pa.string()) for c in columns})
                    )
                    if writer is None:
                        writer = pq.ParquetWriter(path, whole.schema)
                    writer.write_table(whole)
            finally:
                if writer is not None:
                    writer.close()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    meta = pq.read_metadata(path)
    return TableSource([path], "the table", list(columns), meta.num_rows, snapshot=True)


def _plain_schema(pa: Any, schema: Any) -> Any:
    """``schema`` with string views as plain strings (Polars' own string type), so that every
    part of a snapshot has one schema."""
    fields = []
    for field in schema:
        kind = field.type
        if str(kind) in ("string_view", "large_string"):
            kind = pa.string()
        elif str(kind) in ("binary_view", "large_binary"):
            kind = pa.binary()
        fields.append(pa.field(field.name, kind, field.nullable))
    return pa.schema(fields)


def open_table(table: Any, columns_needed: Sequence[str] | None, folder: Path) -> TableSource:
    """A source for any table: a Parquet path or dataset as it is; an in-memory table as a
    snapshot of ``columns_needed`` (None: every column) in ``folder``."""
    kind = table_kind(table)
    if kind == "parquet":
        return open_parquet(table)
    if kind is None or kind == "pandas":
        raise PromptError(
            f"not a table claude_magics reads: {type(table).__name__} (give a Parquet path, a "
            "pyarrow Table, a Polars or Dask DataFrame, or use df.claude on a pandas DataFrame)"
        )
    names = _columns_of(table, kind)
    wanted = names if columns_needed is None else list(columns_needed)
    return snapshot(table, kind, wanted, folder)


def column_names(table: Any) -> list[str]:
    """The column names of any table (a Parquet source's from its footer)."""
    kind = table_kind(table)
    if kind == "parquet":
        return open_parquet(table).columns
    if kind is None:
        return []
    return _columns_of(table, kind)


def row_count(table: Any) -> int | None:
    """How many rows a table has, when that is known without reading it (a Dask frame's and a
    LazyFrame's are not)."""
    kind = table_kind(table)
    if kind == "parquet":
        return open_parquet(table).n_rows
    if kind == "arrow":
        return int(table.num_rows)
    if kind in ("polars", "pandas"):
        return len(table)
    return None
