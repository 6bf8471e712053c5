"""Files uploaded once: a PDF or image used again, or over a size, goes by ``file_id``.

    uploads = Uploads(FileStore(home / "files.sqlite"))
    sent, ids = uploads.by_reference(client, body, above_bytes=256 * 1024)  # a copy of body
    reply = uploads.send(client, body, lambda sent: client.messages.create(**sent), ...)

A request is built with its PDFs and images inline (base64), as the user attached them; only
what goes on the wire refers to uploads. :meth:`Uploads.by_reference` returns a copy of the body
in which each base64 PDF document or image of a turn goes as ``{"type": "file", "file_id": ...}``
when it is bigger than ``above_bytes``, appears twice in the request, was sent before this
session, or is uploaded already; the client adds the Files API beta itself for such a body.
So the request a replay key is made of never names a file id, and a conversation keeps its
documents whatever happens to the uploads.

**The store** (``files.sqlite`` beside the spend ledger) keeps, per server, each uploaded file's
SHA-256 with the id the API gave it, its name, media type, size and upload time; never the key.
Re-runs and other notebooks find the id there and upload nothing. A store that cannot be opened
or written (locked, read-only, a folder in the way) is one line in :attr:`Uploads.notices`, and
the session goes on remembering its uploads in memory; a damaged file is moved aside.

**Gone files.** An id the API no longer knows (deleted in the console, by ``%claude_files
clear``, by another program) answers 404: :meth:`Uploads.send` forgets it, uploads the file
again once and sends the request again. A server without the Files API (a gateway) gets the
documents inline, with one notice.

**Progress.** ``Uploads(store, progress=factory)``: before each upload ``factory(filename,
size)`` gives a bar (or None: no bar), called with ``(bytes_sent, total)`` as the pieces go and
closed when the upload ends, sent or failed. This layer shows nothing itself; the notebook and
jobs pass :func:`claude_magics.jobs.progress.upload_bar` (a tqdm bar for files over 8 MB).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlsplit

from ..errors import (
    ClaudeError,
    EndpointNotFoundError,
    NotFoundError,
    RequestBodyError,
    StorageError,
)
from ..local_files import mb, open_regular
from ..paths import default_home
from ..storage import open_database, storage_error
from .files import MAX_FILE_BYTES

if TYPE_CHECKING:
    from .client import Client
    from .objects import ApiObject

__all__ = ["FileStore", "UploadBar", "UploadProgress", "UploadedFile", "Uploads", "server_of"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    server TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    file_id TEXT NOT NULL,
    filename TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (server, sha256)
);
CREATE INDEX IF NOT EXISTS files_by_id ON files(server, file_id);
"""
_SETTING = "ClaudeMagics.ledger_path (or CLAUDE_MAGICS_HOME)"
_EXTENSIONS = {
    "application/pdf": "pdf",
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_CHUNK = 1024 * 1024
_NOT_IN_NAMES = re.compile(r'[<>:"|?*\\/\x00-\x1f]')


class UploadBar(Protocol):
    """What shows one upload going: called with ``(bytes_sent, total)``, then closed."""

    def __call__(self, sent: int, total: int) -> object: ...

    def close(self) -> None: ...


#: ``progress(filename, size)``: a bar for this upload, or None to show nothing.
UploadProgress = Callable[[str, int], "UploadBar | None"]


def _file_name(name: str, fallback: str) -> str:
    """A name the Files API takes: 1 to 255 characters, none of ``< > : " | ? * \\ /`` or
    control characters (a redacted key's marker has some)."""
    cleaned = _NOT_IN_NAMES.sub("_", name).strip()[:255]
    return cleaned if cleaned.strip("_. ") else fallback


def server_of(base_url: str) -> str:
    """What a file id belongs to: the scheme, host and port of the API it was uploaded to."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclass(frozen=True)
class UploadedFile:
    """A file uploaded to a server's Files API, as the store keeps it."""

    server: str
    sha256: str
    file_id: str
    filename: str
    media_type: str
    size_bytes: int
    #: When the API says it was uploaded (RFC 3339), or the local time when it did not say.
    created_at: str


_COLUMNS = [f.name for f in fields(UploadedFile)]


class FileStore:
    """``files.sqlite``: uploaded files by server and SHA-256. Every failure is a one-line
    :class:`~claude_magics.errors.StorageError`; a damaged file is moved aside (the notice is
    in :attr:`notices`)."""

    def __init__(self, path: str | Path | None = None, *, busy_timeout: float = 5.0) -> None:
        self.path = Path(path) if path is not None else default_home() / "files.sqlite"
        self.busy_timeout = busy_timeout
        self.notices: list[str] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FileStore({str(self.path)!r})"

    @contextmanager
    def _connect(self, action: str = "written") -> Iterator[sqlite3.Connection]:
        with self._lock:
            db, notice = open_database(
                self.path, _SCHEMA, busy_timeout=self.busy_timeout, setting=_SETTING
            )
            if notice:
                self.notices.append(notice)
            try:
                with db:
                    yield db
            except (sqlite3.Error, OSError) as error:
                raise storage_error(self.path, action, error, _SETTING) from None
            finally:
                db.close()

    def find(self, server: str, sha256: str) -> UploadedFile | None:
        with self._connect("read") as db:
            row = db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM files WHERE server = ? AND sha256 = ?",
                (server, sha256),
            ).fetchone()
        return UploadedFile(*row) if row else None

    def add(self, uploaded: UploadedFile) -> None:
        with self._connect() as db:
            db.execute(
                f"INSERT OR REPLACE INTO files ({', '.join(_COLUMNS)}) "
                f"VALUES ({', '.join('?' for _ in _COLUMNS)})",
                astuple(uploaded),
            )

    def forget(self, server: str, file_ids: Sequence[str]) -> int:
        """Drop these ids of ``server``; how many were stored."""
        with self._connect() as db:
            return sum(
                db.execute(
                    "DELETE FROM files WHERE server = ? AND file_id = ?", (server, file_id)
                ).rowcount
                for file_id in file_ids
            )

    def files(self, server: str | None = None) -> list[UploadedFile]:
        """The stored files (of ``server``, or of every server), oldest first."""
        query = f"SELECT {', '.join(_COLUMNS)} FROM files"
        params: tuple[str, ...] = ()
        if server is not None:
            query += " WHERE server = ?"
            params = (server,)
        with self._connect("read") as db:
            rows = db.execute(query + " ORDER BY created_at, rowid", params).fetchall()
        return [UploadedFile(*row) for row in rows]


