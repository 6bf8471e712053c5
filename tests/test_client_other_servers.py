"""The client against servers that speak only part of the Messages API (gateways, proxies):
a 404 for a missing endpoint, a whole JSON message answered to a streaming request, a token
count the server marks as an estimate. A small stub server on 127.0.0.1 plays the gateway."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from claude_magics.api.client import Client
from claude_magics.errors import (
    APIResponseError,
    APIStreamError,
    EndpointNotFoundError,
    NotFoundError,
)

MESSAGE: dict[str, Any] = {
    "id": "msg_gateway",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-5-5",
    "content": [
        {"type": "thinking", "thinking": "Weighing it.", "signature": "sig"},
        {"type": "text", "text": "Hello from a gateway."},
        {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x", "n": 2}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 12, "output_tokens": 34},
}


class _Gateway(BaseHTTPRequestHandler):
    # What the stub answers, set per test: path -> (status, content type, body)
    routes: ClassVar[dict[str, tuple[int, str, bytes]]] = {}

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        status, kind, body = self.routes.get(
            self.path, (404, "application/json", b'{"detail": "Not Found"}')
        )
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[tuple[Client, dict[str, tuple[int, str, bytes]]]]:
    routes: ClassVar[dict[str, tuple[int, str, bytes]]] = {}
    handler = type("Gateway", (_Gateway,), {"routes": routes})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = Client(api_key="sk-gw", base_url=f"http://127.0.0.1:{server.server_port}")
    try:
        yield client, routes
    finally:
        client.close()
        server.shutdown()
        server.server_close()


def _json(obj: Any, status: int = 200) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(obj).encode()


def test_a_missing_endpoint_says_so_not_check_the_model(gateway: Any) -> None:
    client, _ = gateway
    with pytest.raises(EndpointNotFoundError) as caught:
        client.messages.count_tokens(model="claude-sonnet-5-5", messages=[])
    text = str(caught.value)
    assert "has no POST /v1/messages/count_tokens endpoint" in text
    assert "not the Anthropic API" in caught.value.hint
    assert "Check the model name" not in caught.value.hint
    with pytest.raises(EndpointNotFoundError, match="no POST /v1/messages/batches endpoint"):
        client.batches.create([])


def test_the_apis_own_404_stays_a_not_found(gateway: Any) -> None:
    client, routes = gateway
    routes["/v1/messages"] = _json(
        {"type": "error", "error": {"type": "not_found_error", "message": "model: claude-x"}},
        404,
    )
    with pytest.raises(NotFoundError) as caught:
        client.messages.create(model="claude-x", max_tokens=5, messages=[])
    assert not isinstance(caught.value, EndpointNotFoundError)


def test_a_whole_json_message_answers_a_streaming_request(gateway: Any) -> None:
    client, routes = gateway
    routes["/v1/messages"] = _json(MESSAGE)
    with client.messages.stream(model="claude-sonnet-5-5", max_tokens=50, messages=[]) as stream:
        texts = list(stream.text_stream)
    assert texts == ["Hello from a gateway."]
    final = stream.message
    assert final["content"] == MESSAGE["content"]
    assert final["stop_reason"] == "tool_use"
    assert final["usage"] == MESSAGE["usage"]
    assert final["id"] == "msg_gateway"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            _json({"type": "error", "error": {"type": "overloaded_error", "message": "Busy"}}),
            "Busy",
        ),
        (_json({"choices": [{"text": "openai-shaped"}]}), "JSON that is not a message"),
        ((200, "application/json", b"<html>oops"), "neither server-sent events nor JSON"),
    ],
)
def test_other_json_answers_to_a_stream_are_one_line_errors(
    gateway: Any, answer: tuple[int, str, bytes], expected: str
) -> None:
    client, routes = gateway
    routes["/v1/messages"] = answer
    with (
        pytest.raises(APIStreamError, match=expected),
        client.messages.stream(model="m", max_tokens=5, messages=[]) as stream,
    ):
        list(stream)


@pytest.mark.parametrize(
    ("body", "estimated"),
    [
        ({"input_tokens": 42}, False),
        ({"input_tokens": 42, "estimated": True}, True),
        ({"input_tokens": 42, "tokenizer_type": "openai_tokenizer"}, True),
        ({"input_tokens": 42, "tokenizer_type": "anthropic_api"}, False),
    ],
)
def test_a_count_the_server_marks_as_an_estimate_is_one(
    gateway: Any, body: dict[str, Any], estimated: bool
) -> None:
    client, routes = gateway
    routes["/v1/messages/count_tokens"] = _json(body)
    count = client.messages.count_tokens(model="m", messages=[], max_tokens=9, stream=True)
    assert count == 42
    assert count.estimated is estimated


@pytest.mark.parametrize(
    "answer",
    [
        (200, "text/html", b"<html>proxy says hi</html>"),
        (200, "application/json", b'{"type": "message", "content": ['),
        (200, "application/json", b"[1, 2, 3]"),
    ],
)
def test_a_2xx_that_is_not_a_json_object_is_one_line(
    gateway: Any, answer: tuple[int, str, bytes]
) -> None:
    client, routes = gateway
    routes["/v1/messages"] = answer
    with pytest.raises(APIResponseError, match="answered 200 with") as caught:
        client.messages.create(model="m", max_tokens=5, messages=[])
    assert "\n" not in str(caught.value)
