"""Local files the user names, opened safely: regular files only, never read past a limit.

    path, data = read_regular("notes.txt", 32 * MB, error=PromptError, what="an attachment may be")
    path, handle, size = open_regular("big.csv", 500 * MB, error=RequestBodyError, what="...")

Shared by attachments (``prompt``) and Files API uploads (``api``), which may not import each
other. A device, FIFO, socket or directory is refused before it is opened (``/dev/zero`` would
never end; a FIFO without a writer would hang the kernel), and so is a file over the limit. Each
refusal is one line, raised as the caller's error class so it reaches the user the caller's way.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["MB", "mb", "open_regular", "read_regular"]

MB = 1024 * 1024

#: Builds the caller's exception from a one-line message.
ErrorFactory = Callable[[str], Exception]


def mb(size: int) -> str:
    """Megabytes with one decimal, rounded up: an over-limit size never prints as the limit."""
    return f"{math.ceil(size / MB * 10) / 10:.1f} MB"


def _refuse_kind(mode: int, shown: str, error: ErrorFactory) -> None:
    if stat.S_ISDIR(mode):
        raise error(f"{shown} is a directory, not a file")
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
        raise error(f"{shown} is {kind}, not a regular file: save its content to a file")


def open_regular(
    path: str | os.PathLike[str], limit: int, *, error: ErrorFactory, what: str
) -> tuple[Path, BinaryIO, int]:
    """The resolved path, an open binary handle and the size of a regular file of at most
    ``limit`` bytes; the caller closes the handle.

    ``what`` ends the over-limit message: ``"data.csv is 600.0 MB, over the 500.0 MB {what}"``.
    """
    resolved = Path(path).expanduser()
    shown = os.fspath(path)
    try:
        info = os.stat(resolved)
    except FileNotFoundError:
        raise error(f"no such file: {shown}") from None
    except OSError as exc:
        raise error(f"cannot read {shown}: {exc.strerror or exc}") from None
    _refuse_kind(info.st_mode, shown, error)
    if info.st_size > limit:
        raise error(f"{shown} is {mb(info.st_size)}, over the {mb(limit)} {what}")
    try:
        # O_NONBLOCK: had the path been swapped for a FIFO since the check, open never blocks.
        fd = os.open(resolved, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise error(f"cannot read {shown}: {exc.strerror or exc}") from None
    handle = os.fdopen(fd, "rb")
    try:
        opened = os.fstat(fd)  # what was opened, which is what will be read
        _refuse_kind(opened.st_mode, shown, error)
        if opened.st_size > limit:
            raise error(f"{shown} is {mb(opened.st_size)}, over the {mb(limit)} {what}")
    except BaseException:
        handle.close()
        raise
    return resolved, handle, opened.st_size


def read_regular(
    path: str | os.PathLike[str], limit: int, *, error: ErrorFactory, what: str
) -> tuple[Path, bytes]:
    """The resolved path and the bytes of a regular file of at most ``limit`` bytes (one more
    is read, to tell a file that grew past the limit since it was checked)."""
    resolved, handle, _ = open_regular(path, limit, error=error, what=what)
    shown = os.fspath(path)
    with handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise error(f"cannot read {shown}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise error(f"{shown} is over the {mb(limit)} {what}")
    return resolved, data
