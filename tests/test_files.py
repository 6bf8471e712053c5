"""``client.files`` and ``anthropic-beta`` headers, against the emulator over real sockets."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from claude_magics.api.client import Client
from claude_magics.emulator import Emulator
from claude_magics.errors import (
    BadRequestError,
    ClaudeError,
    NotFoundError,
    PromptError,
    RequestBodyError,
)
from claude_magics.prompt import file_block

MODEL = "claude-sonnet-4-6"
BETA = "files-api-2025-04-14"
SECRET = "sk-files-secret-0123456789"
SALES = b"region,month,revenue\nnorth,jan,10\nsouth,jan,12\nwest,feb,7\n"


@pytest.fixture
def client(emulator: Emulator) -> Iterator[Client]:
    with Client(api_key=SECRET, base_url=emulator.url, initial_retry_delay=0.01) as client:
        yield client


def beta_header(emulator: Emulator) -> str | None:
    """The ``anthropic-beta`` header of the last request the emulator received."""
    return emulator.requests[-1].headers.get("anthropic-beta")


def ask(*blocks: dict[str, Any], text: str = "Summarise") -> list[dict[str, Any]]:
    return [{"role": "user", "content": [*blocks, {"type": "text", "text": text}]}]


def test_betas_merge_per_client_and_per_request(emulator: Emulator) -> None:
    client = Client(api_key="k", base_url=emulator.url, betas=["b-one", "b-two,b-one"])
    assert client.betas == ("b-one", "b-two")
    client.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "Hi"}])
    assert beta_header(emulator) == "b-one,b-two"
    client.messages.create(
        model=MODEL,
        max_tokens=20,
        messages=[{"role": "user", "content": "Hi"}],
        betas=["b-two", "b-three"],
    )
    assert beta_header(emulator) == "b-one,b-two,b-three"
    client.models.list(betas=["b-four"])
    assert beta_header(emulator) == "b-one,b-two,b-four"
    plain = Client(api_key="k", base_url=emulator.url)
    plain.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    assert beta_header(emulator) is None  # no betas, no header
    with pytest.raises(ValueError, match="spaces or non-ASCII"):
        Client(api_key="k", betas=["files api"])


def test_file_references_bring_the_files_beta(client: Client, emulator: Emulator) -> None:
    meta = client.files.upload(b"A short note about revenue.\n", filename="note.txt")
    assert beta_header(emulator) == BETA
    doc = {"type": "document", "source": {"type": "file", "file_id": meta["id"]}}
    client.messages.create(model=MODEL, max_tokens=50, messages=ask(doc), betas=["x-1"])
    assert beta_header(emulator) == f"x-1,{BETA}"
    client.messages.count_tokens(model=MODEL, messages=ask(doc))
    assert beta_header(emulator) == BETA
    with client.messages.stream(model=MODEL, max_tokens=50, messages=ask(doc)) as stream:
        assert stream.until_done()["type"] == "message"
    assert beta_header(emulator) == BETA
    batch = client.batches.create(
        [{"custom_id": "a", "params": {"model": MODEL, "max_tokens": 50, "messages": ask(doc)}}]
    )
    assert beta_header(emulator) == BETA and batch["request_counts"]["processing"] == 1
    client.messages.create(model=MODEL, max_tokens=20, messages=ask())
    assert beta_header(emulator) is None


def test_upload_list_retrieve_delete_round_trip(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    path.write_bytes(SALES)
    meta = client.files.upload(path)
    assert (meta["filename"], meta["mime_type"], meta["size_bytes"]) == (
        "sales.csv",
        "text/csv",
        len(SALES),
    )
    assert meta.request_id is not None
    other = client.files.upload(b"%PDF-1.4 not much of a pdf", filename="x.bin")
    assert other["mime_type"] == "application/pdf"  # judged by the bytes, not the name
    page = client.files.list(limit=1)
    assert [f["id"] for f in page] == [other["id"]] and page.has_more
    assert [f["id"] for f in client.files.iter_all(page_size=1)] == [other["id"], meta["id"]]
    assert client.files.retrieve(meta["id"]) == meta
    deleted = client.files.delete(meta["id"])
    assert deleted == {"id": meta["id"], "type": "file_deleted"}
    with pytest.raises(NotFoundError) as caught:
        client.files.retrieve(meta["id"])
    assert caught.value.error_type == "not_found_error"


def test_upload_streams_from_disk_with_progress(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"0123456789abcdef\n" * 200_000)  # 3.4 MB: four 1 MB pieces
    size = path.stat().st_size
    seen: list[tuple[int, int]] = []
    meta = client.files.upload(path, progress=lambda sent, total: seen.append((sent, total)))
    assert meta["size_bytes"] == size and meta["mime_type"] == "text/plain"
    assert seen[0] == (0, size) and seen[-1] == (size, size) and len(seen) == 5
    assert all(total == size for _, total in seen)


def test_an_upload_is_retried_whole(client: Client, emulator: Emulator) -> None:
    emulator.add_fault(status=529, path="/v1/files")
    seen: list[int] = []
    meta = client.files.upload(
        SALES, filename="sales.csv", progress=lambda sent, total: seen.append(sent)
    )
    assert meta["size_bytes"] == len(SALES)
    assert seen == [0, len(SALES), 0, len(SALES)]  # sent twice, from the first byte each time
    assert [r.status for r in emulator.requests] == [529, 200]


def test_download_is_refused_for_uploads_and_works_for_sandbox_output(client: Client) -> None:
    meta = client.files.upload(SALES, filename="sales.csv")
    with pytest.raises(BadRequestError) as caught:
        client.files.download(meta["id"])
    assert caught.value.error_code == "file_not_downloadable"
    assert caught.value.message == "File is not downloadable"
    message = client.messages.create(
        model=MODEL,
        max_tokens=400,
        tools=[{"type": "code_execution_20250825", "name": "code_execution"}],
        messages=ask(
            {"type": "container_upload", "file_id": meta["id"]},
            text="Calculate the revenue per region in this file and save it.",
        ),
    )
    (result,) = [b for b in message["content"] if b["type"] == "bash_code_execution_tool_result"]
    stdout = result["content"]["stdout"]
    assert stdout.startswith("sales.csv: 3 rows, 3 columns (region, month, revenue)")
    (output,) = result["content"]["content"]
    assert client.files.download(output["file_id"]) == stdout.encode()


def test_a_document_by_file_id_is_answered_and_counted(client: Client) -> None:
    text = "Revenue rose in every region this quarter.\n" * 30
    meta = client.files.upload(text.encode(), filename="report.txt")
    by_file = ask({"type": "document", "source": {"type": "file", "file_id": meta["id"]}})
    inline = ask({"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                                 "data": text}})  # fmt: skip
    counted = client.messages.count_tokens(model=MODEL, messages=by_file)
    assert counted == client.messages.count_tokens(model=MODEL, messages=inline)
    message = client.messages.create(model=MODEL, max_tokens=50, messages=by_file)
    assert message["usage"]["input_tokens"] == counted
    client.files.delete(meta["id"])
    with pytest.raises(NotFoundError, match=meta["id"]):
        client.messages.create(model=MODEL, max_tokens=50, messages=by_file)
    unknown = ask({"type": "document", "source": {"type": "file", "file_id": "file_011CNope"}})
    with pytest.raises(NotFoundError, match="file_011CNope"):
        client.messages.count_tokens(model=MODEL, messages=unknown)


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text, text
    return text


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_devices_fifos_folders_and_big_files_are_refused_before_sending(
    client: Client, emulator: Emulator, tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(RequestBodyError) as caught:
        client.files.upload(fifo)  # would block forever if opened
    assert (
        one_line(caught.value)
        == f"{fifo} is a FIFO, not a regular file: save its content to a file"
    )
    with pytest.raises(RequestBodyError, match="a device or socket"):
        client.files.upload("/dev/zero")
    with pytest.raises(RequestBodyError, match="is a directory"):
        client.files.upload(tmp_path)
    huge = tmp_path / "huge.bin"
    with huge.open("wb") as handle:
        handle.truncate(500 * 1024 * 1024 + 1)  # sparse: no disk used
    with pytest.raises(RequestBodyError) as caught:
        client.files.upload(huge)
    assert one_line(caught.value).endswith(
        "is 500.1 MB, over the 500.0 MB the Files API takes per file"
    )
    with pytest.raises(RequestBodyError, match="needs a filename"):
        client.files.upload(b"data")
    with pytest.raises(RequestBodyError, match="not a MIME type"):
        client.files.upload(b"data", filename="a.txt", media_type="text/plain\r\nX-Evil: 1")
    with pytest.raises(RequestBodyError, match="non-empty string"):
        client.files.retrieve("")
    assert emulator.requests == []  # nothing left the machine
    with pytest.raises(PromptError, match="is a FIFO"):  # attachments share the same check
        file_block(fifo)


def test_the_key_never_shows(
    emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = Client(api_key=SECRET, base_url=emulator.url, betas=[BETA], max_retries=1)
    texts = [repr(client), str(client.__dict__), repr(client.files)]
    meta = client.files.upload(SALES, filename="sales.csv")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    attempts = [
        lambda: client.files.download(meta["id"]),
        lambda: client.files.retrieve("file_011CNope"),
        lambda: client.files.upload(fifo),
    ]
    emulator.add_fault(status=529, path="/v1/files", count=2)
    attempts.append(lambda: client.files.list())
    for attempt in attempts:
        with pytest.raises(ClaudeError) as caught:
            attempt()
        error = caught.value
        texts += [str(error), repr(error), "\n".join(error._render_traceback_()), str(vars(error))]
    texts.append(caplog.text)
    texts += [str(r) for r in emulator.requests]
    assert f"betas=['{BETA}']" in repr(client)
    for text in texts:
        assert SECRET not in text


def test_the_official_sdk_uses_the_emulated_files_api(emulator: Emulator) -> None:
    sdk = anthropic.Anthropic(base_url=emulator.url, api_key="sdk-key", max_retries=0)
    meta = sdk.beta.files.upload(file=("sales.csv", SALES, "text/csv"), betas=[BETA])
    assert meta.filename == "sales.csv" and meta.size_bytes == len(SALES)
    assert sdk.beta.files.retrieve_metadata(meta.id, betas=[BETA]).id == meta.id
    assert [f.id for f in sdk.beta.files.list(betas=[BETA])] == [meta.id]
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk.beta.files.download(meta.id, betas=[BETA])
    assert caught.value.error_code == "file_not_downloadable"  # type: ignore[attr-defined]
    note = sdk.beta.files.upload(file=("note.txt", b"Revenue rose.\n", "text/plain"), betas=[BETA])
    message = sdk.beta.messages.create(
        model=MODEL,
        max_tokens=200,
        betas=[BETA],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "document", "source": {"type": "file", "file_id": note.id}},
                    {"type": "text", "text": "Summarise"},
                ],
            }
        ],
    )
    assert message.content[0].type == "text" and message.usage.input_tokens > 0
    assert sdk.beta.files.delete(meta.id, betas=[BETA]).id == meta.id
    with pytest.raises(anthropic.NotFoundError):
        sdk.beta.files.retrieve_metadata(meta.id, betas=[BETA])
