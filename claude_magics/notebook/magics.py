"""``ClaudeMagics``: ``%%claude``, ``%claude`` and the ``%claude_*`` line magics.

    %load_ext claude_magics
    %%claude -m MODEL
    Why is {{df}} skewed?

Configuration is traits on this class (``%config ClaudeMagics.model = "..."`` or
``c.ClaudeMagics.model`` in ``ipython_config.py``); flags override it for one cell. The API key is
never a trait: it is read from the environment variable that ``api_key_env`` names, at request
time.

A refused setting (``%config ClaudeMagics.budget_usd = -1``, a key pasted into ``api_key_env``)
fails the cell in one line and leaves the old value: :class:`SettingRefused`. Flags are split
the way a shell splits them (``-s "You are a pandas expert"`` sends no quotes).

The class is the door, not the house: each magic parses its flags, resolves them against the
traits and hands over to plain functions: :mod:`.request` (flags to call options and the user
turn), :mod:`.checks` (the model's rules, context window, budget, ``--count``), :mod:`.cell`
(send, stream, show, record), :mod:`.line_magics` and :mod:`.batch_magic`. What a model accepts
comes from ``self.catalog`` (``GET /v1/models`` and the bundled table), never from here. The
traits themselves are in :mod:`.settings`. This module is a little over 600 lines because the
``%%claude`` flags (some 80 lines of declarations) and the ``?`` help with its examples live
with the magic they describe, as IPython's own magics keep them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from IPython.core.error import UsageError
from IPython.core.magic import line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..errors import ClaudeError, StorageError
from ..model_table import EFFORT_LEVELS
from .cell import FORMATS, ClaudeInterrupted
from .chat import DEFAULT_CHAT, ChatStore, Turn
from .request import AUTO_THINKING
from .settings import ClaudeSettings, SettingRefused

if TYPE_CHECKING:
    from ..api.models import ModelInfo
    from ..cost.replay import StoredAnswer
    from .chat import Conversation
    from .result import ClaudeResult
    from .views import View

__all__ = ["ClaudeInterrupted", "ClaudeMagics", "SettingRefused", "parse_flags"]

#: What an interrupt before the request left says (building the prompt, a slow ``__repr__``,
#: counting tokens for the budget, asking for the model list).
INTERRUPTED_BEFORE_SENDING = "Interrupted before the request was sent: nothing was sent."
#: ... and after the answer was shown and kept, while its spend was being written (a ledger
#: another program holds can keep the write waiting for ``ledger_busy_timeout``).
INTERRUPTED_WHILE_RECORDING = (
    "Interrupted while the spend was being recorded: the answer above is kept; its spend may "
    "not be in the ledger."
)


def parse_flags(magic: Callable[..., Any], line: str, name: str) -> argparse.Namespace:
    """``line`` parsed by ``magic``'s ``@magic_arguments`` parser, split the way a shell
    splits it: quotes group and are removed (``-s "You are a pandas expert"``, a quoted path
    with spaces), a backslash escapes (except on Windows, where it separates folders).

    IPython's ``parse_argstring`` keeps the quotes in the values (``arg_split`` is not posix),
    so ``--stop "END"`` would stop at ``"END"``, quotes included. An unbalanced quote is a
    one-line ``UsageError``; bad flags are too (IPython's parser raises it)."""
    lexer = shlex.shlex(line, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    if os.name == "nt":
        lexer.escape = ""
    try:
        argv = list(lexer)
    except ValueError as error:
        # The line is not echoed: it may hold anything the user typed.
        raise UsageError(
            f"%{name}: {str(error).lower()} in the flags; close the quote, or escape it "
            "with a backslash"
        ) from None
    parser: argparse.ArgumentParser = magic.parser  # type: ignore[attr-defined]
    return parser.parse_args(argv)


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


@magics_class
class ClaudeMagics(ClaudeSettings):
    """Claude in IPython. Settings are traits: ``%config ClaudeMagics`` lists them."""

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.chats = ChatStore()
        self._cell_id: str | None = None
        #: Deprecated models already warned about this session (one warning each).
        self._warned: set[str] = set()
        self.last_result: ClaudeResult | None = None
        if shell is not None:
            shell.events.register("pre_run_cell", self._remember_cell)

    @property
    def _df_format(self) -> Literal["csv", "markdown"]:
        return "markdown" if self.df_format == "markdown" else "csv"

    @property
    def _ip(self) -> Any:
        """The shell (always set once registered; typed loosely, as IPython is)."""
        return self.shell

    def _remember_cell(self, info: Any) -> None:
        self._cell_id = getattr(info, "cell_id", None)

    def unload(self) -> None:
        """Unhook from the shell (used by unload_ipython_extension)."""
        with contextlib.suppress(ValueError):
            self._ip.events.unregister("pre_run_cell", self._remember_cell)
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- %%claude ------------------------------------------------------------------------------

    @magic_arguments()
    @argument("-m", "--model", help="Model for this cell (default: ClaudeMagics.model).")
    @argument("-s", "--system", help="System prompt for this cell.")
    @argument("--max-tokens", type=int, help="Most tokens the answer may have.")
    @argument(
        "-t",
        "--temperature",
        type=float,
        help="Sampling temperature (sent only if given; refused where the model or "
        "api_version takes none).",
    )
    @argument(
        "--stop", action="append", default=[], metavar="SEQ", help="Stop sequence (repeatable)."
    )
    @argument(
        "--thinking",
        nargs="?",
        const=AUTO_THINKING,
        metavar="adaptive|BUDGET",
        help="Extended thinking: 'adaptive' or a token budget (>= 1024) where the model takes "
        "one; bare, what the model supports (adaptive where it can).",
    )
    @argument(
        "--show-thinking",
        action="store_true",
        help="Ask for the thinking text (summarized) that new models omit; implies --thinking.",
    )
    @argument(
        "--effort", choices=EFFORT_LEVELS, help="Effort level (output_config.effort), per model."
    )
    @argument("--out", metavar="NAME", help="Store the result in this variable.")
    @argument("-f", "--format", choices=FORMATS, help="markdown (default), text, code or json.")
    @argument(
        "--schema", metavar="NAME", help="Structured output: a JSON-schema dict or pydantic model."
    )
    @argument(
        "--chat", metavar="NAME", default=None, help="Conversation to use (default: 'default')."
    )
    @argument("--new", action="store_true", help="Start the conversation afresh.")
    @argument("--once", action="store_true", help="Send without history and keep no turn.")
    @argument("--no-stream", action="store_true", help="Wait for the whole answer.")
    @argument(
        "--fresh",
        action="store_true",
        help="Ask anew even when this exact request was answered before (and keep the new "
        "answer for replay).",
    )
    @argument("--dry-run", action="store_true", help="Show the exact request; send nothing.")
    @argument(
        "--image",
        action="append",
        default=[],
        metavar="X",
        help="Image: path, variable, PIL image, figure, bytes.",
    )
    @argument(
        "--pdf", action="append", default=[], metavar="X", help="PDF: path or bytes variable."
    )
    @argument(
        "--file", action="append", default=[], metavar="X", help="Text file sent as a document."
    )
    @argument(
        "--df",
        action="append",
        default=[],
        metavar="NAME",
        help="Attach a DataFrame as its own block.",
    )
    @argument("--no-cache", action="store_true", help="No automatic prompt-caching breakpoints.")
    @argument("--no-interpolate", action="store_true", help="Send {{...}} literally.")
    @argument(
        "--count", action="store_true", help="Count the request's tokens and cost; send nothing."
    )
    @argument("--batch", metavar="DF", help="Run the cell as a template over each row of DF.")
    @argument("--labels", metavar="A,B,C", help="With --batch: label each row with one of these.")
    @argument("--mode", choices=("auto", "batch", "realtime"), help="With --batch: how to send.")
    @argument("--yes", action="store_true", help="With --batch: skip the cost confirmation.")
    @line_cell_magic
    def claude(self, line: str, cell: str | None = None) -> None:
        """Ask Claude. The cell is the prompt; the answer streams in and stays in the notebook.

        Examples::

            %%claude
            Explain what this does: {{In[3]}}

            %%claude --max-tokens 300
            Summarise {{df}} in three bullet points.

            %%claude --new -s "You are a pandas expert" -f code
            Write a function that removes outliers from a Series.

            %%claude --schema Review --out parsed
            Extract the fields from: {{text}}

            %%claude --image fig --thinking --effort high
            What does this plot show?

            %%claude --thinking --show-thinking
            Is this estimator biased? {{code}}

            %%claude --batch reviews --labels positive,negative,neutral --out sentiment
            How does this customer feel? {{text}}

            %claude What is a p-value, in one sentence?

            %%claude --fresh
            Give me another title for this talk.

        ``{{name}}``, ``{{name.attr}}``, ``{{name[0]}}``, ``{{In[3]}}``, ``{{Out[3]}}`` and
        ``{{_error}}`` (the last exception) are replaced by their values; everything else in the
        cell, braces included, is sent as written. Consecutive cells form one conversation
        (``--chat NAME`` keeps several, ``--new`` starts over, ``--once`` sends no history);
        re-running a cell replaces its earlier turn. ``%claude_history``, ``%claude_reset``,
        ``%claude_config`` and ``%claude_models`` help along the way.

        Flags are checked against the model before anything is sent (``%claude_models`` shows
        what each takes): the newest models think adaptively (``--thinking``, steered with
        ``--effort``) and take no thinking budget, no ``-t``, and no answer started for them;
        ``ClaudeMagics.api_version = "2026-10-21"`` takes no ``-t`` on any model. A refused
        flag is one line saying what to use instead. New models return thinking without its
        text: the status line says how long they thought, ``--show-thinking`` asks for a
        summary. A deprecated model gets a one-line warning naming its retirement date.

        An exact request answered before (this session or an earlier one, against the same
        server) is replayed: the stored answer is shown at once, for $0, and the status line
        says "replayed from ..."; ``--fresh`` asks anew. ``%config ClaudeMagics.replay = False``
        turns it off; ``%claude_replay`` shows the store and sets a cassette for CI.
        """
        if cell is None:
            # Line magic: the whole line is the prompt, with the current defaults.
            if not line.strip():
                raise UsageError("%claude needs a prompt, e.g. %claude What is a p-value?")
            args = parse_flags(self.claude, "", "claude")
            prompt = line
        else:
            try:
                args = parse_flags(self.claude, line, "%claude")
            except UsageError:
                raise
            except SystemExit:  # pragma: no cover - argparse exits on --help
                return None
            prompt = cell
        if args.batch:
            from .batch_magic import batch_cell

            batch_cell(self.shell, args, prompt)
            return None
        self._run(args, prompt, line)
        return None

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

    def _run(self, args: Any, prompt: str, line: str) -> None:
        """``%%claude`` without --batch: flags to request body, then check, send, keep, record."""
        from . import cell

        with self._explain_not_found(args), _interrupts_say(INTERRUPTED_BEFORE_SENDING):
            prepared = self._prepare(args, prompt, line)
        if prepared is None:
            return  # --dry-run or --count: shown, nothing sent
        fmt = args.format or ("json" if args.schema else "markdown")
        if prepared.stored is not None:
            result = cell.replay(
                prepared.stored,
                prepared.view,
                source=self._replayed_from(prepared.stored),
                stream=not args.no_stream,
                fmt=fmt,
                chat=args.chat or DEFAULT_CHAT,
                price_overrides=self.price_overrides,
            )
        else:
            with self._explain_not_found(args):
                result = cell.send(
                    self.client,
                    prepared.body,
                    prepared.view,
                    stream=not args.no_stream,
                    fmt=fmt,
                    chat=args.chat or DEFAULT_CHAT,
                    price_overrides=self.price_overrides,
                )
        # The answer is shown; keep it (--out, the conversation) before anything is recorded
        # about it, so a ledger that cannot be written never loses an answer already paid for
        # (record_spend warns in one line and the cell goes on). An answer cut short by a
        # broken stream is shown and recorded, but not kept.
        if result.failure is None:
            self.last_result = result
            if args.out:
                self._ip.user_ns[args.out] = result.data if fmt == "json" else result
            if prepared.conversation is not None:
                prepared.conversation.record(
                    Turn.of_result(prepared.key, prepared.user_content, result)
                )
            if fmt == "code":
                code = cell.extract_code(result.text)
                if code:
                    self._ip.set_next_input(code, replace=False)
        with _interrupts_say(INTERRUPTED_WHILE_RECORDING):
            if result.replayed:
                cell.record_replay(self.ledger, result, cell=self._cell_label())
            else:
                cell.record_spend(self.ledger, result, cell=self._cell_label())
                # Last: the answer is shown, kept and its spend recorded before the replay
                # store is written, so a store that fails costs nothing but a warning.
                if prepared.replay_key is not None:
                    cell.keep_answer(self.replayer, prepared.replay_key, prepared.body, result)
        cell.raise_outcome(result, fmt)

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
        if hidden or more:
            print(
                f"Note: the API key ({client.api_key_env}) was in this request; it was replaced "
                f"by <{client.api_key_env}: redacted> before anything was shown or sent.",
                file=sys.stderr,
            )
        if self.auto_cache and not args.no_cache:
            add_cache_breakpoints(
                body,
                min_tokens=cache_min_tokens(options.model, self.cache_min_tokens),
                conversation=conversation is not None,
            )
        if args.dry_run:
            text = dry_run_text(
                client.base_url + "/v1/messages", body, client.key_status(), client.api_version
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
                body,
                info,
                cache_min_override=self.cache_min_tokens,
                price_overrides=self.price_overrides,
            )
            display(bundle, raw=True)
            return None
        replay_key, stored = self._look_up(args, body)
        view = make_view(
            self.display,
            self.shell,
            options.model,
            self.updates_per_second,
            price_overrides=self.price_overrides,
        )
        if stored is not None:
            # An answer already paid for: it costs $0, so no budget refuses it, and nothing
            # (not even a token count near the context limit) is asked of the server.
            return _Prepared(body, user_content, conversation, key, view, replay_key, stored)
        # A request over the API's 32 MB is refused by the client with its size, whichever
        # check first encodes it (count_tokens here, or the send): the context check only
        # asks the API near the limit, and weighs images at their token cost, not their bytes.
        checks.check_context(client, body, info)
        if self.budget_usd is not None:
            try:
                checks.check_budget(client, body, info, self.price_overrides)
            finally:
                cell.show_ledger_notices(self.ledger)
        return _Prepared(body, user_content, conversation, key, view, replay_key)

    def _cell_label(self) -> str:
        count = getattr(self._ip, "execution_count", None)
        label = f"In[{count}]" if count is not None else ""
        return f"{label} {self._cell_id}".strip() if self._cell_id else label

    # -- line magics -----------------------------------------------------------------------------

    @magic_arguments()
    @argument("command", choices=("list", "status", "attach", "cancel"), help="What to do.")
    @argument("job", nargs="?", help="The job id (or a unique start of it).")
    @argument("--out", metavar="NAME", help="attach: keep the results in this variable.")
    @line_magic
    def claude_batch(self, line: str) -> None:
        """DataFrame jobs in the ledger: %claude_batch list | status ID | attach ID | cancel ID.

        Examples::

            %claude_batch list
            %claude_batch attach job_3f9a2c1b7d --out labels
            %claude_batch cancel job_3f9a2c1b7d
        """
        from .batch_magic import batch_command

        batch_command(self.shell, parse_flags(self.claude_batch, line, "claude_batch"))

    @magic_arguments()
    @argument("--chat", default=DEFAULT_CHAT, help="Conversation to show.")
    @line_magic
    def claude_history(self, line: str) -> None:
        """Show a conversation's turns: %claude_history [--chat NAME]."""
        from .line_magics import show_history

        args = parse_flags(self.claude_history, line, "claude_history")
        show_history(self.chats.get(args.chat))

    @magic_arguments()
    @argument("--chat", default=None, help="Conversation to forget (default: 'default').")
    @argument("--all", action="store_true", help="Forget every conversation.")
    @line_magic
    def claude_reset(self, line: str) -> None:
        """Forget a conversation: %claude_reset [--chat NAME | --all]."""
        args = parse_flags(self.claude_reset, line, "claude_reset")
        if args.all and args.chat:
            raise UsageError("%claude_reset takes --chat NAME or --all, not both")
        if args.all:
            self.chats.reset_all()
            print("All conversations forgotten.")
        else:
            name = args.chat or DEFAULT_CHAT
            self.chats.reset(name)
            print(f"Conversation {name!r} forgotten.")

    @line_magic
    def claude_config(self, line: str) -> None:
        """The effective settings; the key only as set or unset and where it comes from."""
        from .line_magics import show_config

        settings = []
        for name in sorted(self.trait_names(config=True)):
            value = getattr(self, name)
            changed = value != self.trait_defaults(name)
            settings.append((name, value, "%config / ipython_config" if changed else "default"))
        show_config(settings, self.api_key_env, self.base_url)

    @line_magic
    def claude_tokens(self, line: str) -> None:
        """Count a variable or DataFrame as it would be rendered into a prompt: %claude_tokens df"""
        from .line_magics import show_tokens
        from .request import lookup

        name = line.strip()
        if not name.isidentifier():
            raise UsageError("%claude_tokens takes a variable name, e.g. %claude_tokens df")
        show_tokens(
            self.client,
            lookup(self._ip.user_ns, name, "%claude_tokens"),
            name,
            info=self.catalog.get(self.model),
            value_budget=self.value_token_budget,
            df_budget=self.df_token_budget,
            df_format=self._df_format,
            price_overrides=self.price_overrides,
        )

    @magic_arguments()
    @argument("--all", action="store_true", help="Every recorded call, across sessions.")
    @argument("--since", metavar="DATE", help="Calls since this date (YYYY-MM-DD or ISO time).")
    @line_magic
    def claude_usage(self, line: str) -> None:
        """This session's calls and totals as a DataFrame: %claude_usage [--all | --since DATE]."""
        from .line_magics import show_usage

        args = parse_flags(self.claude_usage, line, "claude_usage")
        try:
            show_usage(self.ledger, all_sessions=args.all, since=args.since)
        finally:
            from .cell import show_ledger_notices

            show_ledger_notices(self.ledger)

    @magic_arguments()
    @argument("command", choices=("stats", "clear", "cassette"), help="What to do.")
    @argument("path", nargs="?", help="cassette: the JSON-lines file, or 'off'.")
    @argument(
        "--older-than", type=float, metavar="DAYS", help="clear: only answers older than this."
    )
    @argument(
        "--mode",
        choices=("record", "replay", "auto"),
        default="auto",
        help="cassette: record (ask and write), replay (answer only from the file), auto.",
    )
    @line_magic
    def claude_replay(self, line: str) -> None:
        """Answers already paid for: %claude_replay stats | clear [--older-than DAYS] |
        cassette PATH [--mode record|replay|auto] | cassette off.

        Examples::

            %claude_replay stats
            %claude_replay clear --older-than 30
            %claude_replay cassette answers.jsonl --mode record   # commit the file
            %claude_replay cassette answers.jsonl --mode replay   # CI: no key, nothing sent
            %claude_replay cassette off

        CI can set ``CLAUDE_MAGICS_CASSETTE=PATH`` and ``CLAUDE_MAGICS_REPLAY=replay`` instead
        of editing the notebook; ``%claude_replay cassette`` overrides them for the session.
        """
        from . import line_magics

        args = parse_flags(self.claude_replay, line, "claude_replay")
        if args.command != "cassette" and args.path:
            raise UsageError(f"%claude_replay {args.command} takes no path")
        if args.command != "clear" and args.older_than is not None:
            raise UsageError("--older-than goes with %claude_replay clear")
        if args.command == "cassette":
            if not args.path:
                raise UsageError("%claude_replay cassette needs a PATH (or off)")
            if args.path == "off":
                self.use_cassette(None)
                print("No cassette: answers come from the API and the replay store.")
                return
            from ..cost.replay import Cassette

            cassette = Cassette(args.path, args.mode)
            self.use_cassette(cassette)
            line_magics.show_cassette(cassette)
            return
        try:
            if args.command == "clear":
                line_magics.clear_replays(self.replayer, older_than_days=args.older_than)
            else:
                line_magics.show_replay_stats(self.replayer, self.ledger)
        finally:
            from .cell import show_ledger_notices, show_replay_notices

            show_replay_notices(self.replayer)
            show_ledger_notices(self.ledger)

    @magic_arguments()
    @argument("--all", action="store_true", help="Legacy and deprecated models too.")
    @line_magic
    def claude_models(self, line: str) -> None:
        """The current models: status, context window, max output, thinking, effort levels and
        prices (with the price table's date); yours (ClaudeMagics.model, job_model) marked.

        Examples::

            %claude_models
            %claude_models --all
        """
        from .line_magics import show_models

        args = parse_flags(self.claude_models, line, "claude_models")
        show_models(
            self.catalog,
            {"model": self.model, "job_model": self.job_model},
            all_models=args.all,
            price_overrides=self.price_overrides,
        )
