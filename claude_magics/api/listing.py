"""Paginated listings: ``client.models`` and ``client.batches`` (the Message Batches API).

client.models.list(), client.models.get(model_id), client.models.iter_all()
batch = client.batches.create([{"custom_id": "row-1", "params": {...}}])
with client.batches.results(batch["id"]) as lines: ...

The ``Async*`` twins serve `AsyncClient` (``await``, ``async for``, ``async with``); what a
call sends and how its answer is read are the same helpers for both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from ..errors import APIConnectionError
from .betas import body_betas, merge_betas
from .objects import ApiObject, Page

if TYPE_CHECKING:
    from .client import AsyncClient, Client

__all__ = [
    "AsyncBatches",
    "AsyncModels",
    "AsyncResultStream",
    "Batches",
    "Models",
    "ResultStream",
]


def _list_params(limit: int | None, before_id: str | None, after_id: str | None) -> dict[str, Any]:
    return {"limit": limit, "before_id": before_id, "after_id": after_id}


class _Lines:
    """JSON lines from bytes as they arrive. Split on b"\n" only: a JSON string may hold
    U+2028, which str.splitlines splits on."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        self._buffer += chunk
        if b"\n" not in chunk:
            return []
        *lines, self._buffer = self._buffer.split(b"\n")
        return [orjson.loads(line) for line in lines if line.strip()]

    def end(self) -> list[dict[str, Any]]:
        return [orjson.loads(self._buffer)] if self._buffer.strip() else []


def _results_broke(exc: httpx.TransportError) -> APIConnectionError:
    return APIConnectionError(f"the results download broke: {exc}")


