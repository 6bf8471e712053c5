"""The settings of ``%%claude``: every ``ClaudeMagics`` trait, checked, and what they build.

    %config ClaudeMagics.max_tokens = 2048  # or c.ClaudeMagics.max_tokens in ipython_config
    %config ClaudeMagics.budget_usd = -1             # SettingRefused: one line, the old value stays

``ClaudeSettings`` holds the traits (defaults from :data:`claude_magics.config.DEFAULTS`), their
validators, and the objects built from them: the client, the model catalog, the spend
ledger and the replayer, each rebuilt when a setting it depends on changes. ``ClaudeMagics``
(:mod:`.magics`) adds the magics themselves; ``%config ClaudeMagics`` lists every trait here.

A refused setting (``%config ClaudeMagics.budget_usd = -1``, a key pasted into ``api_key_env``)
fails the cell in one line and leaves the old value: :class:`SettingRefused`.
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics
from traitlets import Bool, Dict, Enum, Float, Integer, TraitError, Unicode, observe, validate

from ..config import DEFAULTS

if TYPE_CHECKING:
    from traitlets.config import Config

    from ..api.client import Client
    from ..api.models import ModelCatalog
    from ..api.uploads import Uploads
    from ..cost.ledger import Ledger
    from ..cost.replay import Cassette, Replayer

__all__ = ["ClaudeSettings", "SettingRefused"]


class SettingRefused(BaseException):
    """A setting was refused (``%config ClaudeMagics.budget_usd = -1``, a key pasted into
    ``api_key_env``): the old value stays, and the cell fails with this one line.

    A ``BaseException`` on purpose: IPython's ``%config`` calls ``update_config`` inside
    ``except Exception`` and only logs what it catches, so an ``Exception`` would let the cell
    succeed (and traitlets keeps a value whose validator raised anything but ``TraitError``).
    The message never holds the refused value when it could be a key."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def _render_traceback_(self) -> list[str]:
        return [f"SettingRefused: {self.message}"]


# A key pasted where it does not belong: Anthropic keys start with "sk-".
_KEY_LIKE = re.compile(r"sk-[A-Za-z0-9_\-]{4,}")


def _without_keys(text: str, key: str | None) -> str:
    """``text`` with anything that looks like an API key (and ``key`` itself) replaced."""
    if key and len(key) >= 8:
        text = text.replace(key, "<a key: not shown>")
    return _KEY_LIKE.sub("<a key: not shown>", text)


