"""The HTTP clients everything in claude_magics uses to talk to the Messages API.

    client = Client()                       # key from ANTHROPIC_API_KEY, read at request time
    with client.messages.stream(model=MODEL, max_tokens=512, messages=msgs) as s:
        for text in s.text_stream: print(text, end="")

    async with AsyncClient() as client:     # the same surface, awaited, on httpx.AsyncClient
        message = await client.messages.create(model=MODEL, max_tokens=512, messages=msgs)

Built on an injectable ``httpx.Client`` / ``httpx.AsyncClient`` (or transport), with the retry
rules of the official SDKs: obey ``x-should-retry``; otherwise retry 408, 409, 429, 5xx and
connection errors; wait ``retry-after-ms`` / ``retry-after`` when given (0-60 s), else
jittered exponential backoff. A batch create is never re-sent once it may have reached the
server.

Both clients are a `core.ClientCore`: request building, key handling, retry decisions and error
mapping live there, once, without I/O; this module only sends, sleeps and reads.

API objects come back as plain dicts (``ApiObject``, a dict subclass that also carries the
``request_id`` and the response headers), exactly as the API sent them.

Platforms: ``Client(platform="bedrock", region=...)`` and ``Client(platform="vertex", region=...,
project=...)`` (and ``AsyncClient`` alike) send the same requests to Amazon Bedrock or Google
Cloud (:mod:`.platforms`), through the core's platform hooks.

Betas: ``Client(betas=[...])`` for every request, ``betas=[...]`` on any request method for
one; a feature that needs a beta adds it itself (the Files API: `files.FILES_API_BETA`). They
are merged in that order, without repeats, into one comma-separated ``anthropic-beta`` header.
"""

from __future__ import annotations

import asyncio
import functools
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx

from .core import (
    API_VERSION,
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRIES,
    ClientCore,
    PreparedRequest,
)
from .files import AsyncFiles, Files, Multipart
from .listing import AsyncBatches, AsyncModels, AsyncResultStream, Batches, Models, ResultStream
from .messages import (
    COUNT_TOKENS_FIELDS,
    AsyncMessages,
    AsyncMessageStream,
    Messages,
    MessageStream,
    TokenCount,
)
from .objects import ApiObject, Page, RateLimits
from .retry import INITIAL_RETRY_DELAY, MAX_RETRY_DELAY, RetryPolicy

__all__ = [
    "API_VERSION",
    "COUNT_TOKENS_FIELDS",
    "DEFAULT_BASE_URL",
    "ApiObject",
    "AsyncBatches",
    "AsyncClient",
    "AsyncFiles",
    "AsyncMessageStream",
    "AsyncMessages",
    "AsyncModels",
    "AsyncResultStream",
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

# The connection pool of a client built here. Idle connections kept: at least as many as a
# realtime job keeps in flight (fan-out's ceiling is 64), or each answer beyond the 20th
# closes its connection and the next request opens a new one (measured: 36-171 new
# connections a 500-row job with 20 kept). The official SDK keeps 100.
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100)


def _build(http: httpx.Client | httpx.AsyncClient, request: PreparedRequest) -> httpx.Request:
    """The httpx request for one attempt (an upload's pieces start over each time)."""
    content: Any = request.content
    if request.upload is not None:
        is_async = isinstance(http, httpx.AsyncClient)
        content = request.upload.achunks() if is_async else request.upload.chunks()
    return http.build_request(
        request.method,
        request.url,
        content=content,
        params=request.params,
        headers=request.headers,
    )