def _batch_create(
    requests: Sequence[Mapping[str, Any]], betas: Sequence[str]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The body and betas of a batch create: requests that name a ``file_id`` bring the
    Files API's beta with them."""
    listed = list(requests)
    needed = merge_betas(*(body_betas(r.get("params") or {}) for r in listed))
    return {"requests": listed}, (*betas, *needed)


def _results_url(batch: Mapping[str, Any], batch_id: str) -> str:
    return str(batch.get("results_url") or f"/v1/messages/batches/{batch_id}/results")


class _Listing:
    """A paginated collection: ``list`` one page, ``iter_all`` every item across pages."""

    _path = ""
    #: The betas every call of this collection needs (the Files API's, for files).
    _betas: tuple[str, ...] = ()

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(
        self,
        *,
        limit: int | None = None,
        before_id: str | None = None,
        after_id: str | None = None,
        betas: Sequence[str] = (),
    ) -> Page:
        params = _list_params(limit, before_id, after_id)
        return _page(
            self._client.request("GET", self._path, params=params, betas=(*self._betas, *betas))
        )

    def iter_all(self, *, page_size: int = 100) -> Iterator[ApiObject]:
        return _iter_pages(self.list, page_size)


class Models(_Listing):
    """``client.models``: list and get."""

    _path = "/v1/models"

    def get(self, model_id: str, *, betas: Sequence[str] = ()) -> ApiObject:
        return self._client.request("GET", f"/v1/models/{model_id}", betas=betas)


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
        lines = _Lines()
        try:
            for chunk in self._response.iter_bytes():
                yield from lines.feed(chunk)
            yield from lines.end()
        except httpx.TransportError as exc:
            raise _results_broke(exc) from exc
        finally:
            self.close()


class Batches(_Listing):
    """``client.batches``: the Message Batches API."""

    _path = "/v1/messages/batches"

    def create(
        self, requests: Sequence[Mapping[str, Any]], *, betas: Sequence[str] = ()
    ) -> ApiObject:
        """Create a batch. Never blindly re-sent: a lost response raises
        ``APIConnectionError(may_have_reached_server=True)`` so the caller can check
        ``list()`` before trying again. Requests that name a ``file_id`` bring the Files
        API's beta with them."""
        body, betas = _batch_create(requests, betas)
        return self._client.request(
            "POST", "/v1/messages/batches", body=body, retry="unsent", betas=betas
        )

    def retrieve(self, batch_id: str, *, betas: Sequence[str] = ()) -> ApiObject:
        return self._client.request("GET", f"/v1/messages/batches/{batch_id}", betas=betas)

    def cancel(self, batch_id: str, *, betas: Sequence[str] = ()) -> ApiObject:
        return self._client.request("POST", f"/v1/messages/batches/{batch_id}/cancel", betas=betas)

    def delete(self, batch_id: str, *, betas: Sequence[str] = ()) -> ApiObject:
        return self._client.request("DELETE", f"/v1/messages/batches/{batch_id}", betas=betas)

    def results(self, batch_id: str, *, betas: Sequence[str] = ()) -> ResultStream:
        """Stream the result lines of an ended batch without loading the whole file."""
        batch = self.retrieve(batch_id, betas=betas)
        response = self._client.send("GET", _results_url(batch, batch_id), stream=True, betas=betas)
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


def _iter_pages(list_page: Callable[..., Page], page_size: int) -> Iterator[ApiObject]:
    after: str | None = None
    while True:
        page: Page = list_page(limit=page_size, after_id=after)
        yield from page.data
        if not page.has_more or not page.last_id:
            return
        after = page.last_id


# -- the async twins ----------------------------------------------------------------------------


class _AsyncListing:
    """`_Listing` for `AsyncClient`: ``await list(...)``, ``async for item in iter_all()``."""

    _path = ""
    _betas: tuple[str, ...] = ()

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(
        self,
        *,
        limit: int | None = None,
        before_id: str | None = None,
        after_id: str | None = None,
        betas: Sequence[str] = (),
    ) -> Page:
        params = _list_params(limit, before_id, after_id)
        return _page(
            await self._client.request(
                "GET", self._path, params=params, betas=(*self._betas, *betas)
            )
        )

    async def iter_all(self, *, page_size: int = 100) -> AsyncIterator[ApiObject]:
        after: str | None = None
        while True:
            page = await self.list(limit=page_size, after_id=after)
            for item in page.data:
                yield item
            if not page.has_more or not page.last_id:
                return
            after = page.last_id


class AsyncModels(_AsyncListing):
    """``async_client.models``: list and get."""

    _path = "/v1/models"

    async def get(self, model_id: str, *, betas: Sequence[str] = ()) -> ApiObject:
        return await self._client.request("GET", f"/v1/models/{model_id}", betas=betas)


class AsyncResultStream:
    """Batch result lines for ``async for``, parsed as they arrive. The download starts on
    ``async with`` (or the first ``async for``) and its connection is closed on leaving it,
    at the end of the lines, or when the task reading them is cancelled."""

    def __init__(self, open_response: Callable[[], Awaitable[httpx.Response]]) -> None:
        self._open = open_response
        self._response: httpx.Response | None = None

    async def __aenter__(self) -> AsyncResultStream:
        if self._response is None:
            self._response = await self._open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._response is not None:
            await self._response.aclose()

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        await self.__aenter__()
        assert self._response is not None
        lines = _Lines()
        try:
            async for chunk in self._response.aiter_bytes():
                for line in lines.feed(chunk):
                    yield line
            for line in lines.end():
                yield line
        except httpx.TransportError as exc:
            raise _results_broke(exc) from exc
        finally:
            await self.close()


class AsyncBatches(_AsyncListing):
    """``async_client.batches``: the Message Batches API, awaited (see `Batches`)."""

    _path = "/v1/messages/batches"

    async def create(
        self, requests: Sequence[Mapping[str, Any]], *, betas: Sequence[str] = ()
    ) -> ApiObject:
        """Create a batch; never blindly re-sent (see `Batches.create`)."""
        body, betas = _batch_create(requests, betas)
        return await self._client.request(
            "POST", "/v1/messages/batches", body=body, retry="unsent", betas=betas
        )

    async def retrieve(self, batch_id: str, *, betas: Sequence[str] = ()) -> ApiObject:
        return await self._client.request("GET", f"/v1/messages/batches/{batch_id}", betas=betas)

    async def cancel(self, batch_id: str, *, betas: Sequence[str] = ()) -> ApiObject:
        return await self._client.request(
            "POST", f"/v1/messages/batches/{batch_id}/cancel", betas=betas
        )

    async def delete(self, batch_id: str, *, betas: Sequence[str] = ()) -> ApiObject:
        return await self._client.request("DELETE", f"/v1/messages/batches/{batch_id}", betas=betas)

    def results(self, batch_id: str, *, betas: Sequence[str] = ()) -> AsyncResultStream:
        """The result lines of an ended batch, streamed: ``async with
        client.batches.results(id) as lines: async for line in lines: ...``."""

        async def open_response() -> httpx.Response:
            batch = await self.retrieve(batch_id, betas=betas)
            return await self._client.send(
                "GET", _results_url(batch, batch_id), stream=True, betas=betas
            )

        return AsyncResultStream(open_response)
