"""``df.claude.compare`` (the same label task on several models and efforts) and the cascade
(``df.claude.label(..., cascade=[...])``), end to end against the emulator's simulated labeler,
whose errors fall only on texts that name no label, at a known rate per model family."""

from __future__ import annotations

import math
import time
from typing import Any

import pandas as pd
import pytest
from batch_support import FAST, LABELS, Jobs

import claude_magics.jobs.accessor  # noqa: F401  (registers df.claude)
from claude_magics.config import Settings
from claude_magics.cost.replay import Replayer, ReplayStore
from claude_magics.emulator import Emulator, label_error_rate, simulated_label
from claude_magics.jobs.cascade import CascadeReport
from claude_magics.jobs.compare import COLUMNS
from claude_magics.jobs.entry import ConfirmationDeclined
from claude_magics.jobs.tasks import label_task
from claude_magics.prompt import PromptError

HAIKU, SONNET, OPUS, FABLE = (
    "claude-haiku-5-5",
    "claude-sonnet-5-5",
    "claude-opus-5-5",
    "claude-fable-5-2",
)


def on(jobs: Jobs, **changes: Any) -> dict[str, Any]:
    """What ``df.claude`` needs to run on the test's emulator, store, ledger and replay store."""
    return {
        "client": jobs.client,
        "store": jobs.store,
        "ledger": jobs.ledger,
        "replayer": jobs.replayer,
        "settings": FAST,
        "progress": False,
        "yes": True,
        **changes,
    }


def texts(n: int, hard: float = 1.0) -> list[str]:
    """Distinct rows; a share ``hard`` of them name no label (the simulated labeler errs only
    on those), the others name their label (always labelled right)."""
    return [
        f"Order {i} came in a grey box on a Tuesday."
        if (i * 37) % 100 < hard * 100
        else f"Order {i}: {LABELS[i % 3]} overall."
        for i in range(n)
    ]


def frame_with_truth(n: int, hard: float = 1.0, gold_every: int | None = None) -> pd.DataFrame:
    """Rows and the simulated labeler's true label of each (``truth``); with ``gold_every``,
    a ``gold`` column holding the truth for one row in that many (the rest missing)."""
    rows = texts(n, hard)
    frame = pd.DataFrame({"review": rows})
    frame["truth"] = [simulated_label(text, LABELS) for text in rows]
    if gold_every:
        frame["gold"] = frame["truth"].where(frame.index % gold_every == 3)
    return frame


def posts(emulator: Emulator) -> int:
    return sum(1 for r in emulator.requests if r.method == "POST")


def sent_prompts(jobs: Jobs) -> int:
    """Requests sent to the model: realtime messages and every request of every batch."""
    return len(jobs.messages()) + len(list(jobs.batch_params()))


# -- compare -------------------------------------------------------------------------------------


def test_compare_ranks_models_by_their_error_rates_and_never_pays_twice(jobs: Jobs) -> None:
    frame = frame_with_truth(300)
    models = [FABLE, HAIKU, OPUS, SONNET]  # any order: the table keeps it
    pilot = frame.claude.compare(
        "review", LABELS, models=models, sample=300, gold="truth", **on(jobs)
    )
    table = pilot.table
    assert list(table.columns) == list(COLUMNS)
    assert table["model"].tolist() == models
    assert (table["rows"] == 300).all() and (table["effort"] == "default").all()
    by_rate = table.assign(rate=table["model"].map(label_error_rate)).sort_values("rate")
    # The simulated error rates, seen as agreement with the truth: strictly better by rate.
    assert by_rate["agreement"].is_monotonic_decreasing and by_rate["agreement"].is_unique
    for row in table.itertuples():
        assert row.agreement == pytest.approx(1 - label_error_rate(row.model), abs=0.06)
        assert row.agreement_low < row.agreement < row.agreement_high
    assert (table["invalid"] == 0).all() and (table["abstained"] == 0).all()
    # Cost per 1,000 rows follows the price table: Haiku < Sonnet < Opus < Fable.
    cost = table.set_index("model")["cost_per_1000"]
    assert cost[HAIKU] < cost[SONNET] < cost[OPUS] < cost[FABLE]
    assert "gold labels" in pilot.note and "batch prices" in pilot.note
    shown = pilot._repr_markdown_()
    assert "| claude-haiku-5-5 | default |" in shown and "agreement (95% CI)" in shown

    # The same comparison again: every run is found in the job store, nothing is sent.
    before = posts(jobs.emulator)
    again = frame.claude.compare(
        "review", LABELS, models=models, sample=300, gold="truth", **on(jobs)
    )
    assert posts(jobs.emulator) == before
    assert again.table["agreement"].tolist() == table["agreement"].tolist()
    assert again.table["cost_per_1000"].tolist() == table["cost_per_1000"].tolist()


