"""A PDF or image per row (``files=``): read safely, uploaded once, referenced by ``file_id``.

    files = read_files(df["pdf_path"])            # one RowFile per row: path, bytes or URL
    ids, failed = upload_files(files, client, uploads)   # each distinct content uploaded once

A row's file is a path (``str`` or ``os.PathLike``), the file's ``bytes``, or an ``http(s)``
URL (sent as the API's ``url`` source, never fetched here). Paths are opened with
``local_files`` (a directory, device or FIFO is refused before it is opened, nothing read past
the limit). A row whose file cannot be had (missing, unreadable, not a PDF or an image) is
never sent: its status is ``errored:file_error`` with the reason, and the job goes on.

**Keys and the wire.** What a prompt's document *is* (its key block) names the file's SHA-256
(``{"type": "file", "file_id": "sha256:<hex>"}``), so the job's hash and the replay keys
depend on the content, never on an id the API gave. What goes on the wire names the real id,
taken from ``Uploads`` (``files.sqlite`` beside the ledger: a restart or another notebook
uploads nothing again) and kept in the job store with the job.

**Citations.** With ``citations=True`` each document asks for citations. The API refuses
citations together with structured output (``output_config.format``), so such a job asks for
its fields as JSON in the text (the schema in the shared instruction, inside
``<json_schema>`` tags) and reads the citations of the answer's text blocks: a citation
belongs to the field whose key comes last before the cited text (:func:`cited_fields`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ..api.files import MAX_FILE_BYTES
from ..errors import ClaudeError, StorageError
from ..local_files import open_regular
from ..media import sniff_image

if TYPE_CHECKING:
    import pandas as pd

    from ..api.client import Client
    from ..api.uploads import Uploads

__all__ = [
    "DOCUMENT_MARK",
    "FILE_ERROR",
    "RowFile",
    "cited_fields",
    "key_block",
    "read_files",
    "session_uploads",
    "upload_files",
    "wire_block",
]

#: The status of a row whose file could not be had (it is never sent).
FILE_ERROR = "errored:file_error"
#: Stands for a prompt's document in the shared request bytes (replaced per prompt).
DOCUMENT_MARK: dict[str, Any] = {"type": "text", "text": "\x00claude-magics-document\x00"}
DOCUMENT_MARK_BYTES = orjson.dumps(DOCUMENT_MARK)
_KEY_PREFIX = "sha256:"
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
_CHUNK = 1024 * 1024


class _FileError(Exception):
    """Why one row's file cannot be sent (a message for its row, never raised to the user)."""


@dataclass(frozen=True)
class RowFile:
    """One row's file: where it is and what it is, or why it cannot be sent (``error``)."""

    kind: str = "document"  # "document" or "image"
    media_type: str = ""
    sha256: str | None = None
    url: str | None = None
    path: str | None = None
    data: bytes | None = None
    name: str = ""
    size: int = 0
    error: str | None = None

    @property
    def identity(self) -> str:
        """What makes two rows' files the same: the content's hash, the URL, or the error."""
        return self.sha256 or self.url or f"error:{self.error}"


def _media_of(head: bytes) -> tuple[str, str]:
    if head.startswith(b"%PDF-"):
        return "document", "application/pdf"
    image = sniff_image(head)
    if image is not None:
        return "image", image
    raise _FileError("not a PDF or an image (PNG, JPEG, GIF, WebP)")


def _from_path(value: str | os.PathLike[str]) -> RowFile:
    _, handle, size = open_regular(
        value, MAX_FILE_BYTES, error=_FileError, what="the Files API takes per file"
    )
    digest = hashlib.sha256()
    with handle:
        try:
            head = handle.read(64)
            digest.update(head)
            for piece in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(piece)
        except OSError as exc:
            raise _FileError(f"cannot read {os.fspath(value)}: {exc.strerror or exc}") from None
    kind, media_type = _media_of(head)
    name = Path(value).name
    sha = digest.hexdigest()
    return RowFile(kind, media_type, sha, path=os.fspath(value), name=name, size=size)


def _from_bytes(data: bytes) -> RowFile:
    kind, media_type = _media_of(data[:64])
    sha = hashlib.sha256(data).hexdigest()
    suffix = "pdf" if kind == "document" else media_type.split("/")[1]
    name = f"row-{sha[:12]}.{suffix}"
    return RowFile(kind, media_type, sha, data=data, name=name, size=len(data))


def _from_url(url: str) -> RowFile:
    path = url.split("?", 1)[0].split("#", 1)[0].lower()
    kind = "image" if path.endswith(_IMAGE_SUFFIXES) else "document"
    return RowFile(kind, "", url=url, name=url)


def _row_file(value: Any) -> RowFile:
    try:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return _from_bytes(bytes(value))
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return _from_url(value)
        if isinstance(value, (str, os.PathLike)):
            return _from_path(value)
        if value is None or value != value:  # None, NaN, NA
            raise _FileError("no file in this row")
        raise _FileError(f"a {type(value).__name__} is not a path, bytes or a URL")
    except _FileError as error:
        return RowFile(error=str(error))
    except (TypeError, ValueError) as error:  # pd.NA compares ambiguously, and the like
        return RowFile(error=f"no file in this row ({error})")


