"""A PDF per row (``files=``) with citations, against the emulator: each distinct file uploaded
once and sent by ``file_id`` in batches and in realtime, a missing file a row's error, a
restart that uploads nothing again, and estimates that count the documents."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from batch_support import Jobs

from claude_magics.api.uploads import FileStore, Uploads
from claude_magics.emulator import Emulator
from claude_magics.jobs.store import JobStore
from claude_magics.jobs.tasks import extract_task, label_task, map_task

SCHEMA = {"vendor": str, "total": float}


def write_pdf(path: Path, pages: list[str]) -> Path:
    """A small PDF of one line of text a page (matplotlib's PDF backend)."""
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    with PdfPages(path, metadata={"CreationDate": None}) as pdf:
        for text in pages:
            figure = plt.figure(figsize=(4, 2))
            figure.text(0.05, 0.5, text)
            pdf.savefig(figure)
            plt.close(figure)
    return path


def invoices(folder: Path, n: int, distinct: int) -> pd.DataFrame:
    """``n`` rows of invoices, ``distinct`` different PDFs among them (copies under other
    names for the rest: the same content)."""
    folder.mkdir(exist_ok=True)
    made = [
        write_pdf(
            folder / f"invoice-{i}.pdf",
            [f"Invoice {1000 + i} from Vendor {i}.", f"Total due: {100 + i} EUR."],
        )
        for i in range(distinct)
    ]
    paths = []
    for i in range(n):
        if i < distinct:
            paths.append(str(made[i]))
        else:
            copy = folder / f"copy-{i}.pdf"
            copy.write_bytes(made[i % distinct].read_bytes())
            paths.append(str(copy))
    return pd.DataFrame({"name": [f"invoice {i}" for i in range(n)], "pdf": paths})


def uploads_of(emulator: Emulator) -> list[Any]:
    return [r for r in emulator.requests if r.method == "POST" and r.path == "/v1/files"]


def documents_sent(params: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in params["messages"][0]["content"] if b["type"] == "document"]


@pytest.fixture
def uploads(jobs: Jobs) -> Uploads:
    """The uploads another kernel on the same home would have (``files.sqlite`` there)."""
    return Uploads(FileStore(jobs.home / "files.sqlite"))


def test_an_extract_job_over_20_pdfs_uploads_each_once_and_cites_each_field(
    jobs: Jobs, emulator: Emulator, uploads: Uploads, tmp_path: Path, capsys: Any
) -> None:
    frame = invoices(tmp_path / "pdfs", 20, distinct=15)
    frame.loc[17, "pdf"] = str(tmp_path / "gone.pdf")  # a missing file: that row's error
    task = extract_task(SCHEMA)
    job = jobs.run(
        frame,
        "Read {{name}}",
        _cited(task),
        mode="batch",
        files="pdf",
        uploads=uploads,
    )
    out = job.result(frame)
    # Each distinct PDF once (the missing one's content was never there), by file_id.
    assert len(uploads_of(emulator)) == 15
    params = list(jobs.batch_params())
    assert len(params) == 19  # 20 rows, the missing file not sent
    ids = {documents_sent(p)[0]["source"]["file_id"] for p in params}
    assert len(ids) == 15 and all(i.startswith("file_") for i in ids)
    assert all(documents_sent(p)[0]["citations"] == {"enabled": True} for p in params)
    assert all("output_config" not in p or "format" not in p["output_config"] for p in params)
    (create,) = jobs.creates()
    assert "files-api-2025-04-14" in create.headers["anthropic-beta"]
    # The citation columns, typed; every answered row cites a page of its own document.
    assert list(out.columns) == [
        "vendor",
        "total",
        "vendor_cite_page",
        "vendor_cite_text",
        "total_cite_page",
        "total_cite_text",
        "claude_status",
    ]
    assert str(out["vendor_cite_page"].dtype) == "Int64"
    assert str(out["vendor_cite_text"].dtype) == "string"
    good = out.drop(index=17)
    assert (good.claude_status == "succeeded").all()
    assert good.vendor_cite_page.between(1, 2).all()
    assert good.vendor_cite_text.str.contains("Invoice|Total").all()
    assert out.loc[17, "claude_status"] == "errored:file_error"
    said = capsys.readouterr().out
    assert "1 of 20 rows have no file to send" in said and "gone.pdf" in said


def _cited(task: Any) -> Any:
    from dataclasses import replace

    return replace(task, citations=True)


def test_realtime_sends_file_ids_and_a_rerun_uploads_and_sends_nothing(
    jobs: Jobs, emulator: Emulator, uploads: Uploads, tmp_path: Path
) -> None:
    frame = invoices(tmp_path / "pdfs", 6, distinct=4)
    job = jobs.run(
        frame,
        "Read {{name}}",
        _cited(map_task(SCHEMA)),
        mode="realtime",
        files="pdf",
        uploads=uploads,
    )
    out = job.result(frame)
    assert (out.claude_status == "succeeded").all()
    assert out.vendor_cite_text.notna().all()
    sent = jobs.messages()
    assert len(sent) == 6 and len(uploads_of(emulator)) == 4
    assert all(documents_sent(r.body)[0]["source"]["type"] == "file" for r in sent)
    assert all("files-api" in r.headers["anthropic-beta"] for r in sent)
    # Another kernel (new uploads, same files.sqlite): attaches, uploads and sends nothing.
    again = jobs.run(
        frame,
        "Read {{name}}",
        _cited(map_task(SCHEMA)),
        mode="realtime",
        files="pdf",
        uploads=Uploads(FileStore(jobs.home / "files.sqlite")),
    )
    assert again.id == job.id
    assert len(jobs.messages()) == 6 and len(uploads_of(emulator)) == 4
    # A new job on the same files (another question): files.sqlite has them, none uploaded.
    labels = jobs.run(
        frame,
        "What is {{name}}?",
        label_task(["invoice", "other"]),
        mode="realtime",
        files="pdf",
        uploads=Uploads(FileStore(jobs.home / "files.sqlite")),
    )
    assert labels.result(frame).notna().all()
    assert len(uploads_of(emulator)) == 4


def test_bytes_and_url_columns(
    jobs: Jobs, emulator: Emulator, uploads: Uploads, tmp_path: Path
) -> None:
    pdf = write_pdf(tmp_path / "a.pdf", ["Invoice 7 from Acme.", "Total due: 9 EUR."]).read_bytes()
    frame = pd.DataFrame({"name": ["a", "b", "c"], "pdf": [pdf, pdf, b"not a pdf"]})
    out = jobs.run(
        frame,
        "Read {{name}}",
        extract_task(SCHEMA),
        mode="realtime",
        files="pdf",
        uploads=uploads,
    ).result(frame)
    assert len(uploads_of(emulator)) == 1
    assert list(out.claude_status) == ["succeeded", "succeeded", "errored:file_error"]
    from claude_magics.jobs.documents import key_block, read_files

    (row,) = read_files(pd.Series(["https://example.com/a.pdf?x=1"]))
    assert key_block(row, citations=True) == {
        "type": "document",
        "source": {"type": "url", "url": "https://example.com/a.pdf?x=1"},
        "citations": {"enabled": True},
    }
    (image,) = read_files(pd.Series(["https://example.com/cat.PNG"]))
    assert image.kind == "image"


def test_a_device_or_directory_is_a_row_error_never_a_hang(
    jobs: Jobs, uploads: Uploads, tmp_path: Path
) -> None:
    frame = invoices(tmp_path / "pdfs", 2, distinct=2)
    frame.loc[2] = ["dev", "/dev/zero"]
    frame.loc[3] = ["dir", str(tmp_path)]
    frame.loc[4] = ["none", None]
    out = jobs.run(
        frame,
        "Read {{name}}",
        extract_task(SCHEMA),
        mode="realtime",
        files="pdf",
        uploads=uploads,
    ).result(frame)
    assert list(out.claude_status) == ["succeeded"] * 2 + ["errored:file_error"] * 3


def test_the_api_refuses_citations_with_structured_output(
    emulator_api: Any, tmp_path: Path
) -> None:
    import base64

    pdf = base64.b64encode(write_pdf(tmp_path / "a.pdf", ["Hello."]).read_bytes()).decode()
    body = {
        "model": "claude-haiku-5-5",
        "max_tokens": 100,
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": pdf},
                        "citations": {"enabled": True},
                    },
                    {"type": "text", "text": "Who?"},
                ],
            }
        ],
        "output_config": {
            "format": {
                "type": "json_schema",
                "schema": {
                    "type": "object",
                    "properties": {"a": {"type": "string"}},
                    "required": ["a"],
                    "additionalProperties": False,
                },
            }
        },
    }
    response = emulator_api.request("POST", "/v1/messages", json=body)
    assert response.status_code == 400
    assert "Citations are not supported with structured outputs" in response.text


