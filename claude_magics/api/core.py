"""What the sync and the async client share, with no I/O: a call turned into the request that
goes on the wire, and what comes back turned into an answer, a wait before the next attempt,
or an error.

    request = core.prepare("POST", "/v1/messages", body=params, stream=True)  # headers, URL, bytes
    attempts = core.attempts(request)                  # the retry decisions for this request
    wait = attempts.after_status(status, headers)      # None: give up (raise attempts.error(...))

`Client` and `AsyncClient` both are a `ClientCore`: each only sends what ``prepare`` built,
sleeps what ``Attempts`` says (``time.sleep`` or ``asyncio.sleep``) and hands the bytes that
came back to :func:`api_object` or :meth:`Attempts.error`. So headers, betas, the URL, body
encoding and its limits, key handling, retry rules (:mod:`.retry`) and error mapping are
written once; stream bytes are decoded once too (`streaming.SSEDecoder`).

**Where a platform slots in** (Amazon Bedrock, Google Cloud: :mod:`.platforms`; marked
``# platform:``). :meth:`ClientCore.prepare` is the one place a call becomes a request: the
platform's URL and body (``model`` moved into the URL, ``anthropic_version`` into the body) and
its one-line refusal of what it lacks are made there, once. :meth:`ClientCore.authorize` adds
the credentials to each attempt, since a SigV4 signature covers the final bytes and the time
and a token may expire between retries (the async client runs it in a thread: it may read
files or refresh a token). :meth:`ClientCore.api_object`, :func:`error_from_response` (through
:meth:`Attempts.error`) and :meth:`ClientCore.event_decoder` are where answers are read, in the
platform's terms. Neither client builds a request or parses an answer anywhere else.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import orjson

from .._version import __version__
from ..errors import (
    APIConnectionError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    EndpointNotFoundError,
    MalformedAPIKeyError,
    MissingAPIKeyError,
    RequestBodyError,
    status_error_class,
)
from ..walk import map_strings
from .betas import merge_betas
from .objects import ApiObject
from .platforms import Platform, make_platform
from .retry import (
    INITIAL_RETRY_DELAY,
    MAX_RETRY_DELAY,
    RetryPolicy,
    connection_retry_allowed,
    retry_delay,
    should_retry,
)
from .streaming import EventDecoder, SSEDecoder

if TYPE_CHECKING:
    from .files import Multipart

__all__ = [
    "API_VERSION",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "Attempts",
    "ClientCore",
    "PreparedRequest",
    "api_object",
    "error_from_response",
]

log = logging.getLogger("claude_magics.api")

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=10.0)
DEFAULT_MAX_RETRIES = 2

# What a key can be made of: printable ASCII without spaces (an HTTP header value).
_KEY_CHARS = re.compile(r"[!-~]+")

#: The largest request body the API takes, by endpoint (413 request_too_large beyond it).
_MAX_BODY = {"/v1/messages/batches": 256 * 1024 * 1024}
_MAX_MESSAGE_BODY = 32 * 1024 * 1024


class _Secret:
    """Holds the key so that no repr, ``vars()`` dump or log line can show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__


def _encode(body: Any, path: str) -> bytes:
    """The JSON of a request body, refused in one line when it cannot be sent: text JSON
    cannot carry (lone surrogates), or more bytes than the endpoint takes."""
    try:
        content = orjson.dumps(body)
    except TypeError as exc:
        raise RequestBodyError(
            f"the request cannot be sent: {exc} (text with lone surrogates, from a file read "
            "with errors='surrogateescape' or a non-UTF-8 name: decode it with errors='replace')"
        ) from None
    limit = _MAX_BODY.get(path, _MAX_MESSAGE_BODY)
    if len(content) > limit:
        raise RequestBodyError(
            f"the request is {len(content) / 2**20:.1f} MB, over the {limit // 2**20} MB the API "
            f"takes for {path} (images and PDFs travel as base64, a third larger than the "
            "files): send fewer or smaller attachments"
        )
    return content


