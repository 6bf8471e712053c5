"""``%claude_files``: the files ``%%claude`` uploaded once and sends by id (the Files API).

    show_files(magics.uploads, magics.client, check=True)   # %claude_files list --check
    upload_file(uploads, client, "report.pdf")              # %claude_files upload report.pdf
    delete_file(uploads, client, "file_011C..."), clear_files(uploads, client)

What is listed is what ``files.sqlite`` (beside the spend ledger) and this session know was
uploaded to the current server (see :mod:`claude_magics.api.uploads`); deleting removes a file
from the API and from the store, so the next use of its content uploads it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from IPython.core.error import UsageError

from ..errors import NotFoundError, RequestBodyError
from ..local_files import mb
from .views import display

if TYPE_CHECKING:
    from ..api.client import Client
    from ..api.uploads import UploadedFile, Uploads

__all__ = ["clear_files", "delete_file", "show_files", "upload_file"]


def _size(size: int) -> str:
    return f"{size / 1024:,.1f} KB" if size < 1024 * 1024 else mb(size)


def _when(created_at: str) -> str:
    """``2026-12-02T14:03:11.5Z`` as ``2026-12-02 14:03`` (UTC, as the API gives it)."""
    return created_at[:16].replace("T", " ") if len(created_at) >= 16 else created_at


def _show(markdown: str, plain: str) -> None:
    display({"text/markdown": markdown, "text/plain": plain}, raw=True)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


def _on_api(client: Client, file_id: str) -> str:
    try:
        client.files.retrieve(file_id)
    except NotFoundError:
        return "no"
    return "yes"


def show_files(uploads: Uploads, client: Client, *, check: bool = False) -> None:
    """``%claude_files list``: name, size, id and upload time of each file; with ``check``,
    whether the API still has it (those it has not are forgotten: their next use uploads
    them again)."""
    from ..api.uploads import server_of

    server = server_of(client.base_url)
    files = uploads.stored(client)
    where = f"in {uploads.store.path}" if uploads.store is not None else "this session"
    if not files:
        plain = f"No files uploaded to {server} ({where})."
        display({"text/plain": plain}, raw=True)
        return
    header = ["name", "size", "id", "created (UTC)"] + (["on the API"] if check else [])
    rows = []
    gone = []
    for f in files:
        row = [f.filename, _size(f.size_bytes), f.file_id, _when(f.created_at)]
        if check:
            state = _on_api(client, f.file_id)
            row.append(state)
            if state == "no":
                gone.append(f.file_id)
        rows.append(row)
    total = sum(f.size_bytes for f in files)
    notes = [f"{len(files)} file{'s' * (len(files) != 1)}, {_size(total)}, on {server} ({where})."]
    if gone:
        uploads.forget(client, gone)
        notes.append(
            f"{len(gone)} the API no longer has {'were' if len(gone) != 1 else 'was'} "
            "forgotten: the next use uploads again."
        )
    md = "| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n"
    md += "\n".join("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    plain = "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )
    _show(md + "\n\n" + " ".join(notes), plain + "\n\n" + " ".join(notes))


def upload_file(uploads: Uploads, client: Client, path: str) -> None:
    """``%claude_files upload PATH``: upload a file unless the same content is uploaded."""
    try:
        uploaded, new = uploads.upload_path(client, path)
    except RequestBodyError as error:  # no such file, a folder or device, over 500 MB
        raise UsageError(f"%claude_files upload: {error}") from None
    size = _size(uploaded.size_bytes)
    if new:
        print(f"Uploaded {uploaded.filename} ({size}) as {uploaded.file_id}.")
    else:
        print(
            f"{path}: the same content is uploaded already, as {uploaded.file_id} "
            f"({uploaded.filename}, {size}); nothing was sent."
        )


def _named(uploads: Uploads, client: Client, file_id: str) -> UploadedFile | None:
    return next((f for f in uploads.stored(client) if f.file_id == file_id), None)


def delete_file(uploads: Uploads, client: Client, file_id: str) -> None:
    """``%claude_files delete ID``: delete the file from the API and forget it."""
    known = _named(uploads, client, file_id)
    name = f" ({known.filename})" if known is not None else ""
    try:
        client.files.delete(file_id)
    except NotFoundError:
        if known is None:
            # Neither the API nor files.sqlite knows it: a typo, most likely.
            raise UsageError(
                f"%claude_files delete {file_id}: no such file on the API or in files.sqlite; "
                "%claude_files list shows the ids"
            ) from None
        uploads.forget(client, [file_id])
        print(f"{file_id}{name} was not on the API any more; forgotten.")
        return
    uploads.forget(client, [file_id])
    print(f"Deleted {file_id}{name}.")


def clear_files(uploads: Uploads, client: Client) -> None:
    """``%claude_files clear``: delete every stored file of this server from the API and
    forget them all (each is uploaded again when next used)."""
    files = uploads.stored(client)
    deleted, gone = [], []
    try:
        for f in files:
            try:
                client.files.delete(f.file_id)
            except NotFoundError:
                gone.append(f.file_id)
            else:
                deleted.append(f.file_id)
    finally:
        uploads.forget(client, deleted + gone)
    extra = f" ({len(gone)} were gone already)" if gone else ""
    print(
        f"Deleted {len(deleted)} file{'s' * (len(deleted) != 1)} from the API{extra} and "
        "forgot them."
    )
