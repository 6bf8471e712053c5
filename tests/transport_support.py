"""An httpx transport for tests that must see what happened to a streamed reply on the wire."""

from __future__ import annotations

from collections.abc import Iterator

import httpx

__all__ = ["WatchingTransport"]


class _WatchedStream(httpx.SyncByteStream):
    """A response body that notes how much of it was read and whether it was read to its end."""

    def __init__(self, inner: httpx.SyncByteStream) -> None:
        self._inner = inner
        self.received = 0
        self.read_to_end = False
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self.received += len(chunk)
            yield chunk
        self.read_to_end = True

    def close(self) -> None:
        self.closed = True
        self._inner.close()


class WatchingTransport(httpx.BaseTransport):
    """The real HTTP transport, keeping a :class:`_WatchedStream` of every streamed reply."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.streams: list[_WatchedStream] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            return response
        assert isinstance(response.stream, httpx.SyncByteStream)
        watched = _WatchedStream(response.stream)
        self.streams.append(watched)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=watched,
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._inner.close()