def test_a_later_label_call_replays_the_sampled_rows(jobs: Jobs) -> None:
    frame = frame_with_truth(300)
    pilot = frame.claude.compare(
        "review", LABELS, models=[HAIKU, SONNET], sample=100, gold="truth", **on(jobs)
    )
    assert set(pilot.table["rows"]) == {100}
    before = sent_prompts(jobs)
    labels = frame.claude.label("review", LABELS, model=SONNET, usage=True, **on(jobs))
    assert sent_prompts(jobs) - before == 200  # the 100 sampled rows were replayed
    assert int(labels["replayed"].sum()) == 100


def test_efforts_a_model_lacks_are_skipped_and_never_sent(
    jobs: Jobs, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = frame_with_truth(40)
    models = ["claude-haiku-4-5", "claude-sonnet-4-6", OPUS]
    pilot = frame.claude.compare(
        "review", LABELS, models=models, efforts=["low", "xhigh"], sample=40, **on(jobs)
    )
    runs = list(zip(pilot.table["model"], pilot.table["effort"], strict=True))
    assert runs == [("claude-sonnet-4-6", "low"), (OPUS, "low"), (OPUS, "xhigh")]
    assert "claude-haiku-4-5 at effort low (it takes no effort level)" in pilot.note
    assert "claude-sonnet-4-6 at effort xhigh (it has low, medium, high, max)" in pilot.note
    printed = capsys.readouterr().out
    assert printed.count("compare: skipped") == 3
    sent = {
        (params["model"], params["output_config"].get("effort"))
        for params in [*jobs.batch_params(), *(r.body for r in jobs.messages())]
    }
    assert sent == {("claude-sonnet-4-6", "low"), (OPUS, "low"), (OPUS, "xhigh")}
    # No gold: agreement is with the strongest run, the dearest model at its highest effort.
    assert pilot.reference == f"{OPUS} at effort xhigh's labels"
    assert "no gold labels" in pilot.note and "most expensive" in pilot.note
    strongest = pilot.table.iloc[2]
    assert strongest["agreement"] == 1.0


def test_compare_is_confirmed_as_a_whole_and_respects_yes(jobs: Jobs) -> None:
    frame = frame_with_truth(30)
    careful = on(jobs, settings=Settings(confirm_above_usd=0.0), yes=False)
    with pytest.raises(ConfirmationDeclined, match="This comparison \\(2 runs on 30 rows\\)"):
        frame.claude.compare("review", LABELS, models=[HAIKU, SONNET], **careful)
    assert posts(jobs.emulator) == 0
    with pytest.raises(PromptError, match="not an effort level"):
        frame.claude.compare("review", LABELS, models=[HAIKU], efforts=["fast"], **on(jobs))


def test_compare_plots_cost_against_agreement(jobs: Jobs) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    frame = frame_with_truth(60)
    pilot = frame.claude.compare("review", LABELS, models=[HAIKU, SONNET], gold="truth", **on(jobs))
    ax = pilot.plot()
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.texts] == [HAIKU, SONNET]
    import matplotlib.pyplot as plt

    plt.close("all")


# -- the cascade ---------------------------------------------------------------------------------


