"""The one HTTP client everything in claude_magics uses to talk to the Messages API.

    client = Client()                       # key from ANTHROPIC_API_KEY, read at request time
    with client.messages.stream(model=MODEL, max_tokens=512, messages=msgs) as s:
        for text in s.text_stream: print(text, end="")

Built on an injectable ``httpx.Client`` (or transport), with the retry rules of the official
SDKs: obey ``x-should-retry``; otherwise retry 408, 409, 429, 5xx and connection errors; wait
``retry-after-ms`` / ``retry-after`` when given (0-60 s), else jittered exponential backoff.
A batch create is never re-sent once it may have reached the server.

API objects come back as plain dicts (``ApiObject``, a dict subclass that also carries the
``request_id`` and the response headers), exactly as the API sent them.

Platforms: ``Client(platform="bedrock", region=...)`` and ``Client(platform="vertex", region=...,
project=...)`` send the same requests to Amazon Bedrock or Google Cloud (:mod:`.platforms`); the
client meets the platform at three points, marked ``# platform:`` below.

Betas: ``Client(betas=[...])`` for every request, ``betas=[...]`` on any request method for
one; a feature that needs a beta adds it itself (the Files API: `files.FILES_API_BETA`). They
are merged in that order, without repeats, into one comma-separated ``anthropic-beta`` header.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

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
from .files import Files, Multipart
from .listing import Batches, Models, ResultStream
from .messages import COUNT_TOKENS_FIELDS, Messages, MessageStream, TokenCount
from .objects import ApiObject, Page, RateLimits
from .platforms import Platform, make_platform
from .retry import (
    INITIAL_RETRY_DELAY,
    MAX_RETRY_DELAY,
    RetryPolicy,
    connection_retry_allowed,
    retry_delay,
    should_retry,
)

__all__ = [
    "API_VERSION",
    "COUNT_TOKENS_FIELDS",
    "DEFAULT_BASE_URL",
    "ApiObject",
    "Batches",
    "Client",
    "Files",
    "MessageStream",
    "Messages",
    "Models",
    "Page",
    "RateLimits",
    "ResultStream",
    "TokenCount",
]

log = logging.getLogger("claude_magics.api")

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=10.0)
DEFAULT_MAX_RETRIES = 2


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


def _error_from_response(
    response: httpx.Response, attempts: int, platform: Platform | None = None
) -> APIStatusError:
    """The error for a 4xx/5xx response, from the API's error body when it has one (and in a
    cloud platform's own terms when there is one)."""
    error = _first_party_error(response, attempts)
    # platform: Bedrock's and Google's error shapes and request-id headers.
    return platform.refine_error(error, response) if platform is not None else error


def _first_party_error(response: httpx.Response, attempts: int) -> APIStatusError:
    request_id = response.headers.get("request-id")
    error_type: str | None = None
    error_code: str | None = None
    message = response.reason_phrase or f"HTTP {response.status_code}"
    try:
        body = orjson.loads(response.read())
    except (orjson.JSONDecodeError, httpx.HTTPError):
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            error_type = error.get("type") if isinstance(error.get("type"), str) else None
            if isinstance(error.get("message"), str):
                message = error["message"]
            details = error.get("details")
            if isinstance(details, dict) and isinstance(details.get("error_code"), str):
                error_code = details["error_code"]
        if isinstance(body.get("request_id"), str):
            request_id = body["request_id"]
    cls = status_error_class(response.status_code)
    if response.status_code == 404 and error_type is None:
        # The API's own 404s carry {"type": "error", "error": {"type": "not_found_error"}}; a
        # 404 without one comes from a server that does not route this path at all.
        cls = EndpointNotFoundError
        method = response.request.method
        path = response.request.url.path
        message = (
            f"this server ({response.request.url.scheme}://{response.request.url.netloc.decode()}) "
            f"has no {method} {path} endpoint ({message})"
        )
    return cls(
        message,
        status_code=response.status_code,
        error_type=error_type,
        request_id=request_id,
        headers=dict(response.headers),
        attempts=attempts,
        error_code=error_code,
    )


def _api_object(response: httpx.Response, platform: Platform | None = None) -> ApiObject:
    request_id = (
        platform.request_id(response.headers) if platform else response.headers.get("request-id")
    )
    try:
        data = orjson.loads(response.read())
    except (orjson.JSONDecodeError, httpx.HTTPError) as exc:
        raise APIResponseError(
            f"the server answered {response.status_code} with a body that is not JSON "
            f"({type(exc).__name__})",
            request_id=request_id,
        ) from None
    if not isinstance(data, dict):
        raise APIResponseError(
            f"the server answered {response.status_code} with JSON that is not an object",
            request_id=request_id,
        )
    if platform is not None:  # platform: a count's ``inputTokens`` and the like
        data = platform.adapt_json(response.request.url.path, data)
    obj = ApiObject(data)
    obj.request_id = request_id
    obj.response_headers = dict(response.headers)
    return obj


# What a key can be made of: printable ASCII without spaces (an HTTP header value).
_KEY_CHARS = re.compile(r"[!-~]+")

#: The largest request body the API takes, by endpoint (413 request_too_large beyond it).
_MAX_BODY = {"/v1/messages/batches": 256 * 1024 * 1024}
_MAX_MESSAGE_BODY = 32 * 1024 * 1024


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


