"""DataFrame jobs never pay twice for a prompt: each distinct prompt is looked up in the replay
store (and a cassette) before anything is sent, only the rest is sent, estimated and confirmed,
and every answer is kept for the next run, or for CI from a committed cassette."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pandas as pd
import pytest
from batch_support import FAST, LABELS, Jobs

import claude_magics.jobs.accessor  # noqa: F401  (registers df.claude)
from claude_magics.api.client import Client
from claude_magics.cost.replay import Cassette, Replayer, ReplayStore
from claude_magics.emulator import Emulator
from claude_magics.errors import ReplayMissError
from claude_magics.jobs.entry import ConfirmationDeclined
from claude_magics.jobs.tasks import label_task

# Each review ends with its label: the emulator answers with the label the text names.
N = 1000


def labelled(n: int = N) -> pd.DataFrame:
    return pd.DataFrame(
        {"review": [f"Review {i}: {LABELS[i % 3]}" for i in range(n)]},
        index=pd.Index([f"r{i}" for i in range(n)], name="id"),
    )


def sent_prompts(jobs: Jobs) -> int:
    """Requests the emulator was asked to answer: realtime calls plus batched requests."""
    return len(jobs.messages()) + sum(1 for _ in jobs.batch_params())


def requests_since(jobs: Jobs, before: int) -> list[object]:
    """The /v1 requests the emulator got after the first ``before``."""
    return jobs.emulator.requests[before:]


@pytest.mark.parametrize("mode", ["realtime", "batch"])
def test_one_edited_row_of_a_labelled_frame_sends_one_request(jobs: Jobs, mode: str) -> None:
    frame = labelled()
    first = jobs.run(frame, "review", label_task(LABELS), mode=mode, yes=True)
    assert sent_prompts(jobs) == N
    before = first.result(frame)

    edited = frame.copy()
    edited.loc["r7", "review"] = "Review 7, rewritten: negative"
    job = jobs.run(edited, "review", label_task(LABELS), mode=mode, yes=True)

    assert sent_prompts(jobs) == N + 1
    sent = jobs.messages()[-1].body if mode == "realtime" else list(jobs.batch_params())[-1]
    assert "rewritten" in orjson.dumps(sent).decode()
    table = job.result(edited, status=True, usage=True)
    assert (table["claude_status"] == "succeeded").all()
    assert table["replayed"].sum() == N - 1 and not table.loc["r7", "replayed"]
    assert table.loc["r7", "label"] == "negative"
    assert table["label"].drop("r7").equals(before.drop("r7"))
    # Replayed rows cost nothing now; their tokens are those billed the first time.
    assert (table.loc[table["replayed"], "cost_usd"] == 0).all()
    assert (table.loc[table["replayed"], "input_tokens"] > 0).all()
    assert table.loc["r7", "cost_usd"] > 0
    # The ledger: one summed replay row at $0, saving what those answers cost when paid.
    replays = [c for c in jobs.ledger.calls() if c.kind == "replay"]
    assert len(replays) == 1 and replays[0].cost_usd == 0
    paid = first.result(frame, usage=True)["cost_usd"].sum()
    assert replays[0].saved_usd == pytest.approx(paid * (N - 1) / N, rel=0.05)


def test_a_job_all_replayed_sends_nothing_and_attaches(jobs: Jobs) -> None:
    frame = labelled(30)
    jobs.run(frame, "review", label_task(LABELS), mode="realtime")
    # Another frame with the same rows in another order and index: a new job, all replayed.
    other = frame.iloc[::-1].reset_index(drop=True)
    before = len(jobs.emulator.requests)
    job = jobs.run(other, "review", label_task(LABELS), mode="batch")
    assert not requests_since(jobs, before) and not jobs.creates()
    assert job.done and job.mode == "batch"
    again = jobs.attach(job.id)
    table = again.result(status=True, usage=True)
    assert (table["claude_status"] == "succeeded").all() and table["replayed"].all()
    assert table["label"].tolist() == other["review"].str.rsplit(" ", n=1).str[-1].tolist()
    assert jobs.store.get(job.id).state == "done"  # type: ignore[union-attr]


def test_estimate_and_confirmation_count_only_what_is_sent(
    jobs: Jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    from claude_magics.jobs import entry

    monkeypatch.setattr(entry, "in_ipython", lambda: False)  # refuse, rather than read stdin
    frame = labelled(40)
    strict = dataclasses.replace(FAST, confirm_above_usd=0.0)
    with pytest.raises(ConfirmationDeclined):  # nothing replayed yet: it asks (and refuses)
        jobs.run(frame, "review", label_task(LABELS), mode="realtime", settings=strict)
    jobs.run(frame, "review", label_task(LABELS), mode="realtime", settings=strict, yes=True)

    edited = frame.copy()
    edited.iloc[0, 0] = "Something new: neutral"
    table = edited.claude.estimate(
        "review", labels=LABELS, client=jobs.client, replayer=jobs.replayer, compare=()
    )
    assert set(table["requests"]) == {1}
    assert "39 more replayed from answers already paid for (at $0)" in table.attrs["note"]
    full = labelled(40).claude.estimate(
        "review", labels=LABELS, client=jobs.client, replayer=jobs.replayer, compare=()
    )
    assert set(full["requests"]) == {0} and set(full["cost, at most ($)"]) == {0}

    # All replayed: nothing to confirm, even with confirm_above_usd = 0 and no yes=True.
    before = len(jobs.emulator.requests)
    job = jobs.run(frame.iloc[::-1], "review", label_task(LABELS), mode="realtime", settings=strict)
    assert job.done and not requests_since(jobs, before)


def test_fresh_looks_nothing_up_and_replay_off_keeps_nothing(jobs: Jobs) -> None:
    frame = labelled(12)
    jobs.run(frame, "review", label_task(LABELS), mode="realtime")
    jobs.run(frame.iloc[::-1], "review", label_task(LABELS), mode="realtime", fresh=True)
    assert len(jobs.messages()) == 24

    store = ReplayStore(jobs.home / "off.sqlite")
    off = dataclasses.replace(FAST, replay=False)
    other = pd.DataFrame({"review": [f"Other {i}: positive" for i in range(12)]})
    jobs.run(other, "review", label_task(LABELS), settings=off, replayer=Replayer(store))
    job = jobs.run(other.iloc[1:], "review", label_task(LABELS), settings=off)
    assert len(jobs.messages()) == 24 + 12 + 11  # nothing looked up...
    assert store.stats().entries == 0  # ...and nothing kept
    assert jobs.replayer.store is not None and jobs.replayer.store.stats().entries == 12
    assert not job.result(usage=True)["replayed"].any()


def test_a_store_that_cannot_be_written_is_one_line_and_loses_nothing(
    jobs: Jobs, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = jobs.home / "in-the-way"
    folder.mkdir()
    replayer = Replayer(ReplayStore(folder))  # a folder where the file should be
    frame = labelled(9)
    for mode in ("realtime", "batch"):
        job = jobs.run(frame, "review", label_task(LABELS), mode=mode, replayer=replayer)
        labels = job.result(frame)
        assert labels.notna().all()
        assert labels.tolist() == frame["review"].str.rsplit(" ", n=1).str[-1].tolist()
    warnings = [line for line in capsys.readouterr().out.splitlines() if "replay" in line]
    assert len(warnings) >= 1 and all(str(folder) in line for line in warnings)


def test_a_cassette_recorded_once_labels_in_ci_with_no_key_and_no_server(
    emulator: Emulator, tmp_path: Path
) -> None:
    cassette = tmp_path / "labels.jsonl"
    frame = labelled(25)
    client = Client(api_key="k", base_url=emulator.url)
    recorded = frame.claude.label(
        "review",
        LABELS,
        mode="realtime",
        status=True,
        client=client,
        store=_store(tmp_path / "one"),
        ledger=_ledger(tmp_path / "one"),
        settings=FAST,
        replayer=Replayer(None, Cassette(cassette, "record")),
    )
    lines = cassette.read_bytes().splitlines()
    assert len(lines) == 25 and b"sk-ant" not in cassette.read_bytes()
    assert lines == sorted(lines, key=lambda line: orjson.loads(line)["key"])

    emulator.stop()  # CI: no server, no key; the same base URL as when recorded
    offline = Client(api_key=None, base_url=emulator.url)
    replayed = frame.claude.label(
        "review",
        LABELS,
        status=True,
        client=offline,
        store=_store(tmp_path / "ci"),
        ledger=_ledger(tmp_path / "ci"),
        settings=FAST,
        replayer=Replayer(None, Cassette(cassette, "replay")),
    )
    pd.testing.assert_frame_equal(replayed, recorded)


def test_a_miss_in_replay_mode_is_one_line_and_sends_nothing(jobs: Jobs, tmp_path: Path) -> None:
    cassette = tmp_path / "labels.jsonl"
    frame = labelled(6)
    jobs.run(
        frame, "review", label_task(LABELS), replayer=Replayer(None, Cassette(cassette, "record"))
    )
    edited = frame.copy()
    edited.loc["r3", "review"] = "A review nobody recorded: positive"
    before = len(jobs.emulator.requests)
    for mode in ("realtime", "batch"):
        with pytest.raises(ReplayMissError) as caught:
            jobs.run(
                edited,
                "review",
                label_task(LABELS),
                mode=mode,
                replayer=Replayer(None, Cassette(cassette, "replay")),
            )
        message = str(caught.value)
        assert "\n" not in message and "A review nobody recorded" in message
        assert "--mode record" in message and str(cassette) in message
    assert not requests_since(jobs, before)
    assert not jobs.store.jobs() or all(r.n_prompts == 6 for r in jobs.store.jobs())


def test_a_cassette_still_records_with_replay_off(jobs: Jobs, tmp_path: Path) -> None:
    cassette = tmp_path / "labels.jsonl"
    off = dataclasses.replace(FAST, replay=False)
    replayer = Replayer(ReplayStore(tmp_path / "r.sqlite"), Cassette(cassette, "auto"))
    jobs.run(labelled(5), "review", label_task(LABELS), settings=off, replayer=replayer)
    assert len(cassette.read_bytes().splitlines()) == 5
    assert replayer.store is not None and replayer.store.stats().entries == 0
    before = len(jobs.emulator.requests)
    jobs.run(labelled(5).iloc[::-1], "review", label_task(LABELS), settings=off, replayer=replayer)
    assert not requests_since(jobs, before)  # the cassette answers, replay store or not


def _store(folder: Path):  # type: ignore[no-untyped-def]
    from claude_magics.jobs.store import JobStore

    folder.mkdir(exist_ok=True)
    return JobStore(folder / "jobs.sqlite")


def _ledger(folder: Path):  # type: ignore[no-untyped-def]
    from claude_magics.cost.ledger import Ledger

    folder.mkdir(exist_ok=True)
    return Ledger(folder / "ledger.sqlite")
