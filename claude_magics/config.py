"""Settings shared by the magics and the plain-Python API (``df.claude``, batch jobs).

    settings = current_settings()      # the loaded ClaudeMagics' traits, else the defaults
    client, ledger = shared_client(), shared_ledger()
    check_budget(worst_case_usd=2.40, what="this labeling job")

Resolution: an explicit argument (flag) > ``%config ClaudeMagics.*`` > built-in default. When
``%load_ext claude_magics`` has run, the magics instance is the source of truth, so a budget or a
model set with ``%config`` applies to ``df.claude`` calls too.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from .cost.pricing import format_usd
from .errors import ClaudeError, StorageError
from .model_table import load as load_models

if TYPE_CHECKING:
    from .api.client import Client
    from .api.uploads import Uploads
    from .cost.ledger import Ledger
    from .cost.replay import Replayer

__all__ = [
    "DEFAULTS",
    "BudgetExceededError",
    "Settings",
    "active_magics",
    "ask",
    "budget_left",
    "check_budget",
    "current_settings",
    "in_ipython",
    "shared_client",
    "shared_ledger",
    "shared_replayer",
    "shared_uploads",
]


@dataclass(frozen=True)
class Settings:
    """The effective settings outside a cell: models, limits, budget, batch behaviour.

    The defaults here are the only ones: ``ClaudeMagics`` declares a trait for each field with
    the default it finds here, and :func:`current_settings` reads the traits back by name.
    """

    #: ``%%claude`` cells: a current Sonnet (the model table's ``defaults.model``).
    model: str = field(default_factory=lambda: load_models().defaults["model"])
    #: DataFrame jobs (label, extract, map, ``--batch``): the model sold for classification
    #: and extraction (the model table's ``defaults.job_model``).
    job_model: str = field(default_factory=lambda: load_models().defaults["job_model"])
    max_tokens: int = 4096
    #: The ``anthropic-version`` header: ``2023-06-01`` (every model accepts it) or
    #: ``2026-10-21`` (no sampling parameters on any model).
    api_version: str = "2023-06-01"
    budget_usd: float | None = None
    confirm_above_usd: float = 5.0
    batch_threshold: int = 200
    price_overrides: dict[str, Any] | None = None
    #: Seconds between the first polls of a batch; the wait grows by half each poll up to
    #: ``batch_poll_max_seconds``.
    batch_poll_seconds: float = 2.0
    batch_poll_max_seconds: float = 60.0
    #: How long a batch create whose answer was lost may take to appear in the batch list
    #: before the job concludes it was not created and sends it again.
    lost_create_grace_seconds: float = 30.0
    #: Seconds a write to the spend ledger waits for another process that holds the file
    #: before it gives up (a warning; the answer is kept).
    ledger_busy_timeout: float = 5.0
    #: Show answers already paid for instead of paying again (``--fresh`` asks anew).
    replay: bool = True
    #: Most megabytes ``responses.sqlite`` may hold; the least recently used go first.
    replay_max_mb: int = 300
    #: PDFs and images bigger than this many KB are uploaded once (Files API) and sent by
    #: ``file_id``; smaller ones too from their second use. None: always inline.
    upload_above_kb: int | None = 256


#: The built-in defaults (``%config`` and flags override them).
DEFAULTS = Settings()


def active_magics() -> Any:
    """The ClaudeMagics registered in the running IPython, or None."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return None
    shell = get_ipython()
    if shell is None:
        return None
    return shell.magics_manager.registry.get("ClaudeMagics")


def in_ipython() -> bool:
    """Whether this code runs under an IPython shell or kernel (without importing IPython)."""
    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    return get_ipython() is not None


def ask(question: str) -> str | None:
    """Ask the person at the notebook or terminal; None when no one can answer here (a kernel
    with no front end to read stdin, as under nbclient or nbval, a closed stdin, or one that
    cannot be read, such as a test runner's captured input)."""
    from IPython.core.error import StdinNotImplementedError

    try:
        return input(question)
    except (EOFError, OSError, RuntimeError, StdinNotImplementedError):
        return None


def current_settings() -> Settings:
    magics = active_magics()
    if magics is None:
        return Settings()
    values = {f.name: getattr(magics, f.name) for f in fields(Settings)}
    # The session's prices: the overrides, and a regional endpoint's premium (``prices``).
    values["price_overrides"] = magics.prices
    return Settings(**values)


_lock = threading.Lock()
_fallback: dict[str, Any] = {}


