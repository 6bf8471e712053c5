"""Check emulator responses against the official OpenAPI spec, over real HTTP.

    validate(body, "Message")                # AssertionError naming the failing field
    with Api(emulator.url) as api:
        message = api.create(model=..., max_tokens=..., messages=[...])   # validated
        events = api.stream(...)                                          # each event validated

The spec (tests/data/anthropic-openapi.yml) is registered whole as one `referencing` resource,
so its ``#/components/schemas/...`` references resolve inside it. It is loaded once per session.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).parent / "data" / "anthropic-openapi.yml"
SPEC_URI = "urn:anthropic:openapi"
HEADERS = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
ERROR_TYPES = {
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "timeout_error",
    "overloaded_error",
}
_REQUEST_ID = re.compile(r"^req_[0-9A-Za-z]{24}$")


@functools.cache
def spec() -> dict[str, Any]:
    with SPEC_PATH.open("rb") as handle:
        return yaml.load(handle, Loader=yaml.CSafeLoader)  # type: ignore[no-any-return]


@functools.cache
def _registry() -> Registry:
    resource = Resource.from_contents(spec(), default_specification=DRAFT202012)
    return Registry().with_resource(SPEC_URI, resource)


@functools.cache
def validator(schema_name: str) -> Draft202012Validator:
    if schema_name not in spec()["components"]["schemas"]:
        raise KeyError(f"no schema {schema_name!r} in the spec")
    ref = {"$ref": f"{SPEC_URI}#/components/schemas/{schema_name}"}
    return Draft202012Validator(ref, registry=_registry())


def validate(instance: Any, schema_name: str) -> None:
    """Assert ``instance`` is valid against ``components/schemas/<schema_name>``."""
    errors = list(validator(schema_name).iter_errors(instance))
    if errors:
        worst = max(errors, key=lambda e: len(list(e.absolute_path)))
        path = "/".join(str(p) for p in worst.absolute_path)
        raise AssertionError(f"{schema_name} invalid at '{path}': {worst.message}\n{instance!r}")


def check_error(body: Any, error_type: str) -> None:
    """Assert ``body`` is the API's error shape with this error type and a request id."""
    assert set(body) == {"type", "error", "request_id"}, body
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type, body
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert error_type in ERROR_TYPES
    if error_type != "request_too_large":  # a type the spec's ErrorResponse does not list
        validate(body, "ErrorResponse")


def check_event(name: str, data: dict[str, Any]) -> None:
    """Assert one SSE frame is well formed: spec-valid, ping or error shape."""
    assert data.get("type") == name, (name, data)
    if name == "ping":
        assert data == {"type": "ping"}
    elif name == "error":
        assert set(data) == {"type", "error", "request_id"}
        assert set(data["error"]) == {"type", "message"}
        assert data["error"]["type"] in ERROR_TYPES
    else:
        validate(data, "MessageStreamEvent")


def parse_sse(raw: bytes) -> list[tuple[str, str]]:
    """(event, data) pairs; lines split only on CR, LF or CRLF, as the SSE spec says."""
    events: list[tuple[str, str]] = []
    name, data = "", []
    for line in re.split(r"\r\n|\r|\n", raw.decode("utf-8")):
        if not line:
            if data:
                events.append((name or "message", "\n".join(data)))
            name, data = "", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        events.append((name or "message", "\n".join(data)))
    return events


def fold(events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Fold stream events into the final Message (what an SDK's accumulator does)."""
    message: dict[str, Any] = {}
    json_parts: dict[int, list[str]] = {}
    for name, data in events:
        if name == "message_start":
            message = dict(data["message"])
            message["content"] = []
        elif name == "content_block_start":
            assert data["index"] == len(message["content"])
            message["content"].append(dict(data["content_block"]))
        elif name == "content_block_delta":
            block = message["content"][data["index"]]
            delta = data["delta"]
            kind = delta["type"]
            if kind == "text_delta":
                block["text"] += delta["text"]
            elif kind == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif kind == "signature_delta":
                block["signature"] += delta["signature"]
            elif kind == "citations_delta":
                block["citations"] = [*(block.get("citations") or []), delta["citation"]]
            elif kind == "input_json_delta":
                json_parts.setdefault(data["index"], []).append(delta["partial_json"])
        elif name == "content_block_stop":
            index = data["index"]
            if index in json_parts:
                joined = "".join(json_parts[index])
                message["content"][index]["input"] = orjson.loads(joined) if joined else {}
        elif name == "message_delta":
            message.update(
                {k: v for k, v in data["delta"].items() if k != "container" or v is not None}
            )
            usage = dict(message["usage"])
            usage.update({k: v for k, v in data["usage"].items() if v is not None})
            message["usage"] = usage
    return message


class Api:
    """A thin httpx wrapper that validates every response it returns."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        # Plain HTTP: skipping the TLS context saves ~70 ms per client.
        self.client = httpx.Client(
            base_url=base_url, headers=headers or HEADERS, timeout=30.0, verify=False
        )

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.client.request(method, path, **kwargs)
        assert _REQUEST_ID.match(response.headers.get("request-id", "")), response.headers
        if response.status_code >= 400:
            body = response.json()
            check_error(body, body["error"]["type"])
            assert body["request_id"] == response.headers["request-id"]
        return response

    def error(
        self, status: int, error_type: str, method: str, path: str, **kwargs: Any
    ) -> dict[str, Any]:
        """Make a request that must fail; returns the error object."""
        response = self.request(method, path, **kwargs)
        assert response.status_code == status, (response.status_code, response.text)
        body = response.json()
        check_error(body, error_type)
        return body["error"]  # type: ignore[no-any-return]

    def invalid(self, path: str = "/v1/messages", **body: Any) -> str:
        """POST ``body``, expect 400 invalid_request_error, return the message."""
        return str(self.error(400, "invalid_request_error", "POST", path, json=body)["message"])

    def create(self, **params: Any) -> dict[str, Any]:
        response = self.request("POST", "/v1/messages", json=params)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        message = response.json()
        validate(message, "Message")
        return message  # type: ignore[no-any-return]

    def stream_response(
        self, **params: Any
    ) -> tuple[httpx.Response, list[tuple[str, dict[str, Any]]]]:
        response = self.request("POST", "/v1/messages", json={**params, "stream": True})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/event-stream")
        events = []
        for name, data in parse_sse(response.content):
            parsed = orjson.loads(data)
            check_event(name, parsed)
            events.append((name, parsed))
        return response, events

    def stream(self, **params: Any) -> list[tuple[str, dict[str, Any]]]:
        return self.stream_response(**params)[1]

    def count(self, **params: Any) -> int:
        response = self.request("POST", "/v1/messages/count_tokens", json=params)
        assert response.status_code == 200, response.text
        body = response.json()
        validate(body, "CountMessageTokensResponse")
        return int(body["input_tokens"])

    def get(self, path: str, schema: str, **params: Any) -> dict[str, Any]:
        response = self.request("GET", path, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        validate(body, schema)
        return body  # type: ignore[no-any-return]

    def post(self, path: str, schema: str, body: Any = None) -> dict[str, Any]:
        response = self.request("POST", path, json=body)
        assert response.status_code == 200, response.text
        data = response.json()
        validate(data, schema)
        return data  # type: ignore[no-any-return]
