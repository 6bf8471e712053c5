"""Prompt caching: writes, reads, minimum sizes, TTLs on the emulator clock, breakpoints."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from spec_validation import Api

from claude_magics.emulator import Emulator
from claude_magics.emulator.tokens import REQUEST_OVERHEAD, SYSTEM_OVERHEAD

from .support import MODEL, body, count_body

LONG = " word" * 1500  # 1500 tokens: above the 1024 minimum of Sonnet and Opus
SHORT = " word" * 500


def cached(text: str, ttl: str | None = None) -> dict[str, Any]:
    control: dict[str, Any] = {"type": "ephemeral"}
    if ttl:
        control["ttl"] = ttl
    return {"type": "text", "text": text, "cache_control": control}


def req(
    system: list[dict[str, Any]] | str | None = None, question: str = "Q?", **extra: Any
) -> dict[str, Any]:
    """The shared body with a short reply and, when given, a system prompt."""
    if system is not None:
        extra["system"] = system
    return body(question, max_tokens=20, **extra)


def usage(api: Api, payload: dict[str, Any]) -> dict[str, Any]:
    return api.create(**payload)["usage"]  # type: ignore[no-any-return]


def cache_figures(u: dict[str, Any]) -> tuple[int, int, int, int]:
    """(read, written 5m, written 1h, uncached input)."""
    return (
        u["cache_read_input_tokens"],
        u["cache_creation"]["ephemeral_5m_input_tokens"],
        u["cache_creation"]["ephemeral_1h_input_tokens"],
        u["input_tokens"],
    )


SYSTEM_PREFIX = REQUEST_OVERHEAD + SYSTEM_OVERHEAD + 1500  # tokens up to the system breakpoint


def test_write_then_read(emulator_api: Api) -> None:
    payload = req([cached(LONG)])
    first = usage(emulator_api, payload)
    total = emulator_api.count(**count_body(payload))
    assert cache_figures(first) == (0, SYSTEM_PREFIX, 0, total - SYSTEM_PREFIX)
    assert first["cache_creation_input_tokens"] == SYSTEM_PREFIX
    second = usage(emulator_api, payload)
    assert cache_figures(second) == (SYSTEM_PREFIX, 0, 0, total - SYSTEM_PREFIX)
    assert second["cache_creation_input_tokens"] == 0
    # A different question after the same cached system prompt still reads it.
    third = usage(emulator_api, req([cached(LONG)], question="Another question entirely"))
    assert third["cache_read_input_tokens"] == SYSTEM_PREFIX
    # A different system prompt does not.
    other = usage(emulator_api, req([cached(LONG + " more")]))
    assert other["cache_read_input_tokens"] == 0 and other["cache_creation_input_tokens"] > 0


def test_cache_is_per_model(emulator_api: Api) -> None:
    usage(emulator_api, req([cached(LONG)]))
    # Same tokenizer and minimum (1,024), another model: its own cache.
    other = usage(emulator_api, req([cached(LONG)], model="claude-sonnet-4-5"))
    assert other["cache_read_input_tokens"] == 0 and other["cache_creation_input_tokens"] > 0


def test_below_minimum_is_not_cached(emulator_api: Api) -> None:
    payload = req([cached(SHORT)])
    for _ in range(2):
        u = usage(emulator_api, payload)
        assert cache_figures(u)[:3] == (0, 0, 0)


def test_haiku_minimum_and_override(emulator: Emulator, emulator_api: Api) -> None:
    mid = " word" * 2500  # above 1024, below Haiku's 4096
    payload = req([cached(mid)], model="claude-haiku-4-5")
    assert usage(emulator_api, payload)["cache_creation_input_tokens"] == 0
    assert usage(emulator_api, req([cached(mid)]))["cache_creation_input_tokens"] > 0  # Sonnet
    emulator.configure(cache_min_tokens={"claude-haiku-4-5": 2000})
    assert usage(emulator_api, payload)["cache_creation_input_tokens"] > 0
    assert usage(emulator_api, payload)["cache_read_input_tokens"] > 0


def test_five_minute_expiry_and_refresh(emulator: Emulator, emulator_api: Api) -> None:
    payload = req([cached(LONG)])
    assert usage(emulator_api, payload)["cache_creation_input_tokens"] == SYSTEM_PREFIX
    emulator.advance_clock(240)
    assert usage(emulator_api, payload)["cache_read_input_tokens"] == SYSTEM_PREFIX  # refreshes
    emulator.advance_clock(240)  # 480 s after the write, 240 s after the refresh
    assert usage(emulator_api, payload)["cache_read_input_tokens"] == SYSTEM_PREFIX
    emulator.advance_clock(301)
    expired = usage(emulator_api, payload)
    assert expired["cache_read_input_tokens"] == 0
    assert expired["cache_creation_input_tokens"] == SYSTEM_PREFIX


def test_one_hour_ttl_survives_ten_minutes(emulator: Emulator, emulator_api: Api) -> None:
    payload = req([cached(LONG, "1h")])
    first = usage(emulator_api, payload)
    assert cache_figures(first)[:3] == (0, 0, SYSTEM_PREFIX)
    emulator.advance_clock(600)
    assert usage(emulator_api, payload)["cache_read_input_tokens"] == SYSTEM_PREFIX
    emulator.advance_clock(3601)
    assert usage(emulator_api, payload)["cache_read_input_tokens"] == 0


def test_breakdown_by_ttl_and_partial_hits(emulator_api: Api) -> None:
    tool = {
        "name": "lookup",
        "description": LONG,
        "input_schema": {"type": "object"},
        "cache_control": {"type": "ephemeral", "ttl": "1h"},
    }
    payload = req([cached(LONG)], tools=[tool])
    total = emulator_api.count(**count_body(payload))
    first = usage(emulator_api, payload)
    read, five, hour, uncached = cache_figures(first)
    assert read == 0 and hour > 1500 and five == SYSTEM_OVERHEAD + 1500
    assert five + hour + uncached == total
    second = usage(emulator_api, payload)
    assert cache_figures(second) == (five + hour, 0, 0, uncached)
    # Only the tools prefix matches when the system prompt changes: read it, write the rest.
    changed = usage(emulator_api, req([cached(LONG + " changed")], tools=[tool]))
    assert changed["cache_read_input_tokens"] == hour
    assert changed["cache_creation"]["ephemeral_5m_input_tokens"] > 1500
    assert changed["cache_creation"]["ephemeral_1h_input_tokens"] == 0


def test_top_level_cache_control_and_conversation(emulator_api: Api) -> None:
    first_turn = [{"role": "user", "content": LONG}]
    payload = {
        "model": MODEL,
        "max_tokens": 20,
        "messages": first_turn,
        "cache_control": {"type": "ephemeral"},
    }
    total = emulator_api.count(**count_body(payload))
    first = usage(emulator_api, payload)
    assert first["cache_creation_input_tokens"] == total and first["input_tokens"] == 0
    second = usage(emulator_api, payload)
    assert second["cache_read_input_tokens"] == total and second["input_tokens"] == 0
    # Next turn: the breakpoint moves to the new last message and the old prefix is found.
    next_turn = [
        *first_turn,
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "more"},
    ]
    third = usage(emulator_api, {**payload, "messages": next_turn})
    assert third["cache_read_input_tokens"] == total
    assert third["cache_creation_input_tokens"] > 0 and third["input_tokens"] == 0
    # Without cache_control nothing is cached or read.
    plain = usage(emulator_api, {k: v for k, v in payload.items() if k != "cache_control"})
    assert cache_figures(plain)[:3] == (0, 0, 0)


def test_breakpoint_limits(emulator_api: Api) -> None:
    blocks = [cached(f"block {i}") for i in range(4)]
    emulator_api.create(**req(blocks))
    message = emulator_api.invalid(**req([*blocks, cached("fifth")]))
    assert message == "A maximum of 4 blocks with cache_control may be provided. Found 5."
    top = req(blocks, cache_control={"type": "ephemeral"})
    assert emulator_api.invalid(**top).endswith("Found 5.")
    order = emulator_api.invalid(**req([cached(LONG, "5m"), cached(LONG, "1h")]))
    assert "1h" in order and "5m" in order
    bad_ttl = emulator_api.invalid(
        **req([{**cached("x"), "cache_control": {"type": "ephemeral", "ttl": "2h"}}])
    )
    assert bad_ttl.startswith("system.0.cache_control.ttl")


def test_count_tokens_ignores_the_cache(emulator_api: Api) -> None:
    payload = req([cached(LONG)])
    counted = emulator_api.count(**count_body(payload))
    first = usage(emulator_api, payload)
    assert first["cache_creation_input_tokens"] == SYSTEM_PREFIX  # the count wrote nothing
    assert emulator_api.count(**count_body(payload)) == counted


def test_reset_clears_the_cache(emulator: Emulator, emulator_api: Api) -> None:
    payload = req([cached(LONG)])
    usage(emulator_api, payload)
    emulator.reset()
    assert usage(emulator_api, payload)["cache_read_input_tokens"] == 0


@pytest.mark.claude_emulator(batch_processing_seconds=0.0)
def test_caching_inside_a_batch(emulator: Emulator, emulator_api: Api) -> None:
    params = req([cached(LONG, "1h")])
    requests = [{"custom_id": f"r{i}", "params": params} for i in range(3)]
    batch = emulator_api.post("/v1/messages/batches", "MessageBatch", {"requests": requests})
    deadline = time.monotonic() + 5
    while batch["processing_status"] != "ended" and time.monotonic() < deadline:
        batch = emulator_api.get(f"/v1/messages/batches/{batch['id']}", "MessageBatch")
    raw = emulator_api.request("GET", f"/v1/messages/batches/{batch['id']}/results").text
    lines = {
        r["custom_id"]: r["result"]["message"]["usage"] for r in map(orjson.loads, raw.splitlines())
    }
    assert lines["r0"]["cache_creation"]["ephemeral_1h_input_tokens"] == SYSTEM_PREFIX
    assert lines["r1"]["cache_read_input_tokens"] == SYSTEM_PREFIX
    assert lines["r2"]["cache_read_input_tokens"] == SYSTEM_PREFIX
    assert all(u["service_tier"] == "batch" for u in lines.values())
    # A later synchronous request sees the batch's entry.
    assert usage(emulator_api, params)["cache_read_input_tokens"] == SYSTEM_PREFIX
