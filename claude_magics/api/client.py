"""The one HTTP client everything in claude_magics uses to talk to the Messages API.

    client = Client()                       # key from ANTHROPIC_API_KEY, read at request time
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=512, messages=msgs) as s:
        for text in s.text_stream: print(text, end="")

Built on an injectable ``httpx.Client`` (or transport), with the retry rules of the official
SDKs: obey ``x-should-retry``; otherwise retry 408, 409, 429, 5xx and connection errors; wait
``retry-after-ms`` / ``retry-after`` when given (0-60 s), else jittered exponential backoff.
A batch create is never re-sent once it may have reached the server.

API objects come back as plain dicts (``ApiObject``, a dict subclass that also carries the
``request_id`` and the response headers), exactly as the API sent them.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
import orjson
from httpx_sse import EventSource

from .._version import __version__
from ..errors import (
    APIConnectionError,
    APIStatusError,
    APIStreamError,
    APITimeoutError,
    EndpointNotFoundError,
    MissingAPIKeyError,
    status_error_class,
)
from .retry import (
    INITIAL_RETRY_DELAY,
    MAX_RETRY_DELAY,
    RetryPolicy,
    connection_retry_allowed,
    retry_after_seconds,
    retry_delay,
    should_retry,
)
from .streaming import MessageAccumulator, StreamEvent, events_of_message

__all__ = [
    "API_VERSION",
    "COUNT_TOKENS_FIELDS",
    "DEFAULT_BASE_URL",
    "ApiObject",
    "Batches",
    "Client",
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
#: The request fields ``/v1/messages/count_tokens`` accepts (CountMessageTokensParams).
COUNT_TOKENS_FIELDS = frozenset(
    {
        "model",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "output_config",
        "cache_control",
    }
)
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


class ApiObject(dict[str, Any]):
    """A JSON object from the API, as sent, plus the ``request_id`` and response headers."""

    request_id: str | None = None
    response_headers: Mapping[str, str] = {}


@dataclass(frozen=True)
class RateLimits:
    """The ``anthropic-ratelimit-*`` headers of one response (None where absent)."""

    requests_limit: int | None = None
    requests_remaining: int | None = None
    requests_reset: str | None = None
    tokens_limit: int | None = None
    tokens_remaining: int | None = None
    tokens_reset: str | None = None
    input_tokens_limit: int | None = None
    input_tokens_remaining: int | None = None
    input_tokens_reset: str | None = None
    output_tokens_limit: int | None = None
    output_tokens_remaining: int | None = None
    output_tokens_reset: str | None = None
    retry_after: float | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimits:
        values: dict[str, Any] = {}
        for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
            stem = kind.replace("-", "_")
            for part in ("limit", "remaining"):
                raw = headers.get(f"anthropic-ratelimit-{kind}-{part}")
                if raw is not None and raw.strip().isdigit():
                    values[f"{stem}_{part}"] = int(raw)
            reset = headers.get(f"anthropic-ratelimit-{kind}-reset")
            if reset is not None:
                values[f"{stem}_reset"] = reset
        values["retry_after"] = retry_after_seconds(headers)
        return cls(**values)


@dataclass(frozen=True)
class Page:
    """One page of a paginated listing."""

    data: list[ApiObject]
    has_more: bool
    first_id: str | None
    last_id: str | None

    def __iter__(self) -> Iterator[ApiObject]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def _error_from_response(response: httpx.Response, attempts: int) -> APIStatusError:
    """The error for a 4xx/5xx response, from the API's error body when it has one."""
    request_id = response.headers.get("request-id")
    error_type: str | None = None
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
    )