def test_label_refuses_citations(tmp_path: Path) -> None:
    import claude_magics.jobs.accessor  # noqa: F401

    frame = pd.DataFrame({"name": ["a"], "pdf": ["x.pdf"]})
    with pytest.raises(TypeError, match="structured output"):
        frame.claude.label("name", ["a", "b"], files="pdf", citations=True)


def test_restart_mid_job_uploads_nothing_again(
    jobs: Jobs, emulator: Emulator, tmp_path: Path
) -> None:
    frame = invoices(tmp_path / "pdfs", 20, distinct=20)
    frame.to_pickle(tmp_path / "frame.pkl")
    latency = 0.3
    emulator.configure(latency=latency)
    child = jobs.child(
        f"""
        from dataclasses import replace
        frame = pd.read_pickle({str(tmp_path / "frame.pkl")!r})
        task = replace(jobs.extract_task({{"vendor": str, "total": float}}), citations=True)
        jobs.run(frame, "Read {{{{name}}}}", task, mode="realtime", files="pdf", progress=False)
        print("finished", flush=True)
        """
    )
    try:
        deadline = time.monotonic() + 60
        while not _stored(jobs) >= 3:
            assert child.poll() is None, child.communicate()
            if time.monotonic() > deadline:
                child.kill()
                raise AssertionError(f"the child never got going: {child.communicate()}")
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert len(uploads_of(emulator)) == 20
    (record,) = JobStore(jobs.store.path).jobs()
    assert len(record.spec["file_ids"]) == 20  # the ids are in the job store
    stored = JobStore(jobs.store.path).results(record.id)
    before = len(jobs.messages())
    emulator.configure(latency=0)
    job = jobs.run(
        frame,
        "Read {{name}}",
        _cited(extract_task(SCHEMA)),
        mode="realtime",
        files="pdf",
        uploads=Uploads(FileStore(jobs.home / "files.sqlite")),
    )
    assert job.id == record.id
    assert (job.result(frame).claude_status == "succeeded").all()
    assert len(uploads_of(emulator)) == 20  # a restart re-uploads nothing
    assert len(jobs.messages()) - before == 20 - len(stored)  # only what had no answer


