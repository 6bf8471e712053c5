"""Pricing: every model, every kind of token, batch and cache multipliers, unknown models."""

from __future__ import annotations

import pytest

from claude_magics.cost.pricing import ModelPrice, format_usd, model_price, price_usage

MILLION = 1_000_000


@pytest.mark.parametrize(
    ("model", "input_price", "output_price"),
    [
        ("claude-opus-4-7", 5, 25),
        ("claude-opus-4-6", 5, 25),
        ("claude-opus-4-5", 5, 25),
        ("claude-opus-4-5-20251101", 5, 25),
        ("claude-sonnet-4-6", 3, 15),
        ("claude-sonnet-4-5-20250929", 3, 15),
        ("claude-haiku-4-5", 1, 5),
        ("claude-haiku-4-5-20251001", 1, 5),
    ],
)
def test_each_model_and_kind_of_token(model: str, input_price: float, output_price: float) -> None:
    usage = {
        "input_tokens": MILLION,
        "output_tokens": MILLION,
        "cache_creation_input_tokens": 3 * MILLION,
        "cache_creation": {
            "ephemeral_5m_input_tokens": MILLION,
            "ephemeral_1h_input_tokens": 2 * MILLION,
        },
        "cache_read_input_tokens": 10 * MILLION,
    }
    cost = price_usage(usage, model)
    assert cost is not None
    assert cost.input == pytest.approx(input_price)
    assert cost.output == pytest.approx(output_price)
    assert cost.cache_write == pytest.approx(input_price * (1.25 + 2 * 2.0))
    assert cost.cache_read == pytest.approx(input_price * 10 * 0.1)
    assert cost.total == pytest.approx(input_price * (1 + 5.25 + 1) + output_price)
    batch = price_usage(usage, model, batch=True)
    assert batch is not None
    assert batch.total == pytest.approx(cost.total / 2)


def test_cache_writes_without_breakdown_are_five_minute() -> None:
    cost = price_usage(
        {"cache_creation_input_tokens": MILLION, "cache_creation": None}, "claude-haiku-4-5"
    )
    assert cost is not None
    assert cost.cache_write == pytest.approx(1.25)


def test_unknown_model_is_unknown_not_guessed() -> None:
    assert model_price("claude-future-9") is None
    assert price_usage({"input_tokens": 10}, "claude-future-9") is None
    assert format_usd(None) == "cost unknown"


def test_overrides_win() -> None:
    cost = price_usage(
        {"input_tokens": MILLION}, "my-proxy-model", overrides={"my-proxy-model": (2.0, 4.0)}
    )
    assert cost is not None
    assert cost.total == pytest.approx(2.0)
    assert model_price("claude-haiku-4-5", {"claude-haiku-4-5": ModelPrice(9, 9)}) == ModelPrice(
        9, 9
    )


def test_costs_add_and_format() -> None:
    a = price_usage({"input_tokens": 1000, "output_tokens": 100}, "claude-sonnet-4-6")
    b = price_usage({"input_tokens": 2000, "output_tokens": 300}, "claude-sonnet-4-6")
    assert a is not None
    assert b is not None
    assert (a + b).total == pytest.approx((3000 * 3 + 400 * 15) / MILLION)
    assert format_usd(0.25) == "$0.25"
    assert format_usd(0.0012) == "$0.0012"
    assert format_usd(12.5) == "$12.50"
    assert format_usd(1234.0) == "$1,234"
    assert str(a) == format_usd(a.total)