class Client(ClientCore):
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
        platform, region, project, aws_access_key, aws_secret_key, aws_session_token,
            aws_profile, access_token: Amazon Bedrock or Google Cloud instead of the
            first-party API (see `core.ClientCore` and :mod:`.platforms`).
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
        super().__init__(
            api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            api_key_env=api_key_env,
            initial_retry_delay=initial_retry_delay,
            max_retry_delay=max_retry_delay,
            api_version=api_version,
            betas=betas,
            platform=platform,
            region=region,
            project=project,
            aws_access_key=aws_access_key,
            aws_secret_key=aws_secret_key,
            aws_session_token=aws_session_token,
            aws_profile=aws_profile,
            access_token=access_token,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(
            timeout=self.timeout, transport=transport, follow_redirects=False, limits=_LIMITS
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
        request = self.prepare(
            method,
            path,
            body=body,
            params=params,
            stream=stream,
            betas=betas,
            upload=upload,
            accept=accept,
        )
        attempts = self.attempts(request, retry, max_retries)
        while True:
            attempt = _build(self._http, request)
            self.authorize(attempt)  # platform: signed, or given a fresh token, per attempt
            try:
                response = self._http.send(attempt, stream=True)
            except httpx.TransportError as exc:
                time.sleep(attempts.after_transport_error(exc))
                continue
            self.rate_limits = RateLimits.from_headers(response.headers)
            wait = attempts.after_status(response.status_code, response.headers)
            if response.is_success:
                if not stream:
                    try:
                        response.read()
                    except httpx.TransportError as exc:
                        # The answer broke off: like a connection error after sending.
                        time.sleep(attempts.after_transport_error(exc))
                        continue
                    finally:
                        response.close()
                return response
            try:
                body_read: bytes | None = response.read()
            except httpx.HTTPError:
                body_read = None
            finally:
                response.close()
            if wait is None:
                raise attempts.error(
                    response.status_code, response.reason_phrase, response.headers, body_read
                )
            time.sleep(wait)

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
        response = self.send(
            method,
            path,
            body=body,
            params=params,
            retry=retry,
            max_retries=max_retries,
            betas=betas,
            upload=upload,
        )
        return self.api_object(response.status_code, response.headers, response.content)


class AsyncClient(ClientCore):
    """`Client` for asyncio: every request method is awaited, streams are ``async with`` /
    ``async for``, on an ``httpx.AsyncClient``. Same arguments, same retries, same errors.

    ``platform="bedrock"`` / ``"vertex"`` work as for `Client`; the platform's credentials are
    looked up and applied in a worker thread (``asyncio.to_thread``), so the AWS credential
    chain or a token refresh does not stall the event loop.

    ``asyncio.gather`` over many calls runs them at once, up to the pool's 100 connections;
    bound them with an ``asyncio.Semaphore`` to stay inside a rate limit (429s are retried
    after the server's ``retry-after`` all the same). Cancelling a task that is waiting on a
    request or reading a stream closes its connection.

    The client may be made outside any event loop (at the top of a notebook) and used in
    several: a connection pool belongs to one loop, so a client built here keeps one pool per
    loop (each ``asyncio.run`` gets its own); one given as ``http_client`` is used as is.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
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
        super().__init__(
            api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            api_key_env=api_key_env,
            initial_retry_delay=initial_retry_delay,
            max_retry_delay=max_retry_delay,
            api_version=api_version,
            betas=betas,
            platform=platform,
            region=region,
            project=project,
            aws_access_key=aws_access_key,
            aws_secret_key=aws_secret_key,
            aws_session_token=aws_session_token,
            aws_profile=aws_profile,
            access_token=access_token,
        )
        self._given_http = http_client
        self._transport = transport
        # The pools of a client built here, one per event loop, made on first use there; an
        # entry goes with its loop.
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]
        self._pools = weakref.WeakKeyDictionary()
        #: The rate-limit headers of the latest response (for adaptive concurrency).
        self.rate_limits: RateLimits = RateLimits()
        self.messages = AsyncMessages(self)
        self.models = AsyncModels(self)
        self.batches = AsyncBatches(self)
        self.files = AsyncFiles(self)

    # -- lifecycle -----------------------------------------------------------------------------

    def _pool_for_loop(self) -> httpx.AsyncClient:
        if self._given_http is not None:
            return self._given_http
        # A connection pool works in the loop it was made in only.
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None or pool.is_closed:
            pool = self._pools[loop] = httpx.AsyncClient(
                timeout=self.timeout,
                transport=self._transport,
                follow_redirects=False,
                limits=_LIMITS,
            )
        return pool

    async def close(self) -> None:
        """Close the connections this client made in the running loop (a given
        ``http_client`` is left open). Pools of loops that have ended cannot be closed from
        here: their sockets close when they are garbage-collected."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- sending with retries ----------------------------------------------------------------

    async def send(
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
        """`Client.send`, awaited: the same request, retries and errors."""
        prepare = functools.partial(
            self.prepare,
            method,
            path,
            body=body,
            params=params,
            stream=stream,
            betas=betas,
            upload=upload,
            accept=accept,
        )
        # platform: routing may look up Application Default Credentials (a file, or the
        # metadata server) for Vertex's project: off the event loop.
        request = prepare() if self.platform is None else await asyncio.to_thread(prepare)
        attempts = self.attempts(request, retry, max_retries)
        http = self._pool_for_loop()
        while True:
            attempt = _build(http, request)
            if self.platform is not None:
                # platform: signed, or given a fresh token, per attempt; in a thread, since the
                # AWS chain or a token refresh may read files or call a token endpoint.
                await asyncio.to_thread(self.authorize, attempt)
            try:
                response = await http.send(attempt, stream=True)
            except httpx.TransportError as exc:
                await asyncio.sleep(attempts.after_transport_error(exc))
                continue
            self.rate_limits = RateLimits.from_headers(response.headers)
            wait = attempts.after_status(response.status_code, response.headers)
            if response.is_success:
                if not stream:
                    try:
                        await response.aread()
                    except httpx.TransportError as exc:
                        await asyncio.sleep(attempts.after_transport_error(exc))
                        continue
                    finally:
                        await response.aclose()
                return response
            try:
                body_read: bytes | None = await response.aread()
            except httpx.HTTPError:
                body_read = None
            finally:
                await response.aclose()
            if wait is None:
                raise attempts.error(
                    response.status_code, response.reason_phrase, response.headers, body_read
                )
            await asyncio.sleep(wait)

    async def request(
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
        response = await self.send(
            method,
            path,
            body=body,
            params=params,
            retry=retry,
            max_retries=max_retries,
            betas=betas,
            upload=upload,
        )
        return self.api_object(response.status_code, response.headers, response.content)