def _api_object(response: httpx.Response) -> ApiObject:
    obj = ApiObject(orjson.loads(response.read()))
    obj.request_id = response.headers.get("request-id")
    obj.response_headers = dict(response.headers)
    return obj


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
    ) -> None:
        self._explicit_key = _Secret(api_key) if api_key else None
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

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r}, api_key={self.key_status()})"

    # -- configuration ---------------------------------------------------------------------

    def key_status(self) -> str:
        """Where the key comes from, never the key: 'set (argument)', 'set (ENV)', 'unset'."""
        if self._explicit_key:
            return "set (argument)"
        if os.environ.get(self.api_key_env):
            return f"set ({self.api_key_env})"
        return f"unset ({self.api_key_env})"

    def _api_key(self) -> str:
        key = self._explicit_key.get() if self._explicit_key else os.environ.get(self.api_key_env)
        if not key:
            raise MissingAPIKeyError(self.api_key_env)
        return key

    def _headers(self, accept: str) -> dict[str, str]:
        return {
            "x-api-key": self._api_key(),
            "anthropic-version": self.api_version,
            "content-type": "application/json",
            "accept": accept,
            "user-agent": f"claude-magics/{__version__} httpx/{httpx.__version__}",
        }

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
    ) -> httpx.Response:
        """Send one request with retries; return a 2xx response or raise an ``APIError``.

        With ``stream=True`` the body is not read; the caller must close the response.
        ``max_retries`` overrides the client's for this request (0: callers that schedule their
        own retries, such as the adaptive fan-out of DataFrame jobs).
        """
        retries = self.max_retries if max_retries is None else max(0, int(max_retries))
        headers = self._headers("text/event-stream" if stream else "application/json")
        content = orjson.dumps(body) if body is not None else None
        url = self._url(path)
        query = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            request = self._http.build_request(
                method, url, content=content, params=query, headers=headers
            )
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
                response.headers.get("request-id"),
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
                raise _error_from_response(response, attempts=attempt + 1)
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
    ) -> ApiObject:
        """Send a request and return the JSON object of its 2xx response."""
        return _api_object(
            self.send(method, path, body=body, params=params, retry=retry, max_retries=max_retries)
        )


