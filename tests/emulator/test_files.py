"""The emulator's Files API over HTTP: shapes against the spec's beta schemas, its rules, file
sources in messages, and the files the code-execution sandbox sees (container_upload)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from spec_validation import HEADERS, Api, check_error, check_event, validate

from claude_magics.emulator import Emulator

from .support import body, count_body, kinds, text_of
from .test_tokens import pdf, png

BETA = "files-api-2025-04-14"
CODE = {"type": "code_execution_20250825", "name": "code_execution"}
SALES = b"region,month,revenue\nnorth,jan,10\nsouth,jan,12\n\nwest,feb,7\neast,feb,9\n"


@pytest.fixture
def files_api(emulator: Emulator) -> Iterator[Api]:
    """An `Api` that sends the Files API beta, as the SDKs' beta clients do."""
    with Api(emulator.url, headers={**HEADERS, "anthropic-beta": BETA}) as api:
        yield api


def upload(
    api: Api, data: bytes, filename: str = "sales.csv", mime: str | None = "text/csv"
) -> dict[str, Any]:
    part = (filename, data, mime) if mime else (filename, data)
    response = api.request("POST", "/v1/files", files={"file": part})
    assert response.status_code == 200, response.text
    meta = response.json()
    validate(meta, "BetaFileMetadataSchema")
    return meta  # type: ignore[no-any-return]


def file_doc(file_id: str, **extra: Any) -> dict[str, Any]:
    return {"type": "document", "source": {"type": "file", "file_id": file_id}, **extra}


def test_upload_list_retrieve_delete(files_api: Api) -> None:
    first = upload(files_api, SALES)
    assert first["filename"] == "sales.csv" and first["mime_type"] == "text/csv"
    assert first["size_bytes"] == len(SALES) and first["downloadable"] is False
    assert first["id"].startswith("file_") and first["created_at"].endswith("Z")
    second = upload(files_api, b"just a note\n", "note.txt", None)
    assert second["mime_type"] == "text/plain"  # guessed from the name when not given
    listed = files_api.get("/v1/files", "BetaFileListResponse")
    assert [f["id"] for f in listed["data"]] == [second["id"], first["id"]]  # newest first
    page = files_api.get("/v1/files", "BetaFileListResponse", limit=1)
    assert page["has_more"] is True and page["first_id"] == page["last_id"] == second["id"]
    rest = files_api.get("/v1/files", "BetaFileListResponse", limit=1, after_id=second["id"])
    assert [f["id"] for f in rest["data"]] == [first["id"]] and rest["has_more"] is False
    assert files_api.get(f"/v1/files/{first['id']}", "BetaFileMetadataSchema") == first
    response = files_api.request("DELETE", f"/v1/files/{first['id']}")
    assert response.status_code == 200
    validate(response.json(), "BetaFileDeleteResponse")
    assert response.json() == {"id": first["id"], "type": "file_deleted"}
    for method, path in (("GET", ""), ("DELETE", ""), ("GET", "/content")):
        files_api.error(404, "not_found_error", method, f"/v1/files/{first['id']}{path}")


def test_ids_are_deterministic(emulator: Emulator, files_api: Api) -> None:
    ids = [upload(files_api, SALES)["id"], upload(files_api, SALES)["id"]]
    assert ids[0] != ids[1]  # the same bytes twice are two files
    emulator.reset()
    assert [upload(files_api, SALES)["id"], upload(files_api, SALES)["id"]] == ids


def test_the_files_api_is_a_beta(emulator_api: Api, files_api: Api) -> None:
    """Without the beta header the Files API's paths are answered as paths that do not exist
    (404); with it among others, or in a repeated header, they work."""
    meta = upload(files_api, SALES)
    for method, path in (
        ("GET", "/v1/files"),
        ("POST", "/v1/files"),
        ("GET", f"/v1/files/{meta['id']}"),
        ("DELETE", f"/v1/files/{meta['id']}"),
        ("GET", f"/v1/files/{meta['id']}/content"),
    ):
        error = emulator_api.error(404, "not_found_error", method, path)
        assert BETA in error["message"]
    headers = [
        *HEADERS.items(),
        ("anthropic-beta", "fast-mode-2026-02-01"),
        ("anthropic-beta", BETA),
    ]
    response = httpx.get(f"{emulator_api.client.base_url}/v1/files", headers=headers)
    assert response.status_code == 200, response.text


def test_uploaded_files_cannot_be_downloaded(files_api: Api) -> None:
    meta = upload(files_api, SALES)
    response = files_api.request("GET", f"/v1/files/{meta['id']}/content")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"] == "File is not downloadable"
    assert error["details"] == {"error_code": "file_not_downloadable"}


