"""The flow of one ``%%claude`` call (no ``--batch``): flags to request body, the model's rules,
then replay or send, show, keep, record; a tool loop when the cell offers tools.

    class ClaudeMagics(CellFlow): ...           # the magics class is the door
    result = self._run(args, prompt, line)      # from %%claude, %claude and %claude_fix

:class:`CellFlow` sits between the settings (:class:`~.settings.ClaudeSettings`, the traits) and
the magics (:class:`~.magics.ClaudeMagics`, flags and help): it holds what a call needs of the
session (client, ledger, replay store, conversations) and hands each step to plain functions:
:mod:`.request` (flags to options and the user turn), :mod:`.checks` (rules, context, budget,
``--count``), :mod:`.tooling` (the tools a cell offers), :mod:`.cell` (send, show, record) and
:mod:`.tool_loop`. The order is the product's promise: an answer is shown and kept (``--out``,
the conversation) before anything is recorded about it, and the replay store is written last.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, cast

from IPython.core.error import UsageError

from ..errors import ClaudeError, StorageError
from .cell import ClaudeInterrupted
from .chat import DEFAULT_CHAT, ChatStore, Turn
from .settings import ClaudeSettings

if TYPE_CHECKING:
    from ..api.models import ModelInfo
    from ..cost.replay import StoredAnswer
    from ..tools import ToolBox
    from .chat import Conversation
    from .fix import FailureWatcher
    from .result import ClaudeResult
    from .tool_loop import StepView
    from .views import View

__all__ = ["INTERRUPTED_BEFORE_SENDING", "INTERRUPTED_WHILE_RECORDING", "CellFlow"]

#: What an interrupt before the request left says (building the prompt, a slow ``__repr__``,
#: counting tokens for the budget, asking for the model list).
INTERRUPTED_BEFORE_SENDING = "Interrupted before the request was sent: nothing was sent."
#: ... and after the answer was shown and kept, while its spend was being written (a ledger
#: another program holds can keep the write waiting for ``ledger_busy_timeout``).
#: ... and between the steps of a tool loop (during a tool, or before the next call began).
LOOP_INTERRUPTED = "Interrupted: the tool steps above are done and kept; the loop stopped there."
INTERRUPTED_WHILE_RECORDING = (
    "Interrupted while the spend was being recorded: the answer above is kept; its spend may "
    "not be in the ledger."
)


class _Prepared(NamedTuple):
    """What ``%%claude`` has ready to send: the body and what the cell keeps once answered."""

    body: dict[str, Any]
    #: The cell's user turn (key redacted, text repaired), kept in the conversation.
    user_content: list[dict[str, Any]]
    conversation: Conversation | None
    #: The turn's key in the conversation (see ``request.turn_key``).
    key: str
    view: View
    #: The request's replay key (None when replay is off and no cassette is set).
    replay_key: str | None = None
    #: The answer already paid for, shown instead of asking again (None: ask the API).
    stored: StoredAnswer | None = None
    #: The client tools the cell offers (None: none); with ``looping``, the call is a loop.
    toolbox: ToolBox | None = None
    looping: bool = False
    info: ModelInfo | None = None


@contextlib.contextmanager
def _interrupts_say(message: str) -> Iterator[None]:
    """Turn a kernel interrupt inside the block into one line (:class:`ClaudeInterrupted`),
    not the traceback of wherever the signal landed (a ``__repr__``, ``time.sleep``, httpx)."""
    try:
        yield
    except ClaudeInterrupted:
        raise
    except KeyboardInterrupt:
        raise ClaudeInterrupted(message) from None


class CellFlow(ClaudeSettings):
    """What a ``%%claude`` call does, on the session's client, ledger, replay store and
    conversations (set up by :class:`~.magics.ClaudeMagics`)."""

    chats: ChatStore
    _cell_id: str | None
    #: Deprecated models already warned about this session (one warning each).
    _warned: set[str]
    last_result: ClaudeResult | None
    failures: FailureWatcher

    @property
    def _df_format(self) -> Literal["csv", "markdown"]:
        return "markdown" if self.df_format == "markdown" else "csv"

    @property
    def _ip(self) -> Any:
        """The shell (always set once registered; typed loosely, as IPython is)."""
        return self.shell

    def _model_info(self, model: str, *, offline: bool = False) -> ModelInfo:
        """What the catalog knows of ``model``. ``offline`` (``--dry-run``, which sends nothing)
        settles for knowing nothing when the model list cannot be asked (no key, say)."""
        try:
            return self.catalog.get(model)
        except ClaudeError:
            if not offline:
                raise
            from ..api.models import ModelInfo

            return ModelInfo(id=model)

    def _warn_if_deprecated(self, info: ModelInfo) -> None:
        """One line on stderr, once per model and session, for a deprecated model."""
        from .checks import deprecation_notice

        key = info.entry.id if info.entry is not None else info.id
        notice = deprecation_notice(info)
        if notice and key not in self._warned:
            self._warned.add(key)
            print(notice, file=sys.stderr)

    def _run(self, args: Any, prompt: str, line: str) -> ClaudeResult | None:
        """``%%claude`` without --batch: flags to request body, then check, send, keep, record.
        Returns the answer (None for --dry-run and --count, which send nothing)."""
        from . import cell

        with self._explain_not_found(args), _interrupts_say(INTERRUPTED_BEFORE_SENDING):
            prepared = self._prepare(args, prompt, line)
        if prepared is None:
            return None  # --dry-run or --count: shown, nothing sent
        fmt = args.format or ("json" if args.schema else "markdown")
        if prepared.looping:
            return self._run_loop(args, prepared, fmt)
        result, _ = self._call(args, prepared.body, prepared.view, fmt, prepared)
        # The answer is shown; keep it (--out, the conversation) before anything is recorded
        # about it, so a ledger that cannot be written never loses an answer already paid for
        # (record_spend warns in one line and the cell goes on). An answer cut short by a
        # broken stream is shown and recorded, but not kept.
        self._keep(args, prepared, result, fmt)
        self._record(result, prepared.body, prepared.replay_key)
        cell.raise_outcome(result, fmt)
        return result

    def _call(
        self,
        args: Any,
        body: dict[str, Any],
        view: View,
        fmt: str,
        prepared: _Prepared | None = None,
    ) -> tuple[ClaudeResult, str | None]:
        """One model call: the answer already paid for when there is one (``prepared`` has
        looked it up for the cell's first call), else the API's. Returns it and its replay key."""
        from . import cell

        if prepared is not None:
            replay_key, stored = prepared.replay_key, prepared.stored
        else:
            replay_key, stored = self._look_up(args, body)
        if stored is not None:
            result = cell.replay(
                stored,
                view,
                source=self._replayed_from(stored),
                stream=not args.no_stream,
                fmt=fmt,
                chat=args.chat or DEFAULT_CHAT,
                price_overrides=self.prices,
            )
        else:
            client = self.client

            def send(sent: dict[str, Any]) -> ClaudeResult:
                return cell.send(
                    client,
                    sent,
                    view,
                    stream=not args.no_stream,
                    fmt=fmt,
                    chat=args.chat or DEFAULT_CHAT,
                    price_overrides=self.prices,
                )

            # The body stays as built (documents inline, so its replay key and the
            # conversation never name a file id); what is sent refers to uploads where that
            # pays, and an upload the API lost is made again once (see api.uploads).
            try:
                with self._explain_not_found(args), _interrupts_say(INTERRUPTED_BEFORE_SENDING):
                    result = self.uploads.send(
                        client, body, send, above_bytes=self.upload_above_bytes
                    )
            finally:
                cell.show_upload_notices(self.uploads)
        return result, replay_key

    def _keep(
        self,
        args: Any,
        prepared: _Prepared,
        result: ClaudeResult,
        fmt: str,
        exchange: list[dict[str, Any]] | None = None,
        in_exchange: bool = False,
    ) -> None:
        """Keep a whole answer: ``--out``, the conversation (with a tool loop's turns), the
        code cell of ``-f code``."""
        from . import cell

        if result.failure is not None:
            return
        self.last_result = result
        if args.out:
            self._ip.user_ns[args.out] = result.data if fmt == "json" else result
        if prepared.conversation is not None:
            # A sandbox file is the cell's own: a later cell (maybe without the sandbox) keeps
            # the words, not the upload.
            kept = [b for b in prepared.user_content if b.get("type") != "container_upload"]
            turn = Turn.of_result(
                prepared.key,
                kept,
                result,
                exchange=exchange,
                tools=list(prepared.body.get("tools") or ()),
            )
            if in_exchange:
                turn.assistant = []  # the last answer is the exchange's last assistant turn
            prepared.conversation.record(turn)
        if fmt == "code":
            code = cell.extract_code(result.text)
            if code:
                self._ip.set_next_input(code, replace=False)

    def _record(self, result: ClaudeResult, body: dict[str, Any], replay_key: str | None) -> None:
        """Record a call's spend (or replay) in the ledger, then keep a live answer for replay;
        each warns in one line when its store fails, never raises."""
        from . import cell

        with _interrupts_say(INTERRUPTED_WHILE_RECORDING):
            if result.replayed:
                cell.record_replay(self.ledger, result, cell=self._cell_label())
            else:
                cell.record_spend(self.ledger, result, cell=self._cell_label())
                # Last: the answer is shown, kept and its spend recorded before the replay
                # store is written, so a store that fails costs nothing but a warning.
                if replay_key is not None:
                    cell.keep_answer(self.replayer, replay_key, body, result)

    def _run_loop(self, args: Any, prepared: _Prepared, fmt: str) -> ClaudeResult:
        """A cell with tools: model calls and tool runs until Claude answers (see
        :mod:`.tool_loop`); each call is looked up, sent, recorded and kept for replay alone."""
        from ..config import BudgetExceededError
        from . import cell, checks
        from .tool_loop import LiveSteps, run_loop
        from .views import PlainView, make_view

        first = [True]

        def one_call(body: dict[str, Any], view: StepView) -> ClaudeResult:
            # The cell's first call was looked up (and checked) by _prepare.
            given = prepared if first[0] else None
            first[0] = False
            sent = dict(body)  # the loop replaces body["messages"]; keep this call's as sent
            result, key = self._call(args, sent, cast("View", view), fmt, given)
            self._record(result, sent, key)
            return result

        def before_step(body: dict[str, Any]) -> str | None:
            if self.budget_usd is None or prepared.info is None:
                return None
            try:
                sent = self._by_reference(body)
                checks.check_budget(self.client, sent, prepared.info, self.prices)
            except (UsageError, BudgetExceededError) as refusal:
                return f"the budget: {refusal}"
            finally:
                cell.show_ledger_notices(self.ledger)
            return None

        def new_view() -> View:
            return make_view(
                self.display,
                self.shell,
                prepared.body["model"],
                self.updates_per_second,
                price_overrides=self.prices,
            )

        terminal = isinstance(prepared.view, PlainView)
        outcome = run_loop(
            prepared.body,
            prepared.toolbox,
            call=one_call,
            new_view=lambda: prepared.view if first[0] else new_view(),
            steps=LiveSteps(plain=terminal),
            max_steps=args.max_steps or self.max_steps,
            fmt=fmt,
            before_step=before_step,
        )
        result = outcome.result
        self._keep(args, prepared, result, fmt, outcome.exchange, outcome.answer_in_exchange)
        if outcome.interrupted:
            raise ClaudeInterrupted(LOOP_INTERRUPTED)
        cell.raise_outcome(result, fmt)
        return result

    def _replayed_from(self, stored: StoredAnswer) -> str:
        """When (or where) a replayed answer was paid for, for its status line."""
        import time

        if stored.created <= 0:  # a cassette keeps no times: they would change every run
            cassette = self.replayer.cassette
            return f"the cassette {cassette.path.name}" if cassette is not None else "a cassette"
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(stored.created))

    def _look_up(self, args: Any, body: dict[str, Any]) -> tuple[str | None, StoredAnswer | None]:
        """The request's replay key and the answer already paid for, if any. ``--fresh`` asks
        anew (the new answer replaces the old). A cassette in replay mode that has no answer
        raises ``ReplayMissError``: one line, and nothing is sent."""
        from ..cost.replay import request_key
        from .cell import show_replay_notices

        replayer = self.replayer
        if not replayer.active:
            return None, None
        client = self.client
        key = request_key(body, base_url=client.base_url, api_version=client.api_version)
        if args.fresh:
            return key, None
        try:
            return key, replayer.lookup(key, body)
        except StorageError as error:
            # A store that cannot be read costs this cell its replay, nothing more: ask the
            # API, and do not try to keep the answer there either (one warning is enough).
            print(f"Warning: {error} Not replayed: asking the API.", file=sys.stderr)
            return None, None
        finally:
            show_replay_notices(replayer)

    @contextlib.contextmanager
    def _explain_not_found(self, args: Any) -> Iterator[None]:
        """A 404 about the model (retired, misspelt) gets the current line-up beside it."""
        from ..errors import NotFoundError
        from . import checks

        try:
            yield
        except NotFoundError as exc:
            checks.explain_not_found(exc, args.model or self.model, self.catalog)
            raise

    def _prepare(self, args: Any, prompt: str, line: str) -> _Prepared | None:
        """Everything before sending: the body (the key redacted from it, its text repaired),
        the model's rules, ``--dry-run`` and ``--count`` (which show and return None), the
        context window, the budget and the view."""
        from ..api.models import cache_min_tokens
        from ..prompt.body import add_cache_breakpoints, build_body, dry_run_text, repair_surrogates
        from . import cell, checks, request
        from .tooling import cell_tools, frames_as_files, offer_tools
        from .views import display, make_view

        if args.once and (args.new or args.chat):
            raise UsageError("--once sends without history: it cannot go with --new or --chat")
        if args.out and not args.out.isidentifier():
            raise UsageError(f"--out {args.out}: not a valid variable name")
        namespace = self._ip.user_ns
        info = self._model_info(args.model or self.model, offline=args.dry_run)
        options = request.call_options(
            args,
            namespace,
            model=self.model,
            max_tokens=self.max_tokens,
            system=self.system,
            info=info,
            show_thinking=self.show_thinking,
        )
        user_content = request.user_content(
            args,
            prompt,
            namespace,
            value_budget=self.value_token_budget,
            df_budget=self.df_token_budget,
            df_format=self._df_format,
            sample=self.df_sample,
            seed=self.df_sample_seed,
        )
        # --df with --code-execution: the frames as files in the sandbox, before the words.
        user_content = [
            *frames_as_files(args, namespace, self.client, self.uploads, dry_run=args.dry_run),
            *user_content,
        ]
        client = self.client
        # What the conversation keeps is what was sent: no key (a {{os.environ}}, a dict that
        # holds it) and no lone surrogates (a surrogateescape read), which no front end can
        # show and JSON cannot carry.
        user_content, hidden = client.redact_key(user_content)
        user_content, _ = repair_surrogates(user_content)
        chat_name = args.chat or DEFAULT_CHAT
        conversation = None if args.once else self.chats.get(chat_name)
        if conversation is not None and args.new:
            self.chats.reset(chat_name)
            conversation = self.chats.get(chat_name)
        key = request.turn_key(self._cell_id, line, prompt)
        # History then this cell's user turn: a request never ends with an answer started for
        # the model (a prefill, which 4.6-and-later models refuse); answers keep only their
        # text, so no thinking block outlives the conversation it was made in.
        history = conversation.messages_before(key) if conversation is not None else []
        body, more = client.redact_key(build_body(options, history, user_content))
        if (hidden or more) and client.platform is not None:
            print(
                f"Note: a credential ({client.platform.label}'s or the API key) was in this "
                "request; it was replaced by a <...: redacted> marker before anything was shown "
                "or sent.",
                file=sys.stderr,
            )
        elif hidden or more:
            print(
                f"Note: the API key ({client.api_key_env}) was in this request; it was replaced "
                f"by <{client.api_key_env}: redacted> before anything was shown or sent.",
                file=sys.stderr,
            )
        if args.max_steps is not None and args.max_steps < 1:
            raise UsageError(f"--max-steps {args.max_steps}: give at least 1")
        toolbox, definitions = cell_tools(
            args,
            self.shell,
            client,
            approval=self.python_approval,
            budget_tokens=self.tool_result_tokens,
        )
        offer_tools(body, definitions, conversation.tools(key) if conversation is not None else [])
        if self.auto_cache and not args.no_cache:
            add_cache_breakpoints(
                body,
                min_tokens=cache_min_tokens(options.model, self.cache_min_tokens),
                conversation=conversation is not None,
            )
        if args.dry_run:
            from ..api.betas import body_betas

            # What would be sent, uploading nothing: a file that would be uploaded is named.
            shown, _ = self.uploads.by_reference(
                client, body, above_bytes=self.upload_above_bytes, dry_run=True
            )
            cell.show_upload_notices(self.uploads)
            text = dry_run_text(
                client.base_url + "/v1/messages",
                shown,
                client.key_status(),
                client.api_version,
                betas=body_betas(shown),
            )
            try:
                checks.check_rules(body, info, client.api_version)
            except UsageError as refusal:
                text += f"\n\nThis request would be refused before sending: {refusal}"
            display({"text/plain": text}, raw=True)
            return None
        checks.check_rules(body, info, client.api_version)
        self._warn_if_deprecated(info)
        if args.count:
            bundle = checks.count(
                client,
                self._by_reference(body),
                info,
                cache_min_override=self.cache_min_tokens,
                price_overrides=self.prices,
            )
            display(bundle, raw=True)
            return None
        replay_key, stored = self._look_up(args, body)
        view = make_view(
            self.display,
            self.shell,
            options.model,
            self.updates_per_second,
            price_overrides=self.prices,
        )
        ready = _Prepared(
            body,
            user_content,
            conversation,
            key,
            view,
            replay_key,
            stored,
            toolbox=toolbox,
            looping=bool(definitions),
            info=info,
        )
        if stored is not None:
            # An answer already paid for: it costs $0, so no budget refuses it, and nothing
            # (not even a token count near the context limit) is asked of the server.
            return ready
        # A request over the API's 32 MB is refused by the client with its size, whichever
        # check first encodes it (count_tokens here, or the send): the context check only
        # asks the API near the limit, and weighs images at their token cost, not their bytes.
        # Counted as it will be sent: by reference where a document is uploaded (a request
        # too big to go inline may go by reference).
        sent = self._by_reference(body)
        checks.check_context(client, sent, info)
        if self.budget_usd is not None:
            try:
                checks.check_budget(client, sent, info, self.prices)
            finally:
                cell.show_ledger_notices(self.ledger)
        return ready

    def _by_reference(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` as it will be sent, for counting it: its documents by reference where they
        are (or now get) uploaded; not a use of the files that stay inline."""
        from .cell import show_upload_notices

        try:
            sent, _ = self.uploads.by_reference(
                self.client, body, above_bytes=self.upload_above_bytes, remember=False
            )
        finally:
            show_upload_notices(self.uploads)
        return sent

    def _cell_label(self) -> str:
        count = getattr(self._ip, "execution_count", None)
        label = f"In[{count}]" if count is not None else ""
        return f"{label} {self._cell_id}".strip() if self._cell_id else label

    # -- line magics -----------------------------------------------------------------------------
