"""Claude on Amazon Bedrock and Google Cloud (Vertex AI): where a request goes, how it is signed.

    client = Client(platform="bedrock", region="us-east-1")        # AWS credential chain
    client = Client(platform="vertex", region="global", project="my-project")  # ADC

A :class:`Platform` sits between the client and the wire, at a few points of the shared client
core (`core.ClientCore`, so `Client` and `AsyncClient` alike): ``route`` turns a first-party
request (``POST /v1/messages`` with its JSON body) into the platform's URL and body, once;
``authorize`` signs the encoded request, on every attempt (a SigV4 signature covers the final
bytes and its time; an OAuth token is refreshed before it expires; it may block, so the async
client calls it in a worker thread); ``refine_error`` reads the platform's own error shapes and
request-id header; ``event_decoder`` decodes a stream the platform frames its own way (Bedrock's
event-stream). Retries, streaming, counting, the budget and the ledger are the client's, the same
on every platform. What a platform lacks (Message Batches, the Files API) is refused in
``route`` with a :class:`PlatformUnsupportedError`, one line naming the platform and the way
that works.

The platform is chosen by the ``platform=`` argument, else ``CLAUDE_MAGICS_PLATFORM``
(``anthropic``, ``bedrock``, ``vertex``), else ``CLAUDE_CODE_USE_BEDROCK=1`` /
``CLAUDE_CODE_USE_VERTEX=1``, else the first-party API.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from ...errors import APIStatusError, PlatformConfigError, PlatformUnsupportedError

if TYPE_CHECKING:
    import httpx

    from ..streaming import EventDecoder

__all__ = ["PLATFORMS", "Platform", "make_platform", "platform_name_from_environment"]

#: The platforms ``Client(platform=...)`` and ``ClaudeMagics.platform`` take.
PLATFORMS = ("anthropic", "bedrock", "vertex")


def platform_name_from_environment() -> str:
    """The platform the environment asks for (``anthropic`` when it asks for none)."""
    named = os.environ.get("CLAUDE_MAGICS_PLATFORM", "").strip().lower()
    if named:
        if named not in PLATFORMS:
            raise PlatformConfigError(
                f"CLAUDE_MAGICS_PLATFORM={named!r} is not a platform: use one of "
                f"{', '.join(PLATFORMS)}"
            )
        return named
    for variable, name in (
        ("CLAUDE_CODE_USE_BEDROCK", "bedrock"),
        ("CLAUDE_CODE_USE_VERTEX", "vertex"),
    ):
        if os.environ.get(variable, "").strip().lower() in ("1", "true", "yes"):
            return name
    return "anthropic"


def body_version(headers: Mapping[str, str], platform_version: str) -> str:
    """The ``anthropic_version`` a platform's body carries: the platform's own
    (``bedrock-2023-05-31``, ``vertex-2023-10-16``) for the API's first version, else the
    client's newer API version (``2026-10-21``: its rules then apply there too)."""
    version = headers.get("anthropic-version", "")
    return platform_version if version in ("", "2023-06-01") else version


# Regions and projects are names (us-east-1, europe-west4, my-project-123): anything else would
# change the endpoint's host or path.
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def checked_name(value: str, what: str) -> str:
    """``value`` when it is a plain region or project name; else a one-line refusal."""
    value = value.strip()
    if value and not _NAME.fullmatch(value):
        raise PlatformConfigError(
            f"{what} {value[:40]!r} is not a {what} name (lower-case letters, digits and "
            "hyphens, like us-east-1 or my-project)"
        )
    return value


def json_body(body: bytes | None) -> Any:
    """An answer's JSON, or None when it has none."""
    try:
        return orjson.loads(body or b"")
    except (orjson.JSONDecodeError, ValueError):
        return None


