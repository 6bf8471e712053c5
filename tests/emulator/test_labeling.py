"""The simulated labeler: which requests are label tasks, the true label, and the answers."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from spec_validation import Api

from claude_magics.emulator import LABEL_RULE, label_error_rate, simulated_label, simulated_labels
from claude_magics.emulator.labeling import LABEL_ERROR_RATES

from .support import body

LABELS = ["positive", "negative", "neutral"]


def label_schema(
    labels: list[str], *, multi: bool = False, **extra: dict[str, Any]
) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "string", "enum": labels}
    key = "labels" if multi else "label"
    properties = {key: {"type": "array", "items": item} if multi else item, **extra}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def ask(api: Api, text: str, schema: dict[str, Any], model: str = "claude-haiku-5-5") -> Any:
    """The parsed answer to one row, sent as a job sends it (the row inside its tag)."""
    content = [{"type": "text", "text": "<review>"}, {"type": "text", "text": f"{text}</review>"}]
    message = api.create(
        **body(
            content,
            model=model,
            max_tokens=300,
            output_config={"format": {"type": "json_schema", "schema": schema}},
        )
    )
    (text,) = [b["text"] for b in message["content"] if b["type"] == "text"]  # after thinking
    return orjson.loads(text)


def test_the_true_label_is_the_earliest_named_else_a_stable_hash() -> None:
    assert simulated_label("Not NEGATIVE at all, positive!", LABELS) == "negative"
    assert simulated_label("positively great", LABELS) in LABELS  # whole words only
    hashed = simulated_label("Nothing to see here", LABELS)
    assert hashed == simulated_label("Nothing to see here", LABELS) in LABELS
    # Over many texts the hash picks every label.
    assert {simulated_label(f"row {i}", LABELS) for i in range(30)} == set(LABELS)
    # The abstention is never a true label.
    assert simulated_label("I am unsure", [*LABELS, "unsure"]) != "unsure"
    assert simulated_labels("negative and neutral", LABELS) == ["negative", "neutral"]
    assert simulated_labels("row 7", LABELS) == [simulated_label("row 7", LABELS)]
    with pytest.raises(ValueError, match="at least one label"):
        simulated_label("x", ["unsure"])


def test_error_rates_are_by_family_and_documented() -> None:
    rates = [label_error_rate(m) for m in ("claude-haiku-5-5", "claude-sonnet-5-5")]
    rates += [label_error_rate(m) for m in ("claude-opus-5-5", "claude-fable-5-2")]
    assert rates == sorted(rates, reverse=True) and len(set(rates)) == 4
    assert label_error_rate("claude-haiku-4-5-20251001") == LABEL_ERROR_RATES["haiku"]
    assert label_error_rate("claude-mystery-1") == LABEL_ERROR_RATES["sonnet"]
    for family, rate in LABEL_ERROR_RATES.items():
        assert f"{family} {rate:.0%}" in LABEL_RULE


def test_a_label_request_gets_the_simulated_answer(emulator_api: Api) -> None:
    rich = label_schema(
        [*LABELS, "unsure"],
        rationale={"type": "string"},
        confidence={"type": "number"},
    )
    answer = ask(emulator_api, "Arrived broken. negative", rich)
    assert list(answer) == ["label", "rationale", "confidence"]  # the schema's order
    assert answer["label"] == "negative"  # named: right, whatever the model
    assert 0.8 <= answer["confidence"] <= 0.99
    assert "Arrived broken" in answer["rationale"] and "negative" in answer["rationale"]
    # Deterministic: the same request, the same answer; a plain schema, the same label.
    assert ask(emulator_api, "Arrived broken. negative", rich) == answer
    assert ask(emulator_api, "Arrived broken. negative", label_schema(LABELS)) == {
        "label": "negative"
    }
    multi = ask(emulator_api, "negative, then neutral", label_schema(LABELS, multi=True))
    assert multi == {"labels": ["negative", "neutral"]}


def test_other_schemas_are_not_label_tasks(emulator_api: Api) -> None:
    """A schema with any other property is generated as before: valid, nothing more."""
    other = label_schema(LABELS, stars={"type": "integer"})
    answers = [ask(emulator_api, f"row {i}", other) for i in range(12)]
    assert all(set(a) == {"label", "stars"} and a["label"] in LABELS for a in answers)
    assert all("rationale" not in a for a in answers)


def test_smaller_models_err_more_on_hard_texts(emulator_api: Api) -> None:
    texts = [f"Order {i} came in a grey box." for i in range(120)]
    truth = [simulated_label(t, LABELS) for t in texts]
    schema = label_schema(LABELS, confidence={"type": "number"})
    wrong: dict[str, set[int]] = {}
    for model in ("claude-haiku-5-5", "claude-opus-5-5"):
        answers = [ask(emulator_api, t, schema, model) for t in texts]
        wrong[model] = {i for i, a in enumerate(answers) if a["label"] != truth[i]}
        for i, a in enumerate(answers):
            low, high = (0.40, 0.75) if i in wrong[model] else (0.80, 0.99)
            assert low <= a["confidence"] <= high
    # The bigger model errs only where the smaller one does too, and less often.
    assert wrong["claude-opus-5-5"] < wrong["claude-haiku-5-5"]
