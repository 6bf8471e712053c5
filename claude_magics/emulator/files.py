"""The emulator's Files API: files kept in memory (bounded), with the spec's shapes and rules.

    store = FileStore()
    stored = store.upload("sales.csv", "text/csv", data, now, limit=1 << 30)
    store.get(stored.id).metadata()           # the spec's FileMetadataSchema
    name, mime, data = parse_upload(headers["content-type"], body)   # ApiError 400 if malformed
    describe(stored)    # "sales.csv: 120 rows, 3 columns (region, month, revenue)"

The rules, from the spec (May 2026: the Files API is a beta) and Anthropic's Files API docs:

* Every ``/v1/files`` call needs ``anthropic-beta: files-api-2025-04-14`` (`FILES_BETA`);
  without it the path is answered 404, as by an API that has no such endpoint. A message whose
  ``document`` or ``image`` source is ``{"type": "file", "file_id": ...}`` needs it too (without
  it the source tag is the usual 400), and so does a ``container_upload`` block.
* A file is at most 500 MB (`MAX_FILE_BYTES`, 413 beyond); a filename has 1 to 255 characters
  and none of ``< > : " | ? * \\ /`` or control characters (400). The files together may hold at
  most ``EmulatorOptions.files_storage_bytes`` (400 ``storage_quota_exceeded`` beyond).
* Only files the API made can be downloaded (code execution output: ``downloadable: true``);
  an uploaded file's content is a 400 ``File is not downloadable`` (``error_code``
  ``file_not_downloadable``). An unknown or deleted id is 404 ``not_found_error``, in the
  Files API and in messages alike.
* Ids are ``file_`` plus 24 base62 characters, derived from the upload's place in the order of
  uploads and from its name and bytes, so a test run that uploads the same files gets the same
  ids (``reset()`` starts the order again). Listings are newest first.

`describe` is what the code-execution sandbox "sees" of a file passed in with a
``container_upload`` block: a CSV is parsed (the ``csv`` module, nothing executed) for its row
and column counts and header, other text for its lines, anything else for its size.
"""

from __future__ import annotations

import csv
import hashlib
import io
import mimetypes
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from .errors import ApiError
from .media import sniff_image
from .ratelimit import rfc3339

__all__ = [
    "FILES_BETA",
    "MAX_FILE_BYTES",
    "FileStore",
    "StoredFile",
    "created_file_id",
    "describe",
    "not_found",
    "parse_upload",
]

