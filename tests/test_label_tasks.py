"""Richer label tasks (descriptions, examples, abstain, rationale, confidence) and extract's
field descriptions, end to end against the emulator's simulated labeler."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import orjson
import pandas as pd
import pytest
from batch_support import FAST, LABELS, REVIEWS, Jobs, user_text

import claude_magics.jobs.accessor  # noqa: F401  (registers df.claude)
from claude_magics.emulator import simulated_label, simulated_labels
from claude_magics.jobs.estimate import estimate_job
from claude_magics.jobs.rows import build_prompts, make_template
from claude_magics.jobs.tasks import ABSTAIN, Task, label_task
from claude_magics.prompt import PromptError

MEANINGS = {
    "positive": "The customer would buy again or recommend it.",
    "negative": "Something broke, arrived late or disappointed.",
}
EXAMPLES = [("The zip jammed on day one.", "negative"), ("Does what it says.", "neutral")]
LONG_INSTRUCTION = "You label customer reviews for a shop. " * 400 + "Which label fits {{review}}?"
MODELS = ("claude-haiku-5-5", "claude-sonnet-5-5", "claude-opus-5-5", "claude-fable-5-2")


def on(jobs: Jobs) -> dict[str, Any]:
    """What ``df.claude`` needs to run on the test's emulator, store, ledger and replay store."""
    return {
        "client": jobs.client,
        "store": jobs.store,
        "ledger": jobs.ledger,
        "replayer": jobs.replayer,
        "settings": FAST,
        "progress": False,
        "yes": True,
    }


def hard_texts(n: int) -> list[str]:
    """Distinct rows that name no label: the simulated labeler's errors happen on these."""
    return [f"Order {i} came in a grey box on a Tuesday." for i in range(n)]


# -- the shared instruction ----------------------------------------------------------------------


def test_descriptions_and_examples_are_in_the_shared_instruction_once(jobs: Jobs) -> None:
    frame = pd.DataFrame({"review": REVIEWS})
    task = label_task(LABELS, descriptions=MEANINGS, examples=EXAMPLES)
    jobs.run(frame, LONG_INSTRUCTION, task, mode="batch")
    params = list(jobs.batch_params())
    assert len(params) == 4  # the duplicate row once
    systems = [p["system"] for p in params]
    assert all(s == systems[0] for s in systems)  # identical in every request: cacheable
    instruction = systems[0][-1]["text"]
    for text in [*MEANINGS.values(), *(t for t, _ in EXAMPLES)]:
        assert instruction.count(text) == 1
        assert all(text not in user_text(p) for p in params)
    assert "<label>negative</label>" in instruction
    # The instruction is long enough to cache: the breakpoint closes the shared prefix.
    heads = [p["messages"][0]["content"][0] for p in params]
    assert all(h["cache_control"] == {"type": "ephemeral", "ttl": "1h"} for h in heads)
    # The labels are still the enum: descriptions and examples add nothing to the answer.
    schema = params[0]["output_config"]["format"]["schema"]
    assert schema["properties"] == {"label": {"type": "string", "enum": LABELS}}


def test_extract_descriptions_go_into_the_schema_and_the_instruction(jobs: Jobs) -> None:
    frame = pd.DataFrame({"review": REVIEWS[:2]})
    meanings = {"stars": "From 1 (worst) to 5 (best), as the customer would rate it."}
    table = frame.claude.extract(
        "review", {"product": str, "stars": int}, descriptions=meanings, **on(jobs)
    )
    assert list(table.columns) == ["product", "stars", "claude_status"]
    assert table["claude_status"].eq("succeeded").all()
    (params, *_) = [m.body for m in jobs.messages()]
    schema = params["output_config"]["format"]["schema"]
    stars = {"type": ["integer", "null"], "description": meanings["stars"]}
    assert schema["properties"]["stars"] == stars
    assert "description" not in schema["properties"]["product"]
    assert params["system"][-1]["text"].count(meanings["stars"]) == 1
    with pytest.raises(PromptError, match=r"'rating' is not a field; the fields are product"):
        frame.claude.extract("review", {"product": str}, descriptions={"rating": "1 to 5"})


# -- abstain, rationale, confidence ------------------------------------------------------------


