"""Citations from the emulator: documents cited where the question points, search results
cited with ``search_result_location``, in messages and streams, valid against the spec; and a
stored file answered by its content, whatever its id."""

from __future__ import annotations

from typing import Any

from spec_validation import Api, fold

from .support import body
from .test_files import file_doc, files_api, upload  # noqa: F401 - files_api is a fixture
from .test_tokens import pdf, pdf_block

PAGES = ["Invoice 1042 from Acme. Total due: 310 EUR.", "Paid on 3 March by bank transfer."]


def ask(*blocks: dict[str, Any], question: str) -> dict[str, Any]:
    return body([*blocks, {"type": "text", "text": question}], max_tokens=200)


def citations_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for b in message["content"] if b["type"] == "text" for c in b["citations"] or ()]


def search_result(source: str, title: str, *texts: str, cite: bool = True) -> dict[str, Any]:
    return {
        "type": "search_result",
        "source": source,
        "title": title,
        "content": [{"type": "text", "text": t} for t in texts],
        "citations": {"enabled": cite},
    }


def test_a_pdf_is_cited_at_the_page_and_sentence_the_question_names(emulator_api: Api) -> None:
    document = pdf_block(pdf(PAGES), citations={"enabled": True}, title="invoice.pdf")
    paid = emulator_api.create(**ask(document, question="When was it paid, and how?"))
    (citation,) = citations_of(paid)
    assert citation["start_page_number"] == 2 and citation["end_page_number"] == 3
    assert citation["cited_text"] == PAGES[1]
    total = emulator_api.create(**ask(document, question="What is the total due?"))
    (citation,) = citations_of(total)
    assert citation["start_page_number"] == 1
    assert citation["cited_text"] == "Total due: 310 EUR."


def test_search_results_are_cited(emulator_api: Api) -> None:
    results = [
        search_result("https://wiki.example/tides", "Tides", "The moon pulls the sea."),
        search_result(
            "kb://42", "Harbour rules", "Boats moor at the north quay.", "Fees are paid monthly."
        ),
    ]
    request = ask(*results, question="Where do boats moor, and are fees monthly?")
    message = emulator_api.create(**request)
    cited = citations_of(message)
    assert [c["type"] for c in cited] == ["search_result_location"] * 2
    second = cited[1]
    assert second["search_result_index"] == 1 and second["source"] == "kb://42"
    assert second["title"] == "Harbour rules"
    start, end = second["start_block_index"], second["end_block_index"]
    assert (start, end) == (0, 1) and second["cited_text"] == "Boats moor at the north quay."
    # Streamed: the same citations as citations_delta events (each checked against the spec).
    streamed = fold(emulator_api.stream(**request))
    assert citations_of(streamed) == cited
    # Not enabled: not cited.
    quiet = [search_result("kb://1", "One", "Nothing to see.", cite=False)]
    assert citations_of(emulator_api.create(**ask(*quiet, question="Anything?"))) == []


def test_search_results_in_tool_results_count_in_the_index(emulator_api: Api) -> None:
    tool = {"name": "find", "description": "Search the wiki.", "input_schema": {"type": "object"}}
    messages = [
        {"role": "user", "content": [search_result("a", "A", "Apples are red.")]},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "find", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": [search_result("b", "B", "Bananas are yellow.")],
                },
                {"type": "text", "text": "Which fruit is yellow?"},
            ],
        },
    ]
    message = emulator_api.create(**body(messages=messages, tools=[tool]))
    assert [c["search_result_index"] for c in citations_of(message)] == [0, 1]


def test_a_bad_citations_config_on_a_search_result_is_a_400(emulator_api: Api) -> None:
    bad = dict(search_result("a", "A", "x"), citations={"enabled": "yes"})
    assert "citations.enabled" in emulator_api.invalid(**ask(bad, question="?"))


def test_a_stored_file_is_answered_by_its_content_not_its_id(files_api: Api) -> None:  # noqa: F811
    data = pdf(PAGES)
    first = upload(files_api, data, "invoice.pdf", "application/pdf")
    question = "What is the total due?"
    answer = files_api.create(**ask(file_doc(first["id"]), question=question))
    files_api.request("DELETE", f"/v1/files/{first['id']}")
    again = upload(files_api, data, "invoice.pdf", "application/pdf")
    assert again["id"] != first["id"]
    reanswered = files_api.create(**ask(file_doc(again["id"]), question=question))
    assert reanswered["content"] == answer["content"]
