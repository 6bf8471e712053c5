"""Message Batches: lifecycle on the emulator clock, results, cancel, expiry, limits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import orjson
import pytest
from spec_validation import HEADERS, Api, check_error, validate

from claude_magics.emulator import Emulator

from .support import body

BATCHES = "/v1/messages/batches"


def params(text: str = "Hello [[reply_tokens=5]]", **extra: Any) -> dict[str, Any]:
    """The shared body, short, as a batch request's params."""
    return body(text, **{"max_tokens": 50, **extra})


def create(api: Api, n: int, **extra: Any) -> dict[str, Any]:
    requests = [{"custom_id": f"req-{i}", "params": params(f"Row {i}", **extra)} for i in range(n)]
    return api.post(BATCHES, "MessageBatch", {"requests": requests})


def get(api: Api, batch_id: str) -> dict[str, Any]:
    return api.get(f"{BATCHES}/{batch_id}", "MessageBatch")


def results(api: Api, batch_id: str) -> list[dict[str, Any]]:
    response = api.request("GET", f"{BATCHES}/{batch_id}/results")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-jsonl"
    assert response.headers["transfer-encoding"] == "chunked"
    lines = [orjson.loads(line) for line in response.content.splitlines()]
    for line in lines:
        validate(line, "MessageBatchIndividualResponse")
    return lines


def parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def test_lifecycle_in_progress_to_ended(emulator: Emulator, emulator_api: Api) -> None:
    # Long simulated times, so the real seconds a test takes cannot change the outcome.
    emulator.configure(batch_processing_seconds=600)
    requests = [{"custom_id": f"ok-{i}", "params": params(f"Row {i}")} for i in range(4)]
    requests.append({"custom_id": "bad-max", "params": params(max_tokens=0)})
    requests.append({"custom_id": "bad-model", "params": params(model="claude-none-1")})
    batch = emulator_api.post(BATCHES, "MessageBatch", {"requests": requests})
    assert batch["id"].startswith("msgbatch_")
    assert batch["processing_status"] == "in_progress"
    assert batch["request_counts"] == {
        "processing": 6, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0,
    }  # fmt: skip
    assert batch["results_url"] is None and batch["ended_at"] is None
    assert batch["cancel_initiated_at"] is None and batch["archived_at"] is None
    created = parse_time(batch["created_at"])
    assert parse_time(batch["expires_at"]) - created == pytest.approx(86400, abs=0.01)
    # Results and delete are refused until the batch ends.
    emulator_api.error(400, "invalid_request_error", "GET", f"{BATCHES}/{batch['id']}/results")
    emulator_api.error(400, "invalid_request_error", "DELETE", f"{BATCHES}/{batch['id']}")
    emulator.advance_clock(550)  # 5 of 6 requests done: still in progress, counts unchanged
    assert get(emulator_api, batch["id"])["request_counts"]["processing"] == 6
    emulator.advance_clock(60)
    ended = get(emulator_api, batch["id"])
    assert ended["processing_status"] == "ended"
    assert ended["request_counts"] == {
        "processing": 0, "succeeded": 4, "errored": 2, "canceled": 0, "expired": 0,
    }  # fmt: skip
    assert ended["results_url"] == f"{emulator.url}{BATCHES}/{batch['id']}/results"
    assert parse_time(ended["ended_at"]) == pytest.approx(created + 600, abs=0.01)
    lines = results(emulator_api, batch["id"])
    by_id = {line["custom_id"]: line["result"] for line in lines}
    assert set(by_id) == {r["custom_id"] for r in requests}
    ok = by_id["ok-0"]
    assert ok["type"] == "succeeded"
    assert ok["message"]["usage"]["service_tier"] == "batch"
    assert ok["message"]["usage"]["output_tokens"] == 50  # 60-token default cut by max_tokens
    assert ok["message"]["stop_reason"] == "max_tokens"
    assert ok["message"]["content"][0]["text"].startswith('You wrote "Row 0".')
    bad = by_id["bad-max"]
    assert bad["type"] == "errored"
    check_error(bad["error"], "invalid_request_error")
    assert (
        bad["error"]["error"]["message"] == "max_tokens: Input should be greater than or equal to 1"
    )
    assert by_id["bad-model"]["error"]["error"] == {
        "type": "not_found_error",
        "message": "model: claude-none-1",
    }
    # The results URL works as given; the order is shuffled but stable.
    with httpx.Client(headers=HEADERS) as client:
        again = [orjson.loads(x) for x in client.get(ended["results_url"]).content.splitlines()]
    assert again == lines
    deleted = emulator_api.request("DELETE", f"{BATCHES}/{batch['id']}")
    assert deleted.status_code == 200
    validate(deleted.json(), "DeleteMessageBatchResponse")
    assert deleted.json() == {"id": batch["id"], "type": "message_batch_deleted"}
    emulator_api.error(404, "not_found_error", "GET", f"{BATCHES}/{batch['id']}")
    emulator_api.error(404, "not_found_error", "DELETE", f"{BATCHES}/{batch['id']}")


