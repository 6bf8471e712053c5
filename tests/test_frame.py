"""``df.claude`` and the magics (%%claude --batch, %claude_batch) as a user meets them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from batch_support import LABELS, REVIEWS, fast, make_jobs
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import claude_magics.jobs.accessor  # noqa: F401  (registers df.claude)
from claude_magics import config
from claude_magics.config import BudgetExceededError
from claude_magics.emulator import Emulator
from claude_magics.jobs import job as batch
from claude_magics.jobs.job import ConfirmationDeclined
from claude_magics.jobs.rows import map_task
from claude_magics.prompt import PromptError

TEMPLATE = "How does this customer feel? {{review}}"


@pytest.fixture(autouse=True)
def _no_stale_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside IPython, df.claude uses one client per process, made on first use: each test
    has its own emulator, so each test gets its own client."""
    monkeypatch.setattr(config, "_fallback", {})


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"review": REVIEWS, "stars": [5, 1, 3, 5, 2]}, index=list("abcde"))


@pytest.fixture
def fast_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every job polls fast (df.claude and the magics build their own jobs)."""
    original = batch.Job.__init__

    def init(self: batch.Job, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        fast(self)

    monkeypatch.setattr(batch.Job, "__init__", init)


@pytest.mark.usefixtures("emulator", "fast_jobs")
def test_accessor_label_extract_map(frame: pd.DataFrame) -> None:
    labels = frame.claude.label("review", LABELS, mode="batch", progress=False)
    assert labels.tolist() == ["positive", "negative", "neutral", "positive", "negative"]
    assert labels.index.tolist() == list("abcde")
    fields = frame.claude.extract(TEMPLATE, {"mood": ["happy", "sad"], "stars": int})
    assert list(fields.columns) == ["mood", "stars", "claude_status"]
    one = frame.claude.map("Rate {{review}}", schema={"score": int}, progress=False)
    assert isinstance(one, pd.Series) and one.name == "score" and str(one.dtype) == "Int64"
    multi = frame.claude.label(TEMPLATE, LABELS, multi=True, status=True, progress=False)
    assert list(multi.columns) == ["labels", "claude_status"]
    assert all(isinstance(v, list) for v in multi["labels"])
    job = frame.claude.label("review", LABELS, mode="batch", wait=False, progress=False)
    assert isinstance(job, batch.Job)  # the same call again: attached, nothing sent twice
    assert job.id in set(frame.claude.jobs()["job"])
    assert frame.claude.attach(job.id).tolist() == labels.tolist()


def test_accessor_validates(frame: pd.DataFrame) -> None:
    with pytest.raises(PromptError, match="did you mean 'review'"):
        frame.claude.label("{{reveiw}}", LABELS)
    with pytest.raises(PromptError, match="map needs a template"):
        frame.claude.map("review")
    with pytest.raises(PromptError, match="names no column"):
        frame.claude.map("Summarise the row")
    with pytest.raises(PromptError, match="distinct"):
        frame.claude.label("review", ["a", "a"])
    with pytest.raises(TypeError, match="unexpected keyword"):
        frame.claude.label("review", LABELS, colour="red")
    duplicated = pd.DataFrame([[1, 2]], columns=["x", "x"])
    with pytest.raises(AttributeError, match="unique column names"):
        duplicated.claude  # noqa: B018


def test_estimate_table(frame: pd.DataFrame) -> None:
    long = "You label reviews for a shop, carefully. " * 150 + "{{review}}"
    many = pd.DataFrame({"review": [f"Review {i % 40}" for i in range(50)]})
    table = many.claude.estimate(long, labels=LABELS, model="claude-sonnet-4-6")
    assert table.index.tolist() == ["realtime", "realtime + cache", "batch", "batch + cache"]
    cost = table["cost, at most ($)"]
    assert cost["batch"] == pytest.approx(cost["realtime"] / 2, rel=0.01)
    assert cost["batch + cache"] < cost["batch"] / 4  # one write, then reads at a tenth
    assert table["requests"].tolist() == [40] * 4  # repeated rows are one request each
    assert "local estimates" in table.attrs["note"]
    short = frame.claude.estimate("review", labels=LABELS)
    assert short.index.tolist() == ["realtime", "batch"]  # too short to cache


@pytest.mark.usefixtures("emulator")
def test_count_tokens_exact_and_sampled(frame: pd.DataFrame, emulator: Emulator) -> None:
    counted = frame.claude.count_tokens("Summarise {{review}}")
    assert counted.exact and counted.prompts == 4
    assert counted.per_row.index.tolist() == list("abcde")
    assert counted.per_row["a"] == counted.per_row["d"]
    assert "exact" in repr(counted) and "nothing was generated" in counted._repr_markdown_()
    counts = [r for r in emulator.requests if r.path.endswith("count_tokens")]
    assert len(counts) == 4
    # The count is the input of the very request a job sends.
    from claude_magics.api.client import Client

    client = Client()
    body = dict(counts[0].body)
    sent = client.messages.create(**body, max_tokens=20)
    usage = sent["usage"]
    total = usage["input_tokens"] + usage["cache_read_input_tokens"]
    total += usage["cache_creation_input_tokens"]
    assert total in counted.per_row.tolist()
    big = pd.DataFrame({"review": [f"Review number {i} " * (1 + i % 5) for i in range(60)]})
    sampled = big.claude.count_tokens("Summarise {{review}}", exact_limit=10, sample=10)
    assert not sampled.exact and sampled.counted == 10
    assert "estimate" in repr(sampled)


def test_confirmation_outside_ipython_refuses_with_a_clear_message(
    frame: pd.DataFrame, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A plain Python process: no IPython shell, whatever other tests have started.
    monkeypatch.setattr("IPython.get_ipython", lambda: None)
    jobs = make_jobs(emulator, tmp_path)
    expensive = pd.DataFrame({"q": [f"Write an essay {i}" for i in range(40)]})
    with pytest.raises(ConfirmationDeclined, match="yes=True"):
        jobs.run(expensive, "{{q}}", map_task(), max_tokens=64_000)
    assert not emulator.requests  # nothing was sent
    job = jobs.run(expensive, "{{q}} [[reply_tokens=3]]", map_task(), max_tokens=64_000, yes=True)
    assert job.counts() == {"succeeded": 40}


# --------------------------------------------------------------------------------------------
# In IPython: the magics, the lazy accessor, the budget


@pytest.fixture(name="ip")
def frame_shell(ip: InteractiveShell, frame: pd.DataFrame, fast_jobs: None) -> InteractiveShell:
    ip.user_ns["t_reviews"] = frame
    return ip


def _creates(emulator: Emulator) -> list[Any]:
    return [r for r in emulator.requests if r.path == "/v1/messages/batches" and r.method == "POST"]


def test_batch_cell_magic_labels_rows(ip: InteractiveShell, emulator: Emulator) -> None:
    with capture_output() as captured:
        ip.run_cell_magic(
            "claude",
            "--batch t_reviews --labels positive,negative,neutral --mode batch --out t_sent",
            TEMPLATE,
        )
    result = ip.user_ns["t_sent"]
    assert list(result.columns) == ["label", "claude_status"]
    assert result.index.tolist() == list("abcde")
    assert result["label"].tolist()[:3] == ["positive", "negative", "neutral"]
    shown = [o.data["text/plain"] for o in captured.outputs]
    assert any("5 succeeded" in text and "kept in t_sent" in text for text in shown)
    # Run the cell again: attached to the same job, no second batch.
    creates = _creates(emulator)
    with capture_output():
        ip.run_cell_magic(
            "claude",
            "--batch t_reviews --labels positive,negative,neutral --mode batch --out t_sent",
            TEMPLATE,
        )
    again = _creates(emulator)
    assert len(again) == len(creates) == 1


def test_batch_cell_magic_extract_with_schema(ip: InteractiveShell) -> None:
    ip.user_ns["t_schema"] = {"mood": ["happy", "sad"], "stars": int}
    with capture_output():
        ip.run_cell_magic("claude", "--batch t_reviews --schema t_schema --out t_fields", TEMPLATE)
    assert list(ip.user_ns["t_fields"].columns) == ["mood", "stars", "claude_status"]


def test_batch_cell_magic_mistakes_are_usage_errors(ip: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="did you mean 't_reviews'"):
        ip.run_cell_magic("claude", "--batch t_review --labels a,b", TEMPLATE)
    ip.user_ns["t_text"] = "not a frame"
    with pytest.raises(UsageError, match="not a pandas DataFrame"):
        ip.run_cell_magic("claude", "--batch t_text --labels a,b", TEMPLATE)
    with pytest.raises(UsageError, match="no column named 'reviw'"):
        ip.run_cell_magic("claude", "--batch t_reviews --labels a,b", "{{reviw}}")


def test_claude_batch_line_magic(ip: InteractiveShell, emulator: Emulator) -> None:
    with capture_output():
        ip.run_cell_magic(
            "claude", "--batch t_reviews --labels positive,negative,neutral --mode batch", TEMPLATE
        )
    job_id = batch.list_jobs()["job"].iloc[0]
    with capture_output() as listed:
        ip.run_line_magic("claude_batch", "list")
    assert job_id in str(listed.outputs[0].data)
    with capture_output() as status:
        ip.run_line_magic("claude_batch", f"status {job_id}")
    assert "5 succeeded" in status.outputs[0].data["text/plain"]
    assert "msgbatch_" in status.outputs[0].data["text/plain"]
    with capture_output():
        ip.run_line_magic("claude_batch", f"attach {job_id[:8]} --out t_attached")
    assert ip.user_ns["t_attached"]["claude_status"].eq("succeeded").all()
    with capture_output() as canceled:
        ip.run_line_magic("claude_batch", f"cancel {job_id}")
    assert "Canceled" in canceled.outputs[0].data["text/plain"]
    with pytest.raises(UsageError, match="no job"):
        ip.run_line_magic("claude_batch", "attach job_nope")
    with pytest.raises(UsageError, match="needs a job id"):
        ip.run_line_magic("claude_batch", "status")


def test_budget_refuses_a_job_before_sending(ip: InteractiveShell, emulator: Emulator) -> None:
    ip.run_line_magic("config", "ClaudeMagics.budget_usd = 0.00001")
    with pytest.raises(BudgetExceededError):
        ip.user_ns["t_reviews"].claude.label("review", LABELS, progress=False)
    assert not [r for r in emulator.requests if r.path.startswith("/v1/messages")]


def test_confirmation_asks_in_ipython(
    ip: InteractiveShell, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    ip.run_line_magic("config", "ClaudeMagics.confirm_above_usd = 0.0")
    asked: list[str] = []
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or "n")
    with pytest.raises(ConfirmationDeclined):
        ip.user_ns["t_reviews"].claude.label("review", LABELS, progress=False)
    assert asked and "Send it?" in asked[0]
    assert not [r for r in emulator.requests if r.path.startswith("/v1/messages")]
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    labels = ip.user_ns["t_reviews"].claude.label("review", LABELS, progress=False)
    assert labels.notna().all()
    labels = ip.user_ns["t_reviews"].claude.label("review", ["a", "b"], yes=True, progress=False)
    assert len(labels) == 5


def test_confirmation_without_stdin_refuses_and_says_how(
    ip: InteractiveShell, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from IPython.core.error import StdinNotImplementedError

    def no_stdin(prompt: str) -> str:
        # What ipykernel's input() raises when no front end can answer (nbclient, nbval).
        raise StdinNotImplementedError(
            "raw_input was called, but this frontend does not support it"
        )

    ip.run_line_magic("config", "ClaudeMagics.confirm_above_usd = 0.0")
    monkeypatch.setattr("builtins.input", no_stdin)
    with pytest.raises(ConfirmationDeclined, match="no way to ask") as info:
        ip.user_ns["t_reviews"].claude.label("review", LABELS, progress=False)
    assert "yes=True" in "\n".join(info.value._render_traceback_())
    assert not [r for r in emulator.requests if r.path.startswith("/v1/messages")]


def test_load_ext_stays_light_and_registers_df_claude_when_pandas_comes() -> None:
    probe = """
import sys
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.history_manager.enabled = False
ip.run_line_magic("load_ext", "claude_magics")
print("pandas after load_ext:", "pandas" in sys.modules)
ip.run_cell("import pandas as pd\\nok = hasattr(pd.DataFrame({'a': [1]}), 'claude')")
print("claude in the same cell:", ip.user_ns["ok"])
"""
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert "pandas after load_ext: False" in out
    assert "claude in the same cell: True" in out
