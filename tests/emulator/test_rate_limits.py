"""Rate limits (requests, input and output tokens per minute) and concurrency limits."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

import httpx
from spec_validation import Api

from claude_magics.emulator import Emulator

from .support import body, count_body


def post(api: Api, payload: dict[str, Any], path: str = "/v1/messages") -> httpx.Response:
    return api.request("POST", path, json=payload)


def reset_time(value: str) -> datetime:
    assert value.endswith("Z")
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_no_headers_without_limits(emulator_api: Api) -> None:
    response = post(emulator_api, body())
    assert not [h for h in response.headers if h.startswith("anthropic-ratelimit")]


def test_requests_per_minute(emulator: Emulator, emulator_api: Api) -> None:
    emulator.configure(requests_per_minute=3)
    remaining = []
    for _ in range(3):
        response = post(emulator_api, body())
        assert response.status_code == 200
        assert response.headers["anthropic-ratelimit-requests-limit"] == "3"
        remaining.append(response.headers["anthropic-ratelimit-requests-remaining"])
        reset = reset_time(response.headers["anthropic-ratelimit-requests-reset"])
        assert reset.tzinfo == timezone.utc
    assert remaining == ["2", "1", "0"]
    limited = post(emulator_api, body())
    assert limited.status_code == 429
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert limited.headers["retry-after"] == "20"  # one request refills every 60/3 s
    assert limited.headers["anthropic-ratelimit-requests-remaining"] == "0"
    emulator.advance_clock(20)
    assert post(emulator_api, body()).status_code == 200


def test_input_tokens_per_minute(emulator: Emulator, emulator_api: Api) -> None:
    emulator.configure(input_tokens_per_minute=100)
    payload = body(" abcd" * 53)  # 53 + 3 + 4 = 60 input tokens
    assert emulator_api.count(**count_body(payload)) == 60
    first = post(emulator_api, payload)
    assert first.headers["anthropic-ratelimit-input-tokens-remaining"] == "40"
    assert first.headers["anthropic-ratelimit-input-tokens-limit"] == "100"
    limited = post(emulator_api, payload)
    assert limited.status_code == 429
    assert "input tokens" in limited.json()["error"]["message"]
    assert limited.headers["retry-after"] == "12"  # 20 tokens missing at 100/60 per second
    emulator.advance_clock(12)
    assert post(emulator_api, payload).status_code == 200


def test_cache_reads_do_not_count_toward_input_limit(emulator: Emulator, emulator_api: Api) -> None:
    emulator.configure(input_tokens_per_minute=2000)
    system = [{"type": "text", "text": " word" * 1500, "cache_control": {"type": "ephemeral"}}]
    payload = body(system=system)
    first = post(emulator_api, payload)
    assert first.status_code == 200
    assert int(first.headers["anthropic-ratelimit-input-tokens-remaining"]) < 600
    second = post(emulator_api, payload)  # 1500+ tokens, but read from the cache
    assert second.status_code == 200
    assert second.json()["usage"]["cache_read_input_tokens"] > 1500
    uncached = post(emulator_api, body(" word" * 1500))
    assert uncached.status_code == 429


def test_output_tokens_per_minute(emulator: Emulator, emulator_api: Api) -> None:
    emulator.configure(output_tokens_per_minute=100)
    first = post(emulator_api, body())  # 60 output tokens
    assert first.headers["anthropic-ratelimit-output-tokens-remaining"] == "40"
    assert first.headers["anthropic-ratelimit-tokens-remaining"] == "40"
    second = post(emulator_api, body())  # admitted with 40 left; overdraws the bucket
    assert second.status_code == 200
    assert second.headers["anthropic-ratelimit-output-tokens-remaining"] == "0"
    limited = post(emulator_api, body())
    assert limited.status_code == 429
    assert "output tokens" in limited.json()["error"]["message"]
    assert int(limited.headers["retry-after"]) == 13  # 21 tokens owed at 100/60 per second
    emulator.advance_clock(13)
    assert post(emulator_api, body()).status_code == 200


def test_streaming_responses_carry_headers(emulator: Emulator, emulator_api: Api) -> None:
    emulator.configure(requests_per_minute=10, output_tokens_per_minute=1000)
    response, _ = emulator_api.stream_response(**body())
    assert response.headers["anthropic-ratelimit-requests-remaining"] == "9"
    assert response.headers["anthropic-ratelimit-output-tokens-remaining"] == "940"


def test_count_tokens_has_its_own_request_bucket(emulator: Emulator, emulator_api: Api) -> None:
    emulator.configure(requests_per_minute=2)
    for _ in range(2):
        assert post(emulator_api, body()).status_code == 200
    assert post(emulator_api, body()).status_code == 429
    counted = post(emulator_api, count_body(body()), "/v1/messages/count_tokens")
    assert counted.status_code == 200
    assert counted.headers["anthropic-ratelimit-requests-remaining"] == "1"
    post(emulator_api, count_body(body()), "/v1/messages/count_tokens")
    again = post(emulator_api, count_body(body()), "/v1/messages/count_tokens")
    assert again.status_code == 429 and int(again.headers["retry-after"]) >= 1


def test_max_concurrent_requests(emulator: Emulator) -> None:
    emulator.configure(max_concurrent_requests=2, latency=0.4)
    statuses: list[int] = []
    retry_after: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        with Api(emulator.url) as api:
            response = post(api, body())
        with lock:
            statuses.append(response.status_code)
            if response.status_code == 429:
                retry_after.append(response.headers["retry-after"])

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 200, 429, 429, 429]
    assert retry_after == ["1", "1", "1"]
    emulator.configure(latency=0.0)
    with Api(emulator.url) as api:
        assert post(api, body()).status_code == 200  # the slots were released


def test_each_model_has_buckets_of_its_own(emulator: Emulator, emulator_api: Api) -> None:
    emulator.configure(requests_per_minute=2, output_tokens_per_minute=100)
    for _ in range(2):
        assert post(emulator_api, body(model="claude-haiku-5-5")).status_code == 200
    spent = post(emulator_api, body(model="claude-haiku-5-5"))
    assert spent.status_code == 429
    assert spent.headers["anthropic-ratelimit-requests-remaining"] == "0"
    # Another model's traffic is not charged to Haiku's budget, and its headers say so.
    other = post(emulator_api, body(model="claude-sonnet-5-5"))
    assert other.status_code == 200
    assert other.headers["anthropic-ratelimit-requests-limit"] == "2"
    assert other.headers["anthropic-ratelimit-requests-remaining"] == "1"
    assert other.headers["anthropic-ratelimit-output-tokens-remaining"] == "40"


def test_an_alias_spends_its_model_s_budget(emulator: Emulator, emulator_api: Api) -> None:
    emulator.configure(requests_per_minute=3)
    post(emulator_api, body(model="claude-haiku-4-5-20251001"))
    aliased = post(emulator_api, body(model="claude-haiku-4-5"))
    assert aliased.headers["anthropic-ratelimit-requests-remaining"] == "1"


def test_buckets_refill_continuously_and_reset_says_when_full(
    emulator: Emulator, emulator_api: Api
) -> None:
    emulator.configure(requests_per_minute=60)  # one a second
    for _ in range(10):
        last = post(emulator_api, body())
    assert last.headers["anthropic-ratelimit-requests-remaining"] == "50"
    answered_at = emulator.now()
    # Full again ten seconds after the last request (each refills in a second): RFC 3339.
    reset = reset_time(last.headers["anthropic-ratelimit-requests-reset"])
    assert abs(reset.timestamp() - (answered_at + 10)) <= 1.5
    emulator.advance_clock(2.5)  # not a minute's window: two and a half requests come back
    again = post(emulator_api, body())
    assert again.headers["anthropic-ratelimit-requests-remaining"] == "51"


def test_a_429_reports_the_spent_budget_and_when_to_retry(
    emulator: Emulator, emulator_api: Api
) -> None:
    emulator.configure(requests_per_minute=1200, input_tokens_per_minute=100)
    payload = body(" abcd" * 53)  # 60 input tokens
    post(emulator_api, payload)
    limited = post(emulator_api, payload)
    assert limited.status_code == 429
    headers = limited.headers
    assert headers["anthropic-ratelimit-input-tokens-remaining"] == "40"
    assert headers["anthropic-ratelimit-requests-remaining"] == "1199"  # a refusal is free
    assert headers["anthropic-ratelimit-tokens-limit"] == "100"  # the tightest token budget
    assert int(headers["retry-after"]) == 12
    reset_time(headers["anthropic-ratelimit-input-tokens-reset"])