def test_rationale_and_confidence_columns_and_dtypes(jobs: Jobs) -> None:
    frame = pd.DataFrame({"review": REVIEWS}, index=list("abcde"))
    table = frame.claude.label(
        "review", LABELS, rationale=True, confidence=True, mode="realtime", **on(jobs)
    )
    assert list(table.columns) == ["label", "rationale", "confidence", "claude_status"]
    assert table.index.tolist() == list("abcde")
    assert isinstance(table["label"].dtype, pd.CategoricalDtype)
    assert list(table["label"].cat.categories) == LABELS
    assert str(table["rationale"].dtype) == "string"
    assert str(table["confidence"].dtype) == "Float64"
    assert table["claude_status"].eq("succeeded").all()
    assert table["label"].tolist() == ["positive", "negative", "neutral", "positive", "negative"]
    assert table["confidence"].between(0, 1).all()
    assert table["rationale"].str.contains("which reads as").all()
    # The answer's schema asked for both, the reason first.
    schema = jobs.messages()[0].body["output_config"]["format"]["schema"]
    assert list(schema["properties"]) == ["rationale", "label", "confidence"]
    assert schema["required"] == ["rationale", "label", "confidence"]
    # status=False: the columns alone; attach gives the same columns back.
    bare = frame.claude.label(
        "review", LABELS, rationale=True, confidence=True, status=False, **on(jobs)
    )
    assert list(bare.columns) == ["label", "rationale", "confidence"]
    attached = jobs.attach(table.attrs["claude_job"]).result(frame)
    pd.testing.assert_frame_equal(attached, table)


def test_an_abstention_is_counted_and_never_a_label(jobs: Jobs) -> None:
    frame = pd.DataFrame({"review": hard_texts(200)})
    table = frame.claude.label("review", LABELS, abstain=True, mode="batch", **on(jobs))
    assert list(table.columns) == ["label", "claude_status"]  # abstain brings the status
    abstained = table["claude_status"].eq("abstained")
    assert 0 < abstained.sum() < 60  # counted in one expression
    assert table.loc[abstained, "label"].isna().all()
    assert table.loc[~abstained, "label"].notna().all()
    assert ABSTAIN not in table["label"].cat.categories
    # Exactly the rows whose answer was "unsure".
    job = jobs.attach(table.attrs["claude_job"])
    said = {n: orjson.loads(row.text or "null")["label"] for n, row in job.stored_results().items()}
    unsure = [said[p] == ABSTAIN for p in job.row_prompt]
    assert abstained.tolist() == unsure
    # The request allowed it; without abstain=True nothing abstains and every row is labelled.
    schema = next(jobs.batch_params())["output_config"]["format"]["schema"]
    assert schema["properties"]["label"]["enum"] == [*LABELS, ABSTAIN]
    plain = frame.claude.label("review", LABELS, mode="batch", **on(jobs))
    assert isinstance(plain, pd.Series) and plain.notna().all()
    # status=False: a Series, abstentions missing values.
    series = frame.claude.label(
        "review", LABELS, abstain=True, mode="batch", status=False, **on(jobs)
    )
    assert series.isna().tolist() == unsure


def test_multi_label_with_abstain_and_confidence(jobs: Jobs) -> None:
    texts = ["negative, and neutral too", *hard_texts(80)]
    frame = pd.DataFrame({"review": texts})
    table = frame.claude.label(
        "review", LABELS, multi=True, abstain=True, confidence=True, mode="batch", **on(jobs)
    )
    assert list(table.columns) == ["labels", "confidence", "claude_status"]
    assert str(table["labels"].dtype) == "object" and str(table["confidence"].dtype) == "Float64"
    assert table["labels"][0] == ["negative", "neutral"] == simulated_labels(texts[0], LABELS)
    abstained = table["claude_status"].eq("abstained")
    assert abstained.any() and table.loc[abstained, "labels"].isna().all()
    answered = table.loc[~abstained, "labels"]
    assert all(isinstance(v, list) and v and set(v) <= set(LABELS) for v in answered)
    assert table["confidence"].notna().all()  # an abstention says how unsure it is too


