"""``df.claude``: Claude over the rows of a DataFrame (labels, fields, free text, costs).

    import claude_magics.jobs.accessor          # or %load_ext claude_magics: registers df.claude
    df["sentiment"] = df.claude.label("review", labels=["positive", "negative", "neutral"])

A thin, stateless namespace: each method checks its arguments and hands over to the plain
functions of ``entry`` (run, attach, list), ``estimate`` (estimates and token counts), ``tasks``
and ``rows`` (what is asked, and the row template), which work without the accessor and without
IPython.

Registering an accessor needs pandas, which ``%load_ext claude_magics`` must not import (it
stays light). So the extension registers ``df.claude`` as soon as pandas is there: at once if
it is already imported, else before the first cell that imports pandas or mentions ``.claude``
(a ``pre_run_cell`` hook that costs a dictionary lookup per cell and removes itself).
``import claude_magics.jobs.accessor`` registers it directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import entry
from .progress import say
from .tasks import Task, extract_task, label_task, map_task

if TYPE_CHECKING:
    from ..api.client import Client
    from ..cost.replay import Replayer
    from .estimate import TokenCount

__all__ = ["ClaudeAccessor", "register"]

# Passed through to ``entry.run``: where to send and store, and the settings to use.
_KNOWN = (
    *("client", "store", "ledger", "limits", "settings", "fresh", "progress", "what"),
    "replayer",
)


def _job_options(options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(_KNOWN))
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
    return options


class ClaudeAccessor:
    """``df.claude``: run Claude over each row. Every method takes a template with
    ``{{column}}`` references, as ``%%claude`` cells do (``label`` and ``extract`` also take a
    bare column name), and returns values aligned to the frame's index.

    Common keywords: ``model``, ``system``, ``max_tokens``, ``mode`` ("auto", "batch",
    "realtime"), ``yes`` (skip the cost confirmation), ``wait`` (False: return the job),
    ``status`` (True: a DataFrame with ``claude_status``), ``usage`` (tokens and cost per row).

    Without ``model``, jobs use ``ClaudeMagics.job_model`` (the model table's
    small model sold for labeling and extraction, unless ``%config`` says otherwise), not the
    ``%%claude`` cells' model; ``estimate`` shows what a bigger model would cost beside it.
    Every request is checked against the model's rules before anything is sent.
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        if not isinstance(frame, pd.DataFrame):
            raise AttributeError("df.claude works on DataFrames; for a Series use .to_frame()")
        if frame.columns.has_duplicates:
            dupes = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
            raise AttributeError(
                f"df.claude needs unique column names; duplicated: {', '.join(dupes)}"
            )
        self._frame = frame

    # -- jobs ------------------------------------------------------------------------------------

    def _run(
        self,
        template: Any,
        task: Task,
        *,
        model: str | None,
        system: str | None,
        max_tokens: int | None,
        mode: str,
        yes: bool,
        wait: bool,
        status: bool | None,
        usage: bool,
        options: dict[str, Any],
    ) -> Any:
        job = entry.run(
            self._frame,
            template,
            task,
            model=model,
            system=system,
            max_tokens=max_tokens,
            mode=mode,
            yes=yes,
            wait=wait,
            **_job_options(options),
        )
        if not wait:
            return job
        note = job.failures_note()
        if note:
            say(note)
        return job.result(self._frame, status=status, usage=usage)

    def map(
        self,
        template: str,
        *,
        schema: Any = None,
        model: str | None = None,
        system: str | None = None,
        max_tokens: int | None = None,
        mode: str = "auto",
        yes: bool = False,
        wait: bool = True,
        status: bool = False,
        usage: bool = False,
        **options: Any,
    ) -> Any:
        """One answer per row: text (a ``string`` Series), or, with ``schema`` (a JSON-schema
        dict, a pydantic model or ``{"field": type}``), its fields (a Series for one field,
        else a DataFrame). ``model`` defaults to ``ClaudeMagics.job_model``.

            df["summary"] = df.claude.map("Summarise in one line: {{review}}", max_tokens=60)
        """
        task = map_task(schema)
        result = self._run(
            template,
            task,
            model=model,
            system=system,
            max_tokens=max_tokens,
            mode=mode,
            yes=yes,
            wait=wait,
            status=status or None,
            usage=usage,
            options=options,
        )
        if (
            isinstance(result, pd.DataFrame)
            and schema is not None
            and len(task.fields) == 1
            and not (status or usage)
        ):
            return result[task.fields[0]]
        return result

    def label(
        self,
        template_or_column: Any,
        labels: Sequence[str] | str,
        *,
        multi: bool = False,
        model: str | None = None,
        system: str | None = None,
        max_tokens: int | None = None,
        mode: str = "auto",
        yes: bool = False,
        wait: bool = True,
        status: bool = False,
        usage: bool = False,
        **options: Any,
    ) -> Any:
        """A label per row from ``labels`` (a categorical Series), or with ``multi=True`` the
        list of labels that apply. The answer is constrained to the labels (structured output);
        anything else is marked ``invalid_output``, never guessed. ``model`` defaults to
        ``ClaudeMagics.job_model``.

            df["topic"] = df.claude.label("ticket", ["billing", "bug", "other"], mode="batch")
            df["topic"] = df.claude.label("ticket", ["billing", "bug"], model=big_model)
        """
        return self._run(
            template_or_column,
            label_task(labels, multi=multi),
            model=model,
            system=system,
            max_tokens=max_tokens,
            mode=mode,
            yes=yes,
            wait=wait,
            status=status or None,
            usage=usage,
            options=options,
        )

    def extract(
        self,
        template_or_column: Any,
        schema: Any,
        *,
        model: str | None = None,
        system: str | None = None,
        max_tokens: int | None = None,
        mode: str = "auto",
        yes: bool = False,
        wait: bool = True,
        status: bool = True,
        usage: bool = False,
        **options: Any,
    ) -> Any:
        """Fields per row, one typed column each, plus ``claude_status`` (a DataFrame, even for
        one field). ``schema``: a pydantic model, a JSON-schema dict, or
        ``{"name": str, "stars": int, "mood": ["up", "down"]}``. ``status=False`` leaves
        ``claude_status`` out (rows that did not succeed are then missing values, and a
        one-line note says how many). ``model`` defaults to ``ClaudeMagics.job_model``.

            fields = df.claude.extract("review", {"product": str, "stars": int})
        """
        result = self._run(
            template_or_column,
            extract_task(schema),
            model=model,
            system=system,
            max_tokens=max_tokens,
            mode=mode,
            yes=yes,
            wait=wait,
            status=status,
            usage=usage,
            options=options,
        )
        return result.to_frame() if isinstance(result, pd.Series) else result

    # -- before sending ----------------------------------------------------------------------

    def _prompts(
        self,
        template: Any,
        *,
        labels: Sequence[str] | str | None,
        multi: bool,
        schema: Any,
        model: str | None,
        system: str | None,
        max_tokens: int | None,
    ) -> Any:
        from ..config import current_settings
        from .rows import build_prompts, make_template

        if labels is not None and schema is not None:
            raise TypeError("give labels or schema, not both")
        columns = list(self._frame.columns)
        if labels is not None:
            task = label_task(labels, multi=multi)
        elif schema is not None:
            bare_column = not isinstance(template, str) or template in columns
            task = extract_task(schema) if bare_column else map_task(schema)
        else:
            task = map_task()
        row_template = make_template(columns, template, task)
        return build_prompts(
            self._frame,
            row_template,
            task,
            model=model or current_settings().job_model,
            max_tokens=max_tokens,
            system=system,
        )

    def estimate(
        self,
        template: Any,
        *,
        labels: Sequence[str] | str | None = None,
        multi: bool = False,
        schema: Any = None,
        model: str | None = None,
        system: str | None = None,
        max_tokens: int | None = None,
        compare: Sequence[str] | None = None,
        client: Client | None = None,
        replayer: Replayer | None = None,
    ) -> pd.DataFrame:
        """What the job would cost in realtime and as a batch, with and without caching, from
        local token estimates; nothing is sent. The note is in ``.attrs["note"]``. Prompts
        answered before (the replay store, a cassette) are not counted: the note says how many
        would be replayed, at $0 (``client`` and ``replayer``: default the session's).

        ``model`` defaults to ``ClaudeMagics.job_model``. Beside its cost, an ``if MODEL ($)``
        column per model in ``compare`` prices the same tokens on that model; by default the
        cells' model (``ClaudeMagics.model``) and the newest current Opus (``compare=()``: none).

            df.claude.estimate("review", labels=["positive", "negative"])
            df.claude.estimate("review", labels=["positive", "negative"], compare=())
        """
        from ..config import current_settings, shared_client
        from .estimate import comparison_models, estimate_job

        prompts = self._prompts(
            template,
            labels=labels,
            multi=multi,
            schema=schema,
            model=model,
            system=system,
            max_tokens=max_tokens,
        )
        settings = current_settings()
        if compare is None:
            compare = comparison_models(prompts.model, settings.model)
        replay = entry.prompts_replay(
            prompts, client or shared_client(), entry.job_replayer(replayer, settings)
        )
        hits = replay.lookup(range(prompts.n_prompts)) if replay is not None else {}
        return estimate_job(
            prompts, settings.price_overrides, compare=compare, replayed=hits
        ).frame()

    def count_tokens(
        self,
        template: Any,
        *,
        labels: Sequence[str] | str | None = None,
        multi: bool = False,
        schema: Any = None,
        model: str | None = None,
        system: str | None = None,
        exact_limit: int = 2000,
        sample: int = 200,
        client: Any = None,
    ) -> TokenCount:
        """Input tokens per row of the prompts a job would send, counted by the API's
        count_tokens endpoint (free): distinct prompts once each, concurrently. Beyond
        ``exact_limit`` distinct prompts, a sample is counted and the rest estimated from it;
        on a server without that endpoint every figure is a local estimate; and a server may
        mark its counts as estimates. The result says which (``.exact``, ``.source``).
        ``.per_row`` is a Series aligned to the frame; ``model`` defaults to
        ``ClaudeMagics.job_model``.

            df.claude.count_tokens("Summarise {{review}}").total
        """
        from ..config import current_settings, shared_client
        from .estimate import count_prompt_tokens

        prompts = self._prompts(
            template,
            labels=labels,
            multi=multi,
            schema=schema,
            model=model,
            system=system,
            max_tokens=None,
        )
        return count_prompt_tokens(
            prompts,
            client or shared_client(),
            self._frame.index,
            exact_limit=exact_limit,
            sample=sample,
            overrides=current_settings().price_overrides,
        )

    # -- the ledger ------------------------------------------------------------------------------

    def jobs(self) -> pd.DataFrame:
        """Every DataFrame job in the ledger (all frames), newest first."""
        return entry.list_jobs()

    def attach(self, job_id: str, *, status: bool = False, usage: bool = False) -> Any:
        """The results of an earlier job on this frame, waiting for them if needed."""
        job = entry.attach(job_id)
        return job.result(self._frame, status=status or None, usage=usage)


def register() -> None:
    """Register ``df.claude`` with pandas (once: registering again would warn)."""
    if getattr(pd.DataFrame, "claude", None) is not ClaudeAccessor:
        pd.api.extensions.register_dataframe_accessor("claude")(ClaudeAccessor)


register()