FILES_BETA = "files-api-2025-04-14"
MAX_FILE_BYTES = 500 * 1024 * 1024
#: What a multipart body may add around the file (the request's body limit is this more).
MULTIPART_OVERHEAD = 64 * 1024
MAX_FILENAME = 255
_FORBIDDEN = re.compile(r'[<>:"|?*\\/\x00-\x1f]')
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_PARAM = re.compile(r';\s*([A-Za-z0-9_*.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_SHOWN_COLUMNS = 8


def _file_id(*parts: object) -> str:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    # Real ids start "file_011C"; keeping the look makes fixtures and logs read the same.
    return "file_011C" + "".join(_B62[b % 62] for b in digest[:20])


def created_file_id(*parts: object) -> str:
    """The id of a file the API makes (code execution output), stable for its parts."""
    return _file_id("created", *parts)


def not_found(file_id: str) -> ApiError:
    return ApiError(404, "not_found_error", f"File not found: {file_id}")


def named_files(params: Any) -> frozenset[str]:
    """The Files API ids a request's messages name: ``file`` sources of documents and images,
    and ``container_upload`` blocks (read without judging the rest of the request)."""
    found: set[str] = set()
    messages = params.get("messages") if isinstance(params, dict) else None
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else ():
            if not isinstance(block, dict):
                continue
            source = block.get("source")
            if isinstance(source, dict) and source.get("type") == "file":
                found.add(str(source.get("file_id")))
            elif block.get("type") == "container_upload":
                found.add(str(block.get("file_id")))
    return frozenset(found)


def _micros(timestamp: float) -> str:
    base = rfc3339(timestamp)
    return f"{base[:-1]}.{round((timestamp % 1) * 1_000_000) % 1_000_000:06d}Z"


@dataclass(frozen=True)
class StoredFile:
    """One file the emulator keeps: an upload, or output the sandbox wrote."""

    id: str
    filename: str
    mime_type: str
    data: bytes
    created_at: float
    downloadable: bool
    sequence: int

    def metadata(self) -> dict[str, Any]:
        """The file as the API describes it (FileMetadataSchema)."""
        return {
            "type": "file",
            "id": self.id,
            "filename": self.filename,
            "mime_type": self.mime_type,
            "size_bytes": len(self.data),
            "created_at": _micros(self.created_at),
            "downloadable": self.downloadable,
        }


class FileStore:
    """The files in memory, behind their own lock (messages read them outside the app's)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, StoredFile] = {}
        self._sequence = 0
        self._bytes = 0

    def upload(
        self, filename: str, mime_type: str, data: bytes, now: float, *, limit: int
    ) -> StoredFile:
        """Keep an uploaded file; 400 ``storage_quota_exceeded`` past ``limit`` bytes."""
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            if self._bytes + len(data) > limit:
                raise ApiError(
                    400,
                    "invalid_request_error",
                    f"Storage quota exceeded: {self._bytes + len(data):,} bytes > {limit:,} "
                    "bytes. Delete files to free up space, then retry the upload.",
                    error_code="storage_quota_exceeded",
                )
            self._sequence += 1
            stored = StoredFile(
                _file_id(self._sequence, filename, digest),
                filename,
                mime_type,
                data,
                now,
                downloadable=False,
                sequence=self._sequence,
            )
            self._put(stored)
        return stored

    def create(self, file_id: str, filename: str, mime_type: str, data: bytes, now: float) -> None:
        """Keep a file the API made (downloadable); the same id again replaces it."""
        with self._lock:
            self._sequence += 1
            self._put(StoredFile(file_id, filename, mime_type, data, now, True, self._sequence))

    def _put(self, stored: StoredFile) -> None:
        old = self._files.pop(stored.id, None)
        self._bytes += len(stored.data) - (len(old.data) if old is not None else 0)
        self._files[stored.id] = stored

    def get(self, file_id: str) -> StoredFile | None:
        with self._lock:
            return self._files.get(file_id)

    def find(self, file_id: str) -> StoredFile:
        """The file, or the API's 404."""
        stored = self.get(file_id)
        if stored is None:
            raise not_found(file_id)
        return stored

    def delete(self, file_id: str) -> None:
        with self._lock:
            stored = self._files.pop(file_id, None)
            if stored is None:
                raise not_found(file_id)
            self._bytes -= len(stored.data)

    def newest_first(self) -> list[StoredFile]:
        with self._lock:
            return sorted(self._files.values(), key=lambda f: -f.sequence)

    def clear(self) -> None:
        with self._lock:
            self._files.clear()
            self._sequence = 0
            self._bytes = 0


# --------------------------------------------------------------------------- uploads


def _params(header: str) -> dict[str, str]:
    """The ``; name=value`` parameters of a header (quoted values unescaped, RFC 5987
    ``name*=UTF-8''...`` values decoded and preferred)."""
    found: dict[str, str] = {}
    for name, raw in _PARAM.findall(header):
        value = raw.strip()
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
            # What browsers and httpx escape in a quoted name (WHATWG form encoding).
            value = re.sub(r"%(22|0D|0A)", lambda m: chr(int(m.group(1), 16)), value, flags=re.I)
        name = name.lower()
        if name.endswith("*"):
            _, _, encoded = value.partition("''")
            found[name[:-1]] = unquote(encoded or value, errors="replace")
        elif name not in found:
            found[name] = value
    return found


def _parts(body: bytes, boundary: bytes) -> Iterator[tuple[dict[str, str], bytes]]:
    """The (headers, content) of each part of a multipart body; ValueError when malformed."""
    delimiter = b"--" + boundary
    position = body.find(delimiter)
    if position < 0:
        raise ValueError("no part")
    while True:
        position += len(delimiter)
        if body.startswith(b"--", position):
            return
        if not body.startswith(b"\r\n", position):
            raise ValueError("a boundary not followed by a line break")
        head_end = body.find(b"\r\n\r\n", position)
        if head_end < 0:
            raise ValueError("part headers without an end")
        headers: dict[str, str] = {}
        for line in body[position + 2 : head_end].split(b"\r\n"):
            name, colon, value = line.decode("utf-8", "replace").partition(":")
            if not colon:
                raise ValueError("a part header without a colon")
            headers[name.strip().lower()] = value.strip()
        end = body.find(b"\r\n" + delimiter, head_end + 4)
        if end < 0:
            raise ValueError("a part without a closing boundary")
        yield headers, body[head_end + 4 : end]
        position = end + 2


def _guess_type(filename: str, data: bytes) -> str:
    if b"%PDF-" in data[:1024]:
        return "application/pdf"
    return sniff_image(data) or mimetypes.guess_type(filename)[0] or "application/octet-stream"


def parse_upload(content_type: str, body: bytes) -> tuple[str, str, bytes]:
    """The filename, MIME type and bytes of the ``file`` part of an upload; the API's 400
    for a body that is not multipart/form-data with a well-named file, 413 for a big one."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError.invalid("Content-Type must be multipart/form-data with a file field")
    boundary = _params(content_type).get("boundary", "")
    if not boundary:
        raise ApiError.invalid("Content-Type multipart/form-data needs a boundary")
    found: tuple[str, str, bytes] | None = None
    try:
        for headers, content in _parts(body, boundary.encode("latin-1", "replace")):
            disposition = headers.get("content-disposition", "")
            params = _params(disposition)
            if params.get("name") != "file":
                continue
            filename = params.get("filename")
            if filename is None:
                raise ApiError.invalid("file: must be a file (a form part with a filename)")
            declared = headers.get("content-type", "").split(";")[0].strip().lower()
            if not declared or declared == "application/octet-stream":
                declared = _guess_type(filename, content)
            found = (filename, declared, content)
    except ValueError as exc:
        raise ApiError.invalid(f"Malformed multipart/form-data body: {exc}") from None
    if found is None:
        raise ApiError.invalid("file: Field required")
    filename, mime_type, data = found
    if not filename or len(filename) > MAX_FILENAME:
        raise ApiError.invalid(
            f"filename: must be between 1 and {MAX_FILENAME} characters (got {len(filename)})"
        )
    bad = _FORBIDDEN.search(filename)
    if bad is not None:
        raise ApiError.invalid(
            f"filename: {filename!r} contains the forbidden character {bad.group()!r} "
            '(< > : " | ? * \\ / and control characters are not allowed)'
        )
    if len(data) > MAX_FILE_BYTES:
        raise ApiError(
            413,
            "request_too_large",
            f"File too large: {len(data):,} bytes > {MAX_FILE_BYTES:,} bytes maximum",
        )
    return filename, mime_type, data


# --------------------------------------------------------------------------- the sandbox's view


def _is_table(stored: StoredFile) -> str | None:
    """The delimiter of a CSV or TSV file, or None for anything else."""
    name = stored.filename.lower()
    if name.endswith(".tsv") or stored.mime_type == "text/tab-separated-values":
        return "\t"
    if name.endswith(".csv") or stored.mime_type in ("text/csv", "application/csv"):
        return ","
    return None


def describe(stored: StoredFile) -> str:
    """One line on what the sandbox finds in a file: a CSV's rows (header excluded), columns
    and column names; a text file's lines; otherwise its size and type. Parsing only."""
    name, size = stored.filename, len(stored.data)
    try:
        text = stored.data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return f"{name}: {size:,} bytes ({stored.mime_type})"
    delimiter = _is_table(stored)
    if delimiter is None:
        lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
        return f"{name}: {lines:,} lines, {size:,} bytes"
    header: list[str] | None = None
    rows = 0
    try:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = row
            else:
                rows += 1
    except csv.Error as exc:
        return f"{name}: {size:,} bytes, not a well-formed CSV ({exc})"
    if header is None:
        return f"{name}: an empty CSV file"
    shown = ", ".join(cell.strip() for cell in header[:_SHOWN_COLUMNS])
    more = ", ..." if len(header) > _SHOWN_COLUMNS else ""
    columns = f"{len(header)} column{'s' * (len(header) != 1)}"
    return f"{name}: {rows:,} row{'s' * (rows != 1)}, {columns} ({shown}{more})"