def test_invalid_answers_stay_invalid() -> None:
    rich = label_task(LABELS, abstain=True, rationale=True, confidence=True)
    ok = {"rationale": "It says so.", "label": "positive", "confidence": 0.9}

    def status(task: Task, answer: Any) -> str:
        return task.interpret(orjson.dumps(answer).decode(), "end_turn")[0]

    assert rich.interpret(orjson.dumps(ok).decode(), "end_turn") == ("succeeded", ok)
    for bad in (
        {**ok, "confidence": 1.5},
        {**ok, "confidence": -0.1},
        {**ok, "confidence": "0.9"},
        {**ok, "confidence": True},
        {**ok, "rationale": None},
        {**ok, "label": "Positive"},
        {**ok, "extra": 1},
        {"label": "positive", "confidence": 0.9},
    ):
        assert status(rich, bad) == "invalid_output", bad
    assert status(rich, {**ok, "label": ABSTAIN}) == "abstained"
    # Without abstain=True, "unsure" is not an answer.
    assert status(label_task(LABELS), {"label": ABSTAIN}) == "invalid_output"
    multi = label_task(LABELS, multi=True, abstain=True)
    assert status(multi, {"labels": [ABSTAIN]}) == "abstained"
    assert status(multi, {"labels": [ABSTAIN, "positive"]}) == "invalid_output"
    assert status(multi, {"labels": []}) == "succeeded"


def test_an_invalid_answer_from_the_api_is_invalid_output(jobs: Jobs) -> None:
    frame = pd.DataFrame({"review": ["Loved it. positive"]})
    jobs.emulator.add_reply('{"label": "positive", "confidence": 7}')
    table = frame.claude.label("review", LABELS, confidence=True, mode="realtime", **on(jobs))
    assert table["claude_status"].tolist() == ["invalid_output"]
    assert table["label"].isna().all() and table["confidence"].isna().all()


# -- keys, estimates, errors ---------------------------------------------------------------


def test_changing_an_option_changes_the_job_key(jobs: Jobs) -> None:
    frame = pd.DataFrame({"review": REVIEWS})
    variants = {
        "plain": label_task(LABELS),
        "descriptions": label_task(LABELS, descriptions=MEANINGS),
        "other descriptions": label_task(LABELS, descriptions={"positive": "Happy."}),
        "examples": label_task(LABELS, examples=EXAMPLES),
        "abstain": label_task(LABELS, abstain=True),
        "rationale": label_task(LABELS, rationale=True),
        "confidence": label_task(LABELS, confidence=True),
        "multi confidence": label_task(LABELS, multi=True, confidence=True),
    }
    keys = {}
    for name, task in variants.items():
        template = make_template(["review"], "review", task)
        prompts = build_prompts(frame, template, task, model="claude-haiku-5-5")
        keys[name] = prompts.key(batch=True)
        assert Task.from_spec(task.to_spec()) == task  # what attach rebuilds
    assert len(set(keys.values())) == len(keys)
    # A plain task's spec (part of its key) is what it always was.
    assert list(label_task(LABELS).to_spec()) == ["kind", "schema", "labels", "multi"]
    # End to end: the richer call is a new job, answered anew (nothing replayed from the
    # plain one), not the plain job attached to.
    first = jobs.run(frame, "review", variants["plain"], mode="realtime")
    second = jobs.run(frame, "review", variants["rationale"], mode="realtime")
    assert first.id != second.id
    assert len(jobs.messages()) == 8
    result = second.result(frame, usage=True)
    assert not result["replayed"].any() and result["rationale"].notna().all()


