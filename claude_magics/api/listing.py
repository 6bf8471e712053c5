"""Paginated listings: ``client.models`` and ``client.batches`` (the Message Batches API).

client.models.list(), client.models.get(model_id), client.models.iter_all()
batch = client.batches.create([{"custom_id": "row-1", "params": {...}}])
with client.batches.results(batch["id"]) as lines: ...
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from ..errors import APIConnectionError
from .betas import body_betas, merge_betas
from .objects import ApiObject, Page

if TYPE_CHECKING:
    from .client import Client

__all__ = ["Batches", "Models", "ResultStream"]


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
        params = {"limit": limit, "before_id": before_id, "after_id": after_id}
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

    def create(
        self, requests: Sequence[Mapping[str, Any]], *, betas: Sequence[str] = ()
    ) -> ApiObject:
        """Create a batch. Never blindly re-sent: a lost response raises
        ``APIConnectionError(may_have_reached_server=True)`` so the caller can check
        ``list()`` before trying again. Requests that name a ``file_id`` bring the Files
        API's beta with them."""
        requests = list(requests)
        needed = merge_betas(*(body_betas(r.get("params") or {}) for r in requests))
        return self._client.request(
            "POST",
            "/v1/messages/batches",
            body={"requests": requests},
            retry="unsent",
            betas=(*betas, *needed),
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
        url = batch.get("results_url") or f"/v1/messages/batches/{batch_id}/results"
        response = self._client.send("GET", url, stream=True, betas=betas)
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
