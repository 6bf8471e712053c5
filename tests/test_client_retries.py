"""Retry rules, error mapping and key handling, against scripted httpx transports.

The emulator tests (test_client_emulator.py) cover the same over real sockets; these pin the
exact rules (which statuses, which waits, which requests are never re-sent) one by one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

from claude_magics.api import client as client_module
from claude_magics.api.client import Client, RateLimits
from claude_magics.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BillingError,
    GatewayTimeoutError,
    InternalServerError,
    MissingAPIKeyError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
)

OK_MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-6",
    "content": [{"type": "text", "text": "hi", "citations": None}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 1, "output_tokens": 1},
}


def _error(status: int, error_type: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {
        "type": "error",
        "error": {"type": error_type, "message": f"{error_type} happened"},
        "request_id": "req_from_body",
    }
    return httpx.Response(status, json=body, headers={"request-id": "req_hdr", **(headers or {})})


class Script:
    """A transport answering from a list of responses (or exceptions), recording each request."""

    def __init__(self, *steps: httpx.Response | Exception) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr(client_module.time, "sleep", waited.append)
    return waited


def _client(script: Callable[[httpx.Request], httpx.Response], **kwargs: object) -> Client:
    return Client(
        api_key="sk-test-secret-0123456789",
        base_url="http://api.test",
        transport=httpx.MockTransport(script),
        **kwargs,  # type: ignore[arg-type]
    )


def _create(client: Client) -> dict[str, object]:
    return client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=[])


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
def test_retryable_statuses_are_retried(status: int, sleeps: list[float]) -> None:
    script = Script(_error(status, "api_error"), httpx.Response(200, json=OK_MESSAGE))
    assert _create(_client(script))["id"] == "msg_1"
    assert len(script.requests) == 2
    assert len(sleeps) == 1


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 413, 422])
def test_other_4xx_are_never_retried(status: int, sleeps: list[float]) -> None:
    script = Script(_error(status, "invalid_request_error"))
    with pytest.raises(APIStatusError) as info:
        _create(_client(script))
    assert info.value.status_code == status
    assert len(script.requests) == 1
    assert sleeps == []


def test_x_should_retry_is_obeyed_both_ways(sleeps: list[float]) -> None:
    # false on a 500: not retried.
    script = Script(_error(500, "api_error", {"x-should-retry": "false"}))
    with pytest.raises(InternalServerError):
        _create(_client(script))
    assert len(script.requests) == 1
    # true on a 400: retried.
    script = Script(
        _error(400, "invalid_request_error", {"x-should-retry": "true"}),
        httpx.Response(200, json=OK_MESSAGE),
    )
    assert _create(_client(script))["id"] == "msg_1"
    assert len(script.requests) == 2


def test_retry_after_headers_set_the_wait(sleeps: list[float]) -> None:
    script = Script(
        _error(429, "rate_limit_error", {"retry-after-ms": "1500", "retry-after": "9"}),
        _error(429, "rate_limit_error", {"retry-after": "3"}),
        httpx.Response(200, json=OK_MESSAGE),
    )
    _create(_client(script))
    # retry-after-ms wins over retry-after; then retry-after in seconds.
    assert sleeps == [1.5, 3.0]


def test_retry_after_out_of_range_falls_back_to_backoff(sleeps: list[float]) -> None:
    script = Script(
        _error(529, "overloaded_error", {"retry-after": "600"}),
        httpx.Response(200, json=OK_MESSAGE),
    )
    _create(_client(script))
    assert 0.375 <= sleeps[0] <= 0.5


def test_backoff_is_exponential_jittered_and_capped(sleeps: list[float]) -> None:
    script = Script(*[_error(529, "overloaded_error") for _ in range(7)])
    with pytest.raises(OverloadedError) as info:
        _create(_client(script, max_retries=6))
    assert len(script.requests) == 7
    assert info.value.attempts == 7
    for attempt, waited in enumerate(sleeps):
        ceiling = min(0.5 * 2**attempt, 8.0)
        assert 0.75 * ceiling <= waited <= ceiling
    assert max(sleeps) <= 8.0


def test_max_retries_zero_means_one_attempt(sleeps: list[float]) -> None:
    script = Script(_error(529, "overloaded_error"))
    with pytest.raises(OverloadedError):
        _create(_client(script, max_retries=0))
    assert len(script.requests) == 1


def test_connection_errors_are_retried(sleeps: list[float]) -> None:
    script = Script(
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.Response(200, json=OK_MESSAGE),
    )
    assert _create(_client(script))["id"] == "msg_1"
    assert len(script.requests) == 3


def test_timeouts_surface_as_timeout_errors(sleeps: list[float]) -> None:
    script = Script(*[httpx.ReadTimeout("slow") for _ in range(3)])
    with pytest.raises(APITimeoutError) as info:
        _create(_client(script))
    assert info.value.attempts == 3
    assert info.value.may_have_reached_server


def test_batch_create_is_not_resent_after_the_request_may_have_arrived(
    sleeps: list[float],
) -> None:
    requests = [{"custom_id": "a", "params": {"model": "m", "max_tokens": 1, "messages": []}}]
    for lost in (
        httpx.ReadError("reset"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("x"),
    ):
        script = Script(lost)
        with pytest.raises(APIConnectionError) as info:
            _client(script).batches.create(requests)
        assert len(script.requests) == 1, type(lost).__name__
        assert info.value.may_have_reached_server
    # 500 after sending: the server may have created it. Not retried either.
    script = Script(_error(500, "api_error"))
    with pytest.raises(InternalServerError):
        _client(script).batches.create(requests)
    assert len(script.requests) == 1


def test_batch_create_is_retried_when_it_surely_did_not_arrive(sleeps: list[float]) -> None:
    batch = {"id": "msgbatch_1", "type": "message_batch", "processing_status": "in_progress"}
    requests = [{"custom_id": "a", "params": {"model": "m", "max_tokens": 1, "messages": []}}]
    script = Script(
        httpx.ConnectError("refused"),
        _error(429, "rate_limit_error"),
        _error(529, "overloaded_error"),
        httpx.Response(200, json=batch),
    )
    assert _client(script, max_retries=3).batches.create(requests)["id"] == "msgbatch_1"
    assert len(script.requests) == 4


@pytest.mark.parametrize(
    ("status", "error_type", "cls"),
    [
        (400, "invalid_request_error", BadRequestError),
        (401, "authentication_error", AuthenticationError),
        (402, "billing_error", BillingError),
        (403, "permission_error", PermissionDeniedError),
        (404, "not_found_error", NotFoundError),
        (413, "request_too_large", RequestTooLargeError),
        (429, "rate_limit_error", RateLimitError),
        (500, "api_error", InternalServerError),
        (504, "timeout_error", GatewayTimeoutError),
        (529, "overloaded_error", OverloadedError),
    ],
)
def test_status_errors_map_to_classes(
    status: int, error_type: str, cls: type[APIStatusError], sleeps: list[float]
) -> None:
    script = Script(*[_error(status, error_type) for _ in range(3)])
    with pytest.raises(cls) as info:
        _create(_client(script))
    error = info.value
    assert error.status_code == status
    assert error.error_type == error_type
    assert error.message == f"{error_type} happened"
    assert error.request_id == "req_from_body"
    rendered = "\n".join(error._render_traceback_())
    assert f"{status} {error_type}" in rendered
    assert "req_from_body" in rendered
    assert "Traceback" not in rendered


def test_error_without_json_body_still_has_status_and_request_id(sleeps: list[float]) -> None:
    script = Script(httpx.Response(403, text="<html>nope</html>", headers={"request-id": "req_x"}))
    with pytest.raises(PermissionDeniedError) as info:
        _create(_client(script))
    assert info.value.request_id == "req_x"
    assert info.value.error_type == "permission_error"


def test_key_is_read_at_request_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("x-api-key"))
        return httpx.Response(200, json=OK_MESSAGE)

    client = Client(base_url="http://api.test", transport=httpx.MockTransport(handler))
    with pytest.raises(MissingAPIKeyError) as info:
        _create(client)
    assert "ANTHROPIC_API_KEY" in str(info.value)
    assert "python -m claude_magics.emulator" in "\n".join(info.value._render_traceback_())
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-later")
    _create(client)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-rotated")
    _create(client)
    assert seen == ["sk-later", "sk-rotated"]


def test_base_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    assert Client(api_key="k").base_url == "https://api.anthropic.com"
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://env.example/")
    assert Client(api_key="k").base_url == "http://env.example"
    assert Client(api_key="k", base_url="http://arg.example").base_url == "http://arg.example"


def test_headers_sent(sleeps: list[float]) -> None:
    script = Script(httpx.Response(200, json=OK_MESSAGE))
    _create(_client(script))
    request = script.requests[0]
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("claude-magics/")
    assert str(request.url) == "http://api.test/v1/messages"


def test_key_never_in_repr_errors_or_logs(
    caplog: pytest.LogCaptureFixture, sleeps: list[float]
) -> None:
    secret = "sk-test-secret-0123456789"
    caplog.set_level(logging.DEBUG)
    script = Script(
        _error(401, "authentication_error"),
        httpx.ConnectError("refused"),
        httpx.ConnectError("refused"),
        httpx.ConnectError("refused"),
    )
    client = _client(script)
    texts = [repr(client), str(client.__dict__)]
    for _ in range(2):
        try:
            _create(client)
        except Exception as exc:
            texts += [str(exc), repr(exc), "\n".join(exc._render_traceback_()), str(exc.__dict__)]  # type: ignore[attr-defined]
    texts.append(caplog.text)
    assert "api_key=set (argument)" in repr(client)
    for text in texts:
        assert secret not in text


def test_rate_limit_headers_are_parsed(sleeps: list[float]) -> None:
    headers = {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-requests-reset": "2026-11-22T15:00:00Z",
        "anthropic-ratelimit-input-tokens-limit": "30000",
        "anthropic-ratelimit-input-tokens-remaining": "29000",
        "anthropic-ratelimit-output-tokens-limit": "8000",
        "anthropic-ratelimit-output-tokens-remaining": "7990",
    }
    script = Script(httpx.Response(200, json=OK_MESSAGE, headers=headers))
    client = _client(script)
    message = _create(client)
    assert client.rate_limits == RateLimits(
        requests_limit=50,
        requests_remaining=49,
        requests_reset="2026-11-22T15:00:00Z",
        input_tokens_limit=30000,
        input_tokens_remaining=29000,
        output_tokens_limit=8000,
        output_tokens_remaining=7990,
    )
    assert message.response_headers["anthropic-ratelimit-requests-limit"] == "50"  # type: ignore[attr-defined]