def test_results_order_is_a_deterministic_shuffle(emulator: Emulator, emulator_api: Api) -> None:
    batch = create(emulator_api, 30)
    emulator.advance_clock(1)
    order = [line["custom_id"] for line in results(emulator_api, batch["id"])]
    assert sorted(order) == sorted(f"req-{i}" for i in range(30))
    assert order != [f"req-{i}" for i in range(30)]
    assert order == [line["custom_id"] for line in results(emulator_api, batch["id"])]
    texts = {
        line["custom_id"]: line["result"]["message"]["content"][0]["text"]
        for line in results(emulator_api, batch["id"])
    }
    assert texts["req-3"].startswith('You wrote "Row 3".')


def test_cancel_goes_through_canceling(emulator: Emulator, emulator_api: Api) -> None:
    emulator.configure(batch_processing_seconds=1000, batch_cancel_seconds=200)
    batch = create(emulator_api, 10)  # request i finishes at 100 * (i + 1) seconds
    emulator.advance_clock(350)
    canceled = emulator_api.post(f"{BATCHES}/{batch['id']}/cancel", "MessageBatch")
    assert canceled["processing_status"] == "canceling"
    assert canceled["cancel_initiated_at"] is not None
    assert canceled["request_counts"]["processing"] == 10
    assert canceled["results_url"] is None
    emulator.advance_clock(100)
    assert get(emulator_api, batch["id"])["processing_status"] == "canceling"
    emulator.advance_clock(110)
    ended = get(emulator_api, batch["id"])
    assert ended["processing_status"] == "ended"
    assert ended["request_counts"] == {
        "processing": 0, "succeeded": 3, "errored": 0, "canceled": 7, "expired": 0,
    }  # fmt: skip
    lines = results(emulator_api, batch["id"])
    kinds = {line["custom_id"]: line["result"]["type"] for line in lines}
    assert {k for k, v in kinds.items() if v == "succeeded"} == {"req-0", "req-1", "req-2"}
    assert sum(v == "canceled" for v in kinds.values()) == 7
    assert next(x for x in lines if x["custom_id"] == "req-9")["result"] == {"type": "canceled"}
    # Canceling an ended batch changes nothing.
    again = emulator_api.post(f"{BATCHES}/{batch['id']}/cancel", "MessageBatch")
    assert again["request_counts"] == ended["request_counts"]


def test_expiry(emulator: Emulator, emulator_api: Api) -> None:
    emulator.configure(batch_processing_seconds=1000, batch_expiry_seconds=500)
    batch = create(emulator_api, 10)  # request i finishes at 100 * (i + 1) seconds
    created = parse_time(batch["created_at"])
    assert parse_time(batch["expires_at"]) - created == pytest.approx(500, abs=0.01)
    emulator.advance_clock(400)
    assert get(emulator_api, batch["id"])["processing_status"] == "in_progress"
    emulator.advance_clock(200)
    ended = get(emulator_api, batch["id"])
    assert ended["processing_status"] == "ended"
    assert parse_time(ended["ended_at"]) == pytest.approx(created + 500, abs=0.01)
    assert ended["request_counts"]["succeeded"] == 5
    assert ended["request_counts"]["expired"] == 5
    kinds = {
        line["custom_id"]: line["result"]["type"] for line in results(emulator_api, batch["id"])
    }
    assert kinds["req-9"] == "expired" and kinds["req-0"] == "succeeded"


