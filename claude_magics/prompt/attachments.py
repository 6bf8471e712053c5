"""Attachments as content blocks: images, PDFs, text files and search results, checked before
they are sent.

    image_block("chart.png"), pdf_block("paper.pdf", cite=True), file_block("notes.txt")
    search_result_blocks([{"source": "kb://7", "title": "Refunds", "content": "..."}])

Type from magic bytes, size against the API's limits (measured on the base64 text), pages of a
PDF: nothing doomed is ever sent. ``cite=True`` asks the API to cite the document (page ranges
for a PDF, character ranges for text); search results are always sent to be cited.
"""

from __future__ import annotations

import base64
import io
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import PromptError
from ..local_files import mb, read_regular
from ..media import sniff_image
from .dataframes import ContentBlock

_MB = 1024 * 1024
# The API measures the image's base64 text against 5 MB ("image.source.base64: image exceeds
# 5 MB maximum: N bytes > 5242880 bytes"), so a 4 MB PNG is already too big.
_IMAGE_MAX_ENCODED = 5 * _MB
# A request is at most 32 MB, and a PDF travels inside it as base64.
_PDF_MAX_ENCODED = 32 * _MB
_PDF_MAX_PAGES = 100
_TEXT_MAX_BYTES = 32 * _MB
_TITLE_MAX = 500  # RequestDocumentBlock.title: maxLength 500 in the API spec


__all__ = ["CITATIONS_ON", "file_block", "image_block", "pdf_block", "search_result_blocks"]

#: What turns citations on for a document or a search result (RequestCitationsConfig).
CITATIONS_ON = {"enabled": True}


def _read_file(path: str | os.PathLike[str], limit: int) -> tuple[Path, bytes]:
    """The bytes of a regular file, at most ``limit`` of them: devices, FIFOs, sockets and
    directories are refused before they are opened (see `claude_magics.local_files`)."""
    return read_regular(path, limit, error=PromptError, what="an attachment may be")


def _raw_limit(encoded_limit: int) -> int:
    """The most raw bytes worth reading for a base64 limit: a little over what could pass, so
    an over-limit file still gets the precise "N MB once encoded" message."""
    return encoded_limit * 3 // 4 + 1024


def _is_pdf(data: bytes) -> bool:
    # Readers accept the header anywhere in the first 1024 bytes (some writers put junk first).
    return b"%PDF-" in data[:1024]


def _encoded_size(size: int) -> int:
    return 4 * -(-size // 3)


def _check_encoded_size(data: bytes, label: str, limit: int, what: str) -> None:
    encoded = _encoded_size(len(data))
    if encoded > limit:
        raise PromptError(
            f"{label} is {mb(len(data))}, {mb(encoded)} once base64-encoded; the API accepts "
            f"{what} up to {limit // _MB} MB encoded (about {limit * 3 / 4 / _MB:.3g} MB of "
            "raw bytes)"
        )


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def image_block(value: Any) -> ContentBlock:
    """An image content block from a path, PNG/JPEG/GIF/WebP bytes, a PIL image or a matplotlib
    figure (saved as PNG; ``bbox_inches="tight"`` for figures).

    The media type comes from the bytes' magic number, not the file name. Raises
    :class:`PromptError` for a missing file, another format, or more than the API's 5 MB.
    """
    label = "the image"
    if isinstance(value, (str, os.PathLike)):
        _, data = _read_file(value, _raw_limit(_IMAGE_MAX_ENCODED))
        label = str(value)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    elif hasattr(value, "savefig"):  # a matplotlib Figure (duck-typed: no matplotlib import)
        buffer = io.BytesIO()
        value.savefig(buffer, format="png", bbox_inches="tight")
        data = buffer.getvalue()
    elif all(hasattr(value, a) for a in ("save", "mode", "size")):  # a PIL Image, not any .save
        buffer = io.BytesIO()
        try:
            value.save(buffer, format="PNG")
        except (OSError, ValueError, KeyError) as exc:
            raise PromptError(f"cannot save the {type(value).__name__} as PNG: {exc}") from exc
        data = buffer.getvalue()
    else:
        raise PromptError(
            f"cannot make an image from a {type(value).__name__}: pass a path, PNG/JPEG/GIF/WebP "
            "bytes, a PIL image or a matplotlib figure"
        )
    media_type = sniff_image(data)
    if media_type is None:
        extra = "; it is a PDF: attach it with --pdf" if _is_pdf(data) else ""
        raise PromptError(
            f"{label} is not a PNG, JPEG, GIF or WebP image (judged by its first bytes, not its "
            f"name){extra}"
        )
    _check_encoded_size(data, label, _IMAGE_MAX_ENCODED, "images")
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": media_type, "data": _base64(data)},
    }


_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")
_PDF_COUNT = re.compile(rb"/Count\s+(\d+)")


def _pdf_pages(data: bytes) -> int | None:
    """About how many pages a PDF has, or None when it cannot be told.

    Approximate: counts ``/Type /Page`` objects (not ``/Pages``). Page objects packed into
    compressed object streams are invisible to this scan, in which case the largest ``/Count``
    of the page tree is used; old page objects kept by incremental updates can overcount.
    """
    pages = len(_PDF_PAGE.findall(data))
    if pages:
        return pages
    counts = [int(c) for c in _PDF_COUNT.findall(data)]
    return max(counts) if counts else None


def _title(path: Path | None) -> dict[str, str]:
    return {"title": path.name[:_TITLE_MAX]} if path is not None and path.name else {}


