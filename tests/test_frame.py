"""``df.claude`` and the magics (%%claude --batch, %claude_batch) as a user meets them."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from typing import Any

import pandas as pd
import pytest
from batch_support import FAST, FAST_CONFIG, LABELS, REVIEWS, Jobs, gateway
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import claude_magics.jobs.accessor  # noqa: F401  (registers df.claude)
from claude_magics import config
from claude_magics.api.client import Client
from claude_magics.config import BudgetExceededError
from claude_magics.cost.pricing import model_price, price_usage
from claude_magics.emulator import Emulator
from claude_magics.jobs import entry
from claude_magics.jobs.entry import ConfirmationDeclined
from claude_magics.jobs.estimate import JobEstimate
from claude_magics.jobs.job import Job
from claude_magics.jobs.tasks import map_task
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


def _valid_fields(table: pd.DataFrame) -> None:
    """Every row of an extract of ``{"mood": ["happy", "sad"], "stars": int}`` succeeded and
    has its values (the emulator always gives the integer; the mood may be null)."""
    assert list(table.columns) == ["mood", "stars", "claude_status"]
    assert table["claude_status"].eq("succeeded").all()
    assert table["stars"].notna().all() and str(table["stars"].dtype) == "Int64"
    assert set(table["mood"].dropna()) <= {"happy", "sad"}


@pytest.mark.usefixtures("emulator")
def test_accessor_label_extract_map(frame: pd.DataFrame) -> None:
    labels = frame.claude.label("review", LABELS, mode="batch", progress=False, settings=FAST)
    assert labels.tolist() == ["positive", "negative", "neutral", "positive", "negative"]
    assert labels.index.tolist() == list("abcde")
    fields = frame.claude.extract(TEMPLATE, {"mood": ["happy", "sad"], "stars": int})
    _valid_fields(fields)
    assert fields.index.tolist() == list("abcde")
    one = frame.claude.map("Rate {{review}}", schema={"score": int}, progress=False)
    assert isinstance(one, pd.Series) and one.name == "score" and str(one.dtype) == "Int64"
    assert one.notna().all()
    multi = frame.claude.label(TEMPLATE, LABELS, multi=True, status=True, progress=False)
    assert list(multi.columns) == ["labels", "claude_status"]
    assert multi["claude_status"].eq("succeeded").all()
    assert all(isinstance(v, list) and set(v) <= set(LABELS) for v in multi["labels"])
    job = frame.claude.label("review", LABELS, mode="batch", wait=False, progress=False)
    assert isinstance(job, Job)  # the same call again: attached, nothing sent twice
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
    assert list(table.columns) == [
        "requests", "input tokens (est.)", "of which from cache", "output tokens (max)",
        "cost, at most ($)", "if claude-sonnet-5-5 ($)", "if claude-opus-5-5 ($)",
    ]  # fmt: skip
    cost = table["cost, at most ($)"]
    assert cost["batch"] == pytest.approx(cost["realtime"] / 2, rel=0.01)
    assert cost["batch + cache"] < cost["batch"] / 4  # one write, then reads at a tenth
    assert table["requests"].tolist() == [40] * 4  # repeated rows are one request each
    assert "local estimates" in table.attrs["note"]
    short = frame.claude.estimate("review", labels=LABELS)
    assert short.index.tolist() == ["realtime", "batch"]  # too short to cache
    assert "too short to cache on claude-haiku-5-5" in short.attrs["note"]


def test_estimate_shows_what_bigger_models_would_cost() -> None:
    """On the job model by default, beside the cells' model and the newest Opus, priced from
    the same token estimates. A 1,700-token instruction: too short for Haiku 5.5 to cache."""
    guide = "You label reviews for a shop, carefully. " * 150 + "{{review}}"
    many = pd.DataFrame({"review": [f"Review {i % 40}" for i in range(50)]})
    table = many.claude.estimate(guide, labels=LABELS)
    assert table.index.tolist() == ["realtime", "batch"]
    note = table.attrs["note"]
    assert "claude-haiku-5-5" in note
    assert "too short to cache on claude-haiku-5-5 (its minimum is 4,096 tokens)" in note
    assert "the 'if' columns price the same tokens on claude-sonnet-5-5 and claude-opus-5-5" in note
    haiku = table["cost, at most ($)"]
    # Haiku 5.5 is $0.10 / $0.50 a million tokens, Sonnet 5.5 20 times that, Opus 5.5 40 times.
    assert table["if claude-sonnet-5-5 ($)"].tolist() == pytest.approx(
        (20 * haiku).tolist(), rel=1e-3
    )
    assert table["if claude-opus-5-5 ($)"].tolist() == pytest.approx(
        (40 * haiku).tolist(), rel=1e-3
    )
    tokens = table.loc["realtime"]
    priced = price_usage(
        {
            "input_tokens": tokens["input tokens (est.)"],
            "output_tokens": tokens["output tokens (max)"],
        },
        "claude-haiku-5-5",
    )
    assert priced is not None and haiku["realtime"] == pytest.approx(priced.total, abs=1e-6)
    assert haiku["realtime"] < 0.01  # fractions of a cent still show: not rounded to nothing
    assert table["if claude-sonnet-5-5 ($)"]["realtime"] > 0
    alone = many.claude.estimate(guide, labels=LABELS, compare=())
    assert (
        "if claude-sonnet-5-5 ($)" not in alone.columns
        and "'if' columns" not in alone.attrs["note"]
    )
    fable = many.claude.estimate(guide, labels=LABELS, compare=["claude-fable-5-2"])
    assert [c for c in fable.columns if c.startswith("if ")] == ["if claude-fable-5-2 ($)"]


def test_estimate_figures() -> None:
    """The figures of 0.1's own formulas, now priced by ``price_usage`` and ``worst_case_usd``:
    10 prompts of a 2,000-token cached prefix and 50 tokens each, 20 output tokens at most,
    Sonnet at $3 / $15 per million."""
    estimate = JobEstimate(
        model="claude-sonnet-4-6",
        rows=12,
        prompts=10,
        prefix_tokens=2000,
        fresh_tokens=500,
        max_tokens=20,
        cacheable=True,
    )
    costs = {s.name: s.cost_usd for s in estimate.scenarios}
    assert costs == pytest.approx(
        {
            "realtime": 0.0645,  # (20,000 + 500) x $3 + 200 x $15
            "realtime + cache": 0.0174,  # the prefix written once (1.25x), read 9 times (0.1x)
            "batch": 0.03225,  # half price
            "batch + cache": 0.01095,  # written for an hour (2x), read 9 times, half price
        },
        rel=1e-12,
    )
    tokens = {
        s.name: (s.input_tokens, s.cached_tokens, s.output_tokens) for s in estimate.scenarios
    }
    assert tokens == {
        "realtime": (20_500, 0, 200),
        "realtime + cache": (20_500, 18_000, 200),
        "batch": (20_500, 0, 200),
        "batch + cache": (20_500, 18_000, 200),
    }
    assert estimate.cost("batch") == pytest.approx(0.01095, rel=1e-12)
    # Worst case: every prefix written, nothing read; the rows' own text is never written.
    assert estimate.worst_case("batch") == pytest.approx(0.06225, rel=1e-12)
    assert estimate.worst_case("realtime") == pytest.approx(0.0795, rel=1e-12)
    assert estimate.price == model_price("claude-sonnet-4-6")
    # Beside it, the same tokens on Opus 5.5 ($4 / $20; writes $5 and $8, reads $0.20), which
    # caches a 2,000-token prefix, and on Haiku 4.5 ($1 / $5), which does not (4,096 at least).
    compared = replace(estimate, compare=("claude-opus-5-5", "claude-haiku-4-5"))
    assert {s.name: s.compared for s in compared.scenarios} == {
        "realtime": pytest.approx((0.086, 0.0215), rel=1e-12),
        "realtime + cache": pytest.approx((0.0196, 0.0215), rel=1e-12),
        "batch": pytest.approx((0.043, 0.01075), rel=1e-12),
        "batch + cache": pytest.approx((0.0128, 0.01075), rel=1e-12),
    }
    assert [s.cost_usd for s in compared.scenarios] == [s.cost_usd for s in estimate.scenarios]
    unknown = JobEstimate("claude-nobody", 1, 1, 10, 10, 10, cacheable=False)
    assert unknown.worst_case("batch") is None and unknown.cost("realtime") is None
    cheaper = JobEstimate(
        "claude-sonnet-4-6",
        12,
        10,
        2000,
        500,
        20,
        cacheable=False,
        overrides={"claude-sonnet-4-6": (1.5, 7.5)},
    )
    assert cheaper.cost("realtime") == pytest.approx(0.0645 / 2, rel=1e-12)


@pytest.mark.usefixtures("emulator")
def test_count_tokens_exact_and_sampled(frame: pd.DataFrame, emulator: Emulator) -> None:
    counted = frame.claude.count_tokens("Summarise {{review}}")
    assert counted.exact and counted.prompts == 4
    assert counted.source == "counted" and not counted.estimated
    assert counted.model == "claude-haiku-5-5"  # the job model
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


def test_count_tokens_on_a_server_without_the_endpoint_estimates_and_says_so(
    frame: pd.DataFrame,
) -> None:
    with gateway() as server, Client(api_key="k", base_url=server.url) as client:
        counted = frame.claude.count_tokens("Summarise {{review}}", client=client)
        assert server.paths() == ["/v1/messages/count_tokens"]  # asked once, then no more
    assert counted.source == "local estimate" and counted.estimated and not counted.exact
    text = repr(counted)
    assert text.startswith("Estimated input tokens for claude-haiku-5-5")
    assert "local estimates: this server has no count_tokens endpoint" in text
    assert "**Estimated input tokens" in counted._repr_markdown_()
    # The figures are the local estimates of the very prompts a job would send.
    assert counted.per_row.index.tolist() == list("abcde")
    assert counted.per_row["a"] == counted.per_row["d"] > 0
    assert counted.total == counted.per_row.sum() and counted.prompts == 4


def test_count_tokens_the_server_marks_as_estimates_are_shown_as_estimates(
    frame: pd.DataFrame,
) -> None:
    with gateway() as server, Client(api_key="k", base_url=server.url) as client:
        server.count_tokens = {"input_tokens": 42, "estimated": True}
        counted = frame.claude.count_tokens("Summarise {{review}}", client=client)
        assert server.paths() == ["/v1/messages/count_tokens"] * 4
    assert counted.source == "server estimate" and counted.estimated
    assert counted.per_row.tolist() == [42] * 5
    text = repr(counted)
    assert text.startswith("Estimated input tokens for claude-haiku-5-5")
    assert "the server's estimates" in text


def test_confirmation_outside_ipython_refuses_with_a_clear_message(
    frame: pd.DataFrame, emulator: Emulator, jobs: Jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A plain Python process: no IPython shell, whatever other tests have started.
    monkeypatch.setattr("IPython.get_ipython", lambda: None)
    # 100 answers of up to 128,000 tokens on Haiku 5.5 ($0.50 a million): $6.40 at most.
    expensive = pd.DataFrame({"q": [f"Write an essay {i}" for i in range(100)]})
    with pytest.raises(ConfirmationDeclined, match="yes=True"):
        jobs.run(expensive, "{{q}}", map_task(), max_tokens=128_000)
    assert not [r for r in emulator.requests if r.path.startswith("/v1/messages")]
    job = jobs.run(expensive, "{{q}} [[reply_tokens=3]]", map_task(), max_tokens=128_000, yes=True)
    assert job.counts() == {"succeeded": 100}


# --------------------------------------------------------------------------------------------
# In IPython: the magics, the lazy accessor, the budget


@pytest.fixture(name="ip")
def frame_shell(ip: InteractiveShell, frame: pd.DataFrame) -> InteractiveShell:
    """The shell with ``t_reviews`` and fast batch polling, set as a user would (``%config``)."""
    for line in FAST_CONFIG:
        ip.run_line_magic("config", line)
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
    _valid_fields(ip.user_ns["t_fields"])


def test_batch_cell_magic_mistakes_are_usage_errors(ip: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="did you mean 't_reviews'"):
        ip.run_cell_magic("claude", "--batch t_review --labels a,b", TEMPLATE)
    ip.user_ns["t_text"] = "not a frame"
    with pytest.raises(UsageError, match="not a pandas DataFrame"):
        ip.run_cell_magic("claude", "--batch t_text --labels a,b", TEMPLATE)
    with pytest.raises(UsageError, match="no column named 'reviw'"):
        ip.run_cell_magic("claude", "--batch t_reviews --labels a,b", "{{reviw}}")


def _models_sent(emulator: Emulator) -> set[str]:
    """The model of every message request, alone or in a batch, the emulator received."""
    models = set()
    for r in emulator.requests:
        if r.method == "POST" and r.path == "/v1/messages":
            models.add(r.body["model"])
        elif r.method == "POST" and r.path == "/v1/messages/batches":
            models.update(item["params"]["model"] for item in r.body["requests"])
    return models


def test_jobs_run_on_the_job_model_not_the_cells(ip: InteractiveShell, emulator: Emulator) -> None:
    ip.run_line_magic("config", "ClaudeMagics.model = 'claude-opus-5-5'")
    frame = ip.user_ns["t_reviews"]
    frame.claude.label("review", LABELS, progress=False)
    with capture_output():
        ip.run_cell_magic("claude", "--batch t_reviews --labels a,b --mode batch", TEMPLATE)
    assert _models_sent(emulator) == {"claude-haiku-5-5"}
    # The cells' model is what the estimate compares with.
    table = frame.claude.estimate("review", labels=LABELS)
    assert "if claude-opus-5-5 ($)" in table.columns
    assert "claude-haiku-5-5" in table.attrs["note"]
    # A job model of one's own, from %config; -m still wins for a cell.
    emulator.reset()
    ip.run_line_magic("config", "ClaudeMagics.job_model = 'claude-sonnet-5-5'")
    frame.claude.extract("review", {"stars": int}, progress=False)
    assert _models_sent(emulator) == {"claude-sonnet-5-5"}
    emulator.reset()
    with capture_output():
        ip.run_cell_magic(
            "claude", "--batch t_reviews --labels a,b -m claude-opus-5-5 --out t_x", TEMPLATE
        )
    assert _models_sent(emulator) == {"claude-opus-5-5"}


def test_batch_cell_a_max_tokens_the_model_refuses_is_one_line(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    with pytest.raises(UsageError, match=r"--max-tokens 300,000 is above claude-haiku-5-5's most"):
        ip.run_cell_magic(
            "claude", "--batch t_reviews --labels a,b --max-tokens 300000 --yes", TEMPLATE
        )
    assert not [r for r in emulator.requests if r.path.startswith("/v1/messages")]


def test_a_budget_never_blocks_a_job_on_a_server_without_count_tokens(
    ip: InteractiveShell,
) -> None:
    """A gateway with /v1/messages only: no count_tokens, no batches, no model list."""
    ip.run_line_magic("config", "ClaudeMagics.budget_usd = 1.0")
    frame = ip.user_ns["t_reviews"]
    with gateway() as server, Client(api_key="k", base_url=server.url) as client:
        counted = frame.claude.count_tokens("review", labels=LABELS, client=client)
        labels = frame.claude.label("review", LABELS, client=client, progress=False)
        assert server.paths().count("/v1/messages") == 4
    assert counted.source == "local estimate"
    assert labels.tolist() == [review.split()[-1] for review in REVIEWS]


def test_claude_batch_line_magic(ip: InteractiveShell, emulator: Emulator) -> None:
    with capture_output():
        ip.run_cell_magic(
            "claude", "--batch t_reviews --labels positive,negative,neutral --mode batch", TEMPLATE
        )
    job_id = entry.list_jobs()["job"].iloc[0]
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


def test_poll_timings_are_settings(ip: InteractiveShell) -> None:
    job = ip.user_ns["t_reviews"].claude.label(
        "review", LABELS, mode="batch", wait=False, progress=False
    )
    assert job.settings.batch_poll_seconds == 0.02  # from %config, as the fixture set them
    assert job.settings.batch_poll_max_seconds == 0.05
    assert job.settings.lost_create_grace_seconds == 0.3
    ip.run_line_magic("config", "ClaudeMagics.batch_poll_seconds = 7.5")
    again = entry.attach(job.id, wait=False, progress=False)
    assert again.settings.batch_poll_seconds == 7.5


def test_rows_that_failed_are_said_once_with_the_way_to_retry(
    ip: InteractiveShell, emulator: Emulator
) -> None:
    # A 400 for the second row: not retried, so it fails at once.
    rows = ["fine, positive", "x [[error=invalid_request_error]]"]
    ip.user_ns["t_rows"] = pd.DataFrame({"review": rows})
    with capture_output() as captured:
        labels = ip.user_ns["t_rows"].claude.label("review", LABELS, mode="realtime")
    assert labels.isna().tolist() == [False, True]
    assert captured.stdout.startswith(
        "1 of 2 rows did not succeed (1 errored:invalid_request_error)"
    )
    assert captured.stdout.count("\n") == 1 and ".retry()" in captured.stdout


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

    def must_not_ask(prompt: str) -> str:
        raise AssertionError(f"asked although yes=True: {prompt}")

    monkeypatch.setattr("builtins.input", must_not_ask)
    labels = ip.user_ns["t_reviews"].claude.label("review", ["a", "b"], yes=True, progress=False)
    assert len(labels) == 5 and labels.notna().all()


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