class Client:
    """Talks to the Anthropic Messages API (or anything that speaks it, such as the emulator).

    Args:
        api_key: the key; if omitted, ``os.environ[api_key_env]`` is read at each request,
            so setting the variable later works and the key is never stored on the client.
        base_url: argument > ``ANTHROPIC_BASE_URL`` > ``https://api.anthropic.com``.
        timeout: seconds or an ``httpx.Timeout`` (default 600 s, 10 s to connect).
        max_retries: retries after the first attempt (default 2).
        http_client: an ``httpx.Client`` to use (not closed by ``close()``).
        transport: an httpx transport for a client built here (mock transports in tests).
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
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
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
        self.platform = make_platform(
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
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(
            timeout=self.timeout,
            transport=transport,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )
        #: The rate-limit headers of the latest response (for adaptive concurrency).
        self.rate_limits: RateLimits = RateLimits()
        self.messages = Messages(self)
        self.models = Models(self)
        self.batches = Batches(self)
        self.files = Files(self)

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        betas = f", betas={list(self.betas)!r}" if self.betas else ""
        if self.platform is not None:
            return f"Client(platform={self.platform!r}{betas})"
        return f"Client(base_url={self.base_url!r}, api_key={self.key_status()}{betas})"

    # -- configuration ---------------------------------------------------------------------

    def key_status(self) -> str:
        """Where the key comes from, never the key: 'set (argument)', 'set (ENV)', 'unset'."""
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

    def _headers(self, accept: str, betas: Sequence[str] = ()) -> dict[str, str]:
        headers = {
            # platform: Bedrock and Vertex authorize each attempt themselves.
            **({"x-api-key": self._api_key()} if self.platform is None else {}),
            "anthropic-version": self.api_version,
            "content-type": "application/json",
            "accept": accept,
            "user-agent": f"claude-magics/{__version__} httpx/{httpx.__version__}",
        }
        merged = merge_betas(self.betas, betas)
        if merged:
            headers["anthropic-beta"] = ",".join(merged)
        return headers

    def request_id_of(self, headers: Mapping[str, str]) -> str | None:
        """The request id a response carries (``request-id``; Bedrock: ``x-amzn-requestid``)."""
        if self.platform is not None:
            return self.platform.request_id(headers)
        return headers.get("request-id")

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    # -- sending with retries ----------------------------------------------------------------

    def send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        stream: bool = False,
        retry: RetryPolicy = "always",
        max_retries: int | None = None,
        betas: Sequence[str] = (),
        upload: Multipart | None = None,
        accept: str | None = None,
    ) -> httpx.Response:
        """Send one request with retries; return a 2xx response or raise an ``APIError``.

        With ``stream=True`` the body is not read; the caller must close the response.
        ``max_retries`` overrides the client's for this request (0: callers that schedule their
        own retries, such as the adaptive fan-out of DataFrame jobs). ``betas`` are added to
        the client's. ``upload`` is a multipart body sent in pieces instead of ``body``'s JSON
        (made afresh for each attempt).
        """
        retries = self.max_retries if max_retries is None else max(0, int(max_retries))
        headers = self._headers(
            accept or ("text/event-stream" if stream else "application/json"), betas
        )
        url = self._url(path)
        if self.platform is not None:
            # platform: the platform's URL and body (or a one-line refusal of what it lacks).
            if isinstance(body, orjson.Fragment):  # JSON made ahead (jobs): the platform edits it
                body = orjson.loads(orjson.dumps(body))
            url, body = self.platform.route(method, path, body, headers)
        content = _encode(body, path) if body is not None else None
        if upload is not None:
            headers["content-type"] = upload.content_type
            headers["content-length"] = str(upload.length)
        query = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            request = self._http.build_request(
                method,
                url,
                content=upload.chunks() if upload is not None else content,
                params=query,
                headers=headers,
            )
            if self.platform is not None:
                # platform: signed (SigV4) or given a fresh token after the body is final.
                self.platform.authorize(request)
            try:
                response = self._http.send(request, stream=True)
            except httpx.TransportError as exc:
                unsent = isinstance(
                    exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
                )
                may_have_reached = not unsent
                retryable = connection_retry_allowed(retry, unsent)
                if retryable and attempt < retries:
                    delay = retry_delay(
                        attempt, None, self.initial_retry_delay, self.max_retry_delay
                    )
                    log.debug(
                        "%s %s: %s; retrying in %.2fs", method, path, type(exc).__name__, delay
                    )
                    attempt += 1
                    time.sleep(delay)
                    continue
                error_cls = (
                    APITimeoutError
                    if isinstance(exc, httpx.TimeoutException)
                    else APIConnectionError
                )
                raise error_cls(
                    f"{type(exc).__name__} talking to {self.base_url}: {exc}",
                    may_have_reached_server=may_have_reached,
                    attempts=attempt + 1,
                ) from exc
            self.rate_limits = RateLimits.from_headers(response.headers)
            log.debug(
                "%s %s -> %s (request id %s, attempt %d)",
                method,
                path,
                response.status_code,
                self.request_id_of(response.headers),
                attempt + 1,
            )
            if response.is_success:
                if not stream:
                    response.read()
                    response.close()
                return response
            if should_retry(response.status_code, response.headers, retry) and attempt < retries:
                delay = retry_delay(
                    attempt, response.headers, self.initial_retry_delay, self.max_retry_delay
                )
                response.read()
                response.close()
                log.debug("retrying %s %s in %.2fs", method, path, delay)
                attempt += 1
                time.sleep(delay)
                continue
            try:
                raise _error_from_response(response, attempt + 1, self.platform)
            finally:
                response.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        retry: RetryPolicy = "always",
        max_retries: int | None = None,
        betas: Sequence[str] = (),
        upload: Multipart | None = None,
    ) -> ApiObject:
        """Send a request and return the JSON object of its 2xx response."""
        return _api_object(
            self.send(
                method,
                path,
                body=body,
                params=params,
                retry=retry,
                max_retries=max_retries,
                betas=betas,
                upload=upload,
            ),
            self.platform,
        )