@dataclass(frozen=True)
class PreparedRequest:
    """One request exactly as it goes on the wire, whichever client sends it.

    ``content`` is the final body (JSON bytes) or None; an ``upload`` is a multipart body
    produced in pieces for each attempt instead (``chunks()`` / ``achunks()``).
    """

    method: str
    url: str
    path: str
    headers: dict[str, str]
    params: dict[str, Any] = field(default_factory=dict)
    content: bytes | None = None
    upload: Multipart | None = None
    stream: bool = False

    def __repr__(self) -> str:
        # The headers hold the key: never show them.
        return f"PreparedRequest({self.method} {self.url})"


def api_object(
    status: int,
    headers: Mapping[str, str],
    body: bytes | None,
    platform: Platform | None = None,
) -> ApiObject:
    """The JSON object of a 2xx answer, with its request id and headers; a one-line
    ``APIResponseError`` for a body that is not a JSON object."""
    request_id = platform.request_id(headers) if platform else headers.get("request-id")
    try:
        data = orjson.loads(body if body is not None else b"")
    except orjson.JSONDecodeError as exc:
        raise APIResponseError(
            f"the server answered {status} with a body that is not JSON ({type(exc).__name__})",
            request_id=request_id,
        ) from None
    if not isinstance(data, dict):
        raise APIResponseError(
            f"the server answered {status} with JSON that is not an object",
            request_id=request_id,
        )
    if platform is not None:  # platform: a count's ``inputTokens`` and the like
        data = platform.adapt_json(data)
    obj = ApiObject(data)
    obj.request_id = request_id
    obj.response_headers = dict(headers)
    return obj


def error_from_response(
    request: PreparedRequest,
    status: int,
    reason: str,
    headers: Mapping[str, str],
    body: bytes | None,
    attempts: int,
    platform: Platform | None = None,
) -> APIStatusError:
    """The error for a 4xx/5xx answer to ``request``, from the API's error body when it has
    one (``body`` is None when it could not be read), in a cloud platform's own terms when
    there is one."""
    error = _first_party_error(request, status, reason, headers, body, attempts)
    if platform is None:
        return error
    # platform: Bedrock's and Google's error shapes and request-id headers.
    return platform.refine_error(error, status, reason, headers, body)


def _first_party_error(
    request: PreparedRequest,
    status: int,
    reason: str,
    headers: Mapping[str, str],
    body: bytes | None,
    attempts: int,
) -> APIStatusError:
    request_id = headers.get("request-id")
    error_type: str | None = None
    error_code: str | None = None
    message = reason or f"HTTP {status}"
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            error_type = error.get("type") if isinstance(error.get("type"), str) else None
            if isinstance(error.get("message"), str):
                message = error["message"]
            details = error.get("details")
            if isinstance(details, dict) and isinstance(details.get("error_code"), str):
                error_code = details["error_code"]
        if isinstance(data.get("request_id"), str):
            request_id = data["request_id"]
    cls = status_error_class(status)
    if status == 404 and error_type is None:
        # The API's own 404s carry {"type": "error", "error": {"type": "not_found_error"}}; a
        # 404 without one comes from a server that does not route this path at all.
        cls = EndpointNotFoundError
        where = urlsplit(request.url)
        message = (
            f"this server ({where.scheme}://{where.netloc}) "
            f"has no {request.method} {where.path} endpoint ({message})"
        )
    return cls(
        message,
        status_code=status,
        error_type=error_type,
        request_id=request_id,
        headers=dict(headers),
        attempts=attempts,
        error_code=error_code,
    )


