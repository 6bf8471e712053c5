"""``ClaudeMagics``: ``%%claude``, ``%claude`` and the ``%claude_*`` line magics.

    %load_ext claude_magics
    %%claude -m claude-haiku-4-5
    Why is {{df}} skewed?

Configuration is traits on this class (``%config ClaudeMagics.model = "..."`` or
``c.ClaudeMagics.model`` in ``ipython_config.py``); flags override it for one cell. The API key is
never a trait: it is read from the environment variable that ``api_key_env`` names, at request
time.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import time
from typing import TYPE_CHECKING, Any, Literal

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Dict, Enum, Float, Integer, Unicode, observe, validate

from ..config import DEFAULTS
from ..errors import ClaudeError
from .chat import DEFAULT_CHAT, ChatStore, Turn

if TYPE_CHECKING:
    from ..api.client import Client
    from ..cost.ledger import Ledger
    from .result import ClaudeResult
    from .views import View

__all__ = ["ClaudeInterrupted", "ClaudeMagics"]

EFFORT_LEVELS = ("low", "medium", "high", "xhigh", "max")
FORMATS = ("markdown", "text", "code", "json")


class ClaudeInterrupted(KeyboardInterrupt):
    """The kernel was interrupted mid-answer; the partial answer is shown and kept."""

    def _render_traceback_(self) -> list[str]:
        return ["Interrupted: the partial answer above is kept (and in the conversation)."]


@magics_class
class ClaudeMagics(Magics):
    """Claude in IPython. Settings are traits: ``%config ClaudeMagics`` lists them."""

    model = Unicode(DEFAULTS.model, help="Model used when -m is not given.").tag(config=True)
    max_tokens = Integer(
        DEFAULTS.max_tokens, help="Most tokens an answer may have (--max-tokens)."
    ).tag(config=True)
    system = Unicode("", help="System prompt used when -s is not given.").tag(config=True)
    display = Enum(
        ["auto", "widget", "markdown", "plain"],
        default_value="auto",
        help="How answers stream: a live widget, live Markdown, or plain text (auto picks).",
    ).tag(config=True)
    df_token_budget = Integer(
        4000, help="Tokens a DataFrame may take in a prompt; rows beyond it are summarised."
    ).tag(config=True)
    value_token_budget = Integer(
        8000, help="Tokens any other {{value}} may take before it is cut with a marker."
    ).tag(config=True)
    df_format = Enum(
        ["csv", "markdown"], default_value="csv", help="How DataFrame rows are written."
    ).tag(config=True)
    df_sample = Bool(
        False,
        help="When a DataFrame is cut to its budget, show a seeded random sample of rows "
        "instead of the head and tail.",
    ).tag(config=True)
    df_sample_seed = Integer(0, help="Seed of the row sample (df_sample).").tag(config=True)
    auto_cache = Bool(
        True, help="Add prompt-caching breakpoints automatically (--no-cache turns it off)."
    ).tag(config=True)
    cache_min_tokens = Integer(
        None,
        allow_none=True,
        help="Shortest prefix worth a cache breakpoint; None (the default) uses each model's own "
        "minimum (4,096 on Haiku 4.5, 1,024 on Sonnet 4.6, ...).",
    ).tag(config=True)
    updates_per_second = Float(15.0, help="Most re-renders a second of a streaming answer.").tag(
        config=True
    )
    api_key_env = Unicode(
        "ANTHROPIC_API_KEY",
        help="Name of the environment variable holding the key (never the key).",
    ).tag(config=True)
    base_url = Unicode(
        "", help="API base URL; empty means ANTHROPIC_BASE_URL, else https://api.anthropic.com."
    ).tag(config=True)
    max_retries = Integer(2, help="Retries after a failed request (429, 5xx, connection).").tag(
        config=True
    )
    timeout = Float(600.0, help="Seconds to wait for a response.").tag(config=True)
    budget_usd = Float(
        DEFAULTS.budget_usd,
        allow_none=True,
        help="Most dollars this session may spend; calls whose worst case passes it are refused.",
    ).tag(config=True)
    confirm_above_usd = Float(
        DEFAULTS.confirm_above_usd,
        help="DataFrame jobs estimated above this ask for confirmation (yes=True skips).",
    ).tag(config=True)
    batch_threshold = Integer(
        DEFAULTS.batch_threshold,
        help="mode='auto' uses the Batches API (half price) from this many requests up.",
    ).tag(config=True)
    ledger_path = Unicode(
        "", help="SQLite file of the spend ledger; empty means the user cache directory."
    ).tag(config=True)
    batch_poll_seconds = Float(
        DEFAULTS.batch_poll_seconds,
        help="Seconds between the first polls of a running batch (the wait then grows).",
    ).tag(config=True)
    batch_poll_max_seconds = Float(
        DEFAULTS.batch_poll_max_seconds, help="Longest wait between two polls of a batch."
    ).tag(config=True)
    lost_create_grace_seconds = Float(
        DEFAULTS.lost_create_grace_seconds,
        help="How long a batch whose create answer was lost may take to show in the batch list.",
    ).tag(config=True)
    price_overrides = Dict(
        help="Prices to use instead of the built-in table: {model: (input, output)} $/MTok."
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.chats = ChatStore()
        self._client: Client | None = None
        self._ledger: Ledger | None = None
        self._models: dict[str, dict[str, Any]] | None = None
        self._cell_id: str | None = None
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

    # -- settings ------------------------------------------------------------------------------

    @validate("max_tokens", "df_token_budget", "value_token_budget", "cache_min_tokens")
    def _positive(self, proposal: Any) -> int | None:
        if proposal["value"] is None and proposal["trait"].allow_none:
            return None
        value = int(proposal["value"])
        if value < 1:
            raise ValueError(f"{proposal['trait'].name} must be at least 1, got {value}")
        return value

    @validate("api_key_env")
    def _not_a_key(self, proposal: Any) -> str:
        value = str(proposal["value"])
        if value.startswith("sk-") or not value.replace("_", "").isalnum():
            # Someone pasted the key itself: refuse it without echoing it back.
            raise ValueError(
                "api_key_env names an environment variable (like ANTHROPIC_API_KEY); "
                "it must not hold the key itself"
            )
        return value

    @observe("api_key_env", "base_url", "max_retries", "timeout")
    def _drop_client(self, change: Any) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None
        self._models = None

    @property
    def client(self) -> Client:
        if self._client is None:
            from ..api.client import Client

            self._client = Client(
                base_url=self.base_url or None,
                api_key_env=self.api_key_env,
                max_retries=self.max_retries,
                timeout=self.timeout,
            )
        return self._client

    @property
    def ledger(self) -> Ledger:
        """The spend ledger (SQLite), shared with df.claude jobs of this session."""
        if self._ledger is None:
            from ..cost.ledger import Ledger

            self._ledger = Ledger(self.ledger_path or None)
        return self._ledger

    @observe("ledger_path")
    def _drop_ledger(self, change: Any) -> None:
        session = self._ledger.session if self._ledger is not None else None
        from ..cost.ledger import Ledger

        self._ledger = Ledger(self.ledger_path or None, session=session)

    @validate("budget_usd", "confirm_above_usd")
    def _not_negative(self, proposal: Any) -> float | None:
        value = proposal["value"]
        if value is not None and value < 0:
            raise ValueError(f"{proposal['trait'].name} must not be negative, got {value}")
        return value  # type: ignore[no-any-return]

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
    @argument("-t", "--temperature", type=float, help="Sampling temperature (sent only if given).")
    @argument(
        "--stop", action="append", default=[], metavar="SEQ", help="Stop sequence (repeatable)."
    )
    @argument(
        "--thinking",
        nargs="?",
        const="adaptive",
        metavar="BUDGET|adaptive",
        help="Extended thinking: a token budget (>= 1024) or 'adaptive' (the default if bare).",
    )
    @argument("--effort", choices=EFFORT_LEVELS, help="Effort level (output_config.effort).")
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

            %%claude -m claude-haiku-4-5 --max-tokens 300
            Summarise {{df}} in three bullet points.

            %%claude --new -s "You are a pandas expert" -f code
            Write a function that removes outliers from a Series.

            %%claude --schema Review --out parsed
            Extract the fields from: {{text}}

            %%claude --image fig --thinking 2000
            What does this plot show?

            %%claude --batch reviews --labels positive,negative,neutral --out sentiment
            How does this customer feel? {{text}}

            %claude What is a p-value, in one sentence?

        ``{{name}}``, ``{{name.attr}}``, ``{{name[0]}}``, ``{{In[3]}}``, ``{{Out[3]}}`` and
        ``{{_error}}`` (the last exception) are replaced by their values; everything else in the
        cell, braces included, is sent as written. Consecutive cells form one conversation
        (``--chat NAME`` keeps several, ``--new`` starts over, ``--once`` sends no history);
        re-running a cell replaces its earlier turn. ``%claude_history``, ``%claude_reset``,
        ``%claude_config`` and ``%claude_models`` help along the way.
        """
        if cell is None:
            # Line magic: the whole line is the prompt, with the current defaults.
            if not line.strip():
                raise UsageError("%claude needs a prompt, e.g. %claude What is a p-value?")
            args = parse_argstring(self.claude, "")
            prompt = line
        else:
            try:
                args = parse_argstring(self.claude, line)
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

    def _resolve(self, name: str, flag: str) -> Any:
        """A variable from the notebook, or a one-line UsageError naming it."""
        namespace = self._ip.user_ns
        if name in namespace:
            return namespace[name]
        close = difflib.get_close_matches(
            name, [k for k in namespace if not k.startswith("_")], n=1
        )
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"{flag} {name}: no variable named {name!r} in the notebook{hint}")

    def _attachment(self, value: str, flag: str) -> Any:
        """An attachment argument: a variable's value if one has that name, else a path."""
        namespace = self._ip.user_ns
        return namespace[value] if value.isidentifier() and value in namespace else value

    def _options(self, args: Any) -> Any:
        from ..prompt.body import CallOptions, json_schema_of

        model = args.model or self.model
        max_tokens = args.max_tokens if args.max_tokens is not None else self.max_tokens
        if max_tokens < 1:
            raise UsageError(f"--max-tokens must be at least 1, got {max_tokens}")
        thinking: dict[str, Any] | None = None
        if args.thinking is not None:
            if args.thinking == "adaptive":
                thinking = {"type": "adaptive"}
            else:
                try:
                    budget = int(args.thinking)
                except ValueError:
                    raise UsageError(
                        f"--thinking takes a token budget or 'adaptive', got {args.thinking!r}"
                    ) from None
                if budget < 1024:
                    raise UsageError(
                        f"--thinking budget must be at least 1024 tokens, got {budget}"
                    )
                if budget >= max_tokens:
                    if args.max_tokens is not None:
                        raise UsageError(
                            f"--thinking {budget} needs --max-tokens above {budget} "
                            f"(got {max_tokens}): thinking counts toward max_tokens"
                        )
                    # Thinking counts toward max_tokens: leave the usual room for the answer.
                    max_tokens = budget + self.max_tokens
                thinking = {"type": "enabled", "budget_tokens": budget}
        if args.temperature is not None and not 0 <= args.temperature <= 1:
            raise UsageError(f"--temperature must be between 0 and 1, got {args.temperature}")
        schema = None
        if args.schema:
            value = self._resolve(args.schema, "--schema")
            try:
                schema = json_schema_of(value)
            except TypeError as exc:
                raise UsageError(f"--schema {args.schema}: {exc}") from None
        system = args.system if args.system is not None else self.system
        return CallOptions(
            model=model,
            max_tokens=max_tokens,
            system=system,
            temperature=args.temperature,
            stop_sequences=list(args.stop),
            thinking=thinking,
            effort=args.effort,
            schema=schema,
        )

    def _user_content(self, args: Any, prompt: str) -> list[dict[str, Any]]:
        from .. import prompt as prompt_module

        namespace = self._ip.user_ns
        try:
            attachments: list[dict[str, Any]] = []
            for value in args.pdf:
                attachments.append(prompt_module.pdf_block(self._attachment(value, "--pdf")))
            for value in args.file:
                attachments.append(prompt_module.file_block(self._attachment(value, "--file")))
            for value in args.image:
                attachments.append(prompt_module.image_block(self._attachment(value, "--image")))
            for name in args.df:
                frame = self._resolve(name, "--df")
                attachments.append(
                    prompt_module.dataframe_block(
                        frame,
                        name,
                        budget=self.df_token_budget,
                        df_format=self._df_format,
                        sample=self.df_sample,
                        seed=self.df_sample_seed,
                    )
                )
            return prompt_module.build_user_content(
                prompt,
                namespace,
                interpolate=not args.no_interpolate,
                value_budget=self.value_token_budget,
                df_budget=self.df_token_budget,
                df_format=self._df_format,
                sample=self.df_sample,
                seed=self.df_sample_seed,
                last_error=self._last_error(),
                attachments=attachments,
            )
        except prompt_module.PromptError as exc:
            raise UsageError(str(exc)) from None

    def _last_error(self) -> BaseException | None:
        from ..prompt import find_last_error

        return find_last_error()

    def _turn_key(self, line: str, prompt: str) -> str:
        if self._cell_id:
            return f"cell:{self._cell_id}"
        # No cell id (terminal, some front ends): the same cell text is the same turn.
        digest = hashlib.sha1(f"{line}\n{prompt}".encode()).hexdigest()[:16]
        return f"text:{digest}"

    def _run(self, args: Any, prompt: str, line: str) -> None:
        from ..prompt.body import add_cache_breakpoints, build_body, dry_run_text

        if args.once and (args.new or args.chat):
            raise UsageError("--once sends without history: it cannot go with --new or --chat")
        fmt = args.format or ("json" if args.schema else "markdown")
        if args.out and not args.out.isidentifier():
            raise UsageError(f"--out {args.out}: not a valid variable name")
        options = self._options(args)
        user_content = self._user_content(args, prompt)
        chat_name = args.chat or DEFAULT_CHAT
        conversation = None if args.once else self.chats.get(chat_name)
        if conversation is not None and args.new:
            self.chats.reset(chat_name)
            conversation = self.chats.get(chat_name)
        key = self._turn_key(line, prompt)
        history = conversation.messages_before(key) if conversation is not None else []
        body = build_body(options, history, user_content)
        if self.auto_cache and not args.no_cache:
            from ..api.models import cache_min_tokens

            add_cache_breakpoints(
                body,
                min_tokens=cache_min_tokens(options.model, self.cache_min_tokens),
                conversation=conversation is not None,
            )
        if args.dry_run:
            from ..api.client import API_VERSION
            from .views import display

            text = dry_run_text(
                self.client.base_url + "/v1/messages", body, self.client.key_status(), API_VERSION
            )
            display({"text/plain": text}, raw=True)
            return
        if args.count:
            self._show_count(body)
            return
        self._check_context(body)
        self._check_budget(body)
        result = self._send(body, options, stream=not args.no_stream, fmt=fmt, chat=chat_name)
        if conversation is not None:
            conversation.record(
                Turn(
                    key=key,
                    user=user_content,
                    assistant=[{"type": "text", "text": result.text}] if result.text else [],
                    model=result.model,
                    usage=result.usage,
                    interrupted=result.interrupted,
                )
            )
        self.last_result = result
        if args.out:
            self._ip.user_ns[args.out] = result.data if fmt == "json" else result
        if fmt == "code":
            code = _extract_code(result.text)
            if code:
                self._ip.set_next_input(code, replace=False)
        if result.interrupted:
            raise ClaudeInterrupted()
        if fmt == "json" and result.data is None and result.error:
            raise ClaudeError(result.error)

    # -- context window ------------------------------------------------------------------------

    def _model_info(self, model: str) -> dict[str, Any] | None:
        from ..errors import APIError

        if self._models is None:
            try:
                self._models = {m["id"]: dict(m) for m in self.client.models.iter_all()}
            except APIError:
                return None
        info = self._models.get(model)
        if info is None:
            # Aliases (claude-haiku-4-5) resolve to dated ids (claude-haiku-4-5-20251001).
            for model_id, candidate in self._models.items():
                if model_id.startswith(model + "-"):
                    return candidate
        return info

    def _check_context(self, body: dict[str, Any]) -> None:
        from ..errors import APIError
        from ..prompt import estimate_tokens

        info = self._model_info(body["model"])
        window = (info or {}).get("max_input_tokens")
        if not window:
            return
        estimate = estimate_tokens(json.dumps(body["messages"], default=str)) + estimate_tokens(
            json.dumps(body.get("system", ""))
        )
        if estimate < 0.8 * window:
            return
        # Close to the limit: ask the API for the exact count before paying for a 400.
        try:
            exact = self.client.messages.count_tokens(**body)
        except APIError:
            exact = estimate
        if exact > window:
            raise UsageError(
                f"This conversation is {exact:,} tokens, over {body['model']}'s context window of "
                f"{window:,}. Start afresh with %%claude --new (or --once, or another --chat)."
            )

    # -- tokens, cost and budget ---------------------------------------------------------------

    def _show_count(self, body: dict[str, Any]) -> None:
        from ..cost.tokens import count_request
        from .views import display

        info = self._model_info(body["model"]) or {}
        report = count_request(
            self.client,
            body,
            context_window=info.get("max_input_tokens"),
            cache_min_override=self.cache_min_tokens,
            overrides=dict(self.price_overrides) or None,
        )
        display(report.to_bundle(), raw=True)

    def _check_budget(self, body: dict[str, Any]) -> None:
        """Refuse, before sending, a call whose worst case passes what is left of the budget."""
        if self.budget_usd is None:
            return
        from ..config import check_budget
        from ..cost.tokens import request_worst_case

        input_tokens = self.client.messages.count_tokens(**body)
        worst = request_worst_case(body, input_tokens, dict(self.price_overrides) or None)
        if worst is None:
            raise UsageError(
                f"A budget is set, but the price of {body['model']} is unknown, so this call "
                "cannot be checked against it. Set %config ClaudeMagics.price_overrides = "
                f"{{'{body['model']}': (input, output)}} in $/MTok, or unset the budget."
            )
        check_budget(worst, "This cell")

    def _cell_label(self) -> str:
        count = getattr(self._ip, "execution_count", None)
        label = f"In[{count}]" if count is not None else ""
        return f"{label} {self._cell_id}".strip() if self._cell_id else label

    # -- sending and showing ---------------------------------------------------------------------

    def _pricer(self, model: str) -> Any:
        from ..cost.pricing import price_usage

        overrides = dict(self.price_overrides)
        return lambda usage: price_usage(usage, model, overrides=overrides)

    def _send(
        self, body: dict[str, Any], options: Any, *, stream: bool, fmt: str, chat: str
    ) -> ClaudeResult:
        from ..errors import APIStreamError, NotFoundError
        from .result import ClaudeResult
        from .views import make_view

        view: View = make_view(
            self.display,
            self.shell,
            options.model,
            self.updates_per_second,
            pricer=self._pricer(options.model),
        )
        started = time.monotonic()
        first_token: float | None = None
        interrupted = False
        error: ClaudeError | None = None
        request_id: str | None = None
        try:
            if stream:
                view.start()
                with self.client.messages.stream(**body) as live:
                    request_id = live.request_id
                    try:
                        for event in live:
                            if first_token is None and event.type in ("text", "thinking"):
                                first_token = time.monotonic() - started
                            view.event(event, live.accumulator)
                    except KeyboardInterrupt:
                        interrupted = True
                    except APIStreamError as exc:
                        error = exc
                    message = live.message
            else:
                message = dict(self.client.messages.create(**body))
                request_id = getattr(message, "request_id", None)
        except NotFoundError as exc:
            view.abandon()
            self._explain_not_found(exc, body["model"])
            raise
        except BaseException:
            view.abandon()
            raise
        text = "".join(
            b.get("text", "") for b in message.get("content", []) if b.get("type") == "text"
        )
        model = str(message.get("model") or options.model)
        result = ClaudeResult(
            text=text,
            message=message,
            model=model,
            request_id=request_id,
            cost=self._pricer(model)(message.get("usage") or {}),
            elapsed=time.monotonic() - started,
            time_to_first_token=first_token,
            interrupted=interrupted,
            error=str(error) if error else None,
            chat=chat,
        )
        if message.get("usage"):
            self.ledger.record_usage(
                model=model,
                usage=message["usage"],
                cost=result.cost,
                seconds=result.elapsed,
                request_id=request_id,
                kind="realtime",
                cell=self._cell_label(),
            )
        if fmt == "json":
            result.data, problem = _parse_json(text)
            if problem and not interrupted and error is None:
                result.error = problem
        bundle, metadata = _final_output(result, fmt)
        view.finish(result, bundle, metadata)
        if error is not None:
            raise error
        return result

    def _explain_not_found(self, exc: Any, model: str) -> None:
        info = self._models or {}
        if not info:
            try:
                info = {m["id"]: dict(m) for m in self.client.models.iter_all()}
            except Exception:
                info = {}
        if info and "model" in exc.message.lower():
            close = difflib.get_close_matches(model, list(info), n=1)
            hint = f"Did you mean {close[0]}? " if close else ""
            exc.hint = f"{hint}Available models: {', '.join(sorted(info))}. Use -m NAME."

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

        batch_command(self.shell, parse_argstring(self.claude_batch, line))

    @magic_arguments()
    @argument("--chat", default=DEFAULT_CHAT, help="Conversation to show.")
    @line_magic
    def claude_history(self, line: str) -> None:
        """Show a conversation's turns: %claude_history [--chat NAME]."""
        from .views import display

        args = parse_argstring(self.claude_history, line)
        conversation = self.chats.get(args.chat)
        if not conversation.turns:
            display({"text/plain": f"(conversation {args.chat!r} is empty)"}, raw=True)
            return
        md: list[str] = []
        plain: list[str] = []
        for number, turn in enumerate(conversation.turns, 1):
            note = " (interrupted)" if turn.interrupted else ""
            md.append(
                f"**{number}. You:** {turn.user_text}\n\n**Claude{note}:** {turn.assistant_text}"
            )
            plain.append(f"{number}. You: {turn.user_text}\n   Claude{note}: {turn.assistant_text}")
        display({"text/markdown": "\n\n---\n\n".join(md), "text/plain": "\n".join(plain)}, raw=True)

    @magic_arguments()
    @argument("--chat", default=None, help="Conversation to forget (default: 'default').")
    @argument("--all", action="store_true", help="Forget every conversation.")
    @line_magic
    def claude_reset(self, line: str) -> None:
        """Forget a conversation: %claude_reset [--chat NAME | --all]."""
        args = parse_argstring(self.claude_reset, line)
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
        import os

        from .views import display

        rows: list[tuple[str, str, str]] = []
        for name in sorted(self.trait_names(config=True)):
            value = getattr(self, name)
            default = self.trait_defaults(name)
            source = "default" if value == default else "%config / ipython_config"
            rows.append((name, repr(value), source))
        key_set = bool(os.environ.get(self.api_key_env))
        rows.append(
            ("API key", "set" if key_set else "unset", f"environment variable {self.api_key_env}")
        )
        if self.base_url:
            base, source = self.base_url, "ClaudeMagics.base_url"
        elif os.environ.get("ANTHROPIC_BASE_URL"):
            base, source = os.environ["ANTHROPIC_BASE_URL"], "ANTHROPIC_BASE_URL"
        else:
            base, source = "https://api.anthropic.com", "default"
        rows.append(("base URL", base, source))
        width = max(len(r[0]) for r in rows)
        plain = "\n".join(f"{n:<{width}}  {v}  ({s})" for n, v, s in rows)
        md = "| setting | value | from |\n|---|---|---|\n" + "\n".join(
            f"| {n} | `{v}` | {s} |" for n, v, s in rows
        )
        display({"text/markdown": md, "text/plain": plain}, raw=True)

    @line_magic
    def claude_tokens(self, line: str) -> None:
        """Count a variable or DataFrame as it would be rendered into a prompt: %claude_tokens df"""
        from .. import prompt as prompt_module
        from ..cost.pricing import format_usd, model_price
        from .views import display

        name = line.strip()
        if not name.isidentifier():
            raise UsageError("%claude_tokens takes a variable name, e.g. %claude_tokens df")
        value = self._resolve(name, "%claude_tokens")
        text = prompt_module.render_value(
            value,
            name=name,
            budget=self.value_token_budget,
            df_budget=self.df_token_budget,
            df_format=self._df_format,
        )
        tokens = self.client.messages.count_tokens(
            model=self.model, messages=[{"role": "user", "content": text}]
        )
        price = model_price(self.model, dict(self.price_overrides) or None)
        cost = format_usd(tokens * price.input / 1e6 if price else None)
        note = " (cut to fit the token budget)" if "[cut:" in text or "omitted" in text else ""
        plain = (
            f"{name}: {tokens:,} tokens as a prompt for {self.model}{note}, "
            f"{len(text):,} characters, {cost} as input"
        )
        display({"text/plain": plain}, raw=True)

    @magic_arguments()
    @argument("--all", action="store_true", help="Every recorded call, across sessions.")
    @argument("--since", metavar="DATE", help="Calls since this date (YYYY-MM-DD or ISO time).")
    @line_magic
    def claude_usage(self, line: str) -> None:
        """This session's calls and totals as a DataFrame: %claude_usage [--all | --since DATE]."""
        import datetime as dt

        import pandas as pd

        from ..cost.pricing import format_usd
        from .views import display

        args = parse_argstring(self.claude_usage, line)
        since = None
        if args.since:
            try:
                since = dt.datetime.fromisoformat(args.since).timestamp()
            except ValueError:
                raise UsageError(
                    f"--since {args.since}: not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM"
                ) from None
        session = None if (args.all or since is not None) else self.ledger.session
        records = self.ledger.calls(session=session, since=since)
        frame = pd.DataFrame([r.__dict__ for r in records])
        scope = "this session" if session else ("all sessions" if since is None else args.since)
        if frame.empty:
            display({"text/plain": f"No calls recorded ({scope}) in {self.ledger.path}."}, raw=True)
            return
        frame["time"] = pd.to_datetime(frame["time"], unit="s").dt.floor("s")
        known = frame["cost_usd"].notna()
        count = len(frame)
        totals = (
            f"{count:,} call{'' if count == 1 else 's'} ({scope}): "
            f"{int(frame['input_tokens'].sum()):,} input, "
            f"{int(frame['cache_write_tokens'].sum()):,} cache-write, "
            f"{int(frame['cache_read_tokens'].sum()):,} cache-read, "
            f"{int(frame['output_tokens'].sum()):,} output tokens; "
            f"{format_usd(float(frame.loc[known, 'cost_usd'].sum()))}"
            + ("" if known.all() else f" (+{int((~known).sum())} calls of unknown cost)")
        )
        columns = [
            "time",
            "cell",
            "model",
            "kind",
            "input_tokens",
            "output_tokens",
            "cache_write_tokens",
            "cache_read_tokens",
            "cache_hit_share",
            "cost_usd",
            "seconds",
            "request_id",
        ]
        display(frame[columns])
        display({"text/plain": totals}, raw=True)

    @line_magic
    def claude_models(self, line: str) -> None:
        """The models this key can use, with context windows and prices."""
        from ..cost.pricing import model_price
        from .views import display

        models = list(self.client.models.iter_all())
        rows = []
        for m in models:
            price = model_price(m["id"], dict(self.price_overrides))
            cost = f"${price.input:g} / ${price.output:g}" if price else "unknown"
            window = f"{m.get('max_input_tokens') or 0:,}"
            out = f"{m.get('max_tokens') or 0:,}"
            rows.append((m["id"], m.get("display_name", ""), window, out, cost))
        md = "| model | name | context | max output | $/MTok in / out |\n|---|---|---|---|---|\n"
        md += "\n".join(f"| {' | '.join(r)} |" for r in rows)
        plain = "\n".join("  ".join(r) for r in rows)
        display({"text/markdown": md, "text/plain": plain}, raw=True)


