"""``client.files``: the Files API. Upload a file once, then refer to it by id in messages.

    meta = client.files.upload("sales.csv", progress=lambda sent, total: print(sent, total))
    block = {"type": "container_upload", "file_id": meta["id"]}   # or a document/image source
    client.files.list(), client.files.retrieve(id), client.files.delete(id)
    await async_client.files.upload(...)     # AsyncFiles: the same calls, awaited

The spec (May 2026) has the Files API as a beta: every call here sends
``anthropic-beta: files-api-2025-04-14`` (`FILES_API_BETA`), and so does every message, token
count and batch whose body refers to a ``file_id`` (`betas.body_betas`), so callers never have
to know. Uploads stream from disk in pieces, so
a 500 MB file is never held in memory, and a ``progress(bytes_sent, total)`` callback sees them
go. A device, FIFO or folder, or a file over the API's 500 MB, is refused before anything is
sent, in one line (`RequestBodyError`). ``download`` works only for files the API made (code
execution output); for an uploaded file the API answers 400 ``file_not_downloadable``.
"""

from __future__ import annotations

import io
import mimetypes
import os
import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from ..errors import RequestBodyError
from ..local_files import MB, mb, open_regular
from ..media import sniff_image
from .betas import FILES_API_BETA
from .listing import _AsyncListing, _Listing
from .objects import ApiObject

__all__ = ["FILES_API_BETA", "MAX_FILE_BYTES", "AsyncFiles", "Files", "Multipart", "Progress"]

#: The largest file the API takes.
MAX_FILE_BYTES = 500 * MB
_CHUNK = 1 * MB
_MEDIA_TYPE = re.compile(r"[\w.+-]+/[\w.+-]+")
_SNIFF = 8192

#: ``progress(bytes_sent, total)``: called at the start and after each piece of an upload.
Progress = Callable[[int, int], object]


@dataclass(frozen=True)
class Multipart:
    """A ``multipart/form-data`` body with one ``file`` part, produced in pieces.

    ``chunks()`` starts over each time (a retry sends the file again from its first byte).
    """

    boundary: str
    filename: str
    media_type: str
    size: int
    source: BinaryIO  # read from its start on each attempt
    label: str
    progress: Progress | None = None

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def _head(self) -> bytes:
        name = "".join(
            "%22" if c == '"' else f"%{ord(c):02X}" if ord(c) < 0x20 else c for c in self.filename
        )
        return (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: {self.media_type}\r\n\r\n"
        ).encode()

    def _tail(self) -> bytes:
        return f"\r\n--{self.boundary}--\r\n".encode()

    @property
    def length(self) -> int:
        return len(self._head()) + self.size + len(self._tail())

    def chunks(self) -> Iterator[bytes]:
        """The body in pieces, read from the file as they are sent."""
        yield self._head()
        self.source.seek(0)
        sent = 0
        self._report(sent)
        while sent < self.size:
            piece = self.source.read(min(_CHUNK, self.size - sent))
            if not piece:
                raise RequestBodyError(f"{self.label} got shorter while it was being uploaded")
            yield piece
            sent += len(piece)
            self._report(sent)
        yield self._tail()

    async def achunks(self) -> AsyncIterator[bytes]:
        """`chunks` for an async client (httpx.AsyncClient takes only async bodies). Each
        1 MB read from a local file is short enough to do on the event loop."""
        for piece in self.chunks():
            yield piece

    def _report(self, sent: int) -> None:
        if self.progress is not None:
            self.progress(sent, self.size)


def _media_type(head: bytes, filename: str) -> str:
    """The MIME type of a file from its first bytes, else its name, else text or binary."""
    if b"%PDF-" in head[:1024]:
        return "application/pdf"
    image = sniff_image(head)
    if image is not None:
        return image
    guessed = mimetypes.guess_type(filename)[0]
    if guessed:
        return guessed
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut by the sniffing window
            return "application/octet-stream"
    return "text/plain" if b"\x00" not in head else "application/octet-stream"


def _file_path(file_id: str, tail: str = "") -> str:
    if not isinstance(file_id, str) or not file_id.strip():
        raise RequestBodyError(f"a file id is a non-empty string (file_...), not {file_id!r}")
    return f"/v1/files/{quote(file_id, safe='')}{tail}"


