"""The emulator's settings (`EmulatorOptions`) and scripted failures (`Fault`).

    opts = EmulatorOptions(tokens_per_second=200, requests_per_minute=50)
    Fault.from_obj({"status": 529, "count": 2})   # what add_fault(...) and --fault JSON build

Both are frozen dataclasses: an Emulator swaps in a new EmulatorOptions on `configure()`, so a
request that has started keeps the settings it started with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..model_table import ModelEntry
from .catalog import register
from .errors import ERROR_STATUS

__all__ = ["FAULT_KINDS", "EmulatorOptions", "Fault"]

FAULT_KINDS = frozenset({"status", "drop", "drop_response", "error_event", "malformed", "slow"})


@dataclass(frozen=True)
class Fault:
    """A failure to inject into matching requests (see ``Emulator.add_fault``).

    ``kind``: ``status`` answers an HTTP error (``status``, default 529); ``drop`` closes the
    connection (mid-stream for streaming requests, before any response otherwise);
    ``error_event`` sends an SSE ``error`` frame after ``after_events`` frames and ends the
    stream cleanly (a non-streaming request gets the matching HTTP error instead);
    ``malformed`` sends one frame whose data is not JSON, then the rest of the stream (a
    non-streaming request gets a 200 with a truncated JSON body); ``slow`` waits ``delay``
    seconds and then answers normally; ``drop_response`` lets the request take effect (a batch
    is created, a message generated) and then closes the connection without answering: the
    lost response a client must not blindly re-send.
    """

    status: int | None = None
    kind: str = "status"
    count: int = 1
    every: int | None = None
    path: str | None = "/v1/messages"
    method: str | None = None
    retry_after: float | None = None
    retry_after_ms: float | None = None
    should_retry: bool | None = None
    after_events: int = 3
    error_type: str = "overloaded_error"
    delay: float = 1.0
    message: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {sorted(FAULT_KINDS)}, not {self.kind!r}")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(
                f"fault status must be an HTTP error code (400-599), not {self.status}"
            )
        if self.count < 0:
            raise ValueError("fault count must be >= 0 (0 means forever)")
        if self.every is not None and self.every < 1:
            raise ValueError("fault every must be >= 1")
        if self.after_events < 0:
            raise ValueError("fault after_events must be >= 0")
        if self.delay < 0:
            raise ValueError("fault delay must be >= 0")
        if self.error_type not in ERROR_STATUS:
            raise ValueError(f"unknown error_type {self.error_type!r}")
        if self.method is not None:
            object.__setattr__(self, "method", self.method.upper())

    @classmethod
    def from_obj(cls, obj: Fault | Mapping[str, Any] | str | bytes) -> Fault:
        """Build a Fault from a Fault, a mapping of its fields, or that mapping as JSON."""
        if isinstance(obj, Fault):
            return obj
        if isinstance(obj, (str, bytes)):
            obj = orjson.loads(obj)
        if not isinstance(obj, Mapping):
            raise TypeError("a fault is given as keyword arguments, a dict or a JSON object")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(obj) - names)
        if unknown:
            raise TypeError(f"unknown fault field(s): {', '.join(unknown)}")
        return cls(**obj)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _key_set(keys: Iterable[str] | str | None) -> frozenset[str] | None:
    if keys is None:
        return None
    if isinstance(keys, str):  # one key, not its characters
        return frozenset({keys})
    return frozenset(keys)


@dataclass(frozen=True)
class EmulatorOptions:
    """Everything an Emulator can be told; all keyword arguments of ``Emulator(...)``.

    Times are seconds. Rate limits are per minute; ``None`` means unlimited.
    """

    host: str = "127.0.0.1"
    port: int = 0
    # None accepts any non-empty x-api-key; a set accepts only its members.
    api_keys: frozenset[str] | None = None
    # Streaming pacing: delay before the first content delta, then tokens_per_second.
    time_to_first_token: float = 0.0
    tokens_per_second: float | None = None
    tokens_per_delta: int = 1
    # A ping after message_start, then one every N content deltas (0: only the first).
    ping_every: int = 100
    # Added before every /v1 response, to make concurrency measurable.
    latency: float = 0.0
    default_reply_tokens: int = 60
    batch_processing_seconds: float = 1.0
    batch_cancel_seconds: float = 0.1
    batch_expiry_seconds: float = 86400.0
    batch_results_seed: int = 0
    requests_per_minute: int | None = None
    input_tokens_per_minute: int | None = None
    output_tokens_per_minute: int | None = None
    max_concurrent_requests: int | None = None
    # Minimum cacheable prefix per model id or alias, overriding the catalog.
    cache_min_tokens: Mapping[str, int] | None = None
    # What the Files API keeps in memory at most, all files together (uploads beyond: 400
    # storage_quota_exceeded, as at the API's organization quota).
    files_storage_bytes: int = 1 << 30
    faults: Sequence[Fault] = field(default_factory=tuple)
    # Models served beyond the bundled table (or replacing one of its entries): each a
    # ModelEntry, a mapping (``id``, limits, ``like``, any table field) or "ID,MAX_IN,MAX_OUT".
    models: Sequence[ModelEntry | Mapping[str, Any] | str] = field(default_factory=tuple)
    #: Bedrock: AWS access key id -> secret, against which SigV4 signatures are verified (None:
    #: any well-formed, current signature is accepted).
    aws_credentials: Mapping[str, str] | None = None
    #: Bedrock API keys accepted as bearer tokens (None: any).
    bedrock_api_keys: frozenset[str] | None = None
    #: Vertex OAuth access tokens accepted (None: any bearer token).
    vertex_tokens: frozenset[str] | None = None
    #: IAM actions refused with an AccessDeniedException naming them (bedrock:InvokeModel,
    #: bedrock:InvokeModelWithResponseStream, bedrock:CountTokens).
    aws_denied_actions: frozenset[str] = frozenset()
    #: Seconds an access token issued at ``POST /oauth2/token`` stays good (Google: 3600).
    vertex_token_seconds: float = 3600.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "api_keys", _key_set(self.api_keys))
        object.__setattr__(self, "bedrock_api_keys", _key_set(self.bedrock_api_keys))
        object.__setattr__(self, "vertex_tokens", _key_set(self.vertex_tokens))
        denied = _key_set(self.aws_denied_actions) or frozenset()
        object.__setattr__(self, "aws_denied_actions", denied)
        if self.aws_credentials is not None:
            object.__setattr__(self, "aws_credentials", dict(self.aws_credentials))
        if self.api_keys is not None and not all(self.api_keys):
            raise ValueError("api_keys must not contain an empty key")
        faults = tuple(Fault.from_obj(f) for f in self.faults)
        object.__setattr__(self, "faults", faults)
        if isinstance(self.models, (str, Mapping)):  # one model, not its characters or keys
            object.__setattr__(self, "models", (self.models,))
        object.__setattr__(self, "models", tuple(register(m) for m in self.models))
        if self.cache_min_tokens is not None:
            object.__setattr__(self, "cache_min_tokens", dict(self.cache_min_tokens))
        for name in (
            "time_to_first_token",
            "latency",
            "batch_processing_seconds",
            "batch_cancel_seconds",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.batch_expiry_seconds <= 0:
            raise ValueError("batch_expiry_seconds must be > 0")
        if self.tokens_per_second is not None and self.tokens_per_second <= 0:
            raise ValueError("tokens_per_second must be > 0 (None disables pacing)")
        if self.tokens_per_delta < 1:
            raise ValueError("tokens_per_delta must be >= 1")
        if self.ping_every < 0:
            raise ValueError("ping_every must be >= 0")
        if self.default_reply_tokens < 1:
            raise ValueError("default_reply_tokens must be >= 1")
        for name in (
            "requests_per_minute",
            "input_tokens_per_minute",
            "output_tokens_per_minute",
            "max_concurrent_requests",
        ):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 (None means unlimited)")
        if self.files_storage_bytes < 0:
            raise ValueError("files_storage_bytes must be >= 0")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be in 0..65535")

    def replace(self, **changes: Any) -> EmulatorOptions:
        """A copy with ``changes``; unknown names raise TypeError."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for the admin API)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["api_keys"] = None if self.api_keys is None else ["<redacted>"] * len(self.api_keys)
        data["faults"] = [f.to_dict() for f in self.faults]
        data["cache_min_tokens"] = (
            None if self.cache_min_tokens is None else dict(self.cache_min_tokens)
        )
        data["models"] = [m.to_dict() for m in self.registered_models]
        # Platform credentials: access key ids are not secret, the rest is never shown.
        data["aws_credentials"] = (
            None
            if self.aws_credentials is None
            else dict.fromkeys(self.aws_credentials, "<redacted>")
        )
        for name in ("bedrock_api_keys", "vertex_tokens"):
            keys = getattr(self, name)
            data[name] = None if keys is None else ["<redacted>"] * len(keys)
        data["aws_denied_actions"] = sorted(self.aws_denied_actions)
        return data

    @property
    def registered_models(self) -> tuple[ModelEntry, ...]:
        """``models``, each as the ModelEntry it was normalised to."""
        return tuple(m for m in self.models if isinstance(m, ModelEntry))