def shared_client() -> Client:
    """The magics' client when loaded (same base URL, retries), else one for this process."""
    magics = active_magics()
    if magics is not None:
        client: Client = magics.client
        return client
    import os

    # Keyed on the base URL: pointing ANTHROPIC_BASE_URL elsewhere (the emulator, a proxy)
    # later in the session must reach a client that talks there.
    key = f"client:{os.environ.get('ANTHROPIC_BASE_URL', '')}"
    # ... and so must a platform chosen (or moved) through the environment.
    key += "".join(
        f":{os.environ.get(name, '')}"
        for name in ("CLAUDE_MAGICS_PLATFORM", "AWS_REGION", "CLOUD_ML_REGION")
    )
    with _lock:
        if key not in _fallback:
            from .api.client import Client

            _fallback[key] = Client()
        return _fallback[key]  # type: ignore[no-any-return]


def shared_ledger() -> Ledger:
    """The spend ledger of this session (the magics' one when loaded)."""
    magics = active_magics()
    if magics is not None:
        ledger: Ledger = magics.ledger
        return ledger
    with _lock:
        if "ledger" not in _fallback:
            from .cost.ledger import Ledger

            _fallback["ledger"] = Ledger(busy_timeout=DEFAULTS.ledger_busy_timeout)
        return _fallback["ledger"]  # type: ignore[no-any-return]


def shared_replayer() -> Replayer:
    """The replay store and cassette of this session (the magics' when loaded), else one from
    the defaults and the ``CLAUDE_MAGICS_CASSETTE`` / ``CLAUDE_MAGICS_REPLAY`` variables."""
    magics = active_magics()
    if magics is not None:
        replayer: Replayer = magics.replayer
        return replayer
    with _lock:
        if "replayer" not in _fallback:
            from .cost.replay import Replayer, ReplayStore, cassette_from_environment

            store = (
                ReplayStore(max_bytes=DEFAULTS.replay_max_mb * 2**20) if DEFAULTS.replay else None
            )
            _fallback["replayer"] = Replayer(store, cassette_from_environment())
        return _fallback["replayer"]  # type: ignore[no-any-return]


def shared_uploads() -> Uploads:
    """This session's uploads (the magics' when loaded: the same ``files.sqlite`` beside the
    ledger, the same memory of what was sent), else one beside the default ledger."""
    magics = active_magics()
    if magics is not None:
        uploads: Uploads = magics.uploads
        return uploads
    # The ledger first: shared_ledger takes the same (non-reentrant) lock.
    ledger = shared_ledger()
    with _lock:
        if "uploads" not in _fallback:
            from .api.uploads import FileStore, Uploads

            store = FileStore(ledger.path.parent / "files.sqlite", busy_timeout=ledger.busy_timeout)
            _fallback["uploads"] = Uploads(store)
        return _fallback["uploads"]  # type: ignore[no-any-return]


class BudgetExceededError(ClaudeError):
    """A call or job would cost more than what is left of ``ClaudeMagics.budget_usd``."""

    def __init__(self, what: str, worst_case: float, left: float, budget: float) -> None:
        super().__init__(
            f"{what} could cost up to {format_usd(worst_case)}, but only {format_usd(left)} "
            f"of the {format_usd(budget)} budget is left this session. Nothing was sent."
        )
        self.worst_case = worst_case
        self.left = left
        self.budget = budget
        self.hint = (
            "Raise it with %config ClaudeMagics.budget_usd = <dollars> "
            "(or = None for no budget), or ask for less (--max-tokens, a cheaper model)."
        )


def budget_left() -> tuple[float, float] | None:
    """(left, budget) in dollars for this session, or None when no budget is set.

    The spend so far is in the ledger: one that cannot be read is a one-line
    :class:`StorageError` that says how to fix it or to unset the budget, since a budget that
    cannot be checked must not let a call through."""
    budget = current_settings().budget_usd
    if budget is None:
        return None
    ledger = shared_ledger()
    try:
        spent = ledger.spent(session=ledger.session)
    except StorageError as error:
        raise StorageError(
            f"{error} The budget cannot be checked without it, so nothing was sent: fix the "
            "ledger, or unset the budget with %config ClaudeMagics.budget_usd = None."
        ) from None
    return budget - spent, budget


def check_budget(worst_case_usd: float | None, what: str = "This call") -> None:
    """Refuse, before anything is sent, a call whose worst case exceeds the budget left."""
    state = budget_left()
    if state is None or worst_case_usd is None:
        return
    left, budget = state
    if worst_case_usd > left:
        raise BudgetExceededError(what, worst_case_usd, left, budget)
