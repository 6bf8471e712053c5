"""``client.messages``: create a message, stream one, count its tokens.

    message = client.messages.create(model=..., max_tokens=512, messages=msgs)
    with client.messages.stream(model=..., max_tokens=512, messages=msgs) as stream:
        for text in stream.text_stream: print(text, end="")
    client.messages.count_tokens(model=..., messages=msgs)   # -> TokenCount (an int)

A stream always closes its connection, even when the caller stops early; a stream that breaks
keeps what arrived (``APIStreamError.partial``); a server that answers a streaming request with
the whole message as JSON is taken at its word.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx
import orjson
from httpx_sse import EventSource

from ..errors import APIStreamError
from .betas import body_betas
from .objects import ApiObject
from .platforms.eventstream import EVENTSTREAM_CONTENT_TYPE, bedrock_sse_events
from .streaming import MessageAccumulator, StreamEvent, events_of_message

if TYPE_CHECKING:
    from .client import Client

__all__ = ["COUNT_TOKENS_FIELDS", "MessageStream", "Messages", "TokenCount"]

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


class MessageStream:
    """A streaming reply: iterate it for typed events; ``message`` is the message so far.

    Use it as a context manager: the connection is closed on exit, whether the stream ended,
    raised, or was interrupted (Ctrl-C / kernel interrupt). After an error mid-stream,
    ``message`` still holds everything received, and the raised ``APIStreamError.partial``
    has it too.
    """

    def __init__(self, client: Client, params: dict[str, Any], betas: Sequence[str] = ()) -> None:
        self._client = client
        self._params = params
        self._betas = tuple(betas)
        self._response: httpx.Response | None = None
        self._events: Iterator[StreamEvent] | None = None
        self.accumulator = MessageAccumulator()
        self.request_id: str | None = None
        self.response_headers: Mapping[str, str] = {}
        self._whole: dict[str, Any] | None = None

    def __enter__(self) -> MessageStream:
        self._response = self._client.send(
            "POST",
            "/v1/messages",
            body={**self._params, "stream": True},
            stream=True,
            betas=self._betas,
        )
        self.request_id = self._client.request_id_of(self._response.headers)
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
        content_type = self._response.headers.get("content-type", "")
        # Bedrock's InvokeModelWithResponseStream frames the same events in AWS event-stream.
        source = (
            bedrock_sse_events(self._response)
            if EVENTSTREAM_CONTENT_TYPE in content_type
            else EventSource(self._response).iter_sse()
        )
        try:
            for sse in source:
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
    """``client.messages``: create, stream, count_tokens.

    Each takes ``betas=[...]`` (added to the client's ``anthropic-beta`` names); a body that
    names a ``file_id`` brings the Files API's beta with it.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, *, betas: Sequence[str] = (), **params: Any) -> ApiObject:
        """POST /v1/messages and return the Message."""
        params.pop("stream", None)
        return self._client.request(
            "POST", "/v1/messages", body=params, betas=(*betas, *body_betas(params))
        )

    def stream(self, *, betas: Sequence[str] = (), **params: Any) -> MessageStream:
        """Stream a Message: ``with client.messages.stream(...) as s: for ev in s: ...``."""
        params.pop("stream", None)
        return MessageStream(self._client, params, (*betas, *body_betas(params)))

    def count_tokens(self, *, betas: Sequence[str] = (), **params: Any) -> TokenCount:
        """POST /v1/messages/count_tokens; the input tokens the request would use.

        Pass a whole message body: the fields the endpoint does not take (``max_tokens``,
        ``stream``, sampling, stop sequences, metadata...) are left out here, so every caller
        can count exactly what it would send.
        """
        body = {k: v for k, v in params.items() if k in COUNT_TOKENS_FIELDS}
        result = self._client.request(
            "POST", "/v1/messages/count_tokens", body=body, betas=(*betas, *body_betas(body))
        )
        return TokenCount(int(result["input_tokens"]), estimated=_marked_estimate(result))
