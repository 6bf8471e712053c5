"""Any table in (issue 16): Polars, Arrow, Parquet and Dask tables labelled as pandas frames
are, big ones streamed through batches (``jobs.streaming``) with nothing of their prompts in the
job store, a Parquet job killed mid-way and picked up, and tables that fight back."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dask.dataframe as dd
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from batch_support import FAST, LABELS, Jobs

import claude_magics.jobs.accessor
import claude_magics.jobs.polars  # noqa: F401  (registers frame.claude for Polars)
from claude_magics import jobs as cm_jobs
from claude_magics.emulator import Emulator
from claude_magics.jobs.store import JobStore
from claude_magics.jobs.tables import need
from claude_magics.jobs.wire import BatchLimits
from claude_magics.prompt import PromptError

# Each review names its label (the emulator labels those right), some twice: 12 rows, 7 distinct.
TEXTS = [
    "Great value, I would buy it again. positive",
    "Broke after two days. negative",
    "It does the job. neutral",
    "Arrived late and the box was damaged. negative",
    "Lovely colour and it fits well. positive",
    "Nothing special either way. neutral",
    "Stopped charging within a week. negative",
]
ROWS = [TEXTS[i % len(TEXTS)] for i in (0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 0, 4)]
EXPECTED = [text.rsplit(" ", 1)[1] for text in ROWS]


def options(jobs: Jobs, **more: Any) -> dict[str, Any]:
    """Where a test's jobs go: its emulator, store and ledger; fast polling; no bar; batches
    of 3 requests, so that even these few rows make several."""
    return {
        "client": jobs.client,
        "store": jobs.store,
        "ledger": jobs.ledger,
        "settings": FAST,
        "progress": False,
        "limits": BatchLimits(max_requests=3),
        **more,
    }


def frame() -> pd.DataFrame:
    return pd.DataFrame({"id": [100 + i for i in range(len(ROWS))], "review": ROWS})


def parquet(tmp_path: Path, name: str = "reviews.parquet") -> Path:
    path = tmp_path / name
    pq.write_table(pa.Table.from_pandas(frame(), preserve_index=False), path, row_group_size=5)
    return path


def values(result: Any) -> list[Any]:
    """The labels of a result of any kind, as a list."""
    if isinstance(result, pa.Table):
        return result.column("label").to_pylist()
    if isinstance(result, (pl.Series, pd.Series)):
        return [str(v) for v in result.to_list()]
    raise AssertionError(type(result))


# --------------------------------------------------------------------------------------------
# The same labels from every kind of table


def test_the_same_labels_from_every_kind_of_table(jobs: Jobs, tmp_path: Path) -> None:
    from claude_magics.jobs.stream_job import StreamJob

    pandas_labels = frame().claude.label("review", LABELS, mode="batch", **options(jobs))
    assert values(pandas_labels) == EXPECTED
    pandas_creates = len(jobs.creates())

    polars_frame = pl.from_pandas(frame())
    got = {
        "polars": polars_frame.claude.label("review", LABELS, mode="batch", **options(jobs)),
        "lazy": polars_frame.lazy().claude.label("review", LABELS, mode="batch", **options(jobs)),
        "arrow": cm_jobs.label(
            pa.Table.from_pandas(frame()), "review", LABELS, mode="batch", **options(jobs)
        ),
        "parquet": cm_jobs.label(
            str(parquet(tmp_path)), "review", LABELS, mode="batch", **options(jobs)
        ),
        "dask": cm_jobs.label(
            dd.from_pandas(frame(), npartitions=3), "review", LABELS, mode="batch", **options(jobs)
        ),
    }
    for kind, result in got.items():
        assert values(result) == EXPECTED, kind
    assert isinstance(got["polars"], pl.Series) and got["polars"].dtype == pl.Categorical
    assert isinstance(got["dask"], pd.Series)
    # Every streamed job went through batches of at most 3 requests, each prompt sent once a job.
    streamed = list(jobs.creates()[pandas_creates:])
    assert streamed and all(len(r.body["requests"]) <= 3 for r in streamed)
    kinds = [
        JobStore(jobs.store.path).get(record.id) for record in JobStore(jobs.store.path).jobs()
    ]
    tables = [r for r in kinds if r is not None and "table" in r.spec]
    assert tables and all(r.n_prompts == len(TEXTS) and r.n_rows == len(ROWS) for r in tables)
    for record in tables:
        ids = [
            item["custom_id"]
            for request in streamed
            for item in request.body["requests"]
            if item["custom_id"].startswith(record.id.removeprefix("job_"))
        ]
        assert len(ids) == len(set(ids)) == len(TEXTS)
    # attach in a "fresh kernel" gives a streamed job back as one, with its results.
    again = jobs.attach(tables[0].id)
    assert isinstance(again, StreamJob) and values(again.table()) == EXPECTED


def test_a_parquet_job_writes_keys_and_labels_and_keeps_no_prompt(
    jobs: Jobs, tmp_path: Path
) -> None:
    folder = tmp_path / "dataset"
    folder.mkdir()
    whole = frame()
    for part, start in enumerate(range(0, len(whole), 5)):  # a dataset of three files
        piece = whole.iloc[start : start + 5]
        pq.write_table(
            pa.Table.from_pandas(piece, preserve_index=False), folder / f"{part}.parquet"
        )
    out = cm_jobs.label(
        str(folder),
        "review",
        LABELS,
        out=tmp_path / "labels.parquet",
        key="id",
        mode="batch",
        **options(jobs),
    )
    written = pq.read_table(out).to_pandas()
    assert list(written.columns) == ["id", "label", "claude_status"]
    assert written["id"].tolist() == whole["id"].tolist()
    assert written["label"].astype(str).tolist() == EXPECTED
    assert set(written["claude_status"]) == {"succeeded"}
    # No prompt is in the job store: the file, by its hash, reproduces them.
    jobs.store.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("jobs.sqlite*"))
    assert b"Lovely colour" not in stored and b"Stopped charging" not in stored
    # Running the same call again attaches: nothing new is created.
    before = len(jobs.creates())
    again = cm_jobs.label(str(folder), "review", LABELS, mode="batch", **options(jobs))
    assert values(again) == EXPECTED and len(jobs.creates()) == before
    # Without key, the row number stands beside the labels.
    plain = cm_jobs.label(
        str(folder), "review", LABELS, out=tmp_path / "plain.parquet", mode="batch", **options(jobs)
    )
    assert pq.read_table(plain).column("row").to_pylist() == list(range(len(ROWS)))


def test_a_small_polars_frame_runs_as_a_pandas_job_in_realtime(jobs: Jobs) -> None:
    polars_frame = pl.from_pandas(frame())
    result = polars_frame.claude.label("review", LABELS, **options(jobs))  # auto: few rows
    assert isinstance(result, pl.Series) and values(result) == EXPECTED
    assert not jobs.creates() and jobs.messages()
    fields = polars_frame.claude.extract("review", {"mood": LABELS}, **options(jobs))
    assert isinstance(fields, pl.DataFrame) and "claude_status" in fields.columns


def test_retry_of_a_streamed_job_reads_its_prompts_again_from_the_table(
    jobs: Jobs, emulator: Emulator, tmp_path: Path
) -> None:
    path = parquet(tmp_path)
    job = cm_jobs.label(str(path), "review", LABELS, mode="batch", wait=False, **options(jobs))
    job.wait()
    before = len(jobs.creates())
    job.retry(["succeeded"])  # everything again: the prompts come from the file
    resent = [item for r in jobs.creates()[before:] for item in r.body["requests"]]
    assert len(resent) == len(TEXTS)
    texts = {"".join(b["text"] for b in i["params"]["messages"][-1]["content"]) for i in resent}
    assert texts == {f"<review>{t}</review>" for t in TEXTS}
    assert values(job.table()) == EXPECTED


def test_extract_and_map_stream_typed_columns(jobs: Jobs, tmp_path: Path) -> None:
    path = str(parquet(tmp_path))
    schema = {"mood": LABELS, "stars": int}
    streamed = cm_jobs.extract(path, "review", schema, mode="batch", **options(jobs))
    held = frame().claude.extract("review", schema, mode="batch", **options(jobs))
    assert streamed.column_names == ["mood", "stars", "claude_status"]
    assert streamed.schema.field("stars").type == pa.int64()
    assert streamed.column("mood").to_pylist() == held["mood"].astype(str).tolist()
    assert streamed.column("stars").to_pylist() == held["stars"].tolist()
    text = cm_jobs.map(path, "Say something about {{review}}", mode="batch", **options(jobs))
    assert text.column_names == ["answer"] and all(text.column("answer").to_pylist())


# --------------------------------------------------------------------------------------------
# Killed mid-way, picked up


def test_a_parquet_job_killed_mid_way_is_picked_up_complete_and_aligned(
    jobs: Jobs, emulator: Emulator, tmp_path: Path
) -> None:
    n = 60  # 30 distinct, in batches of 2: 15 batches, created as the file is read
    rows = [f"Review {i % 30}: " + ("positive" if i % 3 else "negative") for i in range(n)]
    table = pa.table({"id": list(range(1000, 1000 + n)), "review": rows})
    path = tmp_path / "many.parquet"
    pq.write_table(table, path, row_group_size=7)
    out = tmp_path / "labels.parquet"
    emulator.configure(latency=0.15, batch_processing_seconds=600)
    call = (
        f"jobs.label({str(path)!r}, 'review', LABELS, out={str(out)!r}, key='id', mode='batch', "
        "progress=False, limits=BatchLimits(max_requests=2), settings=FAST)"
    )
    child = jobs.child(
        "from claude_magics.jobs.wire import BatchLimits\n"
        "from claude_magics.config import Settings\n"
        "FAST = Settings(batch_poll_seconds=0.02, batch_poll_max_seconds=0.05, "
        "lost_create_grace_seconds=0.3)\n" + call + "\n"
    )
    try:
        deadline = time.monotonic() + 60
        while len(jobs.creates()) < 4:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the child never got going"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)  # mid-read: more batches were still to come
    finally:
        child.kill()
        child.wait()
    created_before = len(jobs.creates())
    (record,) = JobStore(jobs.store.path).jobs()
    assert not record.spec["table"]["read"] and not out.exists()

    emulator.configure(latency=0.0, batch_processing_seconds=0.05)
    emulator.advance_clock(700)
    result = cm_jobs.label(
        str(path),
        "review",
        LABELS,
        out=out,
        key="id",
        mode="batch",
        **options(jobs, limits=BatchLimits(max_requests=2)),
    )
    assert Path(result) == out
    written = pq.read_table(out).to_pandas()
    assert written["id"].tolist() == list(range(1000, 1000 + n))
    assert written["label"].astype(str).tolist() == [r.rsplit(" ", 1)[1] for r in rows]
    assert set(written["claude_status"]) == {"succeeded"}
    # Every distinct prompt was sent once, across the killed run and the one that went on.
    ids = [item["custom_id"] for r in jobs.creates() for item in r.body["requests"]]
    assert len(ids) == len(set(ids)) == 30
    assert len(jobs.creates()) > created_before
    (again,) = JobStore(jobs.store.path).jobs()
    assert again.id == record.id and again.spec["table"]["read"]


# --------------------------------------------------------------------------------------------
# Tables that fight back


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text.strip(), text
    return text


def test_tables_that_fight_back_are_one_line(jobs: Jobs, tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("not parquet at all")
    (junk / "data.parquet").write_bytes(b"PAR1 and then garbage")
    with pytest.raises(PromptError) as error:
        cm_jobs.label(str(junk), "review", LABELS, mode="batch", **options(jobs))
    assert "Parquet" in one_line(error.value)

    with pytest.raises(PromptError) as error:
        cm_jobs.label(str(parquet(tmp_path)), "reveiw", LABELS, mode="batch", **options(jobs))
    assert "did you mean 'review'" in one_line(error.value)

    with pytest.raises(PromptError) as error:
        cm_jobs.label("/dev/zero", "review", LABELS, mode="batch", **options(jobs))
    assert "not a regular file" in one_line(error.value)

    with pytest.raises(PromptError) as error:
        cm_jobs.label(str(tmp_path / "nowhere.parquet"), "review", LABELS, **options(jobs))
    assert "no such file" in one_line(error.value)

    with pytest.raises(PromptError) as error:
        cm_jobs.label(
            str(parquet(tmp_path)),
            "review",
            LABELS,
            key="ident",
            mode="batch",
            out=tmp_path / "o.parquet",
            **options(jobs),
        )
    assert "key: no column named 'ident'" in one_line(error.value)

    with pytest.raises(PromptError) as error:
        cm_jobs.label([1, 2, 3], "review", LABELS, **options(jobs))
    assert "not a table" in one_line(error.value)

    # Where the results would go is checked before anything is sent: answers paid for and
    # then with nowhere to go were a pyarrow traceback.
    for out, said in [
        (tmp_path, "is a folder"),
        (tmp_path / "no" / "such" / "labels.parquet", "is not a folder"),
        (42, "give a file path"),
    ]:
        with pytest.raises(PromptError) as error:
            cm_jobs.label(pl.from_pandas(frame()), "review", LABELS, out=out, **options(jobs))
        assert said in one_line(error.value)
    assert not jobs.creates() and not jobs.messages()


@pytest.mark.parametrize("mode", ["realtime", "batch"])
def test_a_results_file_that_cannot_be_written_keeps_the_answers(
    jobs: Jobs, tmp_path: Path, mode: str
) -> None:
    from file_faults import tmpfs

    table = pl.from_pandas(frame())
    with tmpfs(tmp_path / "full", "size=4k") as full:
        (full / "filler").write_bytes(b"x" * 4096)  # the file system is full
        with pytest.raises(PromptError) as error:
            cm_jobs.label(table, "review", LABELS, out=full / "labels.parquet", mode=mode,
                          **options(jobs))  # fmt: skip
    text = one_line(error.value)
    assert "could not be written" in text and "the answers are kept in job job_" in text
    sent = (len(jobs.creates()), len(jobs.messages()))
    assert sum(sent) > 0
    # As the line says: the same call with another out= writes them and sends nothing.
    out = cm_jobs.label(
        table, "review", LABELS, out=tmp_path / "labels.parquet", mode=mode, **options(jobs)
    )
    assert pq.read_table(out).column("label").to_pylist() == EXPECTED
    assert (len(jobs.creates()), len(jobs.messages())) == sent


def test_a_missing_extra_names_its_pip_install() -> None:
    with pytest.raises(PromptError) as error:
        need("dask_but_not_installed")
    assert "pip install" in one_line(error.value)


def test_polars_is_imported_only_when_used() -> None:
    def run(code: str) -> list[str]:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    light = "import sys, claude_magics, claude_magics.jobs\n" + (
        "print(*(m in sys.modules for m in ('polars', 'pyarrow', 'dask', 'numpy')))"
    )
    assert run(light) == ["False", "False", "False", "False"]
    # Polars imported first: claude_magics.jobs registers .claude on its frames.
    used = "import polars as pl\nimport claude_magics.jobs\n" + (
        "print(hasattr(pl.DataFrame({'a': [1]}), 'claude'), hasattr(pl.LazyFrame, 'claude'))"
    )
    assert run(used) == ["True", "True"]


def test_a_template_without_columns_is_refused_before_anything_is_sent(
    jobs: Jobs, tmp_path: Path
) -> None:
    with pytest.raises(PromptError):
        cm_jobs.label(str(parquet(tmp_path)), "Classify it", LABELS, mode="batch", **options(jobs))
    assert not jobs.creates() and not list(tmp_path.glob("jobs-tables/*"))


def test_load_ext_registers_polars_frames_only_once_polars_comes() -> None:
    probe = """
