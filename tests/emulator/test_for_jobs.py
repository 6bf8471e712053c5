"""Emulator features DataFrame jobs are tested with: a lost create response, per-request errors
by directive, and the structured-output schema as part of the cached prefix."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from claude_magics.api.client import Client
from claude_magics.config import DEFAULTS
from claude_magics.emulator import Emulator
from claude_magics.errors import APIConnectionError, OverloadedError

from .support import body

SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": ["yes", "no"]}},
    "required": ["label"],
    "additionalProperties": False,
}


def params(text: str, **extra: Any) -> dict[str, Any]:
    """A short request: what each row of a job sends, give or take the row's own text."""
    return body(text, max_tokens=50, **extra)


def test_drop_response_creates_the_batch_and_loses_the_answer(emulator: Emulator) -> None:
    client = Client(api_key="k", base_url=emulator.url, max_retries=3)
    emulator.add_fault(kind="drop_response", path="/v1/messages/batches", method="POST")
    with pytest.raises(APIConnectionError) as caught:
        client.batches.create([{"custom_id": "a", "params": params("Hi")}])
    assert caught.value.may_have_reached_server
    creates = [r for r in emulator.requests if r.method == "POST" and r.path.endswith("batches")]
    assert len(creates) == 1  # never re-sent blindly
    listed = list(client.batches.iter_all())
    assert len(listed) == 1  # ... yet the batch exists
    assert listed[0]["request_counts"]["processing"] == 1


def test_drop_response_on_a_message_is_a_transport_error(emulator: Emulator) -> None:
    emulator.add_fault(kind="drop_response")
    with httpx.Client() as http, pytest.raises(httpx.TransportError):
        http.post(
            emulator.url + "/v1/messages",
            json=params("Hi"),
            headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
        )
    assert [r.status for r in emulator.requests] == [0]


def test_error_directive_fails_a_message_with_that_type(emulator: Emulator) -> None:
    client = Client(api_key="k", base_url=emulator.url, max_retries=0)
    with pytest.raises(OverloadedError):
        client.messages.create(**params("Row [[error=overloaded_error]]"))
    assert client.messages.create(**params("Row [[error=not_a_type]]"))["content"]


def test_error_directive_errors_one_batch_request(emulator: Emulator) -> None:
    client = Client(api_key="k", base_url=emulator.url)
    batch = client.batches.create(
        [
            {"custom_id": "ok", "params": params("fine")},
            {"custom_id": "bad", "params": params("boom [[error=api_error]]")},
        ]
    )
    emulator.advance_clock(60)
    with client.batches.results(batch["id"]) as lines:
        results = {line["custom_id"]: line["result"] for line in lines}
    assert results["ok"]["type"] == "succeeded"
    assert results["bad"]["type"] == "errored"
    assert results["bad"]["error"]["error"]["type"] == "api_error"


def _cached_system(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}]


# The job model (Haiku 5.5: new tokenizer, a 4,096-token cache minimum) and an older model.
@pytest.mark.parametrize("model", [DEFAULTS.job_model, "claude-sonnet-4-6"])
def test_output_schema_is_part_of_the_cached_prefix(emulator: Emulator, model: str) -> None:
    client = Client(api_key="k", base_url=emulator.url)
    system = _cached_system("Label the row. " * 1200)  # over 4,096 tokens on any tokenizer
    fmt = {"format": {"type": "json_schema", "schema": SCHEMA}}
    first = client.messages.create(
        **params("row one", model=model, system=system, output_config=fmt)
    )
    second = client.messages.create(
        **params("row two", model=model, system=system, output_config=fmt)
    )
    assert first["usage"]["cache_creation_input_tokens"] > 0
    # The schema is read from cache with the system prompt: only the row is fresh input.
    assert (
        second["usage"]["cache_read_input_tokens"] == first["usage"]["cache_creation_input_tokens"]
    )
    assert second["usage"]["input_tokens"] < 20
    other = {**SCHEMA, "properties": {"label": {"type": "string", "enum": ["a", "b"]}}}
    third = client.messages.create(
        **params(
            "row one",
            model=model,
            system=system,
            output_config={"format": {"type": "json_schema", "schema": other}},
        )
    )
    assert third["usage"]["cache_read_input_tokens"] == 0  # another schema, another prefix