class ClaudeSettings(Magics):
    """The traits of ``ClaudeMagics`` and the objects built from them (see the module)."""

    model = Unicode(DEFAULTS.model, help="Model used when -m is not given.").tag(config=True)
    job_model = Unicode(
        DEFAULTS.job_model,
        help="Model of DataFrame jobs (df.claude.label/extract/map, --batch) when none is given.",
    ).tag(config=True)
    api_version = Enum(
        ["2023-06-01", "2026-10-21"],
        default_value=DEFAULTS.api_version,
        help="The anthropic-version header; 2026-10-21 takes no temperature, top_p or top_k.",
    ).tag(config=True)
    max_tokens = Integer(
        DEFAULTS.max_tokens, help="Most tokens an answer may have (--max-tokens)."
    ).tag(config=True)
    system = Unicode("", help="System prompt used when -s is not given.").tag(config=True)
    show_thinking = Bool(
        False,
        help="Ask for summarized thinking text whenever a cell thinks (new models return "
        "none unless asked); --show-thinking does it for one cell.",
    ).tag(config=True)
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
        "",
        help="API base URL; empty means ANTHROPIC_BASE_URL, else https://api.anthropic.com (on "
        "Bedrock or Vertex: the platform's endpoint, else ANTHROPIC_BEDROCK_BASE_URL / "
        "ANTHROPIC_VERTEX_BASE_URL, else the region's).",
    ).tag(config=True)
    platform = Enum(
        ["auto", "anthropic", "bedrock", "vertex"],
        default_value="auto",
        help="Where requests go: the Anthropic API, Amazon Bedrock or Google Cloud (Vertex AI); "
        "auto: CLAUDE_MAGICS_PLATFORM, else the Anthropic API.",
    ).tag(config=True)
    region = Unicode(
        "",
        help="Bedrock or Vertex region; empty: AWS_REGION / AWS_DEFAULT_REGION / the AWS profile "
        "(Bedrock), CLOUD_ML_REGION (Vertex).",
    ).tag(config=True)
    project = Unicode(
        "",
        help="Google Cloud project (Vertex); empty: ANTHROPIC_VERTEX_PROJECT_ID, else the "
        "credentials' project.",
    ).tag(config=True)
    aws_profile = Unicode(
        "", help="AWS profile whose credentials sign Bedrock requests; empty: AWS_PROFILE."
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
    replay = Bool(
        DEFAULTS.replay,
        help="Show an answer already paid for (the same request, any session) instead of paying "
        "again; --fresh asks anew.",
    ).tag(config=True)
    replay_max_mb = Integer(
        DEFAULTS.replay_max_mb,
        help="Most MB the replay store (responses.sqlite) may hold; least recently used go first.",
    ).tag(config=True)
    ledger_busy_timeout = Float(
        DEFAULTS.ledger_busy_timeout,
        help="Seconds a ledger write waits for another program holding the file; then the "
        "answer is kept and a warning says the spend was not recorded.",
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
    max_steps = Integer(
        10,
        help="Most model calls one %%claude cell makes in a tool loop (--tools, --inspect, "
        "--python, --web); --max-steps overrides it.",
    ).tag(config=True)
    python_approval = Enum(
        ("ask", "never"),
        default_value="ask",
        help="--python: 'ask' shows each snippet and runs it only after a yes at a [y/N] prompt "
        "(no prompt possible, as under nbclient: it goes into a new cell); 'never' only puts "
        "snippets into new cells. No setting runs code without a yes.",
    ).tag(config=True)
    tool_result_tokens = Integer(
        2000,
        help="Most tokens of one tool result sent back to Claude (a variable's description, a "
        "function's return value, a snippet's output); the rest is cut with a note.",
    ).tag(config=True)
    price_overrides = Dict(
        help="Prices to use instead of the built-in table: {model: (input, output)} $/MTok."
    ).tag(config=True)
    upload_above_kb = Integer(
        DEFAULTS.upload_above_kb,
        allow_none=True,
        help="PDFs and images bigger than this many KB are uploaded once (Files API) and sent "
        "by file_id; smaller ones too from their second use. None: always inline (base64).",
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._client: Client | None = None
        self._ledger: Ledger | None = None
        self._catalog: ModelCatalog | None = None
        self._replayer: Replayer | None = None
        #: The cassette ``%claude_replay cassette`` chose (None with ``off``); until it is
        #: used, the environment's (``CLAUDE_MAGICS_CASSETTE``) applies.
        self._cassette: Cassette | None = None
        self._cassette_chosen = False
        self._file_uploads: Uploads | None = None

    # -- settings ------------------------------------------------------------------------------

    # Validators raise TraitError, the only error on which traitlets rolls a value back when
    # several are loaded together (update_config); anything else would leave it set.

    @validate(
        "max_tokens",
        "df_token_budget",
        "value_token_budget",
        "cache_min_tokens",
        "replay_max_mb",
        "max_steps",
        "tool_result_tokens",
    )
    def _positive(self, proposal: Any) -> int | None:
        if proposal["value"] is None and proposal["trait"].allow_none:
            return None
        value = int(proposal["value"])
        if value < 1:
            raise TraitError(f"{proposal['trait'].name} must be at least 1, got {value}")
        return value

    @validate("timeout", "updates_per_second", "batch_poll_seconds", "batch_poll_max_seconds")
    def _above_zero(self, proposal: Any) -> float:
        value = float(proposal["value"])
        if not value > 0:
            raise TraitError(f"{proposal['trait'].name} must be above 0, got {value}")
        return value

    @validate("max_retries", "ledger_busy_timeout", "lost_create_grace_seconds", "upload_above_kb")
    def _zero_or_more(self, proposal: Any) -> Any:
        value = proposal["value"]
        if value is None and proposal["trait"].allow_none:
            return None
        if not value >= 0:
            raise TraitError(f"{proposal['trait'].name} must not be negative, got {value}")
        return value

    @validate("region", "project")
    def _plain_name(self, proposal: Any) -> str:
        from ..api.platforms import checked_name
        from ..errors import PlatformConfigError

        try:
            return checked_name(str(proposal["value"]), proposal["trait"].name)
        except PlatformConfigError as error:
            raise TraitError(str(error)) from None

    @validate("api_key_env")
    def _not_a_key(self, proposal: Any) -> str:
        value = str(proposal["value"])
        if value.startswith("sk-") or not value.replace("_", "").isalnum():
            # Someone pasted the key itself: refuse it without echoing it back.
            raise TraitError(
                "api_key_env names an environment variable (like ANTHROPIC_API_KEY); "
                "it must not hold the key itself"
            )
        return value

    def update_config(self, config: Config) -> None:
        """Load ``config`` (``%config ClaudeMagics.x = v``); a refused value raises
        :class:`SettingRefused` and every setting keeps its old value.

        ``%config`` hands the same config to every configurable of the shell, catches what
        they raise and only logs it; the refused entries are therefore also taken out of the
        other configurables' copies, so a pasted key is kept nowhere."""
        section_name = type(self).__name__
        section = config.get(section_name, {})
        traits = self.traits(config=True)
        names = [name for name in section if name in traits]
        before = {name: getattr(self, name) for name in names}
        try:
            super().update_config(config)
        except (TraitError, ValueError, TypeError) as error:
            for name, value in before.items():
                self.set_trait(name, value)
            refused = {name: section[name] for name in names}
            self._forget_config(section_name, refused)
            reason = _without_keys(str(error), os.environ.get(self.api_key_env))
            raise SettingRefused(
                f"{reason.rstrip('.')}; {', '.join(names) or 'the setting'} kept "
                f"{'its value' if len(names) < 2 else 'their values'}."
            ) from None

    def _forget_config(self, section_name: str, refused: dict[str, Any]) -> None:
        """Take ``refused`` entries out of every configurable's config (``%config`` merged
        them into those it reached before this one)."""
        for configurable in getattr(self.shell, "configurables", ()):
            config = getattr(configurable, "config", None)
            if config is None or section_name not in config:
                continue
            section = config[section_name]
            for name, value in refused.items():
                with contextlib.suppress(Exception):  # a value that cannot be compared
                    if name in section and section[name] == value:
                        del section[name]

    @observe(
        "api_key_env",
        "base_url",
        "max_retries",
        "timeout",
        "api_version",
        "platform",
        "region",
        "project",
        "aws_profile",
    )
    def _drop_client(self, change: Any) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None
        self._catalog = None

    @property
    def client(self) -> Client:
        if self._client is None:
            from ..api.client import Client

            self._client = Client(
                base_url=self.base_url or None,
                api_key_env=self.api_key_env,
                max_retries=self.max_retries,
                timeout=self.timeout,
                api_version=self.api_version,
                platform=None if self.platform == "auto" else self.platform,
                region=self.region or None,
                project=self.project or None,
                aws_profile=self.aws_profile or None,
            )
        return self._client

    @property
    def prices(self) -> dict[str, Any] | None:
        """``price_overrides``, and, on a regional Vertex endpoint, the table's prices with that
        endpoint's premium for every model the overrides do not name: what every cost, estimate
        and budget check of the session uses. (A Bedrock id names its own endpoint, so the
        price table prices it; a Vertex model id does not, so the client's region decides.)"""
        overrides: dict[str, Any] = dict(self.price_overrides or {})
        platform = self.client.platform
        if platform is not None and platform.name == "vertex":
            from ..cost.pricing import PRICES, regional_premium

            premium = regional_premium(platform.name, platform.region)
            if premium is not None:
                for name, price in PRICES.items():
                    overrides.setdefault(name, price.scaled(premium))
        return overrides or None

    @property
    def catalog(self) -> ModelCatalog:
        """The models the API serves (``GET /v1/models``), asked once per client."""
        if self._catalog is None:
            from ..api.models import ModelCatalog

            self._catalog = ModelCatalog(self.client)
        return self._catalog

    @property
    def ledger(self) -> Ledger:
        """The spend ledger (SQLite), shared with df.claude jobs of this session."""
        if self._ledger is None:
            from ..cost.ledger import Ledger

            self._ledger = Ledger(self.ledger_path or None, busy_timeout=self.ledger_busy_timeout)
        return self._ledger

    @observe("ledger_path")
    def _drop_ledger(self, change: Any) -> None:
        session = self._ledger.session if self._ledger is not None else None
        from ..cost.ledger import Ledger

        self._ledger = Ledger(
            self.ledger_path or None, session=session, busy_timeout=self.ledger_busy_timeout
        )
        self._replayer = None  # the store lives beside the ledger
        self._file_uploads = None  # and so does files.sqlite

    @property
    def replayer(self) -> Replayer:
        """Answers already paid for: ``responses.sqlite`` beside the spend ledger (none when
        ``replay`` is False) and the cassette, if one is set (``%claude_replay cassette`` or
        ``CLAUDE_MAGICS_CASSETTE``). Shared with df.claude jobs (``config.shared_replayer``)."""
        if self._replayer is None:
            from ..cost.replay import Replayer, ReplayStore, cassette_from_environment

            store = (
                ReplayStore(
                    self.ledger.path.parent / "responses.sqlite",
                    max_bytes=self.replay_max_mb * 2**20,
                    busy_timeout=self.ledger_busy_timeout,
                )
                if self.replay
                else None
            )
            cassette = self._cassette if self._cassette_chosen else cassette_from_environment()
            self._replayer = Replayer(store, cassette)
        return self._replayer

    @property
    def uploads(self) -> Uploads:
        """Files uploaded once and sent by id: ``files.sqlite`` beside the spend ledger, and
        what this session sent (see :mod:`claude_magics.api.uploads`). Shared with df.claude
        jobs (``config.shared_uploads``)."""
        if self._file_uploads is None:
            from ..api.uploads import FileStore, Uploads
            from ..jobs.progress import upload_bar

            store = FileStore(
                self.ledger.path.parent / "files.sqlite", busy_timeout=self.ledger_busy_timeout
            )
            # A bar for each upload over 8 MB (from a cell, %claude_files upload, a job).
            self._file_uploads = Uploads(store, progress=upload_bar)
        return self._file_uploads

    @property
    def upload_above_bytes(self) -> int | None:
        """``upload_above_kb`` in bytes (None: uploads off)."""
        kb = self.upload_above_kb
        return None if kb is None else kb * 1024

    def use_cassette(self, cassette: Cassette | None) -> None:
        """Answer from (and record to) ``cassette`` from now on; None: no cassette, whatever
        the environment says."""
        self._cassette = cassette
        self._cassette_chosen = True
        self._replayer = None

    @observe("replay", "replay_max_mb")
    def _drop_replayer(self, change: Any) -> None:
        self._replayer = None

    @observe("ledger_busy_timeout")
    def _ledger_timeout(self, change: Any) -> None:
        if self._ledger is not None:
            self._ledger.busy_timeout = change["new"]

    @validate("budget_usd", "confirm_above_usd")
    def _not_negative(self, proposal: Any) -> float | None:
        value = proposal["value"]
        if value is not None and value < 0:
            raise TraitError(f"{proposal['trait'].name} must not be negative, got {value}")
        return value  # type: ignore[no-any-return]