import sys
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.history_manager.enabled = False
ip.run_line_magic("load_ext", "claude_magics")
ip.run_cell("x = 1")
print("after load_ext:", "polars" in sys.modules, "pyarrow" in sys.modules)
ip.run_cell("import polars as pl\\nok = hasattr(pl.DataFrame({'a': [1]}).lazy(), 'claude')")
print("claude in the same cell:", ip.user_ns["ok"])
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "after load_ext: False False" in out.stdout
    assert "claude in the same cell: True" in out.stdout


# --------------------------------------------------------------------------------------------
# Estimates before sending


def test_the_same_estimates_from_every_kind_of_table(jobs: Jobs, tmp_path: Path) -> None:
    asked = {"labels": LABELS, "compare": ("claude-sonnet-5-5",)}
    held = frame().claude.estimate("review", client=jobs.client, **asked)
    assert held["requests"].tolist()[0] == len(TEXTS)
    polars_frame = pl.from_pandas(frame())
    # mode="batch": each is estimated as the streamed job it would be, read a part at a time.
    where = {"mode": "batch", "store": jobs.store, **asked}
    got = {
        "polars": polars_frame.claude.estimate("review", **where),
        "lazy": polars_frame.lazy().claude.estimate("review", **where),
        "arrow": cm_jobs.estimate_cost(pa.Table.from_pandas(frame()), "review", **where),
        # Row groups of 5: rows 7 and 10 repeat a prompt of the first group.
        "parquet": cm_jobs.estimate_cost(str(parquet(tmp_path)), "review", **where),
        "dask": cm_jobs.estimate_cost(dd.from_pandas(frame(), npartitions=3), "review", **where),
    }
    for kind, table in got.items():
        pd.testing.assert_frame_equal(table, held, check_like=False, obj=kind)
        note = table.attrs["note"]
        assert f"{len(ROWS)} rows, {len(TEXTS)} distinct prompts" in note, kind
        assert "read a row group at a time" in note and "64-bit hash" in note, kind
    # The figures are the pandas job's: priced from the session's prices, on each model.
    assert "if claude-sonnet-5-5 ($)" in held.columns
    # A small table without mode="batch" would run as a pandas job: estimated as one.
    small = polars_frame.claude.estimate("review", client=jobs.client, **asked)
    pd.testing.assert_frame_equal(small, held)
    assert "row group" not in small.attrs["note"]
    # Extract and map are estimated too; nothing was sent, no snapshot is left behind.
    schema = {"mood": LABELS, "stars": int}
    fields = cm_jobs.estimate_cost(
        str(parquet(tmp_path)), "review", schema=schema, mode="batch", store=jobs.store
    )
    assert fields["requests"].tolist()[0] == len(TEXTS)
    assert not jobs.creates() and not jobs.messages()
    assert not list(jobs.home.glob("jobs-tables/*"))