class MessageStream:
    """A streaming reply: iterate it for typed events; ``message`` is the message so far.

    Use it as a context manager: the connection is closed on exit, whether the stream ended,
    raised, or was interrupted (Ctrl-C / kernel interrupt). After an error mid-stream,
    ``message`` still holds everything received, and the raised ``APIStreamError.partial``
    has it too.
    """

    def __init__(self, client: Client, params: dict[str, Any]) -> None:
        self._client = client
        self._params = params
        self._response: httpx.Response | None = None
        self._events: Iterator[StreamEvent] | None = None
        self.accumulator = MessageAccumulator()
        self.request_id: str | None = None
        self.response_headers: Mapping[str, str] = {}
        self._whole: dict[str, Any] | None = None

    def __enter__(self) -> MessageStream:
        self._response = self._client.send(
            "POST", "/v1/messages", body={**self._params, "stream": True}, stream=True
        )
        self.request_id = self._response.headers.get("request-id")
        self.response_headers = dict(self._response.headers)
        content_type = self._response.headers.get("content-type", "")
        if "json" in content_type and "event-stream" not in content_type:
            self._whole = self._read_whole(self._response)
        return self

    def _read_whole(self, response: httpx.Response) -> dict[str, Any]:
        """A server that answered the streaming request with one JSON document: the whole
        message (taken as the answer), or a one-line error naming what came instead."""
        try:
            data = orjson.loads(response.read())
        except (orjson.JSONDecodeError, httpx.HTTPError) as exc:
            raise self._fail(
                "the server answered a streaming request with a body that is neither "
                "server-sent events nor JSON",
                "malformed_response",
            ) from exc
        finally:
            response.close()
        if isinstance(data, dict) and data.get("type") == "message":
            return data
        if isinstance(data, dict) and data.get("type") == "error":
            error = data.get("error") or {}
            raise self._fail(
                str(error.get("message") or "the server answered with an error"),
                str(error.get("type") or "api_error"),
            )
        raise self._fail(
            "the server answered a streaming request with JSON that is not a message "
            f"({orjson.dumps(data).decode()[:80]})",
            "malformed_response",
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._response is not None:
            self._response.close()

    @property
    def message(self) -> dict[str, Any]:
        """The message accumulated so far (a snapshot)."""
        return self.accumulator.message

    @property
    def text(self) -> str:
        """The answer text received so far."""
        return self.accumulator.text

    def __iter__(self) -> Iterator[StreamEvent]:
        if self._events is None:
            self._events = self._iter_events()
        return self._events

    def _fail(self, message: str, error_type: str) -> APIStreamError:
        return APIStreamError(
            message,
            error_type=error_type,
            partial=self.accumulator.message if self.accumulator.started else None,
            request_id=self.request_id,
        )

    def _iter_events(self) -> Iterator[StreamEvent]:
        if self._response is None:
            raise RuntimeError(
                "use the stream as a context manager: with client.messages.stream(...)"
            )
        accumulator = self.accumulator
        feed = accumulator.feed
        if self._whole is not None:
            for data in events_of_message(self._whole):
                event = feed(data)
                if event is not None:
                    yield event
            return
        loads = orjson.loads
        try:
            for sse in EventSource(self._response).iter_sse():
                if sse.event == "ping":
                    continue
                try:
                    data = loads(sse.data)
                except orjson.JSONDecodeError:
                    raise self._fail(
                        f"the server sent a malformed {sse.event or 'message'} event",
                        "malformed_event",
                    ) from None
                if sse.event == "error" or data.get("type") == "error":
                    error = data.get("error") or {}
                    raise self._fail(
                        str(error.get("message") or "error event in stream"),
                        str(error.get("type") or "api_error"),
                    )
                event = feed(data)
                if event is not None:
                    yield event
        except httpx.TimeoutException as exc:
            raise self._fail(f"the stream timed out: {exc}", "timeout") from exc
        except httpx.TransportError as exc:
            raise self._fail(f"the connection broke mid-stream: {exc}", "connection_error") from exc
        finally:
            self.close()
        if not accumulator.stopped:
            raise self._fail("the stream ended before message_stop", "incomplete_stream")

    @property
    def text_stream(self) -> Iterator[str]:
        """Only the answer text, piece by piece."""
        for event in self:
            if event.type == "text":
                yield event.text  # type: ignore[union-attr]

    def until_done(self) -> dict[str, Any]:
        """Consume the rest of the stream and return the final message."""
        for _ in self:
            pass
        return self.message

    def get_final_message(self) -> dict[str, Any]:
        return self.until_done()


class TokenCount(int):
    """A token count (an ``int``) that knows whether the server said it is only an estimate.

    The Anthropic API's counts are exact for the request; a gateway that counts with another
    tokenizer says so (``"estimated": true``, or a ``tokenizer_type`` that is not Anthropic's),
    and then ``estimated`` is True and the figure is shown as an estimate.
    """

    estimated: bool

    def __new__(cls, value: int, *, estimated: bool = False) -> TokenCount:
        count = super().__new__(cls, value)
        count.estimated = estimated
        return count


def _marked_estimate(result: Mapping[str, Any]) -> bool:
    if result.get("estimated") is True or result.get("is_estimate") is True:
        return True
    tokenizer = result.get("tokenizer_type") or result.get("tokenizer")
    return isinstance(tokenizer, str) and "anthropic" not in tokenizer.lower()


class Messages:
    """``client.messages``: create, stream, count_tokens."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, **params: Any) -> ApiObject:
        """POST /v1/messages and return the Message."""
        params.pop("stream", None)
        return self._client.request("POST", "/v1/messages", body=params)

    def stream(self, **params: Any) -> MessageStream:
        """Stream a Message: ``with client.messages.stream(...) as s: for ev in s: ...``."""
        params.pop("stream", None)
        return MessageStream(self._client, params)

    def count_tokens(self, **params: Any) -> TokenCount:
        """POST /v1/messages/count_tokens; the input tokens the request would use.

        Pass a whole message body: the fields the endpoint does not take (``max_tokens``,
        ``stream``, sampling, stop sequences, metadata...) are left out here, so every caller
        can count exactly what it would send.
        """
        body = {k: v for k, v in params.items() if k in COUNT_TOKENS_FIELDS}
        result = self._client.request("POST", "/v1/messages/count_tokens", body=body)
        return TokenCount(int(result["input_tokens"]), estimated=_marked_estimate(result))


class _Listing:
    """A paginated collection: ``list`` one page, ``iter_all`` every item across pages."""

    _path = ""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(
        self, *, limit: int | None = None, before_id: str | None = None, after_id: str | None = None
    ) -> Page:
        params = {"limit": limit, "before_id": before_id, "after_id": after_id}
        return _page(self._client.request("GET", self._path, params=params))

    def iter_all(self, *, page_size: int = 100) -> Iterator[ApiObject]:
        return _iter_pages(self.list, page_size)


class Models(_Listing):
    """``client.models``: list and get."""

    _path = "/v1/models"

    def get(self, model_id: str) -> ApiObject:
        return self._client.request("GET", f"/v1/models/{model_id}")


class ResultStream:
    """Batch result lines, parsed one at a time as they arrive; close it (or use ``with``)."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    def __enter__(self) -> ResultStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._response.close()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            # Split on b"\n" only: a JSON string may hold U+2028, which str.splitlines splits on.
            buffer = b""
            for chunk in self._response.iter_bytes():
                buffer += chunk
                if b"\n" not in chunk:
                    continue
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield orjson.loads(line)
            if buffer.strip():
                yield orjson.loads(buffer)
        except httpx.TransportError as exc:
            raise APIConnectionError(f"the results download broke: {exc}") from exc
        finally:
            self.close()


class Batches(_Listing):
    """``client.batches``: the Message Batches API."""

    _path = "/v1/messages/batches"

    def create(self, requests: Sequence[Mapping[str, Any]]) -> ApiObject:
        """Create a batch. Never blindly re-sent: a lost response raises
        ``APIConnectionError(may_have_reached_server=True)`` so the caller can check
        ``list()`` before trying again."""
        return self._client.request(
            "POST", "/v1/messages/batches", body={"requests": list(requests)}, retry="unsent"
        )

    def retrieve(self, batch_id: str) -> ApiObject:
        return self._client.request("GET", f"/v1/messages/batches/{batch_id}")

    def cancel(self, batch_id: str) -> ApiObject:
        return self._client.request("POST", f"/v1/messages/batches/{batch_id}/cancel")

    def delete(self, batch_id: str) -> ApiObject:
        return self._client.request("DELETE", f"/v1/messages/batches/{batch_id}")

    def results(self, batch_id: str) -> ResultStream:
        """Stream the result lines of an ended batch without loading the whole file."""
        batch = self.retrieve(batch_id)
        url = batch.get("results_url") or f"/v1/messages/batches/{batch_id}/results"
        response = self._client.send("GET", url, stream=True)
        return ResultStream(response)


def _page(obj: ApiObject) -> Page:
    data = []
    for item in obj.get("data", []):
        entry = ApiObject(item)
        entry.request_id = obj.request_id
        data.append(entry)
    return Page(
        data=data,
        has_more=bool(obj.get("has_more")),
        first_id=obj.get("first_id"),
        last_id=obj.get("last_id"),
    )


def _iter_pages(list_page: Any, page_size: int) -> Iterator[ApiObject]:
    after: str | None = None
    while True:
        page: Page = list_page(limit=page_size, after_id=after)
        yield from page.data
        if not page.has_more or not page.last_id:
            return
        after = page.last_id