def read_files(column: pd.Series) -> list[RowFile]:
    """Each row's file, in row order (each distinct path read and hashed once)."""
    seen: dict[Any, RowFile] = {}
    files = []
    for value in column.tolist():
        hashable = isinstance(value, (str, bytes, os.PathLike))
        if hashable and value in seen:
            files.append(seen[value])
            continue
        found = _row_file(value)
        if hashable:
            seen[value] = found
        files.append(found)
    return files


def key_block(row_file: RowFile, *, citations: bool) -> dict[str, Any]:
    """The content block of a row's file as the job's key and the replay keys see it (the
    content's hash in place of an upload's id; :func:`wire_block` gives what is sent)."""
    if row_file.error is not None:
        return {"type": "text", "text": f"(no file: {row_file.error})", "error": row_file.error}
    if row_file.url is not None:
        source: dict[str, Any] = {"type": "url", "url": row_file.url}
    else:
        source = {"type": "file", "file_id": _KEY_PREFIX + str(row_file.sha256)}
    block: dict[str, Any] = {"type": row_file.kind, "source": source}
    if citations and row_file.kind == "document":
        block["citations"] = {"enabled": True}
    return block


def block_error(block: Mapping[str, Any] | None) -> str | None:
    """Why a prompt with this key block is not sent (None: it is)."""
    return None if block is None else block.get("error")


def block_sha(block: Mapping[str, Any] | None) -> str | None:
    """The SHA-256 a key block names (None: a URL, an error, no document)."""
    source = (block or {}).get("source") or {}
    file_id = str(source.get("file_id") or "")
    return file_id.removeprefix(_KEY_PREFIX) if file_id.startswith(_KEY_PREFIX) else None


def wire_block(block: Mapping[str, Any], file_ids: Mapping[str, str]) -> bytes:
    """The key block as sent: the upload's ``file_id`` in place of the hash."""
    sha = block_sha(block)
    if sha is None:
        return orjson.dumps(block)
    return orjson.dumps({**block, "source": {"type": "file", "file_id": file_ids[sha]}})


# Outside IPython: one Uploads per files.sqlite for the process (the magics have their own).
_UPLOADS: dict[str, Uploads] = {}


def session_uploads() -> Uploads:
    """The session's uploads: the magics' when loaded, else one beside the shared ledger."""
    from ..api.uploads import FileStore, Uploads
    from ..config import active_magics, shared_ledger, shared_uploads
    from .progress import upload_bar

    if active_magics() is not None:
        return shared_uploads()
    ledger = shared_ledger()
    path = ledger.path.parent / "files.sqlite"
    if str(path) not in _UPLOADS:
        store = FileStore(path, busy_timeout=ledger.busy_timeout)
        _UPLOADS[str(path)] = Uploads(store, progress=upload_bar)
    return _UPLOADS[str(path)]


def upload_files(
    files: Sequence[RowFile], client: Client, uploads: Uploads
) -> tuple[dict[str, str], dict[str, str]]:
    """Upload each distinct file not uploaded yet: ``({sha256: file_id}, {sha256: why it
    failed})``. Files known to ``uploads`` (this session, or ``files.sqlite``) are not sent."""
    ids: dict[str, str] = {}
    failed: dict[str, str] = {}
    for row_file in files:
        sha = row_file.sha256
        if sha is None or sha in ids or sha in failed:
            continue
        try:
            if row_file.path is not None:
                known = uploads.known(client, sha)
                if known is None:
                    known, _ = uploads.upload_path(client, row_file.path)
                    if known.sha256 != sha:  # changed since it was read: not this row's file
                        raise _FileError(f"{row_file.path} changed while the job was made")
            else:
                known = uploads.upload(
                    client,
                    row_file.data or b"",
                    filename=row_file.name,
                    media_type=row_file.media_type,
                )
            ids[sha] = known.file_id
        except (ClaudeError, _FileError) as error:
            if isinstance(error, StorageError):
                raise
            failed[sha] = str(error).splitlines()[0] if str(error) else type(error).__name__
    return ids, failed


def cited_fields(
    text: str, cites: Sequence[Sequence[Any]], fields: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Which field each citation of a JSON answer is about: ``{field: {"page": ..., "text":
    ...}}`` (the first citation of each). ``cites`` are ``(start, end, page, cited_text)``
    offsets into ``text``; a citation belongs to the field whose key is the last one before
    its start (a text answer, ``fields == ["answer"]``, takes the first citation)."""
    keys = []
    for name in fields:
        quoted = orjson.dumps(name).decode()
        at = text.find(quoted)
        while at != -1:
            keys.append((at, name))
            at = text.find(quoted, at + 1)
    keys.sort()
    found: dict[str, dict[str, Any]] = {}
    for start, _end, page, cited in cites:
        before = [key for at, key in keys if at <= start]
        owner = before[-1] if before else (fields[0] if len(fields) == 1 else None)
        if owner is not None and owner not in found:
            found[owner] = {"page": page, "text": cited}
    return found