def test_a_big_parquet_estimate_counts_distinct_prompts_across_row_groups(
    jobs: Jobs, tmp_path: Path
) -> None:
    n = 50_000  # 3 row groups of 20,000 and more; 1,234 distinct prompts spread over all
    reviews = [f"Review number {i % 1234}: fine" for i in range(n)]
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"review": reviews}), path, row_group_size=20_000)
    table = cm_jobs.estimate_cost(str(path), "review", labels=LABELS, compare=(), store=jobs.store)
    assert table["requests"].tolist()[0] == 1234
    assert "50,000 rows, 1,234 distinct prompts" in table.attrs["note"]
    # The same prompts held in pandas give the same tokens and cost.
    held = pd.DataFrame({"review": reviews}).claude.estimate(
        "review", labels=LABELS, compare=(), client=jobs.client
    )
    pd.testing.assert_frame_equal(table, held)


# --------------------------------------------------------------------------------------------
# Key columns of in-memory tables


def keyed() -> pd.DataFrame:
    whole = frame()
    whole["shop"] = ["north" if i % 2 else "south" for i in range(len(whole))]
    return whole


@pytest.mark.parametrize("kind", ["polars", "lazy", "arrow", "dask", "pandas", "small-polars"])
def test_key_columns_of_in_memory_tables_round_trip(jobs: Jobs, tmp_path: Path, kind: str) -> None:
    source = keyed()
    tables = {
        "polars": lambda: pl.from_pandas(source),
        "lazy": lambda: pl.from_pandas(source).lazy(),
        "arrow": lambda: pa.Table.from_pandas(source, preserve_index=False),
        "dask": lambda: dd.from_pandas(source, npartitions=3),
        "pandas": lambda: source,
        "small-polars": lambda: pl.from_pandas(source),
    }
    mode = "auto" if kind == "small-polars" else "batch"  # small: a pandas job in realtime
    out = tmp_path / "labels.parquet"
    result = cm_jobs.label(
        tables[kind](), "review", LABELS, out=out, key=["id", "shop"], mode=mode, **options(jobs)
    )
    assert Path(result) == out
    written = pq.read_table(out).to_pandas()
    assert list(written.columns) == ["id", "shop", "label", "claude_status"]
    assert written["id"].tolist() == source["id"].tolist()
    assert written["shop"].tolist() == source["shop"].tolist()
    assert written["label"].astype(str).tolist() == EXPECTED
    if kind not in ("pandas", "small-polars"):
        # The key columns are kept with the streamed job: attached in a fresh kernel, it
        # writes them again.
        (record,) = [r for r in JobStore(jobs.store.path).jobs() if "table" in r.spec]
        again = jobs.attach(record.id).write(tmp_path / "again.parquet", key=["shop", "id"])
        pd.testing.assert_frame_equal(
            pq.read_table(again).to_pandas(), written[["shop", "id", "label", "claude_status"]]
        )
    # A key changes nothing of what is asked: the same call without one attaches, sends nothing.
    before = (len(jobs.creates()), len(jobs.messages()))
    again = cm_jobs.label(tables[kind](), "review", LABELS, key="id", mode=mode, **options(jobs))
    assert values(again) == EXPECTED
    assert (len(jobs.creates()), len(jobs.messages())) == before
    assert not list(jobs.home.glob("jobs-tables/*/snapshot-*"))  # the key snapshot is gone
    with pytest.raises(PromptError) as error:
        cm_jobs.label(tables[kind](), "review", LABELS, out=out, key="idd", **options(jobs))
    text = one_line(error.value)
    assert "key: no column named 'idd' (did you mean 'id'?)" in text and "shop" in text