class Platform(ABC):
    """A cloud platform's endpoints, auth and error shapes (see the module docstring). Each
    platform (``bedrock.Bedrock``, ``vertex.Vertex``) implements the abstract methods."""

    #: ``"bedrock"`` or ``"vertex"``.
    name = ""
    #: How errors and ``%claude_config`` name it.
    label = ""
    #: Where the choice of this platform came from (for ``%claude_config``).
    source = "argument"

    def __init__(self, region: str, base_url: str) -> None:
        self.region = region
        self.base_url = base_url.rstrip("/")

    # -- the three points of contact with the client -------------------------------------------

    @abstractmethod
    def route(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[str, Any]:
        """The URL and body for a first-party ``method path`` (``headers`` may be edited)."""
        ...

    @abstractmethod
    def authorize(self, request: httpx.Request) -> None:
        """Add the credentials to ``request``, whose body is final (called on every attempt)."""
        ...

    @abstractmethod
    def refine_error(
        self,
        error: APIStatusError,
        status: int,
        reason: str,
        headers: Mapping[str, str],
        body: bytes | None,
    ) -> APIStatusError:
        """The error the client made from an answer (``body`` None: unread), in the
        platform's terms."""
        ...

    # -- what the rest of the package asks ------------------------------------------------------

    def request_id(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("request-id")

    def adapt_json(self, data: dict[str, Any]) -> dict[str, Any]:
        """A 2xx response's JSON in the first-party shape (a count's ``inputTokens``...)."""
        return data

    def event_decoder(self, content_type: str) -> EventDecoder | None:
        """The decoder for a streamed answer of ``content_type`` when the platform frames it
        its own way (Bedrock's event-stream); None: server-sent events."""
        return None

    def model_id(self, model: str) -> str:
        """The id this platform is sent for ``model`` (a table id or its own)."""
        return model

    def models(self) -> list[dict[str, Any]]:
        """The model list as ``GET /v1/models`` objects: neither platform serves that endpoint
        on its runtime host, so the bundled table answers, in the platform's ids."""
        from ...model_table import load

        return [
            {
                "type": "model",
                "id": self.model_id(entry.id),
                "display_name": entry.display_name,
                "created_at": entry.created_at,
                "max_input_tokens": entry.max_input_tokens,
                "max_tokens": entry.max_tokens,
            }
            for entry in load().models
        ]

    def models_note(self) -> str:
        """What ``%claude_models`` says under its table on this platform."""
        return f"{self.label}: the bundled table's models; it serves no model list to ask."

    def secrets(self) -> list[tuple[str, str]]:
        """(name, value) of every credential this platform holds or reads, for redaction:
        none of them may reach a prompt."""
        return []

    @abstractmethod
    def describe(self) -> list[tuple[str, str, str]]:
        """(setting, value, where it comes from) for ``%claude_config``: never a secret."""
        ...

    @abstractmethod
    def credentials_status(self) -> str:
        """Whether credentials were found and where (never the credentials)."""
        ...

    def unsupported(self, method: str, path: str) -> PlatformUnsupportedError:
        """The one-line refusal of an endpoint this platform does not have."""
        if path.startswith("/v1/messages/batches"):
            return PlatformUnsupportedError(
                f"{self.label} has no Message Batches API ({method} {path})",
                "Send the requests one by one: mode='realtime' (--mode realtime in a "
                "%%claude --batch cell); mode='auto' does it by itself.",
            )
        if path.startswith("/v1/files"):
            return PlatformUnsupportedError(
                f"{self.label} has no Files API ({method} {path})",
                "Documents and images go inline (base64) in each request instead: "
                "%config ClaudeMagics.upload_above_kb = None.",
            )
        if path.startswith("/v1/models"):
            return PlatformUnsupportedError(
                f"{self.label} does not list models on its runtime endpoint ({method} {path})",
                "%claude_models lists the bundled table in this platform's ids.",
            )
        return PlatformUnsupportedError(
            f"{self.label} has no {method} {path} endpoint",
            "Use the first-party API (ClaudeMagics.platform = 'anthropic') for this.",
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} region={self.region!r}>"


def make_platform(name: str | None, **options: Any) -> Platform | None:
    """The platform called ``name`` (None: the environment decides), or None for the
    first-party API. ``options`` are the ``Client``'s platform arguments."""
    source = "argument (ClaudeMagics.platform)" if name else "CLAUDE_MAGICS_PLATFORM"
    name = (name or platform_name_from_environment()).lower()
    if name not in PLATFORMS:
        raise PlatformConfigError(
            f"platform={name!r} is not a platform: use one of {', '.join(PLATFORMS)}"
        )
    platform: Platform | None = None
    if name == "bedrock":
        from .bedrock import Bedrock

        platform = Bedrock(
            region=options.get("region"),
            base_url=options.get("base_url"),
            api_key=options.get("api_key"),
            aws_access_key=options.get("aws_access_key"),
            aws_secret_key=options.get("aws_secret_key"),
            aws_session_token=options.get("aws_session_token"),
            aws_profile=options.get("aws_profile"),
        )
    if name == "vertex":
        from .vertex import Vertex

        platform = Vertex(
            region=options.get("region"),
            project=options.get("project"),
            base_url=options.get("base_url"),
            access_token=options.get("access_token"),
        )
    if platform is not None:
        platform.source = source
    return platform