def test_the_estimate_counts_the_larger_instruction_and_answer(jobs: Jobs) -> None:
    frame = pd.DataFrame({"review": REVIEWS})

    def estimate(task: Task) -> Any:
        template = make_template(["review"], "review", task)
        return estimate_job(build_prompts(frame, template, task, model="claude-haiku-5-5"))

    plain = estimate(label_task(LABELS))
    told = estimate(label_task(LABELS, descriptions=MEANINGS, examples=EXAMPLES))
    reasons = estimate(label_task(LABELS, rationale=True, confidence=True))
    assert told.prefix_tokens > plain.prefix_tokens + 30
    assert reasons.max_tokens > plain.max_tokens + 100
    assert reasons.prefix_tokens > plain.prefix_tokens  # the schema is part of the prefix
    for rich in (told, reasons):
        assert rich.worst_case("batch") > plain.worst_case("batch")
    # Through df.claude.estimate, with the same options as label.
    kwargs = {"compare": (), "client": jobs.client, "replayer": jobs.replayer}
    base = frame.claude.estimate("review", labels=LABELS, **kwargs)
    richer = frame.claude.estimate(
        "review", labels=LABELS, descriptions=MEANINGS, rationale=True, **kwargs
    )
    column = "cost, at most ($)"
    assert (richer[column] > base[column]).all()
    assert (richer["output tokens (max)"] > base["output tokens (max)"]).all()
    with pytest.raises(TypeError, match="abstain: only with labels="):
        frame.claude.estimate("review", schema={"x": str}, abstain=True, **kwargs)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"descriptions": {"postive": "x"}}, r"descriptions: 'postive' is not a label; the labels"),
        ({"descriptions": {"positive": 3}}, r"descriptions\['positive'\] must be a non-empty"),
        ({"descriptions": ["positive"]}, r"descriptions must be a dict of label"),
        ({"examples": [("Nice", "great")]}, r"examples\[0\]: 'great' is not one of the labels"),
        ({"examples": [(3, "positive")]}, r"examples\[0\]: the text must be a non-empty string"),
        ({"examples": [("Nice",)]}, r"examples\[0\] is not a \(text, label\) pair"),
        ({"examples": "Nice: positive"}, r"examples must be a list of \(text, label\) pairs"),
        ({"examples": [("Hm", ABSTAIN)]}, r"examples\[0\]: 'unsure' is not one of the labels"),
    ],
)
def test_bad_options_are_one_line_errors(options: dict[str, Any], message: str) -> None:
    frame = pd.DataFrame({"review": REVIEWS})
    with pytest.raises(PromptError, match=message) as caught:
        frame.claude.label("review", LABELS, **options)
    assert "\n" not in str(caught.value)


def test_the_abstain_answer_cannot_be_a_label() -> None:
    frame = pd.DataFrame({"review": REVIEWS})
    with pytest.raises(PromptError, match="'unsure' is the answer abstain=True adds"):
        frame.claude.label("review", ["sure", "unsure"], abstain=True)
    # Without abstain it is a label like any other; with it, an example may abstain.
    assert label_task(["sure", "unsure"]).labels == ("sure", "unsure")
    task = label_task(LABELS, abstain=True, examples=[("Hm.", ABSTAIN)])
    assert "<label>unsure</label>" in task.instruction_suffix()


# -- the simulated labeler, through jobs ---------------------------------------------------------


def test_the_simulated_labeler_errs_less_on_bigger_models(jobs: Jobs) -> None:
    texts = hard_texts(500)
    frame = pd.DataFrame({"review": texts})
    truth = pd.Series([simulated_label(t, LABELS) for t in texts])
    agreement, wrong_rows = [], []
    for model in MODELS:
        table = frame.claude.label(
            "review", LABELS, confidence=True, mode="batch", model=model, **on(jobs)
        )
        assert table["claude_status"].eq("succeeded").all()
        right = table["label"].astype(object).eq(truth)
        agreement.append(right.mean())
        wrong_rows.append(set(right.index[~right]))
        # The model's own confidence is lower on its mistakes.
        assert table["confidence"][~right].mean() < table["confidence"][right].mean() - 0.15
    assert agreement == sorted(agreement) and len(set(agreement)) == len(MODELS)
    assert agreement[0] < 0.9 < agreement[-1]
    # A bigger model errs only on rows a smaller one also gets wrong.
    assert all(b <= a for a, b in pairwise(wrong_rows))


def test_the_simulated_labeler_is_deterministic_across_modes_and_options(jobs: Jobs) -> None:
    frame = pd.DataFrame({"review": hard_texts(60)})
    batch = frame.claude.label("review", LABELS, mode="batch", **on(jobs))
    realtime = frame.claude.label("review", LABELS, mode="realtime", **on(jobs))
    again = frame.claude.label("review", LABELS, mode="realtime", fresh=True, **on(jobs))
    reasons = frame.claude.label("review", LABELS, rationale=True, mode="realtime", **on(jobs))
    assert batch.tolist() == realtime.tolist() == again.tolist() == reasons["label"].tolist()
