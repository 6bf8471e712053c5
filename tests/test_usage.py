"""Usage, the worst case, the cache lifetime of a body and the cache minimum per model: each fact
parsed or computed in one place."""

from __future__ import annotations

from typing import Any

import pytest

from claude_magics.api.models import DEFAULT_CACHE_MIN_TOKENS, cache_min_tokens
from claude_magics.cost.pricing import price_usage, worst_case_usd
from claude_magics.cost.tokens import cache_write_ttl, request_worst_case
from claude_magics.cost.usage import Usage

MILLION = 1_000_000


def test_usage_splits_cache_writes_by_lifetime_once() -> None:
    api = {
        "input_tokens": 10,
        "output_tokens": 20,
        "cache_creation_input_tokens": 300,
        "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
        "cache_read_input_tokens": 40,
    }
    usage = Usage.from_api(api)
    assert usage == Usage(
        input=10, output=20, cache_write_5m=100, cache_write_1h=200, cache_read=40
    )
    assert usage.cache_write == 300
    assert usage.prompt == 350
    assert Usage.from_api(usage.to_api()) == usage


@pytest.mark.parametrize(
    "breakdown",
    [None, {}, {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}, "junk"],
)
def test_cache_writes_without_a_breakdown_are_five_minute(breakdown: Any) -> None:
    usage = Usage.from_api({"cache_creation_input_tokens": 500, "cache_creation": breakdown})
    assert (usage.cache_write_5m, usage.cache_write_1h) == (500, 0)


def test_a_breakdown_that_does_not_add_up_keeps_the_total() -> None:
    usage = Usage.from_api(
        {
            "cache_creation_input_tokens": 500,
            "cache_creation": {"ephemeral_1h_input_tokens": 200},
        }
    )
    assert (usage.cache_write_5m, usage.cache_write_1h) == (300, 200)


def test_nonsense_counts_are_zero_and_usage_adds() -> None:
    odd = Usage.from_api(
        {"input_tokens": True, "output_tokens": -5, "cache_read_input_tokens": "7"}
    )
    assert odd == Usage()
    assert not odd
    assert Usage(input=1, output=2) + Usage(cache_read=3, cache_write_1h=4) == Usage(
        input=1, output=2, cache_read=3, cache_write_1h=4
    )
    assert Usage(input=5, output=1).with_output(9) == Usage(input=5, output=9)


def test_price_usage_takes_the_value_type_and_the_api_dict_alike() -> None:
    usage = Usage(input=MILLION, output=MILLION, cache_write_1h=MILLION, cache_read=MILLION)
    as_type = price_usage(usage, "claude-sonnet-4-6")
    as_dict = price_usage(usage.to_api(), "claude-sonnet-4-6")
    assert as_type == as_dict
    assert as_type is not None
    assert as_type.total == pytest.approx(3 + 15 + 6 + 0.3)


def test_worst_case_is_every_input_token_at_the_dearest_rate_and_a_full_reply() -> None:
    plain = worst_case_usd("claude-sonnet-4-6", MILLION, MILLION)
    five = worst_case_usd("claude-sonnet-4-6", MILLION, MILLION, cache_write="5m")
    hour = worst_case_usd("claude-sonnet-4-6", MILLION, MILLION, cache_write="1h")
    batch = worst_case_usd("claude-sonnet-4-6", MILLION, MILLION, cache_write="1h", batch=True)
    assert (plain, five, hour) == pytest.approx((18.0, 18.75, 21.0))
    assert batch == pytest.approx(10.5)
    assert worst_case_usd("claude-future-9", 1, 1) is None


def _body(**extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": MILLION,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        **extra,
    }


def test_the_cache_lifetime_of_a_body_is_found_by_walking_it() -> None:
    assert cache_write_ttl(_body()) is None
    five = _body(system=[{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}])
    assert cache_write_ttl(five) == "5m"
    hour = _body(
        system=[{"type": "text", "text": "s", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    )
    assert cache_write_ttl(hour) == "1h"
    # Text that merely mentions a ttl is not a cache mark (the old check searched repr(body)).
    talk = _body(
        messages=[{"role": "user", "content": "my dict is {'ttl': '1h'} and cache_control"}]
    )
    assert cache_write_ttl(talk) is None
    assert request_worst_case(talk, MILLION) == pytest.approx(18.0)
    assert request_worst_case(hour, MILLION) == pytest.approx(21.0)


def test_cache_minimum_per_model_with_an_override() -> None:
    assert cache_min_tokens("claude-haiku-4-5") == 4096
    assert cache_min_tokens("claude-haiku-4-5-20251001") == 4096
    assert cache_min_tokens("claude-sonnet-4-6") == 1024
    assert cache_min_tokens("claude-sonnet-4-6", override=3000) == 3000
    assert cache_min_tokens("some-proxy-model") == DEFAULT_CACHE_MIN_TOKENS


def test_server_tool_requests_are_read_added_and_written_back() -> None:
    api = {
        "input_tokens": 900,
        "output_tokens": 40,
        "server_tool_use": {"web_search_requests": 3, "web_fetch_requests": 1},
    }
    usage = Usage.from_api(api)
    assert (usage.web_search_requests, usage.web_fetch_requests) == (3, 1)
    assert usage.to_api()["server_tool_use"] == api["server_tool_use"]
    assert Usage.from_api(usage.to_api()) == usage
    assert usage.with_output(7).web_search_requests == 3
    total = usage + Usage(web_search_requests=2)
    assert (total.web_search_requests, total.web_fetch_requests) == (5, 1)
    assert Usage(web_search_requests=1)  # a search alone is usage worth recording
    # No server tools, or a null server_tool_use: zeros, and the API shape stays as it was.
    assert Usage.from_api({"input_tokens": 1, "server_tool_use": None}).web_search_requests == 0
    assert "server_tool_use" not in Usage(input=1).to_api()