def _cited(cite: bool) -> dict[str, Any]:
    return {"citations": dict(CITATIONS_ON)} if cite else {}


def pdf_block(value: str | os.PathLike[str] | bytes, *, cite: bool = False) -> ContentBlock:
    """A PDF document content block from a path or bytes, titled with the file name if known;
    ``cite`` turns citations on (answers then cite page ranges of it).

    Checks the ``%PDF-`` header, the 32 MB request limit (base64-encoded) and the API's
    100-page limit (pages counted approximately) and raises :class:`PromptError` if one fails.
    """
    path: Path | None = None
    if isinstance(value, (str, os.PathLike)):
        path, data = _read_file(value, _raw_limit(_PDF_MAX_ENCODED))
        label = str(value)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data, label = bytes(value), "the PDF"
    else:
        raise PromptError(f"cannot attach a {type(value).__name__} as a PDF: pass a path or bytes")
    if not _is_pdf(data):
        extra = "; it is an image: attach it with --image" if sniff_image(data) else ""
        raise PromptError(f"{label} is not a PDF (no %PDF- header){extra}")
    _check_encoded_size(data, label, _PDF_MAX_ENCODED, "PDFs")
    pages = _pdf_pages(data)
    if pages is not None and pages > _PDF_MAX_PAGES:
        raise PromptError(
            f"{label} has about {pages:,} pages; the API accepts at most {_PDF_MAX_PAGES} pages "
            "per PDF: attach the pages you need as a smaller PDF"
        )
    return {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": _base64(data)},
        **_title(path),
        **_cited(cite),
    }


def file_block(path: str | os.PathLike[str], *, cite: bool = False) -> ContentBlock:
    """A plain-text document content block from a UTF-8 text file, titled with its name;
    ``cite`` turns citations on (answers then cite character ranges of it).

    Raises :class:`PromptError` for a missing, empty, binary or non-UTF-8 file, pointing PDFs
    and images to ``--pdf`` and ``--image``.
    """
    resolved, data = _read_file(path, _TEXT_MAX_BYTES)
    label = os.fspath(path)
    if _is_pdf(data):
        raise PromptError(f"{label} is a PDF, not a text file: attach it with --pdf")
    if sniff_image(data):
        raise PromptError(f"{label} is an image, not a text file: attach it with --image")
    if len(data) > _TEXT_MAX_BYTES:
        raise PromptError(f"{label} is {mb(len(data))}; a request can hold at most 32 MB")
    try:
        if b"\x00" in data[:8192]:  # NUL bytes: binary, even where they happen to decode
            raise UnicodeDecodeError("utf-8", data, data.index(b"\x00"), 0, "NUL byte")
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PromptError(
            f"{label} is not UTF-8 text (binary data at byte {exc.start:,}): attach PDFs with "
            "--pdf and images with --image"
        ) from None
    if not text.strip():
        raise PromptError(f"{label} is empty")
    return {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": text},
        **_title(resolved),
        **_cited(cite),
    }


_SEARCH_RESULT_SHAPE = (
    "give a list of dicts, each with 'source' (a URL or id), 'title' and 'content' (a string "
    "or a list of strings)"
)


def _result_field(item: Mapping[str, Any], name: str, where: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value.strip():
        got = "missing" if value is None else f"a {type(value).__name__}"
        if isinstance(value, str):
            got = "empty"
        raise PromptError(f"{where} {name!r} is {got}, not a non-empty string")
    return value


def _result_texts(value: Any, where: str) -> list[str]:
    """A search result's content as the texts of its blocks."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        got = "missing" if value is None else f"a {type(value).__name__}"
        if isinstance(value, (list, tuple)):
            got = "an empty list"
        raise PromptError(f"{where} 'content' is {got}, not a string or a list of strings")
    texts = []
    for part in items:
        if isinstance(part, Mapping) and part.get("type") == "text":
            part = part.get("text")  # a text block, as the API writes them
        if not isinstance(part, str) or not part.strip():
            raise PromptError(
                f"{where} 'content' holds {part!r:.40}: each part is a non-empty string"
            )
        texts.append(part)
    return texts


def search_result_blocks(results: Any) -> list[ContentBlock]:
    """``search_result`` content blocks from your own retrieval: a list of dicts (or a
    DataFrame's rows) with ``source``, ``title`` and ``content`` (a string, or a list of
    strings: one text block each, which citations then name by index); other keys (a score,
    an id) are left out. Citations are on: the answer cites them by ``search_result_location``.
    A wrong shape raises :class:`PromptError` saying which item and field."""
    if hasattr(results, "to_dict") and hasattr(results, "columns"):  # a DataFrame: its rows
        results = results.to_dict("records")
    if isinstance(results, Mapping) or not isinstance(results, (list, tuple)):
        raise PromptError(f"a {type(results).__name__}, not a list: {_SEARCH_RESULT_SHAPE}")
    if not results:
        raise PromptError(f"an empty list: {_SEARCH_RESULT_SHAPE}")
    blocks: list[ContentBlock] = []
    for number, item in enumerate(results, 1):
        where = f"item {number}:"
        if not isinstance(item, Mapping):
            raise PromptError(
                f"{where} a {type(item).__name__}, not a dict: {_SEARCH_RESULT_SHAPE}"
            )
        blocks.append(
            {
                "type": "search_result",
                "source": _result_field(item, "source", where),
                "title": _result_field(item, "title", where),
                "content": [
                    {"type": "text", "text": text}
                    for text in _result_texts(item.get("content"), where)
                ],
                "citations": dict(CITATIONS_ON),
            }
        )
    return blocks