@dataclass
class _Candidate:
    """A base64 PDF or image of the body that could go by reference."""

    message: int
    block: int
    data: bytes
    sha256: str
    media_type: str
    filename: str


def _candidates(body: Mapping[str, Any]) -> list[_Candidate]:
    found = []
    for m, message in enumerate(body.get("messages") or ()):
        content = message.get("content") if isinstance(message, Mapping) else None
        if not isinstance(content, list):
            continue
        for b, block in enumerate(content):
            source = block.get("source") if isinstance(block, Mapping) else None
            if not isinstance(source, Mapping) or source.get("type") != "base64":
                continue
            kind, media_type = block.get("type"), str(source.get("media_type") or "")
            if not (kind == "image" or (kind == "document" and media_type == "application/pdf")):
                continue
            try:
                data = base64.b64decode(str(source.get("data") or ""), validate=True)
            except (binascii.Error, ValueError):
                continue  # the API will say what is wrong with it
            sha = hashlib.sha256(data).hexdigest()
            title = block.get("title")
            fallback = f"{kind}-{sha[:12]}.{_EXTENSIONS.get(media_type, 'bin')}"
            name = _file_name(title, fallback) if isinstance(title, str) else fallback
            found.append(_Candidate(m, b, data, sha, media_type, name))
    return found


def _replace_sources(body: Mapping[str, Any], ids: Mapping[tuple[int, int], str]) -> dict[str, Any]:
    """A copy of ``body`` whose blocks at ``ids``' places take a ``file`` source (other keys,
    such as ``title``, ``citations`` and ``cache_control``, stay)."""
    sent = dict(body)
    messages = list(sent.get("messages") or ())
    for (m, b), file_id in ids.items():
        message = dict(messages[m])
        content = list(message["content"])
        content[b] = {**content[b], "source": {"type": "file", "file_id": file_id}}
        message["content"] = content
        messages[m] = message
    sent["messages"] = messages
    return sent


def _file_ids(body: Mapping[str, Any]) -> list[str]:
    """The ids a body's ``file`` sources name, in order, each once."""
    ids: dict[str, None] = {}
    for message in body.get("messages") or ():
        for block in message.get("content") or () if isinstance(message, Mapping) else ():
            source = block.get("source") if isinstance(block, Mapping) else None
            if isinstance(source, Mapping) and source.get("type") == "file":
                ids[str(source.get("file_id"))] = None
    return list(ids)