class Attempts:
    """The retry decisions for one request, attempt after attempt; the client does the I/O.

    After each failed attempt the client asks how long to wait (``after_transport_error``,
    ``after_status``); None from ``after_status`` means the answer stands: read its body and
    raise :meth:`error`. ``after_transport_error`` raises itself when it may not retry.
    """

    __slots__ = (
        "_base_url",
        "_cap",
        "_initial",
        "_platform",
        "_policy",
        "_retries",
        "number",
        "request",
    )

    def __init__(
        self,
        request: PreparedRequest,
        *,
        policy: RetryPolicy,
        retries: int,
        initial: float,
        cap: float,
        base_url: str,
        platform: Platform | None = None,
    ) -> None:
        self.request = request
        #: Attempts made so far minus one (0 during the first).
        self.number = 0
        self._policy = policy
        self._retries = retries
        self._initial = initial
        self._cap = cap
        self._base_url = base_url
        self._platform = platform

    def after_transport_error(self, exc: httpx.TransportError) -> float:
        """The wait before sending again after ``exc``; raises ``APIConnectionError`` (or
        ``APITimeoutError``) when the request may not, or need not, be sent again."""
        request = self.request
        unsent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
        if connection_retry_allowed(self._policy, unsent) and self.number < self._retries:
            delay = retry_delay(self.number, None, self._initial, self._cap)
            log.debug(
                "%s %s: %s; retrying in %.2fs",
                request.method,
                request.path,
                type(exc).__name__,
                delay,
            )
            self.number += 1
            return delay
        error_cls = (
            APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
        )
        raise error_cls(
            f"{type(exc).__name__} talking to {self._base_url}: {exc}",
            may_have_reached_server=not unsent,
            attempts=self.number + 1,
        ) from exc

    def after_status(self, status: int, headers: Mapping[str, str]) -> float | None:
        """For an answer with ``status``: None when it stands (a 2xx, or an error to raise),
        else the wait before sending again."""
        request = self.request
        log.debug(
            "%s %s -> %s (request id %s, attempt %d)",
            request.method,
            request.path,
            status,
            self._platform.request_id(headers) if self._platform else headers.get("request-id"),
            self.number + 1,
        )
        if 200 <= status < 300:
            return None
        if not should_retry(status, headers, self._policy) or self.number >= self._retries:
            return None
        delay = retry_delay(self.number, headers, self._initial, self._cap)
        log.debug("retrying %s %s in %.2fs", request.method, request.path, delay)
        self.number += 1
        return delay

    def error(
        self, status: int, reason: str, headers: Mapping[str, str], body: bytes | None
    ) -> APIStatusError:
        """The error to raise for an answer that stands and is not a 2xx."""
        return error_from_response(
            self.request, status, reason, headers, body, self.number + 1, self._platform
        )


