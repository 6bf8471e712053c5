"""Injected faults: HTTP errors, dropped connections, error events, malformed frames, slowness."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
import pytest
from spec_validation import HEADERS, Api, check_event, parse_sse

from claude_magics.emulator import Emulator

from .support import body as _body
from .support import count_body

HI = "Hi [[reply_tokens=12]]"  # a short, fixed reply: fault positions are counted in frames


def body(**extra: Any) -> dict[str, Any]:
    return _body(HI, **extra)


def statuses(emulator: Emulator, path: str = "/v1/messages") -> list[int]:
    return [r.status for r in emulator.requests if r.path == path]


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (503, "api_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
    ],
)
def test_status_faults_use_the_matching_error_type(
    emulator: Emulator, emulator_api: Api, status: int, error_type: str
) -> None:
    emulator.add_fault(status=status)
    emulator_api.error(status, error_type, "POST", "/v1/messages", json=body())
    emulator_api.create(**body())
    assert statuses(emulator) == [status, 200]


def test_count_headers_and_message(emulator: Emulator, emulator_api: Api) -> None:
    emulator.add_fault(status=529, count=2, retry_after=2, retry_after_ms=150, should_retry=True)
    for _ in range(2):
        response = emulator_api.request("POST", "/v1/messages", json=body())
        assert response.status_code == 529
        assert response.json()["error"] == {"type": "overloaded_error", "message": "Overloaded"}
        assert response.headers["retry-after"] == "2"
        assert response.headers["retry-after-ms"] == "150"
        assert response.headers["x-should-retry"] == "true"
    assert emulator_api.request("POST", "/v1/messages", json=body()).status_code == 200
    emulator.add_fault(status=500, message="custom boom", should_retry=False, retry_after=0.5)
    response = emulator_api.request("POST", "/v1/messages", json=body())
    assert response.json()["error"]["message"] == "custom boom"
    assert response.headers["x-should-retry"] == "false"
    assert response.headers["retry-after"] == "0.5"
    assert statuses(emulator) == [529, 529, 200, 500]


def test_forever_every_and_fifo(emulator: Emulator, emulator_api: Api) -> None:
    emulator.add_fault(status=529, count=0)
    for _ in range(4):
        assert emulator_api.request("POST", "/v1/messages", json=body()).status_code == 529
    emulator.reset()
    emulator.add_fault(status=500, every=3, count=2)
    codes = [
        emulator_api.request("POST", "/v1/messages", json=body()).status_code for _ in range(9)
    ]
    assert codes == [200, 200, 500, 200, 200, 500, 200, 200, 200]
    emulator.reset()
    emulator.add_fault(status=529)
    emulator.add_fault(status=500)
    codes = [
        emulator_api.request("POST", "/v1/messages", json=body()).status_code for _ in range(3)
    ]
    assert codes == [529, 500, 200]


def test_path_and_method_matching(emulator: Emulator, emulator_api: Api) -> None:
    emulator.add_fault(status=500, path="/v1/messages/count_tokens")
    emulator_api.create(**body())  # /v1/messages is not that path
    emulator_api.error(
        500, "api_error", "POST", "/v1/messages/count_tokens", json=count_body(body())
    )
    emulator.add_fault(status=503, path=None, method="GET")
    emulator_api.create(**body())  # POST: not matched
    emulator_api.error(503, "api_error", "GET", "/v1/models")
    emulator.add_fault(status=529, path="/v1/messages/batches")
    requests = [{"custom_id": "a", "params": body()}]
    emulator_api.error(
        529, "overloaded_error", "POST", "/v1/messages/batches", json={"requests": requests}
    )
    emulator_api.post("/v1/messages/batches", "MessageBatch", {"requests": requests})


def test_faults_from_options() -> None:
    with Emulator(faults=[{"status": 529, "count": 1}]) as emu, Api(emu.url) as api:
        api.error(529, "overloaded_error", "POST", "/v1/messages", json=body())
        api.create(**body())


def test_drop_without_response(emulator: Emulator, emulator_api: Api) -> None:
    emulator.add_fault(kind="drop")
    with pytest.raises(httpx.RemoteProtocolError):
        emulator_api.client.post("/v1/messages", json=body())
    emulator_api.create(**body())
    assert statuses(emulator) == [0, 200]


def _read_stream(url: str, payload: dict[str, Any]) -> tuple[bytes, Exception | None]:
    received = b""
    with httpx.Client(base_url=url, headers=HEADERS, verify=False) as client:
        try:
            with client.stream(
                "POST", "/v1/messages", json={**payload, "stream": True}
            ) as response:
                assert response.status_code == 200
                for chunk in response.iter_raw():
                    received += chunk
        except httpx.HTTPError as error:
            return received, error
    return received, None


def test_drop_mid_stream(emulator: Emulator) -> None:
    emulator.add_fault(kind="drop", after_events=3)
    received, error = _read_stream(emulator.url, body())
    assert isinstance(error, httpx.RemoteProtocolError)
    names = [name for name, _ in parse_sse(received)]
    assert names == ["message_start", "ping", "content_block_start", "content_block_delta"]
    assert statuses(emulator) == [200]
    received, error = _read_stream(emulator.url, body())  # the next stream is whole
    assert error is None and received.endswith(b'{"type":"message_stop"}\n\n')


def test_error_event_mid_stream(emulator: Emulator) -> None:
    emulator.add_fault(kind="error_event", after_events=4, error_type="overloaded_error")
    with httpx.Client(base_url=emulator.url, headers=HEADERS) as client:
        response = client.post("/v1/messages", json={**body(), "stream": True})
    assert response.status_code == 200
    events = [(n, orjson.loads(d)) for n, d in parse_sse(response.content)]
    for name, data in events:
        check_event(name, data)
    assert [n for n, _ in events] == [
        "message_start", "ping", "content_block_start", "content_block_delta",
        "content_block_delta", "error",
    ]  # fmt: skip
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert text  # real text arrived before the error
    error = events[-1][1]
    assert error["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert error["request_id"] == response.headers["request-id"]


def test_error_event_without_streaming_is_an_http_error(
    emulator: Emulator, emulator_api: Api
) -> None:
    emulator.add_fault(kind="error_event", error_type="api_error", message="mid-flight")
    error = emulator_api.error(500, "api_error", "POST", "/v1/messages", json=body())
    assert error["message"] == "mid-flight"


def test_malformed_frame_then_the_rest(emulator: Emulator, emulator_api: Api) -> None:
    reference = [n for n, _ in emulator_api.stream(**body())]
    emulator.add_fault(kind="malformed", after_events=2)
    with httpx.Client(base_url=emulator.url, headers=HEADERS) as client:
        raw = client.post("/v1/messages", json={**body(), "stream": True}).content
    frames = parse_sse(raw)
    bad = []
    names = []
    for name, data in frames:
        try:
            check_event(name, orjson.loads(data))
            names.append(name)
        except orjson.JSONDecodeError:
            bad.append((name, data))
    assert len(bad) == 1
    assert bad[0][1].startswith('{"type": "content_block_delta"')
    assert names == reference  # nothing else is lost
    assert [n for n, _ in frames].index("content_block_delta") == 3  # the bad frame's slot


def test_malformed_non_streaming_body(emulator: Emulator, emulator_api: Api) -> None:
    emulator.add_fault(kind="malformed")
    response = emulator_api.client.post("/v1/messages", json=body())
    assert response.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)


def test_slow_fault(emulator: Emulator, emulator_api: Api) -> None:
    emulator.add_fault(kind="slow", delay=0.3)
    started = time.monotonic()
    emulator_api.create(**body())
    assert time.monotonic() - started >= 0.3
    emulator.add_fault(kind="slow", delay=1.0)
    with pytest.raises(httpx.ReadTimeout):
        emulator_api.client.post("/v1/messages", json=body(), timeout=0.2)
    started = time.monotonic()
    emulator_api.create(**body())  # the fault was used up: not delayed by its second
    assert time.monotonic() - started < 1.0