def test_list_pagination_newest_first(emulator: Emulator, emulator_api: Api) -> None:
    ids = [create(emulator_api, 1)["id"] for _ in range(5)]
    newest_first = ids[::-1]
    page = emulator_api.get(BATCHES, "ListResponse_MessageBatch_", limit=2)
    assert [b["id"] for b in page["data"]] == newest_first[:2]
    assert page["has_more"] is True
    assert page["first_id"] == newest_first[0] and page["last_id"] == newest_first[1]
    page = emulator_api.get(
        BATCHES, "ListResponse_MessageBatch_", limit=2, after_id=page["last_id"]
    )
    assert [b["id"] for b in page["data"]] == newest_first[2:4]
    page = emulator_api.get(
        BATCHES, "ListResponse_MessageBatch_", limit=10, after_id=newest_first[3]
    )
    assert [b["id"] for b in page["data"]] == newest_first[4:] and page["has_more"] is False
    page = emulator_api.get(
        BATCHES, "ListResponse_MessageBatch_", limit=2, before_id=newest_first[4]
    )
    assert [b["id"] for b in page["data"]] == newest_first[2:4] and page["has_more"] is True
    everything = emulator_api.get(BATCHES, "ListResponse_MessageBatch_")
    assert [b["id"] for b in everything["data"]] == newest_first
    emulator.reset()
    empty = emulator_api.get(BATCHES, "ListResponse_MessageBatch_")
    assert empty == {"data": [], "has_more": False, "first_id": None, "last_id": None}


def test_create_validation(emulator_api: Api) -> None:
    def invalid(payload: Any) -> str:
        return emulator_api.invalid(BATCHES, **payload) if isinstance(payload, dict) else ""

    assert invalid({}) == "requests: Field required"
    assert invalid({"requests": []}).startswith("requests: List should have at least 1 item")
    assert invalid({"requests": [], "extra": 1}) == "extra: Extra inputs are not permitted"
    for bad in ("has space", "", "x" * 65, "dots.not.ok"):
        message = invalid({"requests": [{"custom_id": bad, "params": params()}]})
        assert message.startswith("requests.0.custom_id: String should match pattern")
    dup = [{"custom_id": "same", "params": params()}, {"custom_id": "same", "params": params()}]
    message = invalid({"requests": dup})
    assert message.startswith("requests.1.custom_id:") and "'same'" in message
    streamed = [{"custom_id": "a", "params": params(stream=True)}]
    assert invalid({"requests": streamed}).startswith("requests.0.params.stream:")
    assert invalid({"requests": [{"custom_id": "a"}]}) == "requests.0.params: Field required"


def test_over_100k_requests_is_413(emulator_api: Api) -> None:
    requests = [{"custom_id": f"r{i}", "params": {}} for i in range(100_001)]
    error = emulator_api.error(
        413, "request_too_large", "POST", BATCHES, json={"requests": requests}
    )
    assert "100,000" in error["message"]


def test_unknown_batch_is_404(emulator_api: Api) -> None:
    for method, suffix in (("GET", ""), ("POST", "/cancel"), ("GET", "/results"), ("DELETE", "")):
        emulator_api.error(404, "not_found_error", method, f"{BATCHES}/msgbatch_nope{suffix}")


def test_model_rules_apply_per_request_as_errored_results(
    emulator: Emulator, emulator_api: Api
) -> None:
    """Rules are checked while a batch processes: a breach is an errored result, never a 400
    on create or a 500 (an unsatisfiable schema included)."""
    impossible = {"type": "object", "properties": {"n": {"enum": []}}, "required": ["n"]}
    prefill = [{"role": "user", "content": "Go"}, {"role": "assistant", "content": "Sure"}]
    requests = [
        {"custom_id": "ok", "params": params(model="claude-haiku-5-5")},
        {"custom_id": "prefill", "params": params(model="claude-sonnet-5-5", messages=prefill)},
        {"custom_id": "retired", "params": params(model="claude-opus-4-1")},
        {
            "custom_id": "schema",
            "params": params(
                output_config={"format": {"type": "json_schema", "schema": impossible}}
            ),
        },
    ]
    batch = emulator_api.post(BATCHES, "MessageBatch", {"requests": requests})
    emulator.advance_clock(2)
    by_id = {line["custom_id"]: line["result"] for line in results(emulator_api, batch["id"])}
    assert by_id["ok"]["type"] == "succeeded"
    assert "prefill" in by_id["prefill"]["error"]["error"]["message"]
    assert by_id["retired"]["error"]["error"]["type"] == "not_found_error"
    assert "Invalid schema" in by_id["schema"]["error"]["error"]["message"]