class Uploads:
    """A session's uploads: the :class:`FileStore` (or None: memory only), what was uploaded and
    sent inline this session, and what there is to tell the user (:attr:`notices`)."""

    def __init__(self, store: FileStore | None, *, progress: UploadProgress | None = None) -> None:
        self.store = store
        #: Gives each upload its bar (see the module); None: uploads show nothing.
        self.progress = progress
        #: One line each for the user: a store that failed, a server without the Files API.
        self.notices: list[str] = []
        self._known: dict[tuple[str, str], UploadedFile] = {}
        self._seen: set[str] = set()  # hashes sent inline this session
        self._without_files: set[str] = set()  # servers that have no Files API
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"Uploads(store={self.store!r}, uploaded={len(self._known)})"

    # -- the store, failing softly -------------------------------------------------------------

    def _store_call(self, call: Callable[[FileStore], T], default: T) -> T:
        store = self.store
        if store is None:
            return default
        try:
            return call(store)
        except StorageError as error:
            self.store = None
            self.notices.append(
                f"{error} Uploads are remembered for this session only; files will be "
                "uploaded again after a restart."
            )
            return default
        finally:
            while store.notices:
                self.notices.append(store.notices.pop(0))

    def known(self, client: Client, sha256: str) -> UploadedFile | None:
        """The upload of this content to ``client``'s server, if there is one."""
        key = (server_of(client.base_url), sha256)
        with self._lock:
            if key not in self._known:
                found = self._store_call(lambda s: s.find(*key), None)
                if found is not None:
                    self._known[key] = found
            return self._known.get(key)

    def stored(self, client: Client) -> list[UploadedFile]:
        """What the store and this session know was uploaded to ``client``'s server."""
        server = server_of(client.base_url)
        none: list[UploadedFile] = []
        files = {f.file_id: f for f in self._store_call(lambda s: s.files(server), none)}
        for (where, _), uploaded in self._known.items():
            if where == server:
                files.setdefault(uploaded.file_id, uploaded)
        return list(files.values())

    def _remember(self, uploaded: UploadedFile) -> None:
        self._known[(uploaded.server, uploaded.sha256)] = uploaded
        self._store_call(lambda s: s.add(uploaded), None)

    def forget(self, client: Client, file_ids: Sequence[str]) -> None:
        """Forget these ids (gone from the API): the next use uploads the file again."""
        server = server_of(client.base_url)
        gone = set(file_ids)
        with self._lock:
            for key in [k for k, f in self._known.items() if k[0] == server and f.file_id in gone]:
                del self._known[key]
            self._store_call(lambda s: s.forget(server, list(gone)), 0)

    # -- uploading -----------------------------------------------------------------------------

    def upload(
        self, client: Client, data: bytes, *, filename: str, media_type: str
    ) -> UploadedFile:
        """The upload of ``data`` to ``client``'s server: the one there is, else a new one."""
        sha = hashlib.sha256(data).hexdigest()
        with self._lock:
            found = self.known(client, sha)
            if found is not None:
                return found
            meta = self._send_file(client, data, filename, media_type, len(data))
            return self._record(client, sha, meta, filename, media_type, len(data))

    def upload_path(
        self, client: Client, path: str | os.PathLike[str]
    ) -> tuple[UploadedFile, bool]:
        """Upload a file from disk unless its content is uploaded already (``%claude_files
        upload``); returns it and whether it was uploaded now. The file is hashed in pieces,
        then streamed: a large file is never held in memory."""
        resolved, handle, size = open_regular(
            path, MAX_FILE_BYTES, error=RequestBodyError, what="the Files API takes per file"
        )
        digest = hashlib.sha256()
        with handle:
            for piece in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(piece)
        sha = digest.hexdigest()
        with self._lock:
            found = self.known(client, sha)
            if found is not None:
                return found, False
            name = _file_name(str(client.redact_key(resolved.name)[0]), f"file-{sha[:12]}")
            meta = self._send_file(client, resolved, name, None, size)
            media_type = str(meta.get("mime_type") or "application/octet-stream")
            return self._record(client, sha, meta, name, media_type, size), True

    def _send_file(
        self,
        client: Client,
        file: bytes | Path,
        filename: str,
        media_type: str | None,
        size: int,
    ) -> ApiObject:
        """``client.files.upload`` with this upload's bar, closed however the upload ends."""
        bar = self.progress(filename, size) if self.progress is not None else None
        try:
            return client.files.upload(file, filename=filename, media_type=media_type, progress=bar)
        finally:
            if bar is not None:
                bar.close()

    def _record(
        self,
        client: Client,
        sha: str,
        meta: Mapping[str, Any],
        filename: str,
        media_type: str,
        size: int,
    ) -> UploadedFile:
        import time

        created = meta.get("created_at")
        uploaded = UploadedFile(
            server=server_of(client.base_url),
            sha256=sha,
            file_id=str(meta["id"]),
            # A file name is the user's; the key has no business in it, even by accident.
            filename=str(client.redact_key(str(meta.get("filename") or filename))[0]),
            media_type=str(meta.get("mime_type") or media_type),
            size_bytes=int(meta.get("size_bytes") or size),
            created_at=str(created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
        )
        self._remember(uploaded)
        return uploaded

    # -- requests ------------------------------------------------------------------------------

    def by_reference(
        self,
        client: Client,
        body: Mapping[str, Any],
        *,
        above_bytes: int | None,
        dry_run: bool = False,
        remember: bool = True,
    ) -> tuple[dict[str, Any], list[str]]:
        """A copy of ``body`` whose base64 PDFs and images go by ``file_id`` where that pays
        (see the module), uploading what is not uploaded yet, and the ids it names.
        ``above_bytes`` None turns uploads off (the body goes as it is). ``dry_run`` uploads
        nothing: a file that would be uploaded is named ``<name, N MB: uploaded when sent>``.
        ``remember`` False (a token count or a budget check of the request about to be sent)
        does not count this as a use of the files sent inline."""
        server = server_of(client.base_url)
        found = _candidates(body) if above_bytes is not None else []
        if not found or server in self._without_files:
            return dict(body), []
        uses: dict[str, int] = {}
        for candidate in found:
            uses[candidate.sha256] = uses.get(candidate.sha256, 0) + 1
        ids: dict[tuple[int, int], str] = {}
        with self._lock:
            for candidate in found:
                sha = candidate.sha256
                known = self.known(client, sha)
                wanted = (
                    known is not None
                    or sha in self._seen
                    or uses[sha] > 1
                    or len(candidate.data) > (above_bytes or 0)
                )
                if not wanted:
                    continue
                if known is None and dry_run:
                    ids[(candidate.message, candidate.block)] = (
                        f"<{candidate.filename}, {mb(len(candidate.data))}: uploaded when sent>"
                    )
                    continue
                try:
                    uploaded = known or self.upload(
                        client,
                        candidate.data,
                        filename=candidate.filename,
                        media_type=candidate.media_type,
                    )
                except EndpointNotFoundError:
                    self._without_files.add(server)
                    where = client.platform.label if client.platform else server
                    self.notices.append(
                        f"{where} has no Files API: documents and images go inline "
                        "(base64) in every request."
                    )
                    return dict(body), []
                ids[(candidate.message, candidate.block)] = uploaded.file_id
            if remember and not dry_run:
                self._seen.update(c.sha256 for c in found)
        if not ids:
            return dict(body), []
        sent = _replace_sources(body, ids)
        return sent, _file_ids(sent)

    def gone(self, client: Client, error: NotFoundError, file_ids: Sequence[str]) -> list[str]:
        """Which of ``file_ids`` a 404 is about: those its message names, else those the Files
        API no longer has (asked one by one; none when the 404 is about something else)."""
        if not file_ids or isinstance(error, EndpointNotFoundError):
            return []
        return self.missing(client, file_ids, [str(error.message)])

    def missing(
        self, client: Client, file_ids: Sequence[str], messages: Sequence[str] = ()
    ) -> list[str]:
        """Which of ``file_ids`` the API no longer has: those the error ``messages`` name
        (a 404's "File not found: <id>"), else each asked for by ``files.retrieve``."""
        named = [i for i in file_ids if any(i in message for message in messages)]
        if named:
            return named
        missing = []
        for file_id in file_ids:
            try:
                client.files.retrieve(file_id)
            except NotFoundError:
                missing.append(file_id)
            except ClaudeError:
                continue  # cannot tell: the 404 stands as it is
        return missing

    def send(
        self,
        client: Client,
        body: Mapping[str, Any],
        send: Callable[[dict[str, Any]], T],
        *,
        above_bytes: int | None,
    ) -> T:
        """``send(sent)`` with ``sent`` the body by reference (:meth:`by_reference`); when the
        API answers 404 for an id it no longer knows, that file is uploaded again and the
        request sent once more."""
        sent, ids = self.by_reference(client, body, above_bytes=above_bytes)
        try:
            return send(sent)
        except NotFoundError as error:
            gone = self.gone(client, error, ids)
            if not gone:
                raise
            self.forget(client, gone)
        sent, _ = self.by_reference(client, body, above_bytes=above_bytes)
        return send(sent)
