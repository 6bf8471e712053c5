"""Pricing: every model, every kind of token, batch and cache multipliers, unknown models."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from claude_magics.cost import pricing
from claude_magics.cost.ledger import Ledger
from claude_magics.cost.pricing import (
    PRICES_AS_OF,
    SERVER_TOOL_PRICES,
    ModelPrice,
    format_usd,
    model_price,
    price_usage,
)
from claude_magics.cost.usage import Usage

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


@pytest.mark.parametrize(
    ("model", "prices"),
    [
        # input, 5-minute write, 1-hour write, cache read, output (MODELS.md, 2026-12)
        ("claude-fable-5-2", (8, 10, 16, 0.20, 40)),
        ("claude-fable-5", (10, 12.5, 20, 1.00, 50)),
        ("claude-opus-5-5", (4, 5, 8, 0.20, 20)),
        ("claude-opus-4-8", (5, 6.25, 10, 0.50, 25)),
        ("claude-sonnet-5-5", (2, 2.5, 4, 0.10, 10)),
        ("claude-sonnet-5", (2, 2.5, 4, 0.20, 10)),
        ("claude-haiku-5-5", (0.10, 0.125, 0.20, 0.01, 0.50)),
    ],
)
def test_current_models_priced_from_the_dated_table(
    model: str, prices: tuple[float, float, float, float, float]
) -> None:
    fresh, write_5m, write_1h, read, out = prices
    each = {"input": fresh, "cache_write": write_5m + write_1h, "cache_read": read, "output": out}
    # 10,000 tokens of each kind: a prompt well under any tier threshold.
    usage = Usage(
        input=10_000, output=10_000, cache_write_5m=10_000, cache_write_1h=10_000, cache_read=10_000
    )
    cost = price_usage(usage, model)
    assert cost is not None
    for kind, per_million in each.items():
        assert getattr(cost, kind) == pytest.approx(per_million / 100), kind


def test_haiku_5_5_bills_a_long_prompt_whole_at_the_higher_rate() -> None:
    # The prompt counts uncached input, cache reads and cache writes together.
    short = Usage(input=60_000, cache_read=40_000, output=1_000)  # exactly 100,000: lower rate
    long = Usage(input=60_000, cache_read=40_001, output=1_000)  # one more: all at the higher
    low = price_usage(short, "claude-haiku-5-5")
    high = price_usage(long, "claude-haiku-5-5")
    assert low is not None
    assert high is not None
    assert low.total == pytest.approx((60_000 * 0.10 + 40_000 * 0.01 + 1_000 * 0.50) / MILLION)
    assert high.total == pytest.approx((60_000 * 0.50 + 40_001 * 0.05 + 1_000 * 2.50) / MILLION)
    # Each request is priced on its own: two short requests never reach the tier together.
    halved = price_usage(short, "claude-haiku-5-5", batch=True)
    assert halved is not None
    assert halved.total == pytest.approx(low.total / 2)


def test_overrides_may_name_every_price() -> None:
    overrides = {"gateway-model": {"input": 1.0, "output": 2.0, "cache_read": 0.5}}
    cost = price_usage(
        Usage(cache_read=MILLION, cache_write_5m=MILLION), "gateway-model", overrides=overrides
    )
    assert cost is not None
    assert cost.cache_read == pytest.approx(0.5)
    assert cost.cache_write == pytest.approx(1.25)  # not given: the usual ratio to input
    assert PRICES_AS_OF.startswith("2026-")


def test_the_ledger_records_which_price_table_priced_each_call(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    # A ledger written before the column existed is brought up to date, its rows kept.
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE calls (id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, session "
        "TEXT NOT NULL, cell TEXT, model TEXT NOT NULL, input_tokens INTEGER NOT NULL, "
        "output_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL, cache_read_tokens "
        "INTEGER NOT NULL, cost_usd REAL, seconds REAL NOT NULL, request_id TEXT, kind TEXT NOT "
        "NULL, cache_hit_share REAL NOT NULL)"
    )
    old.execute(
        "INSERT INTO calls VALUES (NULL, 1.0, 'old', NULL, 'claude-haiku-4-5', 1, 1, 0, 0, "
        "0.1, 1.0, NULL, 'realtime', 0.0)"
    )
    old.commit()
    old.close()
    ledger = Ledger(path, session="new")
    usage = Usage(input=1000, output=10)
    ledger.record_usage(
        model="claude-sonnet-5-5",
        usage=usage,
        cost=price_usage(usage, "claude-sonnet-5-5"),
        seconds=1.0,
    )
    ledger.record_usage(model="claude-future-9", usage=usage, cost=None, seconds=1.0)
    calls = ledger.calls()
    assert [c.prices_as_of for c in calls] == [None, PRICES_AS_OF, None]
    assert calls[1].cost_usd == pytest.approx((1000 * 2 + 10 * 10) / MILLION)


def test_web_searches_cost_a_fee_per_search_that_batches_do_not_halve() -> None:
    assert SERVER_TOOL_PRICES.web_search == pytest.approx(0.01)  # $10 per 1,000 searches
    assert SERVER_TOOL_PRICES.web_fetch == 0  # tokens only
    tokens = Usage(input=20_000, output=500)
    searched = replace(tokens, web_search_requests=3, web_fetch_requests=2)
    plain, with_fee = (
        price_usage(tokens, "claude-sonnet-5-5"),
        price_usage(searched, "claude-sonnet-5-5"),
    )
    assert plain is not None and with_fee is not None
    assert with_fee.total - plain.total == pytest.approx(0.03)
    assert with_fee.server_tools == pytest.approx(0.03)
    batch_plain = price_usage(tokens, "claude-sonnet-5-5", batch=True)
    batch_fee = price_usage(searched, "claude-sonnet-5-5", batch=True)
    assert batch_plain is not None and batch_fee is not None
    assert batch_plain.total == pytest.approx(plain.total / 2)  # tokens halved...
    assert batch_fee.total - batch_plain.total == pytest.approx(0.03)  # ...the fee is not
    assert (with_fee + with_fee).server_tools == pytest.approx(0.06)
    # The API's usage object prices the same as the value type.
    assert price_usage(searched.to_api(), "claude-sonnet-5-5") == with_fee


def test_the_price_table_records_server_tools() -> None:
    table = json.loads(
        (Path(pricing.__file__).parent.parent / "data" / "prices.json").read_text("utf-8")
    )
    tools = table["server_tools"]
    assert tools["web_search"]["usd_per_1000_requests"] == 10.0
    assert tools["code_execution"]["usd_per_container_hour"] == 0.05
    assert tools["code_execution"]["free_container_hours_per_day"] == 50
    assert tools["code_execution"]["priced_per_request"] is False


def test_the_ledger_keeps_enough_to_price_a_call_again(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    # A ledger from before the server-tool columns (and the 1-hour split) still opens.
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE calls (id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, session "
        "TEXT NOT NULL, cell TEXT, model TEXT NOT NULL, input_tokens INTEGER NOT NULL, "
        "output_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL, cache_read_tokens "
        "INTEGER NOT NULL, cost_usd REAL, seconds REAL NOT NULL, request_id TEXT, kind TEXT NOT "
        "NULL, cache_hit_share REAL NOT NULL, prices_as_of TEXT, saved_usd REAL)"
    )
    old.execute(
        "INSERT INTO calls VALUES (NULL, 1.0, 'old', NULL, 'claude-haiku-4-5', 10, 2, 5, 0, "
        "0.1, 1.0, NULL, 'realtime', 0.0, NULL, NULL)"
    )
    old.commit()
    old.close()
    ledger = Ledger(path, session="new")
    usage = Usage(
        input=5000, output=300, cache_write_1h=1000, cache_write_5m=200, web_search_requests=3
    )
    cost = price_usage(usage, "claude-sonnet-5-5", batch=True)
    ledger.record_usage(
        model="claude-sonnet-5-5", usage=usage, cost=cost, seconds=2.0, kind="batch"
    )
    before, row = ledger.calls()
    assert before.usage == Usage(input=10, output=2, cache_write_5m=5)  # zeros where unknown
    assert row.usage == usage
    assert (row.web_search_requests, row.web_fetch_requests) == (3, 0)
    again = price_usage(row.usage, row.model, batch=row.kind == "batch")
    assert again is not None and cost is not None
    assert row.cost_usd == pytest.approx(again.total) == pytest.approx(cost.total)
