"""Each model's rules refuse a doomed request before it is sent, in one line, per family; a
model nobody knows refuses nothing."""

from __future__ import annotations

from typing import Any

import pytest

from claude_magics.api.models import ModelInfo
from claude_magics.api.rules import RequestNotAllowedError, check_request
from claude_magics.model_table import load

OLD = "2023-06-01"
NEW = "2026-10-21"


def info(model: str) -> ModelInfo:
    entry = load().find(model)
    assert entry is not None, model
    return ModelInfo.from_entry(entry, model)


def body(model: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 2048,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        **extra,
    }


def refused(model: str, api_version: str = OLD, **extra: Any) -> str:
    with pytest.raises(RequestNotAllowedError) as caught:
        check_request(body(model, **extra), info(model), api_version)
    message = str(caught.value)
    assert "\n" not in message
    return message


def allowed(model: str, api_version: str = OLD, **extra: Any) -> None:
    check_request(body(model, **extra), info(model), api_version)


BUDGET = {"type": "enabled", "budget_tokens": 1024}
ADAPTIVE = {"type": "adaptive"}


@pytest.mark.parametrize(
    "model", ["claude-sonnet-5-5", "claude-opus-5-5", "claude-haiku-5-5", "claude-fable-5-2"]
)
def test_new_models_take_adaptive_thinking_and_effort_not_budgets_or_sampling(
    model: str,
) -> None:
    assert "--thinking adaptive and --effort" in refused(model, thinking=BUDGET)
    allowed(model, thinking=ADAPTIVE, output_config={"effort": "high"})
    assert "takes no temperature" in refused(model, temperature=0.2)
    assert "takes no top_k" in refused(model, top_k=5)
    prefill = body(model)["messages"] + [{"role": "assistant", "content": "{"}]
    assert "prefill" in refused(model, messages=prefill)
    assert f"above {model}'s most of 128,000" in refused(model, max_tokens=200_000)


def test_forced_tools_are_refused_only_where_the_model_rejects_them() -> None:
    forced = {"type": "tool", "name": "f"}
    assert "cannot be forced" in refused("claude-sonnet-5-5", tool_choice=forced)
    assert "cannot be forced" in refused("claude-opus-5-5", tool_choice={"type": "any"})
    allowed("claude-haiku-5-5", tool_choice=forced)
    allowed("claude-sonnet-5-5", tool_choice={"type": "auto"})


def test_thinking_off_where_it_cannot_be() -> None:
    off = {"type": "disabled"}
    assert "cannot have thinking turned off" in refused("claude-sonnet-5-5", thinking=off)
    allowed("claude-haiku-5-5", thinking=off)
    allowed("claude-opus-5", thinking=off, output_config={"effort": "high"})
    assert "above effort high" in refused(
        "claude-opus-5", thinking=off, output_config={"effort": "max"}
    )


def test_the_4_6_generation_samples_only_with_thinking_off() -> None:
    allowed("claude-sonnet-4-6", temperature=0.3)
    allowed("claude-sonnet-4-6", thinking=BUDGET)  # budgets still accepted (deprecated)
    assert "only with thinking off" in refused(
        "claude-sonnet-4-6", temperature=0.3, thinking=BUDGET
    )
    assert "prefill" in refused(
        "claude-opus-4-6",
        messages=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Sure"}],
    )


def test_haiku_4_5_thinks_on_a_budget_and_has_no_effort() -> None:
    allowed("claude-haiku-4-5", thinking=BUDGET, temperature=0.5)
    assert "budget instead" in refused("claude-haiku-4-5", thinking=ADAPTIVE)
    assert "takes no --effort" in refused("claude-haiku-4-5", output_config={"effort": "low"})
    assert "both" in refused("claude-haiku-4-5", temperature=0.5, top_p=0.9)
    assert "must be below --max-tokens" in refused(
        "claude-haiku-4-5", thinking={"type": "enabled", "budget_tokens": 4096}, max_tokens=4096
    )
    # Prefill still works on this model.
    allowed(
        "claude-haiku-4-5",
        messages=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "{"}],
    )


def test_effort_levels_come_from_the_model() -> None:
    assert "use one of low, medium, high, max" in refused(
        "claude-sonnet-4-6", output_config={"effort": "xhigh"}
    )
    allowed("claude-sonnet-5-5", output_config={"effort": "xhigh"})


def test_the_new_api_version_rejects_sampling_everywhere() -> None:
    message = refused("claude-sonnet-4-5", NEW, temperature=0.5)
    assert "2026-10-21" in message and "api_version" in message
    allowed("claude-sonnet-4-5", OLD, temperature=0.5)
    answer_doc = {
        "role": "assistant",
        "content": [
            {
                "type": "document",
                "source": {"type": "text", "media_type": "text/plain", "data": "x"},
            }
        ],
    }
    messages = [{"role": "user", "content": "Hi"}, answer_doc, {"role": "user", "content": "?"}]
    assert "assistant turn" in refused("claude-sonnet-4-5", NEW, messages=messages)


def test_a_model_nobody_knows_refuses_nothing() -> None:
    stranger = ModelInfo(id="my-gateway-model")
    wild = body(
        "my-gateway-model",
        thinking=BUDGET,
        temperature=0.1,
        max_tokens=10**6,
        output_config={"effort": "ultra"},
        tool_choice={"type": "any"},
    )
    check_request(wild, stranger, OLD)
