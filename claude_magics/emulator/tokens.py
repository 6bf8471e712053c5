"""The emulator's token accounting: a documented approximation, not Claude's tokenizer.

    pieces("Hello, world")              # ['Hell', 'o,', ' worl', 'd']
    count_text("Hello, world", (1, 1))  # 4
    request_segments(body, "claude-opus-4-7", TOKENIZER_RATIOS["new"], {}, {}, None)

No accurate offline tokenizer exists for current Claude models, so the emulator counts with a
rule that is simple, deterministic and easy to reason about in tests:

* **Text.** A token is one match of ``\\s*\\S{1,4}|\\s+``: up to four non-space characters with
  the whitespace before them (trailing whitespace is one last piece). The pieces concatenate
  back to the text exactly, and generated output is produced and cut in these same pieces, so
  ``output_tokens`` is the number of pieces in what was generated. English comes out at about
  one token per 3-4 characters, in the range of the real tokenizer.
* **New-tokenizer models** (Opus 4.7 and every later model; ``tokenizer: "new"`` in the model
  table) multiply every input text count by 1.3, rounded up, mirroring the newer tokenizer
  (about 30% more tokens for the same text). Output is counted in plain pieces.
* **Fixed overheads** (never multiplied): `REQUEST_OVERHEAD` per request, `MESSAGE_OVERHEAD`
  per message (role markers), `SYSTEM_OVERHEAD` when a system prompt is present,
  `TOOL_OVERHEAD` per tool plus the text count of the tool's JSON definition, `BLOCK_OVERHEAD`
  for tool_use / tool_result / document / search_result blocks.
* **Images**: ``ceil(w * h / 750)`` after the API's resize rule (a long edge over 1568 px is
  scaled down to 1568, keeping the aspect ratio). Dimensions come from the file header. URL
  images cannot be fetched offline and count `URL_IMAGE_TOKENS`.
* **PDFs**: `PDF_PAGE_TOKENS` per page (the page image) plus the text count of the text drawn
  on the pages. URL PDFs count as one page. Plain-text documents count as text.
* **Files API sources** (``{"type": "file", "file_id": ...}``) count as the stored file's bytes
  would as base64 (images, PDFs) or text (plain-text documents).
* **Structured output**: the JSON schema in ``output_config.format`` counts as text.

A validated request is cut into `Segment`s in cache-prefix order (tools, the structured-output
schema, system, messages), each with its token count and the bytes that identify it for prompt
caching. `count_tokens` and ``usage`` add up the same segments: for any request,
``input_tokens`` from count_tokens equals ``input_tokens + cache_creation_input_tokens +
cache_read_input_tokens``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from .media import PdfInfo

__all__ = [
    "BLOCK_OVERHEAD",
    "MESSAGE_OVERHEAD",
    "PDF_PAGE_TOKENS",
    "REQUEST_OVERHEAD",
    "SYSTEM_OVERHEAD",
    "TOKENIZER_RATIOS",
    "TOOL_OVERHEAD",
    "URL_IMAGE_TOKENS",
    "Segment",
    "canonical",
    "count_pieces",
    "count_text",
    "image_tokens",
    "pieces",
    "request_segments",
    "resized",
]

REQUEST_OVERHEAD = 4
MESSAGE_OVERHEAD = 3
SYSTEM_OVERHEAD = 3
TOOL_OVERHEAD = 8
BLOCK_OVERHEAD = 4
PDF_PAGE_TOKENS = 1500
URL_IMAGE_TOKENS = 1600
MAX_IMAGE_EDGE = 1568
# Input text ratio (numerator, denominator) by tokenizer generation (the model table's
# ``tokenizer``): the new tokenizer yields about 30% more tokens for the same text.
TOKENIZER_RATIOS: dict[str, tuple[int, int]] = {"old": (1, 1), "new": (13, 10)}

_PIECE = re.compile(r"\s*\S{1,4}|\s+")


def pieces(text: str) -> list[str]:
    """The text cut into token pieces; ``"".join(pieces(t)) == t``."""
    return _PIECE.findall(text)


def count_pieces(text: str) -> int:
    """Number of pieces in ``text`` (the output token count of generated text).

    Equal to ``len(pieces(text))`` but computed from whitespace-separated words (``\\s`` and
    ``str.split`` agree on what whitespace is): a run of L non-space characters is
    ceil(L / 4) pieces, and trailing whitespace is one more. Several times faster than the
    regex, which matters for 100,000-request batches.
    """
    count = sum((len(word) + 3) >> 2 for word in text.split())
    return count + 1 if text and text[-1].isspace() else count


def count_text(text: str, ratio: tuple[int, int] = (1, 1)) -> int:
    """Input tokens for ``text`` under a model's text ratio (numerator, denominator)."""
    num, den = ratio
    return -(-count_pieces(text) * num // den)  # integer ceil: no float rounding surprises


def resized(width: int, height: int) -> tuple[int, int]:
    """Image size after the API's downscaling of a long edge above 1568 px."""
    long_edge = max(width, height)
    if long_edge <= MAX_IMAGE_EDGE:
        return width, height
    scale = MAX_IMAGE_EDGE / long_edge
    return max(1, round(width * scale)), max(1, round(height * scale))


def image_tokens(width: int, height: int) -> int:
    """Tokens an image of this size costs: ceil(w * h / 750) after resizing."""
    w, h = resized(width, height)
    return max(1, math.ceil(w * h / 750))


# --------------------------------------------------------------------------- requests


@dataclass
class Segment:
    """One cacheable unit of the prompt, in prefix order."""

    tokens: int
    material: bytes  # canonical bytes (cache_control removed): what the cache key hashes
    ttl: str | None = None  # "5m" / "1h" when a cache breakpoint closes here


def _strip_cache_control(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip_cache_control(v) for v in value]
    return value


def canonical(value: Any) -> bytes:
    """Sorted-key JSON without ``cache_control``: equal content, equal bytes."""
    return orjson.dumps(_strip_cache_control(value), option=orjson.OPT_SORT_KEYS)


class _Counter:
    """Counts the blocks of one validated request under a model's text ratio."""

    def __init__(
        self,
        ratio: tuple[int, int],
        images: Mapping[int, tuple[int, int] | None],
        pdfs: Mapping[int, PdfInfo | None],
        file_texts: Mapping[int, str] | None = None,
    ) -> None:
        self.ratio = ratio
        self.images = images  # image size by id(block), decoded once during validation
        self.pdfs = pdfs
        self.file_texts = file_texts or {}  # stored plain-text files' text, by id(block)

    def text(self, text: str) -> int:
        return count_text(text, self.ratio)

    def block(self, block: dict[str, Any]) -> int:
        kind = block["type"]
        if kind == "text":
            return self.text(block["text"])
        if kind == "image":
            size = self.images.get(id(block))
            return URL_IMAGE_TOKENS if size is None else image_tokens(*size)
        if kind == "document":
            return self._document(block)
        if kind == "tool_use":
            return BLOCK_OVERHEAD + self.text(block["name"] + orjson.dumps(block["input"]).decode())
        if kind == "tool_result":
            content = block.get("content")
            if isinstance(content, list):
                inner = sum(self.block(b) for b in content)
            else:
                inner = self.text(content or "")
            return BLOCK_OVERHEAD + inner
        if kind == "thinking":
            return self.text(block["thinking"])
        if kind == "redacted_thinking":
            return self.text(block["data"])
        if kind == "search_result":
            return (
                BLOCK_OVERHEAD
                + self.text(f"{block['source']} {block['title']}")
                + sum(self.block(b) for b in block["content"])
            )
        if kind == "tool_reference":
            return BLOCK_OVERHEAD + self.text(str(block.get("tool_name", "")))
        return BLOCK_OVERHEAD + self.text(canonical(block).decode())

    def _document(self, block: dict[str, Any]) -> int:
        source = block["source"]
        total = (
            BLOCK_OVERHEAD
            + self.text(block.get("title") or "")
            + self.text(block.get("context") or "")
        )
        if source["type"] == "file" and id(block) in self.file_texts:
            return total + self.text(self.file_texts[id(block)])
        if source["type"] in ("base64", "file"):  # a stored file that is not text is a PDF
            info = self.pdfs.get(id(block))
            assert info is not None  # validated before counting
            return total + info.pages * PDF_PAGE_TOKENS + self.text(info.text)
        if source["type"] == "text":
            return total + self.text(source["data"])
        if source["type"] == "content":
            content = source["content"]
            if isinstance(content, str):
                return total + self.text(content)
            return total + sum(self.block(b) for b in content)
        return total + PDF_PAGE_TOKENS  # a URL PDF cannot be fetched offline: one page


def _nested_ttl(block: dict[str, Any]) -> str | None:
    """The ttl of a cache_control on a block or on blocks nested in it.

    A breakpoint inside a tool result, search result or content document closes the
    enclosing top-level block: that block is the unit the cache prefix is cut at.
    """
    control = block.get("cache_control")
    if isinstance(control, dict):
        return str(control.get("ttl", "5m"))
    source = block.get("source")
    nested = [block.get("content"), source.get("content") if isinstance(source, dict) else None]
    for inner in nested:
        if isinstance(inner, list):
            for item in inner:
                if isinstance(item, dict) and (ttl := _nested_ttl(item)):
                    return ttl
    return None


def request_segments(
    body: Mapping[str, Any],
    model_id: str,
    ratio: tuple[int, int],
    images: Mapping[int, tuple[int, int] | None],
    pdfs: Mapping[int, PdfInfo | None],
    output_schema: Mapping[str, Any] | None,
    *,
    file_texts: Mapping[int, str] | None = None,
) -> list[Segment]:
    """The prompt of a validated request as segments in cache-prefix order.

    ``images``, ``pdfs`` and ``file_texts`` (plain-text documents from stored files) map
    ``id(block)`` to what validation decoded, so nothing is decoded twice. The first segment
    carries the model id: caches are per model.
    """
    counter = _Counter(ratio, images, pdfs, file_texts)
    segments = [Segment(REQUEST_OVERHEAD, f"model:{model_id}".encode())]
    for tool in body.get("tools") or ():
        definition = canonical(tool)
        segments.append(
            Segment(
                TOOL_OVERHEAD + counter.text(definition.decode()),
                b"tool:" + definition,
                _nested_ttl(tool),
            )
        )
    if output_schema is not None:
        # The API turns the schema into system-prompt text ahead of the user's system prompt,
        # so it is part of every cache prefix after the tools: a different schema misses a
        # cache that the same schema would hit.
        schema_text = canonical(output_schema).decode()
        segments.append(
            Segment(BLOCK_OVERHEAD + counter.text(schema_text), b"format:" + schema_text.encode())
        )
    system = body.get("system")
    if isinstance(system, str) and system:
        segments.append(
            Segment(SYSTEM_OVERHEAD + counter.text(system), b"system:" + system.encode())
        )
    elif isinstance(system, list) and system:
        segments.append(Segment(SYSTEM_OVERHEAD, b"system"))
        for block in system:
            segments.append(
                Segment(
                    counter.block(block), b"system-block:" + canonical(block), _nested_ttl(block)
                )
            )
    for message in body["messages"]:
        role = message["role"].encode()
        content = message["content"]
        if isinstance(content, str):
            segments.append(
                Segment(
                    MESSAGE_OVERHEAD + counter.text(content),
                    b"message:" + role + b":" + content.encode(),
                )
            )
            continue
        segments.append(Segment(MESSAGE_OVERHEAD, b"message:" + role))
        for block in content:
            segments.append(
                Segment(counter.block(block), b"block:" + canonical(block), _nested_ttl(block))
            )
    top = body.get("cache_control")
    if isinstance(top, dict) and segments[-1].ttl is None:
        # Top-level cache_control marks the last block of the last message.
        segments[-1].ttl = str(top.get("ttl", "5m"))
    return segments
