"""``client.messages``: create a message, stream one, count its tokens.

    message = client.messages.create(model=..., max_tokens=512, messages=msgs)
    with client.messages.stream(model=..., max_tokens=512, messages=msgs) as stream:
        for text in stream.text_stream: print(text, end="")
    client.messages.count_tokens(model=..., messages=msgs)   # -> TokenCount (an int)
    async with async_client.messages.stream(...) as stream:  # AsyncMessages: the same, awaited
        async for text in stream.text_stream: print(text, end="")

A stream always closes its connection, even when the caller stops early; a stream that breaks
keeps what arrived (``APIStreamError.partial``); a server that answers a streaming request with
the whole message as JSON is taken at its word.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from ..errors import APIStreamError
from .betas import body_betas
from .objects import ApiObject
from .streaming import (
    EventDecoder,
    MessageAccumulator,
    SSEDecoder,
    StreamEvent,
    events_of_message,
)

if TYPE_CHECKING:
    from .client import AsyncClient, Client
    from .core import ClientCore

__all__ = [
    "COUNT_TOKENS_FIELDS",
    "AsyncMessageStream",
    "AsyncMessages",
    "MessageStream",
    "Messages",
    "TokenCount",
]

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


class _StreamReading:
    """What a sync and an async stream share, with no I/O: the answer's headers, the bytes
    decoded into events (by the `EventDecoder` the client picks for the answer's content
    type: server-sent events, or Bedrock's event-stream), error frames and breaks turned into
    `APIStreamError` with what arrived, and a whole JSON message taken as the answer."""

    def __init__(self, client: ClientCore, params: dict[str, Any], betas: Sequence[str]) -> None:
        self._core = client
        self._params = params
        self._betas = tuple(betas)
        self.accumulator = MessageAccumulator()
        self.request_id: str | None = None
        self.response_headers: Mapping[str, str] = {}
        self._whole: dict[str, Any] | None = None
        # Chosen when the answer's content type is known (`ClientCore.event_decoder`).
        self._decoder: EventDecoder = SSEDecoder()

    def _request(self) -> dict[str, Any]:
        """The arguments of the client's ``send`` for this stream."""
        return {
            "body": {**self._params, "stream": True},
            "stream": True,
            "betas": self._betas,
        }

    def _started(self, response: httpx.Response) -> bool:
        """Keep the answer's headers; True when it is one JSON document rather than events."""
        self.request_id = self._core.request_id_of(response.headers)
        self.response_headers = dict(response.headers)
        content_type = response.headers.get("content-type", "")
        # Bedrock's InvokeModelWithResponseStream frames the same events in AWS event-stream.
        self._decoder = self._core.event_decoder(content_type)
        return "json" in content_type and "event-stream" not in content_type

    def _take_whole(self, body: bytes | None) -> None:
        """A server that answered the streaming request with one JSON document: the whole
        message (taken as the answer), or a one-line error naming what came instead."""
        try:
            data = orjson.loads(body if body is not None else b"")
        except orjson.JSONDecodeError as exc:
            raise self._fail(
                "the server answered a streaming request with a body that is neither "
                "server-sent events nor JSON",
                "malformed_response",
            ) from exc
        if isinstance(data, dict) and data.get("type") == "message":
            self._whole = data
            return
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

    @property
    def message(self) -> dict[str, Any]:
        """The message accumulated so far (a snapshot)."""
        return self.accumulator.message

    @property
    def text(self) -> str:
        """The answer text received so far."""
        return self.accumulator.text

    def _fail(self, message: str, error_type: str) -> APIStreamError:
        return APIStreamError(
            message,
            error_type=error_type,
            partial=self.accumulator.message if self.accumulator.started else None,
            request_id=self.request_id,
        )

    def _whole_events(self) -> Iterator[StreamEvent]:
        assert self._whole is not None
        feed = self.accumulator.feed
        for data in events_of_message(self._whole):
            event = feed(data)
            if event is not None:
                yield event

    def _events_of(self, chunk: bytes | None) -> Iterator[StreamEvent]:
        """The events a piece of the body completes (None: the body ended), folded into the
        message as they are taken; `APIStreamError` at an error frame or one whose data is
        not JSON (the events before it are yielded first)."""
        feed = self.accumulator.feed
        frames = self._decoder.end() if chunk is None else self._decoder.feed(chunk)
        for name, data in frames:
            if name == "ping":
                continue
            try:
                payload = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise self._fail(
                    f"the server sent a malformed {name or 'message'} event", "malformed_event"
                ) from None
            if name == "error" or payload.get("type") == "error":
                error = payload.get("error") or {}
                raise self._fail(
                    str(error.get("message") or "error event in stream"),
                    str(error.get("type") or "api_error"),
                )
            event = feed(payload)
            if event is not None:
                yield event

    def _broken(self, exc: httpx.TransportError) -> APIStreamError:
        if isinstance(exc, httpx.TimeoutException):
            return self._fail(f"the stream timed out: {exc}", "timeout")
        return self._fail(f"the connection broke mid-stream: {exc}", "connection_error")

    def _check_ended(self) -> None:
        if not self.accumulator.stopped:
            raise self._fail("the stream ended before message_stop", "incomplete_stream")


class MessageStream(_StreamReading):
    """A streaming reply: iterate it for typed events; ``message`` is the message so far.

    Use it as a context manager: the connection is closed on exit, whether the stream ended,
    raised, or was interrupted (Ctrl-C / kernel interrupt). After an error mid-stream,
    ``message`` still holds everything received, and the raised ``APIStreamError.partial``
    has it too.
    """

    def __init__(self, client: Client, params: dict[str, Any], betas: Sequence[str] = ()) -> None:
        super().__init__(client, params, betas)
        self._client = client
        self._response: httpx.Response | None = None
        self._events: Iterator[StreamEvent] | None = None

    def __enter__(self) -> MessageStream:
        self._response = response = self._client.send("POST", "/v1/messages", **self._request())
        if self._started(response):
            try:
                body: bytes | None = response.read()
            except httpx.HTTPError:
                body = None
            finally:
                response.close()
            self._take_whole(body)
        return self

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

    def __iter__(self) -> Iterator[StreamEvent]:
        if self._events is None:
            self._events = self._iter_events()
        return self._events

    def _iter_events(self) -> Iterator[StreamEvent]:
        if self._response is None:
            raise RuntimeError(
                "use the stream as a context manager: with client.messages.stream(...)"
            )
        if self._whole is not None:
            yield from self._whole_events()
            return
        try:
            for chunk in self._response.iter_bytes():
                yield from self._events_of(chunk)
            yield from self._events_of(None)
        except httpx.TransportError as exc:
            raise self._broken(exc) from exc
        finally:
            self.close()
        self._check_ended()

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


class AsyncMessageStream(_StreamReading):
    """The async twin of `MessageStream`: ``async with`` it, ``async for`` its events or its
    ``text_stream``. Cancelling the task that reads it (or leaving the ``async with`` early)
    closes the connection."""

    def __init__(
        self, client: AsyncClient, params: dict[str, Any], betas: Sequence[str] = ()
    ) -> None:
        super().__init__(client, params, betas)
        self._client = client
        self._response: httpx.Response | None = None
        self._events: AsyncIterator[StreamEvent] | None = None

    async def __aenter__(self) -> AsyncMessageStream:
        self._response = response = await self._client.send(
            "POST", "/v1/messages", **self._request()
        )
        if self._started(response):
            try:
                body: bytes | None = await response.aread()
            except httpx.HTTPError:
                body = None
            finally:
                await response.aclose()
            self._take_whole(body)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # A loop left early leaves the events generator suspended: finish it here rather than
        # whenever the event loop's finalizer gets to it.
        events = self._events
        if isinstance(events, AsyncGenerator):
            await events.aclose()
        await self.close()

    async def close(self) -> None:
        if self._response is not None:
            await self._response.aclose()

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        if self._events is None:
            self._events = self._iter_events()
        return self._events

    async def _iter_events(self) -> AsyncIterator[StreamEvent]:
        if self._response is None:
            raise RuntimeError(
                "use the stream as an async context manager: async with client.messages.stream(...)"
            )
        if self._whole is not None:
            for event in self._whole_events():
                yield event
            return
        try:
            async for chunk in self._response.aiter_bytes():
                for event in self._events_of(chunk):
                    yield event
            for event in self._events_of(None):
                yield event
        except httpx.TransportError as exc:
            raise self._broken(exc) from exc
        finally:
            await self.close()
        self._check_ended()

    @property
    async def text_stream(self) -> AsyncIterator[str]:
        """Only the answer text, piece by piece."""
        async for event in self:
            if event.type == "text":
                yield event.text  # type: ignore[union-attr]

    async def until_done(self) -> dict[str, Any]:
        """Consume the rest of the stream and return the final message."""
        async for _ in self:
            pass
        return self.message

    async def get_final_message(self) -> dict[str, Any]:
        return await self.until_done()


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


def _create(params: dict[str, Any], betas: Sequence[str]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The body and betas of a message request (``stream`` is the caller's choice of method)."""
    params.pop("stream", None)
    return params, (*betas, *body_betas(params))


def _count_request(
    params: Mapping[str, Any], betas: Sequence[str]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The body and betas of a token count: only the fields the endpoint takes."""
    body = {k: v for k, v in params.items() if k in COUNT_TOKENS_FIELDS}
    return body, (*betas, *body_betas(body))


def _token_count(result: Mapping[str, Any]) -> TokenCount:
    return TokenCount(int(result["input_tokens"]), estimated=_marked_estimate(result))


class Messages:
    """``client.messages``: create, stream, count_tokens.

    Each takes ``betas=[...]`` (added to the client's ``anthropic-beta`` names); a body that
    names a ``file_id`` brings the Files API's beta with it.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, *, betas: Sequence[str] = (), **params: Any) -> ApiObject:
        """POST /v1/messages and return the Message."""
        body, betas = _create(params, betas)
        return self._client.request("POST", "/v1/messages", body=body, betas=betas)

    def stream(self, *, betas: Sequence[str] = (), **params: Any) -> MessageStream:
        """Stream a Message: ``with client.messages.stream(...) as s: for ev in s: ...``."""
        return MessageStream(self._client, *_create(params, betas))

    def count_tokens(self, *, betas: Sequence[str] = (), **params: Any) -> TokenCount:
        """POST /v1/messages/count_tokens; the input tokens the request would use.

        Pass a whole message body: the fields the endpoint does not take (``max_tokens``,
        ``stream``, sampling, stop sequences, metadata...) are left out here, so every caller
        can count exactly what it would send.
        """
        body, betas = _count_request(params, betas)
        return _token_count(
            self._client.request("POST", "/v1/messages/count_tokens", body=body, betas=betas)
        )


class AsyncMessages:
    """``async_client.messages``: `Messages`, awaited (``stream`` is used with ``async with``)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(self, *, betas: Sequence[str] = (), **params: Any) -> ApiObject:
        """POST /v1/messages and return the Message."""
        body, betas = _create(params, betas)
        return await self._client.request("POST", "/v1/messages", body=body, betas=betas)

    def stream(self, *, betas: Sequence[str] = (), **params: Any) -> AsyncMessageStream:
        """Stream a Message: ``async with client.messages.stream(...) as s: async for ...``."""
        return AsyncMessageStream(self._client, *_create(params, betas))

    async def count_tokens(self, *, betas: Sequence[str] = (), **params: Any) -> TokenCount:
        """POST /v1/messages/count_tokens; see `Messages.count_tokens`."""
        body, betas = _count_request(params, betas)
        return _token_count(
            await self._client.request("POST", "/v1/messages/count_tokens", body=body, betas=betas)
        )