def test_a_file_the_api_lost_is_uploaded_again_and_its_rows_sent_once_more(
    jobs: Jobs, emulator: Emulator, uploads: Uploads, tmp_path: Path, capsys: Any
) -> None:
    """Realtime: files.sqlite names an upload another notebook has since deleted. Its rows
    come back 404; the file is uploaded again, the new id kept, and those rows sent again."""
    frame = invoices(tmp_path / "pdfs", 4, distinct=2)  # rows 0 and 2 have the same PDF
    stale = uploads.upload_path(jobs.client, frame.pdf[0])[0].file_id
    jobs.client.files.delete(stale)  # behind this job's back: files.sqlite still names it
    job = jobs.run(
        frame, "Read {{name}}", extract_task(SCHEMA), mode="realtime", files="pdf", uploads=uploads
    )
    out = job.result(frame)
    assert (out.claude_status == "succeeded").all(), out.claude_status.tolist()
    sent = [documents_sent(r.body)[0]["source"]["file_id"] for r in jobs.messages()]
    assert len(sent) == 4 + 2  # the two rows on the stale id, sent a second time
    assert sent.count(stale) == 2
    renewed = uploads.known(jobs.client, job.key_documents[0]["source"]["file_id"][7:])
    assert renewed is not None and renewed.file_id != stale and sent[-1] == renewed.file_id
    kept = JobStore(jobs.store.path).get(job.id)
    assert kept is not None and renewed.file_id in kept.spec["file_ids"].values()
    assert stale not in kept.spec["file_ids"].values()
    said = capsys.readouterr().out
    assert "the API no longer had 1 of this job's files" in said
    assert "sending their 2 requests once more" in said