class ClientCore:
    """The configuration and the sans-I/O half of a client (see the module docstring).

    Args:
        api_key: the key; if omitted, ``os.environ[api_key_env]`` is read at each request,
            so setting the variable later works and the key is never stored on the client.
        base_url: argument > ``ANTHROPIC_BASE_URL`` > ``https://api.anthropic.com``.
        timeout: seconds or an ``httpx.Timeout`` (default 600 s, 10 s to connect).
        max_retries: retries after the first attempt (default 2).
        api_key_env: the environment variable that holds the key.
        api_version: the ``anthropic-version`` header (``2023-06-01``, which every model
            accepts, or ``2026-10-21``).
        betas: beta names sent with every request (``anthropic-beta``); request methods take
            ``betas=`` for one request, and features add the betas they need themselves.
        platform: ``"anthropic"``, ``"bedrock"`` or ``"vertex"``; None: ``CLAUDE_MAGICS_PLATFORM``
            decides (see :mod:`.platforms`). On Bedrock ``api_key`` is a Bedrock API key (sent
            as a bearer token); ``base_url`` replaces the platform's endpoint.
        region, project: where the platform serves (Bedrock: else ``AWS_REGION``,
            ``AWS_DEFAULT_REGION``, the AWS profile; Vertex: else ``CLOUD_ML_REGION`` and
            ``ANTHROPIC_VERTEX_PROJECT_ID``).
        aws_access_key, aws_secret_key, aws_session_token, aws_profile: Bedrock credentials
            instead of the AWS credential chain's.
        access_token: a Google Cloud OAuth token instead of Application Default Credentials.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        api_key_env: str = "ANTHROPIC_API_KEY",
        initial_retry_delay: float = INITIAL_RETRY_DELAY,
        max_retry_delay: float = MAX_RETRY_DELAY,
        api_version: str = API_VERSION,
        betas: Iterable[str] | str = (),
        platform: str | None = None,
        region: str | None = None,
        project: str | None = None,
        aws_access_key: str | None = None,
        aws_secret_key: str | None = None,
        aws_session_token: str | None = None,
        aws_profile: str | None = None,
        access_token: str | None = None,
    ) -> None:
        # platform: Amazon Bedrock or Google Cloud (None: the first-party API).
        self.platform: Platform | None = make_platform(
            platform,
            region=region,
            project=project,
            base_url=base_url,
            api_key=api_key,
            aws_access_key=aws_access_key,
            aws_secret_key=aws_secret_key,
            aws_session_token=aws_session_token,
            aws_profile=aws_profile,
            access_token=access_token,
        )
        if self.platform is not None:
            api_key, base_url = None, self.platform.base_url
        self._explicit_key = _Secret(api_key) if api_key else None
        #: The ``anthropic-beta`` names sent with every request.
        self.betas: tuple[str, ...] = merge_betas(betas)
        self.api_key_env = api_key_env
        resolved = base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL
        self.base_url = resolved.rstrip("/")
        self.max_retries = max(0, int(max_retries))
        self.initial_retry_delay = initial_retry_delay
        self.max_retry_delay = max_retry_delay
        #: The ``anthropic-version`` header sent with every request.
        self.api_version = api_version
        if isinstance(timeout, (int, float)):
            timeout = httpx.Timeout(float(timeout), connect=min(10.0, float(timeout)))
        self.timeout = timeout or DEFAULT_TIMEOUT

    def __repr__(self) -> str:
        betas = f", betas={list(self.betas)!r}" if self.betas else ""
        if self.platform is not None:
            return f"{type(self).__name__}(platform={self.platform!r}{betas})"
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, api_key={self.key_status()}{betas})"
        )

    # -- the key -------------------------------------------------------------------------------

    def key_status(self) -> str:
        """Where the key comes from, never the key: 'set (argument)', 'set (ENV)', 'unset'
        (on a cloud platform: whether its credentials were found, and where)."""
        if self.platform is not None:
            return self.platform.credentials_status()
        if self._explicit_key:
            return "set (argument)"
        if os.environ.get(self.api_key_env):
            return f"set ({self.api_key_env})"
        return f"unset ({self.api_key_env})"

    def _api_key(self) -> str:
        key = self._explicit_key.get() if self._explicit_key else os.environ.get(self.api_key_env)
        # A key pasted from a file or a terminal often brings a trailing newline or spaces.
        key = (key or "").strip()
        if not key:
            raise MissingAPIKeyError(self.api_key_env)
        if not _KEY_CHARS.fullmatch(key):
            raise MalformedAPIKeyError(
                "the api_key argument" if self._explicit_key else self.api_key_env
            )
        return key

    def redact_key(self, value: Any) -> tuple[Any, int]:
        """``value`` (any JSON-like request part) with the active key replaced wherever it
        appears in a string, and how many strings held it: a ``{{os.environ}}`` in a prompt
        must not send the key to the model. The key itself never leaves the client. On Bedrock
        and Vertex, the platform's secrets (AWS secret key, session token, API key, OAuth
        token) are replaced too."""
        secrets: list[tuple[str, str]] = []
        with contextlib.suppress(MissingAPIKeyError):
            secrets.append((self._api_key(), f"<{self.api_key_env}: redacted>"))
        if self.platform is not None:  # platform: its credentials
            secrets += [(secret, f"<{name}: redacted>") for name, secret in self.platform.secrets()]
        if not secrets:
            return value, 0

        def redact(text: str) -> str:
            for secret, marker in secrets:
                text = text.replace(secret, marker)
            return text

        return map_strings(value, redact)

    def request_id_of(self, headers: Mapping[str, str]) -> str | None:
        """The request id an answer carries (``request-id``; Bedrock: ``x-amzn-requestid``)."""
        if self.platform is not None:
            return self.platform.request_id(headers)
        return headers.get("request-id")

    # -- requests ------------------------------------------------------------------------------

    def prepare(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        stream: bool = False,
        betas: Sequence[str] = (),
        upload: Multipart | None = None,
        accept: str | None = None,
    ) -> PreparedRequest:
        """The request for a call, exactly as it goes on the wire: the one place that sets
        headers (key, version, betas), the URL and the body bytes (see the module docstring).

        ``path`` is an API path (``/v1/messages``) or an absolute URL (a batch's
        ``results_url``); ``upload`` is a multipart body sent in pieces instead of ``body``.
        On a cloud platform the platform's URL and body are made here, once (what it lacks is
        refused here, before anything is sent); :meth:`authorize` signs each attempt.
        """
        headers = {
            # platform: Bedrock and Vertex authorize each attempt themselves.
            **({"x-api-key": self._api_key()} if self.platform is None else {}),
            "anthropic-version": self.api_version,
            "content-type": "application/json",
            "accept": accept or ("text/event-stream" if stream else "application/json"),
            "user-agent": f"claude-magics/{__version__} httpx/{httpx.__version__}",
        }
        merged = merge_betas(self.betas, betas)
        if merged:
            headers["anthropic-beta"] = ",".join(merged)
        url = path if path.startswith(("http://", "https://")) else self.base_url + path
        if self.platform is not None:
            # platform: the platform's URL and body (or a one-line refusal of what it lacks).
            if isinstance(body, orjson.Fragment):  # JSON made ahead (jobs): the platform edits it
                body = orjson.loads(orjson.dumps(body))
            url, body = self.platform.route(method, path, body, headers)
        if upload is not None:
            headers["content-type"] = upload.content_type
            headers["content-length"] = str(upload.length)
        return PreparedRequest(
            method=method,
            url=url,
            path=path,
            headers=headers,
            params={k: v for k, v in (params or {}).items() if v is not None},
            content=_encode(body, path) if body is not None else None,
            upload=upload,
            stream=stream,
        )

    def attempts(
        self,
        request: PreparedRequest,
        retry: RetryPolicy = "always",
        max_retries: int | None = None,
    ) -> Attempts:
        """The retry decisions for ``request`` (``max_retries`` overrides the client's)."""
        return Attempts(
            request,
            policy=retry,
            retries=self.max_retries if max_retries is None else max(0, int(max_retries)),
            initial=self.initial_retry_delay,
            cap=self.max_retry_delay,
            base_url=self.base_url,
            platform=self.platform,
        )

    def authorize(self, request: httpx.Request) -> None:
        """Credentials for one attempt of a request whose body is final: nothing to add for
        the first-party API (the key is a header of the prepared request); on a platform, a
        SigV4 signature over the bytes and the time, or a bearer token refreshed before it
        expires. May block on the platform's credential sources (files, a token endpoint)."""
        if self.platform is not None:
            self.platform.authorize(request)

    def api_object(self, status: int, headers: Mapping[str, str], body: bytes | None) -> ApiObject:
        """The API object a 2xx answer carries (see :func:`api_object`)."""
        return api_object(status, headers, body, self.platform)

    def event_decoder(self, content_type: str) -> EventDecoder:
        """A decoder for one streamed answer of ``content_type``: server-sent events
        (`streaming.SSEDecoder`), unless the platform frames it its own way (Bedrock's
        event-stream for InvokeModel models)."""
        if self.platform is not None:
            decoder = self.platform.event_decoder(content_type)
            if decoder is not None:
                return decoder
        return SSEDecoder()