def test_cascade_costs_less_than_the_big_model_and_reaches_the_target(
    jobs: Jobs, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = frame_with_truth(2000, hard=0.4, gold_every=10)
    out = frame.claude.label(
        "review", LABELS, cascade=[HAIKU, SONNET], gold="gold", target=0.95, **on(jobs)
    )
    report: CascadeReport = out.attrs["cascade"]
    assert list(out.columns) == ["label", "confidence", "claude_model", "claude_status"]
    assert out.index.equals(frame.index)
    assert str(out["confidence"].dtype) == "Float64"
    # The threshold was chosen on the 200 gold rows, and reaches the target there...
    assert report.gold_rows == 200
    assert 0 < report.threshold < 1
    assert report.agreement is not None and report.agreement >= 0.95
    assert report.agreement_ci is not None and report.agreement_ci[0] < report.agreement
    # ...and on every row, against the simulated labeler's truth.
    agreement = out["label"].astype(object).eq(frame["truth"]).mean()
    assert agreement >= 0.95
    # Haiku kept most rows; Sonnet had the ones Haiku was unsure of, and the gold rows.
    haiku, sonnet = report.stages
    assert haiku.rows == 2000 and haiku.answered == (out["claude_model"] == HAIKU).sum()
    assert sonnet.rows == 200 + (out["claude_model"] == SONNET).sum() - sum(
        (out["claude_model"] == SONNET) & frame["gold"].notna()
    )
    assert haiku.answered > 1500 and haiku.answered + sonnet.answered == 2000
    kept = out[out["claude_model"] == HAIKU]
    assert (kept["confidence"] >= report.threshold).all()
    # Cheaper than every row on Sonnet (the same task, asked anew), which the report
    # estimates from Sonnet's own answers.
    sonnet_alone = frame.claude.label(
        "review", LABELS, model=SONNET, confidence=True, fresh=True, usage=True, **on(jobs)
    )
    alone_cost = float(sonnet_alone["cost_usd"].sum())
    assert report.cost_usd is not None and report.single_model_usd is not None
    assert report.cost_usd < 0.5 * alone_cost
    assert report.single_model_usd == pytest.approx(alone_cost, rel=0.05)
    # Said before anything was sent: the cascade's expected cost against Sonnet alone.
    said = capsys.readouterr().out
    assert "the 200 gold rows went through every model" in said
    assert "of the other 1,800, claude-haiku-5-5 takes every row, then claude-sonnet-5-5" in said
    assert "from the shares sent on from the gold rows at this threshold" in said
    assert f"threshold {report.threshold:.2f}" in repr(report)


def test_no_threshold_reaching_the_target_sends_every_row_to_the_last_model(jobs: Jobs) -> None:
    frame = frame_with_truth(300, hard=1.0, gold_every=5)
    out = frame.claude.label(
        "review", LABELS, cascade=[HAIKU, SONNET], gold="gold", target=0.99, **on(jobs)
    )
    report = out.attrs["cascade"]
    assert math.isinf(report.threshold)
    assert "no threshold reached the target 0.990" in report.how
    assert (out["claude_model"] == SONNET).all()
    # Haiku saw only the gold rows (to measure it); nothing else was sent to it.
    assert [stage.rows for stage in report.stages] == [60, 300]
    assert "every row to the last model" in repr(report)


def test_a_cascade_needs_gold_or_a_threshold(jobs: Jobs) -> None:
    frame = frame_with_truth(10)
    with pytest.raises(PromptError, match=r"^cascade needs gold= .* or threshold= ") as error:
        frame.claude.label("review", LABELS, cascade=[HAIKU, SONNET], **on(jobs))
    assert "\n" not in str(error.value)
    with pytest.raises(PromptError, match="at least two models"):
        frame.claude.label("review", LABELS, cascade=[HAIKU], threshold=0.7, **on(jobs))
    with pytest.raises(PromptError, match="threshold: a confidence from 0 to 1"):
        frame.claude.label("review", LABELS, cascade=[HAIKU, SONNET], threshold=7, **on(jobs))
    with pytest.raises(TypeError, match="model: not with cascade="):
        frame.claude.label(
            "review", LABELS, cascade=[HAIKU, SONNET], threshold=0.7, model=SONNET, **on(jobs)
        )
    with pytest.raises(TypeError, match="gold and threshold go with cascade="):
        frame.claude.label("review", LABELS, threshold=0.7, **on(jobs))
    assert posts(jobs.emulator) == 0


def test_a_cascade_with_a_threshold_and_no_gold_in_realtime(
    jobs: Jobs, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = frame_with_truth(200, hard=0.5)
    out = frame.claude.label(
        "review", LABELS, cascade=[HAIKU, SONNET], threshold=0.7, mode="realtime", **on(jobs)
    )
    report = out.attrs["cascade"]
    said = capsys.readouterr().out
    assert "about 30%" in said and "an assumed 30% of rows sent on by each model" in said
    assert report.agreement is None and report.threshold == 0.7
    assert "no gold rows, so the agreement is not measured" in repr(report)
    # Exactly the rows Haiku abstained on or was less sure of went on to Sonnet.
    first = frame.claude.label(
        "review", LABELS, model=HAIKU, abstain=True, confidence=True, **on(jobs)
    )
    passed_on = first["claude_status"].ne("succeeded") | (first["confidence"] < 0.7)
    assert out["claude_model"].eq(SONNET).tolist() == passed_on.tolist()
    assert report.stages[1].rows == int(passed_on.sum()) > 0
    assert jobs.creates() == []  # realtime throughout


def test_abstain_rationale_and_confidence_flow_through(jobs: Jobs) -> None:
    frame = frame_with_truth(300, hard=1.0, gold_every=6)
    out = frame.claude.label(
        "review",
        LABELS,
        cascade=[HAIKU, SONNET],
        gold="gold",
        target=0.85,
        abstain=True,
        rationale=True,
        **on(jobs),
    )
    columns = ["label", "rationale", "confidence", "claude_model", "claude_status"]
    assert list(out.columns) == columns
    assert str(out["rationale"].dtype) == "string" and out["rationale"].notna().all()
    # Sonnet, the last model, may abstain too (abstain=True): no label, status abstained.
    abstained = out["claude_status"] == "abstained"
    assert abstained.any() and out.loc[abstained, "label"].isna().all()
    assert (out.loc[abstained, "claude_model"] == SONNET).all()
    # Every Haiku abstention went on to Sonnet: no kept row of Haiku's is an abstention.
    assert not (abstained & (out["claude_model"] == HAIKU)).any()
    # In compare, the same options give the shares of abstained rows.
    pilot = frame.claude.compare(
        "review",
        LABELS,
        models=[HAIKU, SONNET],
        gold="truth",
        abstain=True,
        rationale=True,
        confidence=True,
        **on(jobs),
    )
    shares = pilot.table.set_index("model")["abstained"]
    assert shares[HAIKU] > shares[SONNET] > 0


def test_a_cascade_is_confirmed_before_its_first_model_is_sent(jobs: Jobs) -> None:
    frame = frame_with_truth(50)
    careful = on(jobs, settings=Settings(confirm_above_usd=0.0), yes=False)
    with pytest.raises(ConfirmationDeclined, match=r"This cascade \(50 rows\)"):
        frame.claude.label("review", LABELS, cascade=[HAIKU, SONNET], threshold=0.8, **careful)
    assert posts(jobs.emulator) == 0


def test_a_restart_mid_cascade_resumes_at_the_second_model(jobs: Jobs, emulator: Emulator) -> None:
    """A process runs the cascade in batches and is killed while the second model's batch
    runs; the same call in a fresh process sends nothing again, and finishes."""
    n, every = 300, 5
    child = jobs.child(
        f"""
        import claude_magics.jobs.accessor
        from claude_magics.config import Settings
        from claude_magics.emulator import simulated_label
        texts = [
            f"Order {{i}} came in a grey box on a Tuesday." if (i * 37) % 100 < 40
            else f"Order {{i}}: {{LABELS[i % 3]}} overall."
            for i in range({n})
        ]
        frame = pd.DataFrame({{"review": texts}})
        truth = pd.Series([simulated_label(t, LABELS) for t in texts])
        frame["gold"] = truth.where(frame.index % {every} == 3)
        fast = Settings(batch_poll_seconds=0.02, batch_poll_max_seconds=0.05)
        frame.claude.label(
            "review", LABELS, cascade={[HAIKU, SONNET]!r}, gold="gold", target=0.95,
            mode="batch", yes=True, progress=False, settings=fast,
        )
        """
    )
    try:
        deadline = time.monotonic() + 60
        # Batches: the gold rows on each model, then the other rows on Haiku, then on Sonnet.
        while len(jobs.creates()) < 3 and time.monotonic() < deadline:
            assert child.poll() is None, child.communicate()
            time.sleep(0.01)
        emulator.configure(batch_processing_seconds=600)  # the last batch will not end alone
        while len(jobs.creates()) < 4 and time.monotonic() < deadline:
            assert child.poll() is None, child.communicate()
            time.sleep(0.01)
    finally:
        child.kill()
        child.communicate()
    creates = jobs.creates()
    assert [c.body["requests"][0]["params"]["model"] for c in creates] == [
        HAIKU,
        SONNET,
        HAIKU,
        SONNET,
    ]
    emulator.advance_clock(700)

    frame = frame_with_truth(n, hard=0.4, gold_every=every)
    store, client, ledger = jobs.fresh_process_objects()
    out = frame.claude.label(
        "review",
        LABELS,
        cascade=[HAIKU, SONNET],
        gold="gold",
        target=0.95,
        mode="batch",
        client=client,
        store=store,
        ledger=ledger,
        replayer=Replayer(ReplayStore(jobs.replayer.store.path)) if jobs.replayer.store else None,
        settings=FAST,
        progress=False,
        yes=True,
    )
    assert len(jobs.creates()) == 4 and jobs.messages() == []  # nothing sent again
    report = out.attrs["cascade"]
    stage_jobs = [job for stage in report.stages for job in stage.jobs]
    assert len(stage_jobs) == 4 and out["claude_status"].eq("succeeded").all()
    sent_on = creates[3].body["requests"]
    assert report.stages[1].rows == 60 + len(sent_on)
    assert (out["claude_model"] == SONNET).sum() >= len(sent_on)


def test_the_cascade_task_keys_differ_from_a_plain_label_job() -> None:
    """The first models answer with confidence and may abstain: their requests are their own
    (another job, another replay key) and never taken for a plain label job's."""
    plain = label_task(LABELS)
    early = label_task(LABELS, abstain=True, confidence=True)
    assert plain.to_spec() != early.to_spec()
    assert plain.schema != early.schema