def test_a_file_deleted_while_its_batch_runs_is_uploaded_again(
    jobs: Jobs, emulator: Emulator, uploads: Uploads, tmp_path: Path
) -> None:
    """Batch: the file is deleted after the batch was created, before it was processed (the
    API reads files when it processes a request). Re-running the call, as a user would,
    attaches, finds the 404s, uploads the file again and sends those rows in a new batch."""
    frame = invoices(tmp_path / "pdfs", 3, distinct=3)
    emulator.configure(batch_processing_seconds=30)
    task = _cited(extract_task(SCHEMA))
    job = jobs.run(
        frame, "Read {{name}}", task, mode="batch", files="pdf", uploads=uploads, wait=False
    )
    first = job.record.spec["file_ids"]
    lost = first[job.key_documents[1]["source"]["file_id"][7:]]
    jobs.client.files.delete(lost)
    emulator.advance_clock(60)  # the batch ends: row 1 errored, the others answered
    emulator.configure(batch_processing_seconds=0.05)
    again = jobs.run(frame, "Read {{name}}", task, mode="batch", files="pdf", uploads=uploads)
    assert again.id == job.id
    out = again.result(frame)
    assert (out.claude_status == "succeeded").all(), out.claude_status.tolist()
    assert out.vendor_cite_page.notna().all()
    creates = jobs.creates()
    assert [len(c.body["requests"]) for c in creates] == [3, 1]
    (resent,) = creates[1].body["requests"]
    assert documents_sent(resent["params"])[0]["source"]["file_id"] not in (lost, None)
    assert len(uploads_of(emulator)) == 4  # three files, one of them twice


def test_a_lost_file_that_cannot_be_uploaded_again_leaves_its_rows_errored(
    jobs: Jobs, emulator: Emulator, uploads: Uploads, tmp_path: Path, capsys: Any
) -> None:
    frame = invoices(tmp_path / "pdfs", 2, distinct=2)
    uploads.upload_path(jobs.client, frame.pdf[0])
    stale = uploads.upload_path(jobs.client, frame.pdf[1])[0].file_id
    jobs.client.files.delete(stale)
    emulator.configure(files_storage_bytes=1)  # the organisation's storage is full
    out = jobs.run(
        frame, "Read {{name}}", extract_task(SCHEMA), mode="realtime", files="pdf", uploads=uploads
    ).result(frame)
    assert list(out.claude_status) == ["succeeded", "errored:not_found_error"]
    said = capsys.readouterr().out
    assert "1 could not be uploaded again" in said
    assert "their rows stay errored:not_found_error" in said


def test_a_template_may_name_no_column_when_each_row_has_a_file(
    jobs: Jobs, emulator: Emulator, uploads: Uploads, tmp_path: Path
) -> None:
    """``extract("Read the invoice", schema, files="pdf")``: the file is the whole row. Rows
    with the same PDF are one request; each request is the file and a short fixed text."""
    frame = invoices(tmp_path / "pdfs", 3, distinct=2)[["pdf"]]
    job = jobs.run(
        frame,
        "Read the invoice and give its fields.",
        extract_task(SCHEMA),
        mode="realtime",
        files="pdf",
        uploads=uploads,
    )
    out = job.result(frame)
    assert (out.claude_status == "succeeded").all()
    assert out.vendor.tolist()[0] == out.vendor.tolist()[2]  # the same file, one answer
    sent = jobs.messages()
    assert len(sent) == 2
    content = sent[0].body["messages"][0]["content"]
    assert [b["type"] for b in content] == ["document", "text"]
    assert content[1]["text"] == "This row's file is above."
    system = " ".join(b["text"] for b in sent[0].body["system"])
    assert "Read the invoice and give its fields." in system and "as its file" in system
    # Without files= the same template is still refused, in one line.
    from claude_magics.errors import PromptError

    with pytest.raises(PromptError, match="names no column"):
        jobs.run(frame, "Read the invoice and give its fields.", extract_task(SCHEMA))