def _multipart(
    file: str | os.PathLike[str] | bytes | bytearray | memoryview,
    filename: str | None,
    media_type: str | None,
    progress: Progress | None,
) -> Multipart:
    """The upload body for ``file`` (its source open: the caller closes it), or a one-line
    `RequestBodyError` before anything is sent."""
    source: BinaryIO
    if isinstance(file, (str, os.PathLike)):
        path, source, size = open_regular(
            file, MAX_FILE_BYTES, error=RequestBodyError, what="the Files API takes per file"
        )
        label = os.fspath(file)
        name = filename or path.name
    elif isinstance(file, (bytes, bytearray, memoryview)):
        size, label = len(file), filename or "the file"
        if size > MAX_FILE_BYTES:
            raise RequestBodyError(
                f"{label} is {mb(size)}, over the {mb(MAX_FILE_BYTES)} the Files API takes per file"
            )
        if not filename:
            raise RequestBodyError("uploading bytes needs a filename= (such as 'data.csv')")
        source, name = io.BytesIO(file), filename
    else:
        raise RequestBodyError(
            f"cannot upload a {type(file).__name__}: pass a path or bytes (with filename=)"
        )
    try:
        if media_type is not None and not _MEDIA_TYPE.fullmatch(media_type):
            raise RequestBodyError(f"media_type {media_type!r} is not a MIME type like text/csv")
        return Multipart(
            boundary=secrets.token_hex(16),
            filename=Path(name).name or name,
            media_type=media_type or _media_type(source.read(_SNIFF), name),
            size=size,
            source=source,
            label=label,
            progress=progress,
        )
    except BaseException:
        source.close()
        raise


_DOWNLOAD_ACCEPT = "application/octet-stream, application/json"


class Files(_Listing):
    """``client.files``: upload, list (paginated), retrieve, download, delete."""

    _path = "/v1/files"
    _betas = (FILES_API_BETA,)

    def upload(
        self,
        file: str | os.PathLike[str] | bytes | bytearray | memoryview,
        *,
        filename: str | None = None,
        media_type: str | None = None,
        progress: Progress | None = None,
        betas: Sequence[str] = (),
    ) -> ApiObject:
        """Upload a file (a path, or bytes with ``filename=``); returns its metadata (``id``).

        The MIME type is ``media_type`` if given, else judged from the first bytes (PDF, PNG,
        JPEG, GIF, WebP), else from the name (``text/csv``...), else text or binary. A path is
        read in 1 MB pieces as it is sent; ``progress(bytes_sent, total)`` is called as they
        go. Refused before sending, in one line: devices, FIFOs, folders, files over 500 MB.
        """
        body = _multipart(file, filename, media_type, progress)
        with body.source:
            # Uploading again after a lost answer at worst leaves a second copy (files are free
            # and listed), so uploads are retried like any other request.
            return self._client.request(
                "POST", self._path, upload=body, betas=(*self._betas, *betas)
            )

    def retrieve(self, file_id: str, *, betas: Sequence[str] = ()) -> ApiObject:
        """A file's metadata: ``id``, ``filename``, ``mime_type``, ``size_bytes``,
        ``created_at``, ``downloadable``."""
        return self._client.request("GET", _file_path(file_id), betas=(*self._betas, *betas))

    def download(self, file_id: str, *, betas: Sequence[str] = ()) -> bytes:
        """The bytes of a file the API created (code execution output). For a file that was
        uploaded the API answers 400 (``error_code == "file_not_downloadable"``)."""
        response = self._client.send(
            "GET",
            _file_path(file_id, "/content"),
            betas=(*self._betas, *betas),
            accept=_DOWNLOAD_ACCEPT,
        )
        return response.content

    def delete(self, file_id: str, *, betas: Sequence[str] = ()) -> ApiObject:
        """Delete a file; returns ``{"id": ..., "type": "file_deleted"}``. Messages that name
        it afterwards get a 404."""
        return self._client.request("DELETE", _file_path(file_id), betas=(*self._betas, *betas))


class AsyncFiles(_AsyncListing):
    """``async_client.files``: `Files`, awaited (``async for`` over ``iter_all()``)."""

    _path = "/v1/files"
    _betas = (FILES_API_BETA,)

    async def upload(
        self,
        file: str | os.PathLike[str] | bytes | bytearray | memoryview,
        *,
        filename: str | None = None,
        media_type: str | None = None,
        progress: Progress | None = None,
        betas: Sequence[str] = (),
    ) -> ApiObject:
        """Upload a file; see `Files.upload`."""
        body = _multipart(file, filename, media_type, progress)
        with body.source:
            return await self._client.request(
                "POST", self._path, upload=body, betas=(*self._betas, *betas)
            )

    async def retrieve(self, file_id: str, *, betas: Sequence[str] = ()) -> ApiObject:
        """A file's metadata; see `Files.retrieve`."""
        return await self._client.request("GET", _file_path(file_id), betas=(*self._betas, *betas))

    async def download(self, file_id: str, *, betas: Sequence[str] = ()) -> bytes:
        """The bytes of a file the API created; see `Files.download`."""
        response = await self._client.send(
            "GET",
            _file_path(file_id, "/content"),
            betas=(*self._betas, *betas),
            accept=_DOWNLOAD_ACCEPT,
        )
        return response.content

    async def delete(self, file_id: str, *, betas: Sequence[str] = ()) -> ApiObject:
        """Delete a file; see `Files.delete`."""
        return await self._client.request(
            "DELETE", _file_path(file_id), betas=(*self._betas, *betas)
        )