def _extract_code(text: str) -> str:
    """The first fenced code block of an answer, or the whole answer when it has none."""
    lines = text.splitlines()
    start = None
    for index, line in enumerate(lines):
        if line.strip().startswith("```"):
            if start is None:
                start = index
            else:
                return "\n".join(lines[start + 1 : index])
    return text.strip()


def _parse_json(text: str) -> tuple[Any, str | None]:
    body = text.strip()
    if body.startswith("```"):
        body = _extract_code(body)
    try:
        return json.loads(body), None
    except json.JSONDecodeError as exc:
        return None, f"the answer is not valid JSON ({exc.msg} at line {exc.lineno}); shown as text"


def _final_output(result: ClaudeResult, fmt: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The static output of a finished call: a MIME bundle and its metadata."""
    import html

    status = html.escape(result.status())
    metadata = {
        "claude_magics": {
            "model": result.model,
            "usage": result.usage,
            "cost_usd": result.cost.total if result.cost else None,
            "request_id": result.request_id,
            "stop_reason": result.stop_reason,
            "interrupted": result.interrupted,
            "time_to_first_token": result.time_to_first_token,
            "seconds": round(result.elapsed, 3),
        }
    }
    footer = f"\n\n<sub>{status}</sub>"
    if fmt == "text":
        return {"text/plain": f"{result.text}\n\n[{result.status()}]"}, metadata
    if fmt == "code":
        code = _extract_code(result.text)
        return {
            "text/markdown": f"```python\n{code}\n```{footer}",
            "text/plain": code,
        }, metadata
    if fmt == "json" and result.data is not None:
        pretty = json.dumps(result.data, indent=2, ensure_ascii=False)
        return {
            "text/markdown": f"```json\n{pretty}\n```{footer}",
            "text/plain": pretty,
        }, metadata
    thinking = result.thinking
    md = result.text
    if thinking:
        md = "<details><summary>Thinking</summary>\n\n" + thinking + "\n\n</details>\n\n" + md
    return {"text/markdown": md + footer, "text/plain": result.text}, metadata