# --------------------------------------------------------------------------------------------
# A file per row, streamed


def test_files_on_a_streamed_job_upload_each_distinct_file_once(
    jobs: Jobs, emulator: Emulator, tmp_path: Path, capsys: Any
) -> None:
    import hashlib

    from test_job_documents import documents_sent, invoices, uploads_of

    from claude_magics.api.uploads import FileStore, Uploads

    held = invoices(tmp_path / "pdfs", 10, distinct=4)  # 10 rows; row i has PDF i % 4
    held.loc[7, "pdf"] = str(tmp_path / "gone.pdf")  # a missing file: that row's error
    # A prompt is a row's text and its file: row 9 asks what row 1 asks, of the same PDF
    # (sent once); row 6 asks it too, of another PDF (sent on its own).
    held.loc[[6, 9], "name"] = "invoice 1"
    held["id"] = [500 + i for i in range(len(held))]
    path = tmp_path / "invoices.parquet"
    pq.write_table(pa.Table.from_pandas(held, preserve_index=False), path, row_group_size=3)
    uploads = Uploads(FileStore(jobs.home / "files.sqlite"))
    out = tmp_path / "vendors.parquet"
    schema = {"vendor": str, "total": float}
    call = {"files": "pdf", "mode": "batch", "uploads": uploads, **options(jobs)}
    written = cm_jobs.extract(str(path), "Read {{name}}", schema, out=out, key="id", **call)
    assert Path(written) == out
    # Each distinct PDF uploaded once, whichever row group it first came in.
    assert len(uploads_of(emulator)) == 4
    # Each distinct prompt sent once (10 rows, one without a file, one repeating another),
    # in batches of 3, with the Files API's beta.
    params = list(jobs.batch_params())
    assert len(params) == 8 and all(len(r.body["requests"]) <= 3 for r in jobs.creates())
    assert all("files-api-2025-04-14" in r.headers["anthropic-beta"] for r in jobs.creates())

    # Each request carries its own row's file, by the id its upload got.
    def file_id(pdf: str) -> str:
        known = uploads.known(jobs.client, hashlib.sha256(Path(pdf).read_bytes()).hexdigest())
        assert known is not None
        return known.file_id

    sent = [
        (
            "".join(b["text"] for b in p["messages"][0]["content"] if b["type"] == "text"),
            documents_sent(p)[0]["source"]["file_id"],
        )
        for p in params
    ]
    rows = held.drop(index=7)
    expected = {
        (f"<name>{n}</name>", file_id(pdf)) for n, pdf in zip(rows.name, rows.pdf, strict=True)
    }
    assert len(set(sent)) == len(sent) == len(expected) == 8 and set(sent) == expected
    ids = [i for _, i in sent]
    assert len(set(ids)) == 4 and all(i.startswith("file_") for i in ids)
    # Results aligned to the rows, the missing file that row's error.
    result = pq.read_table(out).to_pandas()
    assert result["id"].tolist() == held["id"].tolist()
    statuses = result["claude_status"].tolist()
    assert statuses[7] == "errored:file_error"
    assert statuses[:7] + statuses[8:] == ["succeeded"] * 9
    assert result["vendor"].notna().sum() == 9
    said = capsys.readouterr().out
    assert "1 of 9 distinct prompts have no file to send" in said and "gone.pdf" in said
    # The note under the result says what brings that row back (a retry leaves it as it is).
    assert "fix or replace their files, then run the same call with fresh=True" in said
    # The estimate of the streamed job counts the documents as the pandas job's does.
    asked = {"schema": schema, "files": "pdf", "compare": (), "client": jobs.client}
    streamed_estimate = cm_jobs.estimate_cost(
        str(path), "Read {{name}}", mode="batch", store=jobs.store, **asked
    )
    held_estimate = held.claude.estimate("Read {{name}}", **asked)
    pd.testing.assert_frame_equal(streamed_estimate, held_estimate)
    assert "documents about" in streamed_estimate.attrs["note"]
    assert "row group" in streamed_estimate.attrs["note"]
    # The same call again attaches: nothing uploaded or sent again.
    before = (len(uploads_of(emulator)), len(jobs.creates()))
    job = cm_jobs.extract(str(path), "Read {{name}}", schema, wait=False, **call)
    job.wait()
    assert (len(uploads_of(emulator)), len(jobs.creates())) == before
    # A retry lays the requests out again from the file, by the same ids, uploading nothing
    # (files.sqlite knows them); the row without a file stays as it is.
    job.retry(["succeeded", "errored"])
    again = [item["params"] for r in jobs.creates()[before[1] :] for item in r.body["requests"]]
    assert len(again) == 8 and len(uploads_of(emulator)) == 4
    assert {documents_sent(p)[0]["source"]["file_id"] for p in again} == set(ids)
    # A Polars frame with the same files streams as well (its snapshot keeps the paths): new
    # requests, but every file is known to files.sqlite, so nothing is uploaded again.
    sent_before = len(list(jobs.batch_params()))
    fields = pl.from_pandas(held).claude.extract("Read {{name}}", schema, **call)
    assert isinstance(fields, pl.DataFrame) and fields["claude_status"].to_list() == statuses
    assert len(list(jobs.batch_params())) == sent_before + 8 and len(uploads_of(emulator)) == 4


