"""``df.claude``: Claude over the rows of a DataFrame (labels, fields, free text, costs).

    import claude_magics.jobs.accessor          # or %load_ext claude_magics: registers df.claude
    df["sentiment"] = df.claude.label("review", labels=["positive", "negative", "neutral"])

A thin, stateless namespace: each method checks its arguments and hands over to the plain
functions of ``entry`` (run, attach, list), ``estimate`` (estimates and token counts), ``tasks``
and ``rows`` (what is asked, and the row template), ``compare`` and ``cascade`` (several models
on one task), ``evaluation`` and ``widgets.review``, which work without the accessor and
without IPython.

Registering an accessor needs pandas, which ``%load_ext claude_magics`` must not import (it
stays light). So the extension registers ``df.claude`` as soon as pandas is there: at once if
it is already imported, else before the first cell that imports pandas or mentions ``.claude``
(a ``pre_run_cell`` hook that costs a dictionary lookup per cell and removes itself).
``import claude_magics.jobs.accessor`` registers it directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import entry
from .options import (
    WHERE,
    JobOptions,
    estimate_task,
    label_options,
    label_status,
    refuse_label_citations,
    run_rows,
)
from .tasks import Task, extract_task, label_task, map_task

if TYPE_CHECKING:
    from ..api.client import Client
    from ..cost.replay import Replayer
    from ..widgets.review import ReviewSession
    from .compare import Comparison
    from .estimate import TokenCount
    from .evaluation import Evaluation
    from .runner import Runner

__all__ = ["ClaudeAccessor", "register"]


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

    def _run(self, template: Any, task: Task, options: JobOptions) -> Any:
        return run_rows(self._frame, template, task, options)

    def map(
        self,
        template: str,
        *,
        schema: Any = None,
        files: Any = None,
        citations: bool = False,
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

        ``files`` names a column with each row's PDF or image (a path, bytes or a URL), sent
        with its prompt (uploaded once, by ``file_id``). ``citations=True`` asks for citations
        of each document: a DataFrame with ``<field>_cite_page`` and ``<field>_cite_text``
        beside each field (``answer_cite_...`` for a text answer); see ``extract``.

            df["summary"] = df.claude.map("Summarise in one line: {{review}}", max_tokens=60)
        """
        task = map_task(schema)
        result = self._run(
            template,
            task,
            JobOptions.take(
                options,
                model=model,
                system=system,
                max_tokens=max_tokens,
                mode=mode,
                yes=yes,
                wait=wait,
                status=status or None,
                usage=usage,
                files=files,
                citations=citations,
            ),
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
        descriptions: Mapping[str, str] | None = None,
        examples: Iterable[tuple[str, Any]] | None = None,
        abstain: bool = False,
        rationale: bool = False,
        confidence: bool = False,
        files: Any = None,
        citations: bool = False,
        model: str | None = None,
        effort: str | None = None,
        cascade: Sequence[str] | None = None,
        target: float = 0.95,
        threshold: float | None = None,
        gold: Any = None,
        system: str | None = None,
        max_tokens: int | None = None,
        mode: str = "auto",
        yes: bool = False,
        wait: bool = True,
        status: bool | None = None,
        usage: bool = False,
        **options: Any,
    ) -> Any:
        """A label per row from ``labels`` (a categorical Series), or with ``multi=True`` the
        list of labels that apply. The answer is constrained to the labels (structured output);
        anything else is marked ``invalid_output``, never guessed. ``model`` defaults to
        ``ClaudeMagics.job_model``.

        ``descriptions`` (``{label: what it means}``) and ``examples`` (``[(text, label), ...]``)
        go into the instruction every row shares (cached). ``abstain=True`` lets the model
        answer ``"unsure"``: that row's label is missing and its ``claude_status`` is
        ``abstained`` (the result is then a DataFrame with ``claude_status``, so
        ``.claude_status.eq("abstained").sum()`` counts them). ``rationale=True`` adds a
        ``rationale`` column (a short reason, ``string``), ``confidence=True`` a ``confidence``
        column (``Float64``, 0..1: the model's own, uncalibrated, confidence). With several
        columns the result is a DataFrame with ``claude_status``; ``status=False`` leaves it out.
        ``effort``: the model's effort level (default: the model's own).

        ``cascade=[small_model, big_model, ...]`` labels every row with the first model (with
        ``confidence`` and ``abstain`` on), and passes the rows it abstains on, answers
        invalidly or answers with a confidence below a threshold to the next, and so on. The
        threshold is ``threshold``, or is chosen on ``gold`` (a column or Series of labels for
        some rows) as the lowest that agrees with gold on ``target`` of the gold rows. The
        result is a DataFrame with the label, ``confidence``, ``claude_model`` (whose answer
        each row has) and ``claude_status``; ``.attrs["cascade"]`` reports each model's rows
        and cost, the agreement on gold and the cost against the last model on every row
        (``claude_magics.jobs.cascade``).

            df["topic"] = df.claude.label("ticket", ["billing", "bug", "other"], mode="batch")
            df["topic"] = df.claude.label("ticket", ["billing", "bug"], model=big_model)
            out = df.claude.label("ticket", ["billing", "bug"], abstain=True, confidence=True)
            out = df.claude.label("ticket", ["billing", "bug"], cascade=[small, big], gold="gold")

        ``files`` names a column with each row's PDF or image (a path, bytes or a URL), sent
        with its prompt and uploaded once. ``citations=True`` is refused: labels are structured
        output, which the API does not allow with citations (``extract`` or ``map`` cite).
        """
        refuse_label_citations(citations)
        if cascade is not None:
            return self._cascade(
                template_or_column,
                labels,
                models=cascade,
                target=target,
                threshold=threshold,
                gold=gold,
                forced={
                    "multi": multi,
                    "confidence": confidence,
                    "model": model,
                    "effort": effort,
                    "wait": wait,
                    "status": status,
                    "usage": usage,
                },
                descriptions=descriptions,
                examples=examples,
                abstain=abstain,
                rationale=rationale,
                system=system,
                max_tokens=max_tokens,
                mode=mode,
                yes=yes,
                options=options,
                files=files,
            )
        if gold is not None or threshold is not None:
            raise TypeError("gold and threshold go with cascade=[...]")
        task = label_task(
            labels,
            multi=multi,
            descriptions=descriptions,
            examples=examples,
            abstain=abstain,
            rationale=rationale,
            confidence=confidence,
        )
        return self._run(
            template_or_column,
            task,
            JobOptions.take(
                options,
                model=model,
                effort=effort,
                system=system,
                max_tokens=max_tokens,
                mode=mode,
                yes=yes,
                wait=wait,
                status=label_status(status, abstain),
                usage=usage,
                files=files,
            ),
        )

    def extract(
        self,
        template_or_column: Any,
        schema: Any,
        *,
        descriptions: Mapping[str, str] | None = None,
        files: Any = None,
        citations: bool = False,
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
        ``{"name": str, "stars": int, "mood": ["up", "down"]}``. ``descriptions``
        (``{field: what it means}``) become the fields' descriptions in the schema and are said
        in the shared instruction. ``status=False`` leaves ``claude_status`` out (rows that did
        not succeed are then missing values, and a one-line note says how many). ``model``
        defaults to ``ClaudeMagics.job_model``.

        ``files`` names a column with each row's PDF or image: a path, bytes, or an ``http(s)``
        URL (sent as a ``url`` source). Each distinct file is uploaded once (by content hash,
        remembered in ``files.sqlite`` beside the ledger) and sent by ``file_id``, in batches
        and in realtime; a row whose file is missing or unreadable is ``errored:file_error``.
        ``citations=True`` turns on citations for each document and adds, per field,
        ``<field>_cite_page`` (``Int64``: the page the value is cited from; missing for
        a text document or no citation) and ``<field>_cite_text`` (``string``: the quoted
        passage). The API allows no structured output with citations, so the fields are then
        asked for as JSON in the answer's text (the schema in the shared instruction) and still
        checked against the schema (else ``invalid_output``).

            fields = df.claude.extract("review", {"product": str, "stars": int})
            bills = df.claude.extract("{{name}}", {"total": float}, files="pdf", citations=True)
        """
        result = self._run(
            template_or_column,
            extract_task(schema, descriptions=descriptions),
            JobOptions.take(
                options,
                model=model,
                system=system,
                max_tokens=max_tokens,
                mode=mode,
                yes=yes,
                wait=wait,
                status=status,
                usage=usage,
                files=files,
                citations=citations,
            ),
        )
        return result.to_frame() if isinstance(result, pd.Series) else result

    def _runner(
        self,
        template: Any,
        *,
        system: str | None,
        max_tokens: int | None,
        mode: str,
        options: dict[str, Any],
        files: Any = None,
    ) -> Runner:
        from .runner import Runner

        given = JobOptions.take(options, only=WHERE, mode=mode)
        return Runner.make(
            template,
            system=system,
            max_tokens=max_tokens,
            mode=mode,
            files=files,
            client=given.client,
            store=given.store,
            ledger=given.ledger,
            limits=given.limits,
            settings=given.settings,
            replayer=given.replayer,
            progress=given.progress,
            fresh=given.fresh,
        )

    def _gold(self, gold: Any) -> pd.Series | None:
        return None if gold is None else self._labels_of(gold, "gold")

    def _cascade(
        self,
        template: Any,
        labels: Sequence[str] | str,
        *,
        models: Sequence[str],
        target: float,
        threshold: float | None,
        gold: Any,
        forced: dict[str, Any],
        descriptions: Mapping[str, str] | None,
        examples: Iterable[tuple[str, Any]] | None,
        abstain: bool,
        rationale: bool,
        system: str | None,
        max_tokens: int | None,
        mode: str,
        yes: bool,
        options: dict[str, Any],
        files: Any = None,
    ) -> pd.DataFrame:
        from .cascade import cascade

        defaults = {"model": None, "effort": None, "wait": True, "status": None, "usage": False}
        clashing = [name for name, value in defaults.items() if forced[name] != value]
        if forced["multi"]:
            clashing.insert(0, "multi")
        if clashing:
            raise TypeError(
                f"{', '.join(clashing)}: not with cascade= (the cascade names its models, "
                "waits for each, and always gives confidence, claude_model and claude_status)"
            )
        return cascade(
            self._frame,
            template,
            labels,
            models=models,
            target=target,
            threshold=threshold,
            gold=self._gold(gold),
            descriptions=descriptions,
            examples=examples,
            abstain=abstain,
            rationale=rationale,
            yes=yes,
            runner=self._runner(
                template,
                system=system,
                max_tokens=max_tokens,
                mode=mode,
                options=options,
                files=files,
            ),
        )

    def compare(
        self,
        template_or_column: Any,
        labels: Sequence[str] | str,
        *,
        models: Sequence[str],
        efforts: Sequence[str | None] = (None,),
        sample: int = 200,
        gold: Any = None,
        seed: int = 0,
        key: Any = None,
        descriptions: Mapping[str, str] | None = None,
        examples: Iterable[tuple[str, Any]] | None = None,
        abstain: bool = False,
        rationale: bool = False,
        confidence: bool = False,
        system: str | None = None,
        max_tokens: int | None = None,
        mode: str = "auto",
        yes: bool = False,
        files: Any = None,
        **options: Any,
    ) -> Comparison:
        """The same label task on a sample of ``sample`` rows, run with each model in
        ``models`` at each effort level in ``efforts`` (a model without that level is skipped,
        and said to be: never sent; ``None`` is the model's default). Returns a
        :class:`~claude_magics.jobs.compare.Comparison`: ``.table`` (model, effort, cost per
        1,000 rows at batch prices, agreement with its 95% interval, invalid and abstained
        shares, rows, seconds) and ``.plot()`` (cost against agreement).

        Agreement is with ``gold`` (a column or Series of labels for some rows: the sample is
        drawn from those), else with the labels of the strongest model compared (the most
        expensive in the price table). The sample is fixed by ``seed`` and each row's ``key``
        (a column; default the index). Every run is an ordinary job: running the comparison
        again sends nothing, and a later ``label`` with the same model and options replays
        the sampled rows. Options are ``label``'s (``files=`` too: each row's PDF or image).

            pilot = df.claude.compare("review", labels, models=[small, big], gold="gold")
            pilot.plot()
        """
        from .compare import compare

        task = label_task(
            labels,
            descriptions=descriptions,
            examples=examples,
            abstain=abstain,
            rationale=rationale,
            confidence=confidence,
        )
        return compare(
            self._frame,
            template_or_column,
            task,
            models=models,
            efforts=efforts,
            sample=sample,
            gold=self._gold(gold),
            seed=seed,
            key=None if key is None else self._column(key, "key"),
            yes=yes,
            runner=self._runner(
                template_or_column,
                system=system,
                max_tokens=max_tokens,
                mode=mode,
                options=options,
                files=files,
            ),
        )

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
        label_options: dict[str, Any],
        files: Any = None,
        citations: bool = False,
    ) -> Any:
        from ..config import current_settings
        from .rows import build_prompts, make_template

        columns = list(self._frame.columns)
        task = estimate_task(
            template,
            columns,
            labels=labels,
            multi=multi,
            schema=schema,
            label_options=label_options,
            citations=citations,
        )
        row_template = make_template(columns, template, task, files=files is not None)
        return build_prompts(
            self._frame,
            row_template,
            task,
            model=model or current_settings().job_model,
            max_tokens=max_tokens,
            system=system,
            files=entry.row_files(self._frame, files, task),
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
        descriptions: Mapping[str, str] | None = None,
        examples: Iterable[tuple[str, Any]] | None = None,
        abstain: bool = False,
        rationale: bool = False,
        confidence: bool = False,
        files: Any = None,
        citations: bool = False,
    ) -> pd.DataFrame:
        """What the job would cost in realtime and as a batch, with and without caching, from
        local token estimates; nothing is sent. With ``files`` (a column of PDFs or images,
        as the jobs take it), the documents are counted by count_tokens on up to 5 sampled
        files, scaled to every row (an estimate, said in the note). The note is in
        ``.attrs["note"]``. Prompts answered before (the replay store, a cassette) are not
        counted: the note says how many would be replayed, at $0 (``client`` and
        ``replayer``: default the session's).

        ``model`` defaults to ``ClaudeMagics.job_model``. Beside its cost, an ``if MODEL ($)``
        column per model in ``compare`` prices the same tokens on that model; by default the
        cells' model (``ClaudeMagics.model``) and the newest current Opus (``compare=()``: none).
        ``descriptions``, ``examples``, ``abstain``, ``rationale`` and ``confidence`` are
        ``label``'s (``descriptions`` also ``extract``'s), and count as they will be sent.

            df.claude.estimate("review", labels=["positive", "negative"])
            df.claude.estimate("review", labels=["positive", "negative"], compare=())
        """
        from ..config import current_settings, shared_client
        from .estimate import comparison_models, document_tokens, estimate_job

        prompts = self._prompts(
            template,
            labels=labels,
            multi=multi,
            schema=schema,
            model=model,
            system=system,
            max_tokens=max_tokens,
            label_options=label_options(
                descriptions, examples, abstain=abstain, rationale=rationale, confidence=confidence
            ),
            files=files,
            citations=citations,
        )
        settings = current_settings()
        if compare is None:
            compare = comparison_models(prompts.model, settings.model)
        client = client or shared_client()
        replay = entry.prompts_replay(prompts, client, entry.job_replayer(replayer, settings))
        hits = replay.lookup(range(prompts.n_prompts)) if replay is not None else {}
        send = [n for n in range(prompts.n_prompts) if n not in hits]
        documents = document_tokens(prompts, send, client) if files is not None else (0, "")
        return estimate_job(
            prompts, settings.price_overrides, compare=compare, replayed=hits, documents=documents
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
        descriptions: Mapping[str, str] | None = None,
        examples: Iterable[tuple[str, Any]] | None = None,
        abstain: bool = False,
        rationale: bool = False,
        confidence: bool = False,
    ) -> TokenCount:
        """Input tokens per row of the prompts a job would send, counted by the API's
        count_tokens endpoint (free): distinct prompts once each, concurrently. Beyond
        ``exact_limit`` distinct prompts, a sample is counted and the rest estimated from it;
        on a server without that endpoint every figure is a local estimate; and a server may
        mark its counts as estimates. The result says which (``.exact``, ``.source``).
        ``.per_row`` is a Series aligned to the frame; ``model`` defaults to
        ``ClaudeMagics.job_model``; ``descriptions``... as for :meth:`estimate`.

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
            label_options=label_options(
                descriptions, examples, abstain=abstain, rationale=rationale, confidence=confidence
            ),
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

    # -- measuring against gold labels -------------------------------------------------------------

    def _column(self, name: Any, what: str) -> Any:
        """The column ``name``, or a one-line error naming the closest one."""
        from .rows import _missing_column

        try:
            if name in self._frame.columns:
                return name
        except TypeError:  # unhashable: not a column name
            pass
        error = _missing_column(str(name), self._frame.columns, bare=True)
        raise type(error)(f"{what}: {error}")

    @staticmethod
    def _holds_text(column: pd.Series) -> bool:
        """Whether a column can take text labels: string, object, categorical, or all missing."""
        dtype = column.dtype
        return (
            pd.api.types.is_string_dtype(dtype)
            or pd.api.types.is_object_dtype(dtype)
            or isinstance(dtype, pd.CategoricalDtype)
            or bool(column.isna().all())
        )

    def _labels_of(self, value: Any, what: str) -> pd.Series:
        """A column (by name) or values given as a Series or list, on the frame's index."""
        from .evaluation import aligned

        if isinstance(value, (str, int, tuple)) and not isinstance(value, bool):
            return self._frame[self._column(value, what)]
        return aligned(value, self._frame.index, what)

    def evaluate(
        self,
        pred: Any,
        gold: Any = "gold",
        *,
        labels: Sequence[Any] | str | None = None,
        status: Any = "claude_status",
    ) -> Evaluation:
        """The model's labels in ``pred`` against the gold labels in ``gold`` (column names, or
        Series / lists for the same rows): accuracy with a 95% Wilson interval, per-class
        precision, recall and F1, macro-F1, Cohen's kappa, coverage, and the confusion matrix
        (``.confusion``; ``.plot()`` draws it). Rows without a gold label are left out; a
        missing prediction is abstained, and ``status`` (the job's ``claude_status`` column
        when the frame has one; ``None``: ignore it) tells abstentions from invalid answers.
        ``claude_magics.jobs.evaluation`` says how each counts.

            report = df.claude.evaluate("sentiment", "gold")
            report.accuracy, report.accuracy_ci, report.per_class, report.plot()
        """
        from .evaluation import evaluate

        if status is None or (
            isinstance(status, str) and status == "claude_status" and status not in self._frame
        ):
            status_values = None
        else:
            status_values = self._labels_of(status, "status")
        return evaluate(
            self._labels_of(pred, "pred"),
            self._labels_of(gold, "gold"),
            status=status_values,
            labels=labels,
        )

    def review(
        self,
        column: Any,
        n: int = 50,
        stratify: Any = None,
        gold: Any = "gold",
        labels: Sequence[Any] | str | None = None,
        key: Any = None,
        *,
        seed: int = 0,
        show: Sequence[Any] | None = None,
    ) -> ReviewSession:
        """Hand-label a sample of ``n`` rows to check the model's labels in ``column``. In a
        notebook, a widget that shows as the call's value: the row, the model's label with its
        rationale and confidence columns when there are any, a button per label, skip and
        back, keys 1-9, s and Backspace in its key box. In a terminal, a prompt per row. Each
        label goes into the frame's ``gold`` column at once (a ``string`` column if missing).

        The sample is fixed by ``seed`` and each row's ``key`` (a column; default the index):
        running the cell again shows the same rows, skipping those with a gold label.
        ``stratify`` (a column, or True for ``column``): rows dealt evenly across its values.
        ``labels`` default to the column's categories (the job's labels). ``show``: the columns
        of the row to show (default: its text columns).

            df.claude.review("sentiment", n=50, stratify=True)
            df.claude.evaluate("sentiment", "gold")
        """
        from ..prompt import PromptError
        from ..widgets.review import labels_for, review

        frame = self._frame
        column = self._column(column, "column")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise PromptError(f"n: the number of rows to review, at least 1; got {n!r}")
        if not len(frame):
            raise PromptError("the frame has no rows to review")
        if stratify is True:
            stratify = column
        elif stratify is not None:
            stratify = self._column(stratify, "stratify")
        if key is not None:
            key = self._column(key, "key")
        for shown in show or ():
            self._column(shown, "show")
        if gold == column:
            raise PromptError(f"gold: the gold labels need a column of their own, not {column!r}")
        if gold in frame.columns and not self._holds_text(frame[gold]):
            raise PromptError(
                f"gold: column {gold!r} holds {frame[gold].dtype} values, not labels; "
                "name another column with gold=..."
            )
        choices = labels_for(frame, column, gold, labels)
        if not choices:
            raise PromptError(
                f"no labels to choose from: {column!r} has no values; give them with labels=[...]"
            )
        return review(
            frame,
            column,
            n=n,
            stratify=stratify,
            gold=gold,
            labels=choices,
            key=key,
            seed=seed,
            show=show,
        )


def register() -> None:
    """Register ``df.claude`` with pandas (once: registering again would warn)."""
    if getattr(pd.DataFrame, "claude", None) is not ClaudeAccessor:
        pd.api.extensions.register_dataframe_accessor("claude")(ClaudeAccessor)


register()
