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

The class is the door, not the house: each magic parses its flags and hands over. A
``%%claude`` call goes to :class:`~.flow.CellFlow` (the base class: body, rules, replay or send,
keep, record, tool loops), which hands each step to plain functions; the line magics go to
:mod:`.line_magics` and ``--batch`` to :mod:`.batch_magic`. What a model accepts comes from
``self.catalog`` (``GET /v1/models`` and the bundled table), never from here. The traits
themselves are in :mod:`.settings`. The ``%%claude`` flags (some 100 lines of declarations)
and the ``?`` help with its examples live here, with the magic they describe, as IPython's own
magics keep them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from ..model_table import EFFORT_LEVELS
from .cell import FORMATS, ClaudeInterrupted
from .chat import DEFAULT_CHAT, ChatStore
from .fix import FailureWatcher
from .flow import CellFlow
from .request import AUTO_THINKING
from .settings import SettingRefused

if TYPE_CHECKING:
    from .result import ClaudeResult

__all__ = ["ClaudeInterrupted", "ClaudeMagics", "SettingRefused", "parse_flags"]


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


@magics_class
class ClaudeMagics(CellFlow):
    """Claude in IPython. Settings are traits: ``%config ClaudeMagics`` lists them."""

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.chats = ChatStore()
        self._cell_id: str | None = None
        #: Deprecated models already warned about this session (one warning each).
        self._warned: set[str] = set()
        self.last_result: ClaudeResult | None = None
        #: The last cell that failed, for %claude_fix.
        self.failures = FailureWatcher()
        if shell is not None:
            shell.events.register("pre_run_cell", self._remember_cell)
            shell.events.register("post_run_cell", self.failures.after_cell)

    def _remember_cell(self, info: Any) -> None:
        self._cell_id = getattr(info, "cell_id", None)

    def unload(self) -> None:
        """Unhook from the shell (used by unload_ipython_extension)."""
        with contextlib.suppress(ValueError):
            self._ip.events.unregister("pre_run_cell", self._remember_cell)
        with contextlib.suppress(ValueError):
            self._ip.events.unregister("post_run_cell", self.failures.after_cell)
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
        "--cite",
        action="store_true",
        help="Citations: the answer marks each claim [n] and quotes the page or passage of "
        "the --pdf/--file document it comes from.",
    )
    @argument(
        "--search-results",
        action="append",
        default=[],
        metavar="NAME",
        help="Your own retrieval: a list of dicts (source, title, content) sent as search "
        "results, cited like --cite documents.",
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
    @argument("--tools", metavar="F,G", help="Let Claude call these notebook functions.")
    @argument("--inspect", action="store_true", help="Let Claude look at the kernel's variables.")
    @argument("--python", action="store_true", help="Let Claude run Python here, after your yes.")
    @argument("--web", action="store_true", help="Let Claude search and read the web.")
    @argument(
        "--code-execution", action="store_true", help="Let Claude run code in Anthropic's sandbox."
    )
    @argument("--max-steps", type=int, help="Most model calls of a tool loop (default 10).")
    @argument("--batch", metavar="DF", help="Run the cell as a template over each row of DF.")
    @argument("--labels", metavar="A,B,C", help="With --batch: label each row with one of these.")
    @argument("--mode", choices=("auto", "batch", "realtime"), help="With --batch: how to send.")
    @argument("--yes", action="store_true", help="With --batch: skip the cost confirmation.")
    # IPython would expand $name and {expr} in the line first: "costs $5" lost its dollar, a
    # system prompt's {placeholder} took a variable's value, and its pattern takes seconds on a
    # long -s. The line is the user's text, as typed; {{name}} is how values go in.
    @no_var_expand
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

            %%claude --inspect
            Which columns of sales have missing values?

            %%claude --tools to_currency,lookup_sku --max-steps 5
            What do our three dearest SKUs cost in EUR?

            %%claude --python
            Plot monthly revenue from sales.

            %%claude --web
            What changed in the latest pandas release? Cite your sources.

            %%claude --pdf invoice.pdf --cite
            What is the total due, and when is it payable?

            %%claude --search-results hits
            Which of these passages answer the refund question?

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

        Tools make the call a loop: Claude calls them, sees the results and goes on until it
        answers (``--max-steps``, default 10 calls; the budget and a repeated identical call
        stop it too). ``--tools f,g`` offers notebook functions (schema from type hints and
        docstring); ``--inspect`` read-only looks at variables; ``--python`` a ``run_python``
        tool whose every snippet is shown and runs only after a yes at a ``[y/N]`` prompt
        (no prompt possible, or no: it goes into a new cell below); ``--web`` Anthropic's
        web search and fetch (sources as numbered footnotes); ``--code-execution`` Anthropic's
        sandbox. ``%claude_fix`` explains the last failing cell and puts a fix below it.

        ``--cite`` asks for citations of the ``--pdf`` and ``--file`` documents: the answer
        marks each claim with a number and lists the quoted passages with their document and
        page (or character range) under it; ``--out`` keeps them as ``.citations``.
        ``--search-results NAME`` sends your own retrieval results (a list of dicts with
        ``source``, ``title`` and ``content``) to be cited the same way. A PDF or image over
        ``ClaudeMagics.upload_above_kb``, or used a second time, is uploaded once (Files API)
        and sent by id; ``%claude_files`` lists and deletes the uploads.

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
            from .tooling import uses_tools

            if uses_tools(args):
                raise UsageError(
                    "--batch sends each row on its own, without tools: drop --tools, --inspect, "
                    "--python, --web and --code-execution"
                )

            batch_cell(self.shell, args, prompt)
            return None
        self._run(args, prompt, line)
        return None

    @magic_arguments()
    @argument("-m", "--model", help="Model to ask (default: ClaudeMagics.model).")
    @line_magic
    def claude_fix(self, line: str) -> None:
        """Explain why the last failing cell failed, and put a corrected cell below it.

        Examples::

            df.groupby("regoin").sales.sum()     # KeyError: 'regoin'
            %claude_fix

            %claude_fix -m MODEL

        Sends the cell, its traceback (its last lines) and a line on each notebook variable
        the cell names (type, shape, a DataFrame's columns and dtypes), without the
        conversation's history. The explanation is shown; the corrected cell goes into a new
        cell below, for you to read and run: %claude_fix never runs it.
        """
        from .cell import extract_code
        from .fix import fix_prompt

        args = parse_flags(self.claude_fix, line, "%claude_fix")
        prompt = fix_prompt(self.failures.last, self._ip.user_ns)
        flags = "--once --no-interpolate"
        if args.model:
            flags += f" -m {shlex.quote(args.model)}"
        result = self._run(parse_flags(self.claude, flags, "%claude_fix"), prompt, "%claude_fix")
        if result is None:
            return
        code = extract_code(result.text) if "```" in result.text else ""
        if code.strip():
            self._ip.set_next_input(code, replace=False)
        else:
            print("Claude's answer has no code block: no new cell.", file=sys.stderr)

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
    @argument("command", choices=("list", "upload", "delete", "clear"), help="What to do.")
    @argument("target", nargs="?", help="upload: a file's path; delete: a file id.")
    @argument(
        "--check", action="store_true", help="list: ask the API whether it still has each file."
    )
    @line_magic
    def claude_files(self, line: str) -> None:
        """Files uploaded once and sent by id: %claude_files list [--check] | upload PATH |
        delete ID | clear.

        Examples::

            %claude_files list
            %claude_files list --check       # does the API still have each one?
            %claude_files upload report.pdf
            %claude_files delete file_011CNha8iCJcU1wXNR6q4V8w
            %claude_files clear              # delete them all from the API, and forget them

        PDFs and images over ``ClaudeMagics.upload_above_kb`` (and any used a second time)
        are uploaded by ``%%claude`` itself; their SHA-256 and id are kept in ``files.sqlite``
        beside the spend ledger, so re-runs and other notebooks reuse them. A file the API no
        longer has is uploaded again when next used.
        """
        from . import files_magic

        args = parse_flags(self.claude_files, line, "claude_files")
        if args.command in ("upload", "delete") and not args.target:
            what = "a PATH" if args.command == "upload" else "a file ID"
            raise UsageError(f"%claude_files {args.command} needs {what}")
        if args.command in ("list", "clear") and args.target:
            raise UsageError(f"%claude_files {args.command} takes no argument")
        if args.check and args.command != "list":
            raise UsageError("--check goes with %claude_files list")
        try:
            if args.command == "list":
                files_magic.show_files(self.uploads, self.client, check=args.check)
            elif args.command == "upload":
                files_magic.upload_file(self.uploads, self.client, args.target)
            elif args.command == "delete":
                files_magic.delete_file(self.uploads, self.client, args.target)
            else:
                files_magic.clear_files(self.uploads, self.client)
        finally:
            from .cell import show_upload_notices

            show_upload_notices(self.uploads)

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
        show_config(settings, self.api_key_env, self.base_url, platform=self.client.platform)

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
            price_overrides=self.prices,
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
            price_overrides=self.prices,
            platform=self.client.platform,
        )