def test_a_cascade_sends_each_row_its_file_and_uploads_each_file_once(
    jobs: Jobs, emulator: Emulator, tmp_path: Path
) -> None:
    from batch_support import FAST

    import claude_magics.jobs.accessor  # noqa: F401  (registers df.claude)

    frame = invoices(tmp_path / "pdfs", 8, distinct=6)
    out = frame.claude.label(
        "Is {{name}} an invoice or a receipt?",
        ["invoice", "receipt"],
        cascade=["claude-haiku-5-5", "claude-sonnet-5-5"],
        threshold=0.99,  # nearly every row goes on to the second model
        mode="realtime",
        files="pdf",
        client=jobs.client,
        store=jobs.store,
        ledger=jobs.ledger,
        replayer=jobs.replayer,
        settings=FAST,
        progress=False,
        yes=True,
    )
    assert out["label"].notna().all()
    report = out.attrs["cascade"]
    assert report.stages[1].rows > 0
    sent = jobs.messages()
    assert len(sent) == 8 + report.stages[1].rows  # each row's prompt is distinct
    assert all(documents_sent(r.body)[0]["source"]["type"] == "file" for r in sent)
    assert len(uploads_of(emulator)) == 6  # the second model's rows reuse the uploads


def test_replayed_rows_upload_nothing_and_a_retry_of_them_says_how_to_send(
    jobs: Jobs, emulator: Emulator, uploads: Uploads, tmp_path: Path, capsys: Any
) -> None:
    frame = invoices(tmp_path / "pdfs", 3, distinct=3)
    ask = ("Read {{name}}", extract_task(SCHEMA))
    jobs.run(frame, *ask, mode="realtime", files="pdf", uploads=uploads)
    assert len(uploads_of(emulator)) == 3 and len(jobs.messages()) == 3
    # Another job store (another project), the same answers kept for replay: all replayed.
    other = JobStore(tmp_path / "other-jobs.sqlite")
    fresh_uploads = Uploads(FileStore(tmp_path / "other-files.sqlite"))
    job = jobs.run(frame, *ask, mode="realtime", files="pdf", uploads=fresh_uploads, store=other)
    assert (job.result(frame).claude_status == "succeeded").all()
    assert len(uploads_of(emulator)) == 3 and len(jobs.messages()) == 3  # nothing sent
    capsys.readouterr()
    job.retry(["succeeded"])
    assert len(jobs.messages()) == 3
    assert "3 of these prompts were replayed, so their files were never uploaded" in (
        capsys.readouterr().out
    )


def _stored(jobs: Jobs) -> int:
    """How many answers the job store has (0 before the job is written)."""
    store = JobStore(jobs.store.path)
    records = store.jobs() if jobs.store.path.exists() else []
    return len(store.results(records[0].id)) if records else 0


def test_the_estimate_counts_the_documents(jobs: Jobs, tmp_path: Path) -> None:
    from claude_magics.jobs.entry import plan_job

    frame = invoices(tmp_path / "pdfs", 8, distinct=8)
    common: dict[str, Any] = {
        "model": "claude-haiku-5-5",
        "client": jobs.client,
        "store": jobs.store,
        "settings": __import__("batch_support").FAST,
        "replayer": None,
    }
    plain = plan_job(frame, "Read {{name}}", extract_task(SCHEMA), **common)
    with_files = plan_job(frame, "Read {{name}}", extract_task(SCHEMA), files="pdf", **common)
    estimate, without = with_files.estimate(), plain.estimate()
    assert estimate.document_tokens > 8 * 100
    assert estimate.fresh_tokens >= without.fresh_tokens + estimate.document_tokens
    assert (estimate.worst_case("batch") or 0) > (without.worst_case("batch") or 0)
    assert "documents about" in estimate.note() and "an estimate" in estimate.note()
    assert "count_tokens on 5 of 8 files" in estimate.note()


def test_df_claude_estimate_counts_the_documents(jobs: Jobs, tmp_path: Path) -> None:
    import claude_magics.jobs.accessor  # noqa: F401

    frame = invoices(tmp_path / "pdfs", 4, distinct=4)
    table = frame.claude.estimate(
        "Read {{name}}",
        schema=SCHEMA,
        files="pdf",
        citations=True,
        client=jobs.client,
        replayer=jobs.replayer,
        compare=(),
    )
    plain = frame.claude.estimate(
        "Read {{name}}", schema=SCHEMA, client=jobs.client, replayer=jobs.replayer, compare=()
    )
    assert table["input tokens (est.)"].iloc[0] > plain["input tokens (est.)"].iloc[0] + 400
    assert "an estimate: count_tokens on 4 of 4 files" in table.attrs["note"]