def test_upload_rules(emulator: Emulator, files_api: Api) -> None:
    post = files_api.request
    for name in ("a:b.csv", "a/b.csv", 'say "hi".txt', "x" * 256):
        response = post("POST", "/v1/files", files={"file": (name, b"data", "text/plain")})
        assert response.status_code == 400, name
        assert "filename" in response.json()["error"]["message"]
    response = post("POST", "/v1/files", data={"purpose": "x"}, files={"other": ("a.txt", b"x")})
    assert response.status_code == 400 and "file: Field required" in response.text
    response = post("POST", "/v1/files", json={"file": "not multipart"})
    assert response.status_code == 400 and "multipart/form-data" in response.text
    emulator.configure(files_storage_bytes=100)
    upload(files_api, b"x" * 60, "a.txt", "text/plain")
    response = post("POST", "/v1/files", files={"file": ("b.txt", b"y" * 60, "text/plain")})
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"error_code": "storage_quota_exceeded"}


def test_a_document_from_a_file_is_answered_and_counted_like_its_bytes(files_api: Api) -> None:
    text = "The quarterly report. Revenue rose in every region.\n" * 20
    meta = upload(files_api, text.encode(), "report.txt", "text/plain")
    ask = {"type": "text", "text": "What does it say?"}
    by_file = body([file_doc(meta["id"], citations={"enabled": True}), ask])
    inline = body(
        [{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": text}},
         ask]
    )  # fmt: skip
    counted = files_api.count(**count_body(by_file))
    assert counted == files_api.count(**count_body(inline))
    message = files_api.create(**by_file)
    assert message["usage"]["input_tokens"] == counted
    (citation,) = message["content"][0]["citations"]
    assert citation["file_id"] == meta["id"] and citation["cited_text"].startswith("The quarterly")


def test_pdf_and_image_files_count_like_base64(files_api: Api) -> None:
    document, image = pdf(["First page text.", "Second page."]), png(400, 300)
    pdf_id = upload(files_api, document, "paper.pdf", "application/pdf")["id"]
    image_id = upload(files_api, image, "chart.png", "image/png")["id"]
    by_file = [
        file_doc(pdf_id),
        {"type": "image", "source": {"type": "file", "file_id": image_id}},
        {"type": "text", "text": "Describe both."},
    ]
    inline = [
        {"type": "document",
         "source": {"type": "base64", "media_type": "application/pdf",
                    "data": base64.b64encode(document).decode()}},
        {"type": "image",
         "source": {"type": "base64", "media_type": "image/png",
                    "data": base64.b64encode(image).decode()}},
        {"type": "text", "text": "Describe both."},
    ]  # fmt: skip
    assert files_api.count(**count_body(body(by_file))) == files_api.count(
        **count_body(body(inline))
    )
    files_api.create(**body(by_file))


def test_unknown_and_deleted_files_are_404(files_api: Api) -> None:
    meta = upload(files_api, b"a note\n", "note.txt", "text/plain")
    ask = {"type": "text", "text": "Summarise"}
    files_api.create(**body([file_doc(meta["id"]), ask]))
    files_api.request("DELETE", f"/v1/files/{meta['id']}")
    for file_id in ("file_011CNoSuchFile0000000000", meta["id"]):
        payload = body([file_doc(file_id), ask])
        error = files_api.error(404, "not_found_error", "POST", "/v1/messages", json=payload)
        assert file_id in error["message"]
        files_api.error(
            404, "not_found_error", "POST", "/v1/messages/count_tokens", json=count_body(payload)
        )
        image = {"type": "image", "source": {"type": "file", "file_id": file_id}}
        files_api.error(404, "not_found_error", "POST", "/v1/messages", json=body([image, ask]))


def test_a_file_deleted_while_its_batch_runs_errors_the_requests_not_yet_processed(
    emulator: Emulator, files_api: Api
) -> None:
    """The API reads a request's files when it processes the request: a file deleted while
    the batch runs errors the requests that name it and have not finished, and only those."""
    kept = upload(files_api, b"kept\n", "kept.txt", "text/plain")
    lost = upload(files_api, b"lost\n", "lost.txt", "text/plain")
    ask = {"type": "text", "text": "Summarise"}
    emulator.configure(batch_processing_seconds=10)
    names = [kept["id"], lost["id"], lost["id"]]
    batch = files_api.post(
        "/v1/messages/batches",
        "MessageBatch",
        {
            "requests": [
                {"custom_id": f"r{n}", "params": body([file_doc(file_id), ask])}
                for n, file_id in enumerate(names)
            ]
        },
    )
    emulator.advance_clock(7)  # r0 and r1 are processed (at 3.3 and 6.7 s), r2 is not
    files_api.request("DELETE", f"/v1/files/{lost['id']}")
    emulator.advance_clock(10)
    response = files_api.request("GET", f"/v1/messages/batches/{batch['id']}/results")
    results = {
        line["custom_id"]: line["result"]
        for line in (orjson.loads(raw) for raw in response.content.splitlines())
    }
    assert results["r0"]["type"] == results["r1"]["type"] == "succeeded"
    assert results["r2"]["type"] == "errored"
    error = results["r2"]["error"]["error"]
    assert error["type"] == "not_found_error" and lost["id"] in error["message"]
    counts = files_api.get(f"/v1/messages/batches/{batch['id']}", "MessageBatch")
    assert counts["request_counts"]["errored"] == 1


def test_file_sources_need_the_beta_and_the_right_kind(emulator_api: Api, files_api: Api) -> None:
    meta = upload(files_api, SALES)
    ask = {"type": "text", "text": "Summarise"}
    message = emulator_api.invalid(**body([file_doc(meta["id"]), ask]))
    assert message == (
        "messages.0.content.0.source: Input tag 'file' found using 'type' does not match any "
        "of the expected tags: 'base64', 'text', 'content', 'url'"
    )
    wrong = files_api.invalid(**body([file_doc(meta["id"]), ask]))
    assert "text/csv" in wrong and "container_upload" in wrong
    image = {"type": "image", "source": {"type": "file", "file_id": meta["id"]}}
    assert "image block" in files_api.invalid(**body([image, ask]))


def sandbox(api: Api, file_ids: list[str], text: str, **extra: Any) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [{"type": "container_upload", "file_id": f} for f in file_ids]
    return body([*blocks, {"type": "text", "text": text}], tools=[CODE], **extra)


def test_the_sandbox_sees_uploaded_csv_files(files_api: Api) -> None:
    sales = upload(files_api, SALES)
    notes = upload(files_api, b"one\ntwo\nthree\n", "notes.txt", "text/plain")
    message = files_api.create(
        **sandbox(files_api, [sales["id"], notes["id"]], "Compute the total revenue in the CSV.")
    )
    assert kinds(message) == ["text", "server_tool_use", "bash_code_execution_tool_result", "text"]
    result = message["content"][2]["content"]
    assert result["stdout"].splitlines() == [
        "sales.csv: 4 rows, 3 columns (region, month, revenue)",
        "notes.txt: 3 lines, 14 bytes",
    ]
    assert "sales.csv" in message["content"][1]["input"]["command"]
    assert "sales.csv: 4 rows" in text_of(message)
    assert result["content"] == []  # nothing was asked to be saved


def test_sandbox_output_files_are_downloadable(files_api: Api) -> None:
    sales = upload(files_api, SALES)
    message = files_api.create(
        **sandbox(files_api, [sales["id"]], "Compute 6 * 7 over this CSV and save the result.")
    )
    result = message["content"][2]["content"]
    assert result["stdout"] == "sales.csv: 4 rows, 3 columns (region, month, revenue)\n42\n"
    (output,) = result["content"]
    assert output["type"] == "bash_code_execution_output"
    meta = files_api.get(f"/v1/files/{output['file_id']}", "BetaFileMetadataSchema")
    assert meta["downloadable"] is True and meta["filename"] == "output.txt"
    response = files_api.request("GET", f"/v1/files/{output['file_id']}/content")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.content == result["stdout"].encode()


def test_container_upload_rules(emulator_api: Api, files_api: Api) -> None:
    sales = upload(files_api, SALES)
    error = files_api.error(
        404,
        "not_found_error",
        "POST",
        "/v1/messages",
        json=sandbox(files_api, ["file_011CNoSuchFile0000000000"], "Compute it."),
    )
    assert "file_011CNoSuchFile0000000000" in error["message"]
    assert BETA in emulator_api.invalid(**sandbox(emulator_api, [sales["id"]], "Compute it."))


def test_the_sandbox_streams_and_runs_in_batches(emulator: Emulator, files_api: Api) -> None:
    sales = upload(files_api, SALES)
    request = sandbox(files_api, [sales["id"]], "Calculate the mean revenue.")
    events = files_api.stream(**request)
    for name, data in events:
        check_event(name, data)
    starts = [d["content_block"] for n, d in events if n == "content_block_start"]
    result = next(b for b in starts if b["type"] == "bash_code_execution_tool_result")
    assert result["content"]["stdout"].startswith("sales.csv: 4 rows")
    batch = files_api.post(
        "/v1/messages/batches",
        "MessageBatch",
        {"requests": [{"custom_id": "a", "params": request}]},
    )
    emulator.advance_clock(5)
    response = files_api.request("GET", f"/v1/messages/batches/{batch['id']}/results")
    (line,) = [orjson.loads(raw) for raw in response.content.splitlines()]
    assert line["result"]["type"] == "succeeded", line
    validate(line["result"]["message"], "Message")
    assert "sales.csv: 4 rows" in text_of(line["result"]["message"])


def test_errors_with_a_code_keep_the_error_shape(files_api: Api) -> None:
    meta = upload(files_api, SALES)
    response = files_api.request("GET", f"/v1/files/{meta['id']}/content")
    check_error(response.json(), "invalid_request_error")