def test_a_file_deleted_while_a_streamed_batch_runs_is_uploaded_again(
    jobs: Jobs, emulator: Emulator, tmp_path: Path, capsys: Any
) -> None:
    import hashlib

    from test_job_documents import documents_sent, invoices, uploads_of

    from claude_magics.api.uploads import FileStore, Uploads

    held = invoices(tmp_path / "pdfs", 3, distinct=3)
    path = tmp_path / "invoices.parquet"
    pq.write_table(pa.Table.from_pandas(held, preserve_index=False), path)
    uploads = Uploads(FileStore(jobs.home / "files.sqlite"))
    call = {"files": "pdf", "mode": "batch", "uploads": uploads, **options(jobs, limits=None)}
    emulator.configure(batch_processing_seconds=30)
    cm_jobs.extract(str(path), "Read {{name}}", {"vendor": str}, wait=False, **call)
    sha = hashlib.sha256(Path(held.pdf[1]).read_bytes()).hexdigest()
    known = uploads.known(jobs.client, sha)
    assert known is not None
    jobs.client.files.delete(known.file_id)  # gone before the batch reads it
    emulator.advance_clock(60)  # the batch ends: row 1 is a 404, the others answered
    emulator.configure(batch_processing_seconds=0.05)
    # The same call again attaches, finds the 404, uploads that file again, sends that row.
    result = cm_jobs.extract(str(path), "Read {{name}}", {"vendor": str}, **call)
    assert result.column("claude_status").to_pylist() == ["succeeded"] * 3
    assert [len(c.body["requests"]) for c in jobs.creates()] == [3, 1]
    (resent,) = jobs.creates()[1].body["requests"]
    assert documents_sent(resent["params"])[0]["source"]["file_id"] != known.file_id
    assert len(uploads_of(emulator)) == 4  # three files, one of them twice
    assert "no longer had 1 of this job's files" in capsys.readouterr().out
