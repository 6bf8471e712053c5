"""Documents with citations and files uploaded once, in ``%%claude`` (``--cite``,
``--search-results``, ``%claude_files``), in a real IPython shell against the emulator over
sockets; the emulator's request log says what was sent and uploaded."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from shell_support import final, magics_of, ok, run_cell

from claude_magics.emulator import Emulator
from claude_magics.notebook.content import Citation
from claude_magics.pytest_plugin import TEST_API_KEY

INVOICE = ["Invoice 1042 from Acme Tools. Total due: 310 EUR.", "Paid on 3 March by bank transfer."]
LEASE = ["Lease of the north warehouse. Rent is 1,200 EUR a month.", "Notice period: 3 months."]


def write_pdf(path: Path, pages: list[str]) -> Path:
    """A small PDF of one line of text a page, drawn by matplotlib's PDF backend."""
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    with PdfPages(path, metadata={"CreationDate": None}) as pdf:
        for text in pages:
            figure = plt.figure(figsize=(5, 3))
            figure.text(0.05, 0.5, text)
            pdf.savefig(figure)
            plt.close(figure)
    return path


@pytest.fixture
def invoice(tmp_path: Path) -> Path:
    return write_pdf(tmp_path / "invoice.pdf", INVOICE)


def refused(ip: InteractiveShell, source: str) -> str:
    """Run a cell that must fail in one line (a UsageError); returns that line."""
    result, captured = run_cell(ip, source)
    assert not result.success
    # IPython shows the error's one line on stderr (a SettingRefused on stdout).
    lines = [line for line in (captured.stdout + captured.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, captured.stdout + captured.stderr
    return lines[0]


def messages(emulator: Emulator) -> list[Any]:
    return [r for r in emulator.requests if r.path == "/v1/messages"]


def uploads(emulator: Emulator) -> list[Any]:
    return [r for r in emulator.requests if r.path == "/v1/files" and r.method == "POST"]


def sources(request: Any) -> list[dict[str, Any]]:
    """The sources of the document and image blocks of a request's last user turn."""
    content = request.body["messages"][-1]["content"]
    return [b["source"] for b in content if b.get("type") in ("document", "image")]


def restart(ip: InteractiveShell) -> None:
    """A kernel restart as the extension sees it: a new ClaudeMagics; the files stay."""
    ip.run_line_magic("unload_ext", "claude_magics")
    ip.run_line_magic("load_ext", "claude_magics")
    magics_of(ip).display = "markdown"


# -- citations --------------------------------------------------------------------------------


def test_a_cited_pdf_answer_shows_markers_pages_and_quoted_passages(
    ip: InteractiveShell, emulator: Emulator, invoice: Path
) -> None:
    captured = ok(ip, f"%%claude --pdf {invoice} --cite --out t_r\nWhen was it paid, and how?")
    (request,) = messages(emulator)
    (document,) = [b for b in request.body["messages"][-1]["content"] if b["type"] == "document"]
    assert document["citations"] == {"enabled": True} and document["title"] == "invoice.pdf"
    shown = final(captured)
    markdown, plain = shown["text/markdown"], shown["text/plain"]
    assert "<sup>[1]</sup>" in markdown and "**Sources**" in markdown
    assert "1. **invoice.pdf**, page 2: “Paid on 3 March by bank transfer.”" in markdown
    assert plain.endswith('Sources:\n[1] invoice.pdf, page 2: "Paid on 3 March by bank transfer."')
    result = ip.user_ns["t_r"]
    assert result.citations == [
        Citation(
            number=1,
            kind="page_location",
            quote="Paid on 3 March by bank transfer.",
            title="invoice.pdf",
            document_index=0,
            pages=(2, 2),
        )
    ]
    assert result.citations[0].location == "page 2"


def test_two_documents_are_numbered_and_a_text_file_cites_characters(
    ip: InteractiveShell, tmp_path: Path, invoice: Path
) -> None:
    lease = write_pdf(tmp_path / "lease.pdf", LEASE)
    notes = tmp_path / "notes.txt"
    notes.write_text("Call Acme on Monday. The rent review is due in June.\n", encoding="utf-8")
    captured = ok(
        ip,
        f"%%claude --pdf {invoice} --pdf {lease} --file {notes} --cite --out t_r\n"
        "What is the rent, and when is the rent review?",
    )
    cited = ip.user_ns["t_r"].citations
    assert [(c.number, c.title, c.location) for c in cited] == [
        (1, "invoice.pdf", "page 1"),
        (2, "lease.pdf", "page 1"),
        (3, "notes.txt", "characters 22–53"),
    ]
    assert cited[1].quote == "Rent is 1,200 EUR a month."
    assert cited[2].quote.strip() == "The rent review is due in June."
    assert "<sup>[1][2][3]</sup>" in final(captured)["text/markdown"]


def test_the_live_view_shows_the_markers_as_the_answer_streams(
    ip: InteractiveShell, emulator: Emulator, invoice: Path
) -> None:
    emulator.configure(tokens_per_second=400)
    captured = ok(
        ip, f"%%claude --pdf {invoice} --cite\nWhat is the total due? [[reply_tokens=80]]"
    )
    live = [
        o.data.get("text/markdown", "") for o in captured.outputs if getattr(o, "update", False)
    ]
    live = [text for text in live if text]
    assert live and "[1]" in live[-1] and "**Sources**" in live[-1]
    assert "page 1: “Total due: 310 EUR.”" in live[-1]


def test_the_widget_view_renders_the_markers_and_the_sources(
    ip: InteractiveShell, emulator: Emulator, invoice: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from claude_magics.notebook import views

    magics_of(ip).display = "widget"
    emulator.configure(tokens_per_second=400)
    seen: list[str] = []
    original = views.WidgetView.render

    def spy(self: views.WidgetView, acc: Any) -> None:
        original(self, acc)
        blocks = self._answer_blocks  # what the front end shows (test_long_answers checks)
        seen.append("".join(blocks.finished) + blocks.live + self._sources[1])

    monkeypatch.setattr(views.WidgetView, "render", spy)
    captured = ok(
        ip, f"%%claude --pdf {invoice} --cite\nWhat is the total due? [[reply_tokens=80]]"
    )
    assert seen and "[1]" in seen[-1] and "<strong>Sources</strong>" in seen[-1]
    assert "**Sources**" in final(captured)["text/markdown"]


def test_the_terminal_prints_the_markers_and_the_sources(
    ip: InteractiveShell, invoice: Path
) -> None:
    magics_of(ip).display = "plain"
    captured = ok(ip, f"%%claude --pdf {invoice} --cite\nWhat is the total due?")
    out = captured.stdout
    assert '[1]\n\nSources:\n[1] invoice.pdf, page 1: "Total due: 310 EUR."' in out


def test_quoted_passages_cannot_inject_markup(ip: InteractiveShell, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("Pay *now* at [here](javascript:x) <b>$5</b> tomorrow.\n", encoding="utf-8")
    captured = ok(ip, f"%%claude --file {notes} --cite\nWhen should I pay?")
    markdown = final(captured)["text/markdown"]
    assert "\\*now\\* at \\[here\\](javascript:x) &lt;b&gt;\\$5&lt;/b&gt;" in markdown


def test_search_results_are_sent_and_cited(ip: InteractiveShell, emulator: Emulator) -> None:
    ip.user_ns["t_hits"] = [
        {
            "source": "https://wiki.example/refunds",
            "title": "Refunds",
            "content": "Refunds take 5 days.",
        },
        {
            "source": "kb-7",
            "title": "Shipping",
            "content": ["Parcels ship on Mondays.", "Returns are free within 30 days."],
            "score": 0.82,
        },
    ]
    question = "Are returns free, and how long do refunds take?"
    captured = ok(ip, f"%%claude --search-results t_hits --out t_r\n{question}")
    (request,) = messages(emulator)
    blocks = [b for b in request.body["messages"][-1]["content"] if b["type"] == "search_result"]
    assert [b["title"] for b in blocks] == ["Refunds", "Shipping"]
    assert all(b["citations"] == {"enabled": True} for b in blocks)
    assert blocks[1]["content"][1] == {"type": "text", "text": "Returns are free within 30 days."}
    assert "score" not in blocks[1]
    cited = ip.user_ns["t_r"].citations
    assert [(c.kind, c.search_result_index, c.source, c.location) for c in cited] == [
        ("search_result_location", 0, "https://wiki.example/refunds", "block 1"),
        ("search_result_location", 1, "kb-7", "block 2"),
    ]
    markdown = final(captured)["text/markdown"]
    assert "1. [Refunds](https://wiki.example/refunds), block 1: “Refunds take 5 days.”" in markdown
    assert "2. **Shipping** (kb-7), block 2: “Returns are free within 30 days.”" in markdown


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ({"source": "a", "title": "A", "content": "x"}, "a dict, not a list"),
        ([], "an empty list"),
        (["just text"], "item 1: a str, not a dict"),
        ([{"source": "a", "content": "x"}], "item 1: 'title' is missing"),
        ([{"source": "a", "title": "A", "content": ""}], "item 1: 'content' holds ''"),
        ([{"source": "a", "title": "A", "content": []}], "'content' is an empty list"),
        ([{"source": 3, "title": "A", "content": "x"}], "'source' is a int"),
    ],
)
def test_search_results_of_the_wrong_shape_are_one_line(
    ip: InteractiveShell, emulator: Emulator, value: Any, says: str
) -> None:
    ip.user_ns["t_hits"] = value
    line = refused(ip, "%%claude --search-results t_hits\nWhat do they say?")
    assert line.startswith("UsageError: --search-results t_hits: ") and says in line
    assert messages(emulator) == []


def test_cite_needs_a_document_and_a_model_that_cites(
    ip: InteractiveShell, emulator: Emulator, invoice: Path
) -> None:
    emulator.add_model(
        id="claude-uncited-1", like="claude-sonnet-5-5", capabilities={"citations": False}
    )
    line = refused(ip, "%%claude --cite\nCite what?")
    assert "--cite asks for citations of documents" in line
    line = refused(ip, f"%%claude -m claude-uncited-1 --pdf {invoice} --cite\nTotal?")
    assert "claude-uncited-1 cannot cite documents or search results" in line
    ip.user_ns["t_hits"] = [{"source": "a", "title": "A", "content": "x"}]
    refused(ip, "%%claude -m claude-uncited-1 --search-results t_hits\nWhat?")
    assert messages(emulator) == []
    ok(ip, f"%%claude -m claude-uncited-1 --pdf {invoice}\nTotal?")  # without --cite it goes


# -- files uploaded once ----------------------------------------------------------------------


def test_the_same_pdf_twice_is_uploaded_once_and_sent_by_id(
    ip: InteractiveShell, emulator: Emulator, invoice: Path
) -> None:
    ok(ip, f"%%claude --once --pdf {invoice} --cite\nWhat is the total due?")
    ok(ip, f"%%claude --once --pdf {invoice} --cite --out t_r\nWhen was it paid?")
    first, second = messages(emulator)
    assert sources(first)[0]["type"] == "base64"  # small, and new: inline
    (upload,) = uploads(emulator)
    (by_id,) = sources(second)
    assert by_id["type"] == "file" and by_id["file_id"].startswith("file_")
    assert "files-api-2025-04-14" in second.headers["anthropic-beta"]
    # The answer cites the file it was sent as.
    assert ip.user_ns["t_r"].citations[0].file_id == by_id["file_id"]
    # Another session (a restart, another notebook) finds the id beside the ledger.
    restart(ip)
    ok(ip, f"%%claude --once --pdf {invoice}\nWho sent it?")
    assert sources(messages(emulator)[-1]) == [by_id] and len(uploads(emulator)) == 1
    assert upload.status == 200


def test_a_follow_up_in_a_conversation_sends_the_document_by_id(
    ip: InteractiveShell, emulator: Emulator, invoice: Path
) -> None:
    ok(ip, f"%%claude --new --pdf {invoice} --cite\nWhat is the total due?")
    ok(ip, "%%claude\nAnd when was it paid?")
    first, second = messages(emulator)
    history = second.body["messages"][0]["content"][0]["source"]  # the first turn, resent
    assert sources(first)[0]["type"] == "base64" and history["type"] == "file"
    assert len(uploads(emulator)) == 1
    # What the conversation keeps is the document as attached, not the upload.
    turn = magics_of(ip).chats.get().turns[0]
    assert turn.user[0]["source"]["type"] == "base64"


def test_a_large_pdf_is_uploaded_at_once_and_the_threshold_is_a_setting(
    ip: InteractiveShell, emulator: Emulator, invoice: Path
) -> None:
    magics_of(ip).upload_above_kb = 1  # the invoice is ~12 KB
    ok(ip, f"%%claude --once --pdf {invoice}\nWhat is the total due?")
    assert sources(messages(emulator)[0])[0]["type"] == "file"
    assert len(uploads(emulator)) == 1
    magics_of(ip).upload_above_kb = None  # off: always inline, even what is uploaded
    ok(ip, f"%%claude --once --pdf {invoice}\nWho sent it?")
    assert sources(messages(emulator)[1])[0]["type"] == "base64"
    line = refused(ip, "%config ClaudeMagics.upload_above_kb = -1")
    assert "upload_above_kb must not be negative" in line


def test_a_file_deleted_on_the_api_is_uploaded_again_and_the_cell_succeeds(
    ip: InteractiveShell, emulator: Emulator, invoice: Path
) -> None:
    magics_of(ip).upload_above_kb = 0
    ok(ip, f"%%claude --once --pdf {invoice}\nWhat is the total due?")
    (old_id,) = [s["file_id"] for s in sources(messages(emulator)[0])]
    magics_of(ip).client.files.delete(old_id)  # in the console, or by another program
    ok(ip, f"%%claude --once --pdf {invoice} --cite --out t_r\nWhen was it paid?")
    tried, retried = messages(emulator)[1:]
    assert tried.status == 404 and sources(tried)[0]["file_id"] == old_id
    assert retried.status == 200
    new_id = sources(retried)[0]["file_id"]
    assert new_id != old_id and len(uploads(emulator)) == 2
    assert ip.user_ns["t_r"].citations[0].pages == (2, 2)
    # The new id is the one kept: the next use sends it straight away.
    ok(ip, f"%%claude --once --pdf {invoice}\nWho sent it?")
    assert sources(messages(emulator)[-1])[0]["file_id"] == new_id
    assert len(uploads(emulator)) == 2


def test_replay_keys_do_not_change_when_a_file_is_uploaded(
    ip: InteractiveShell, emulator: Emulator, invoice: Path
) -> None:
    ok(ip, f"%%claude --once --pdf {invoice} --cite\nWhat is the total due?")  # inline
    magics_of(ip).upload_above_kb = 0
    ip.run_line_magic("claude_files", "clear")
    restart(ip)  # a new session: nothing seen, nothing stored
    magics_of(ip).upload_above_kb = 0  # this time it would be uploaded
    captured = ok(ip, f"%%claude --once --pdf {invoice} --cite\nWhat is the total due?")
    assert "replayed from" in final(captured)["text/markdown"]
    assert len(messages(emulator)) == 1 and uploads(emulator) == []


@pytest.mark.parametrize("budget", [None, 5.0])
def test_a_request_too_big_to_go_inline_goes_by_reference(
    ip: InteractiveShell, emulator: Emulator, budget: float | None
) -> None:
    import base64

    magics_of(ip).budget_usd = budget  # the budget counts the request as it will be sent
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )
    ip.user_ns["t_photo"] = png + b"\0" * (3_700_000 - len(png))  # 4.9 MB once encoded
    flags = " ".join(["--image t_photo"] * 9)  # 44 MB of base64 inline: over the 32 MB
    ok(ip, f"%%claude --once {flags}\nWhat is in these?")
    (request,) = messages(emulator)
    assert len({s["file_id"] for s in sources(request)}) == 1 and len(sources(request)) == 9
    assert len(uploads(emulator)) == 1


def test_dry_run_uploads_nothing_and_says_what_would_be(
    ip: InteractiveShell, emulator: Emulator, invoice: Path
) -> None:
    magics_of(ip).upload_above_kb = 0
    captured = ok(ip, f"%%claude --once --dry-run --pdf {invoice}\nWhat is the total due?")
    text = final(captured)["text/plain"]
    assert '"file_id": "<invoice.pdf, 0.1 MB: uploaded when sent>"' in text
    assert "anthropic-beta: files-api-2025-04-14" in text
    assert uploads(emulator) == [] and messages(emulator) == []


def test_claude_files_lists_uploads_deletes_and_clears(
    ip: InteractiveShell, emulator: Emulator, invoice: Path, tmp_path: Path
) -> None:
    empty = ok(ip, "%claude_files list")
    assert final(empty)["text/plain"].startswith("No files uploaded to http://127.0.0.1:")
    lease = write_pdf(tmp_path / "lease.pdf", LEASE)
    said = ok(ip, f"%claude_files upload {lease}").stdout
    assert said.startswith("Uploaded lease.pdf (") and " as file_" in said
    again = ok(ip, f"%claude_files upload {lease}").stdout
    assert "the same content is uploaded already" in again and len(uploads(emulator)) == 1
    magics_of(ip).upload_above_kb = 0
    ok(ip, f"%%claude --once --pdf {invoice}\nWhat is the total due?")
    listed = final(ok(ip, "%claude_files list"))
    plain = listed["text/plain"]
    assert plain.splitlines()[0].split() == ["name", "size", "id", "created", "(UTC)"]
    assert "lease.pdf" in plain and "invoice.pdf" in plain and "2 files" in plain
    assert "| name | size | id | created (UTC) |" in listed["text/markdown"]
    (lease_id, invoice_id) = [f.file_id for f in magics_of(ip).uploads.stored(magics_of(ip).client)]
    magics_of(ip).client.files.delete(invoice_id)
    checked = final(ok(ip, "%claude_files list --check"))["text/plain"]
    assert "on the API" in checked and "1 the API no longer has was forgotten" in checked
    assert ok(ip, f"%claude_files delete {lease_id}").stdout.startswith(f"Deleted {lease_id}")
    # Deleted and forgotten: a second delete (or a typo) is one line naming the way to the ids.
    result, captured = run_cell(ip, f"%claude_files delete {lease_id}")
    assert not result.success and "%claude_files list shows the ids" in captured.stderr
    ok(ip, f"%claude_files upload {lease}")
    # Known here but gone from the API (deleted elsewhere): forgotten, with a note.
    (lease_id,) = [f.file_id for f in magics_of(ip).uploads.stored(magics_of(ip).client)]
    magics_of(ip).client.files.delete(lease_id)
    assert "not on the API any more" in ok(ip, f"%claude_files delete {lease_id}").stdout
    ok(ip, f"%claude_files upload {lease}")
    ok(ip, f"%%claude --once --pdf {invoice}\nWho sent it?")
    cleared = ok(ip, "%claude_files clear").stdout
    assert cleared.startswith("Deleted 2 files from the API and forgot them.")
    assert magics_of(ip).uploads.stored(magics_of(ip).client) == []
    for line in ("upload", "delete", "list x", "clear --check", "upload /no/such.pdf"):
        assert refused(ip, f"%claude_files {line}").startswith("UsageError: ")


def test_the_key_is_never_in_files_sqlite(
    ip: InteractiveShell, emulator: Emulator, tmp_path: Path
) -> None:
    named = write_pdf(tmp_path / f"{TEST_API_KEY}.pdf", INVOICE)
    magics_of(ip).upload_above_kb = 0
    captured = ok(ip, f"%%claude --once --pdf {named}\nWhat is the total due?")
    assert "the API key" in captured.stderr  # the one-line notice that it was replaced
    ok(ip, f"%claude_files upload {write_pdf(tmp_path / f'x-{TEST_API_KEY}.pdf', LEASE)}")
    store = magics_of(ip).uploads.store
    assert store is not None and store.path.name == "files.sqlite"
    assert store.path.parent == magics_of(ip).ledger.path.parent
    assert len(store.files()) == 2
    assert TEST_API_KEY.encode() not in store.path.read_bytes()
    with sqlite3.connect(store.path) as db:
        for row in db.execute("SELECT * FROM files"):
            assert TEST_API_KEY not in repr(row)


def test_a_damaged_files_sqlite_is_moved_aside_with_one_warning(
    ip: InteractiveShell, emulator: Emulator, invoice: Path
) -> None:
    home = magics_of(ip).ledger.path.parent
    home.mkdir(parents=True, exist_ok=True)
    (home / "files.sqlite").write_bytes(b"this is not a database" * 100)
    magics_of(ip).upload_above_kb = 0
    result, captured = run_cell(ip, f"%%claude --once --pdf {invoice}\nWhat is the total due?")
    assert result.success
    lines = [line for line in captured.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Warning: ") and "files.sqlite" in lines[0]
    assert "moved to files.sqlite.corrupt-" in lines[0]
    assert list(home.glob("files.sqlite.corrupt-*"))
    assert len(magics_of(ip).uploads.store.files()) == 1  # type: ignore[union-attr]


def test_a_store_that_cannot_be_written_costs_a_warning_not_the_answer(
    ip: InteractiveShell, emulator: Emulator, invoice: Path
) -> None:
    home = magics_of(ip).ledger.path.parent
    home.mkdir(parents=True, exist_ok=True)
    (home / "files.sqlite").mkdir()  # a folder in the way
    magics_of(ip).upload_above_kb = 0
    warned: Callable[[Any], list[str]] = lambda c: [  # noqa: E731
        line for line in c.stderr.splitlines() if line.startswith("Warning: ")
    ]
    first = ok(ip, f"%%claude --once --pdf {invoice} --out t_r\nWhat is the total due?")
    assert ip.user_ns["t_r"].text
    (line,) = warned(first)
    assert "files.sqlite" in line and "for this session only" in line
    # The session still remembers its upload, and does not warn again.
    second = ok(ip, f"%%claude --once --pdf {invoice}\nWho sent it?")
    assert warned(second) == [] and len(uploads(emulator)) == 1
