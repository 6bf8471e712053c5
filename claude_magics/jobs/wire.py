"""The wire format of DataFrame jobs: ``custom_id``s, batch create bodies, and result lines.

    items = request_items(tag, before, after, texts, range(len(texts)))   # one bytes each
    bodies = batch_bodies(items, BatchLimits())    # create bodies within the API's limits

Requests are serialised as bytes around each prompt's text (the shared part of the body was
serialised once, by ``rows.Prompts.template``), which is what makes 100,000 of them quick to
build; bodies are cut so that each batch holds at most 100,000 requests and 256 MB. Going the
other way, :func:`batch_result_row` turns one line of a batch's results, and :func:`message_row`
one realtime answer, into the :class:`~.store.ResultRow` the job store keeps.

This module is the one place that maps prompt numbers to ``custom_id``s and back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ..cost.usage import Usage
from ..errors import ClaudeError
from .store import ResultRow

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_REQUESTS",
    "BatchLimits",
    "batch_bodies",
    "batch_body",
    "batch_result_row",
    "custom_id",
    "custom_ids",
    "failed_row",
    "message_row",
    "prompt_of",
    "request_items",
    "split_requests",
    "with_document",
]

MAX_BATCH_REQUESTS = 100_000
MAX_BATCH_BYTES = 256 * 1024 * 1024
_BODY_OVERHEAD = len(b'{"requests":[]}')


@dataclass(frozen=True)
class BatchLimits:
    """How much one batch may hold (the API's limits; tests use small ones)."""

    max_requests: int = MAX_BATCH_REQUESTS
    max_bytes: int = MAX_BATCH_BYTES


# --------------------------------------------------------------------------------------------
# Rows to custom_ids (the one place), and requests into batches


def custom_id(tag: str, prompt: int) -> str:
    """The ``custom_id`` of distinct prompt ``prompt`` in the job tagged ``tag``.

    Rows map to prompts (``rows.Prompts.row_prompt``) and prompts to ids here; the DataFrame
    index never enters an id, so any index works and ids always match ``^[a-zA-Z0-9_-]{1,64}$``.
    """
    return f"{tag}-{prompt}"


def custom_ids(tag: str, prompts: Iterable[int]) -> list[str]:
    """``custom_id`` for many prompts at once (the same ids, without a call per prompt)."""
    return [f"{tag}-{prompt}" for prompt in prompts]


def prompt_of(value: str, tag: str) -> int | None:
    """The prompt number in a ``custom_id`` of this job, or None for someone else's id."""
    head, _, number = value.rpartition("-")
    if head != tag or not number.isdigit():
        return None
    return int(number)


def split_requests(
    sizes: Sequence[int], limits: BatchLimits = BatchLimits()
) -> list[tuple[int, int, int]]:
    """Cut consecutive requests of the given serialised sizes into batches that respect
    ``limits``: a list of (start, end, body bytes). Raises if one request alone is too big."""
    total = sum(sizes) + max(len(sizes) - 1, 0) + _BODY_OVERHEAD
    if sizes and len(sizes) <= limits.max_requests and total <= limits.max_bytes:
        return [(0, len(sizes), total)]  # the common case: everything fits in one batch
    chunks: list[tuple[int, int, int]] = []
    start, used = 0, _BODY_OVERHEAD
    for i, size in enumerate(sizes):
        if size + _BODY_OVERHEAD > limits.max_bytes:
            raise ClaudeError(
                f"request {i} alone is {size:,} bytes, more than a batch may hold "
                f"({limits.max_bytes:,}); shorten that row"
            )
        extra = size + (1 if i > start else 0)  # the comma between requests
        if i > start and (i - start >= limits.max_requests or used + extra > limits.max_bytes):
            chunks.append((start, i, used))
            start, used, extra = i, _BODY_OVERHEAD, size
        used += extra
    if start < len(sizes):
        chunks.append((start, len(sizes), used))
    return chunks


def request_items(
    tag: str,
    before: bytes,
    after: bytes,
    texts: Sequence[str] | Mapping[int, str],
    prompts: Iterable[int],
    documents: Sequence[bytes | None] | Mapping[int, bytes] | None = None,
) -> list[bytes]:
    """The serialised batch requests of ``prompts``: ``{"custom_id": ..., "params": ...}``
    with each body laid out around its text (the shared part was serialised once), and, with
    ``documents`` (a job with ``files=``), each prompt's document block in the mark's place."""
    dumps, join = orjson.dumps, b"".join
    if documents is not None:
        head = b'{"custom_id":"' + custom_id(tag, 0).removesuffix("0").encode()
        return [
            join(
                (
                    head,
                    b"%d" % n,
                    b'","params":',
                    with_document(before, documents[n]),
                    dumps(texts[n]),
                    after,
                    b"}",
                )
            )
            for n in prompts
        ]
    # The custom_id is custom_id(tag, n), laid out around the number as bytes.
    head = b'{"custom_id":"' + custom_id(tag, 0).removesuffix("0").encode()
    middle = b'","params":' + before
    tail = after + b"}"
    # One join per item: chained + would copy the long shared part several times.
    return [join((head, b"%d" % n, middle, dumps(texts[n]), tail)) for n in prompts]


def with_document(before: bytes, document: bytes | None) -> bytes:
    """The bytes before a prompt's text with its document block (``documents``) in place."""
    from .documents import DOCUMENT_MARK_BYTES

    if document is None:
        raise ClaudeError("a prompt without its document cannot be sent")
    return before.replace(DOCUMENT_MARK_BYTES, document)


def batch_body(items: Sequence[bytes]) -> bytes:
    """``{"requests": [...]}`` around serialised requests, copying each byte once."""
    if not items:
        return b'{"requests":[]}'
    parts = list(items)
    parts[0] = b'{"requests":[' + parts[0]
    parts[-1] = parts[-1] + b"]}"
    return b",".join(parts)


def batch_bodies(items: Sequence[bytes], limits: BatchLimits = BatchLimits()) -> list[bytes]:
    """Create-request bodies holding ``items``, as many as ``limits`` require."""
    chunks = split_requests(list(map(len, items)), limits)
    return [batch_body(items[s:e]) for s, e, _ in chunks]


# --------------------------------------------------------------------------------------------
# Answers into stored results


def message_row(prompt: int, message: Mapping[str, Any], source: str, attempt: int) -> ResultRow:
    """A model's answer (a Messages API message) as the stored result of ``prompt``."""
    content: list[Any] = message.get("content") or []
    if len(content) == 1 and content[0].get("type") == "text" and not content[0].get("citations"):
        text = content[0].get("text", "")  # the usual shape: one text
    else:
        text = _cited_text(content)
    usage = _usage(message.get("usage"))
    return ResultRow(
        prompt,
        "succeeded",
        text,
        message.get("stop_reason"),
        message.get("model"),
        usage.input,
        usage.output,
        usage.cache_write_5m,
        usage.cache_write_1h,
        usage.cache_read,
        None,
        source,
        attempt,
    )


def _cited_text(content: Sequence[Any]) -> str:
    """The text of an answer's text blocks; with citations, stored as ``tasks.CITED`` and JSON
    of the text and each citation's offsets, page and quoted text."""
    from .tasks import CITED

    parts: list[str] = []
    cites: list[list[Any]] = []
    at = 0
    for block in content:
        if not isinstance(block, Mapping) or block.get("type") != "text":
            continue
        piece = str(block.get("text") or "")
        for citation in block.get("citations") or ():
            if isinstance(citation, Mapping):
                page = citation.get("start_page_number")
                cited = citation.get("cited_text")
                cites.append([at, at + len(piece), page, cited])
        parts.append(piece)
        at += len(piece)
    text = "".join(parts)
    if not cites:
        return text
    return CITED + orjson.dumps({"text": text, "cites": cites}).decode()


# A batch's results mostly repeat their usage (prompts of like length, answers of one shape):
# each distinct usage is read into a Usage once (a frozen value, safe to share), which keeps
# reading 100,000 result lines quick. Bounded: cleared when full.
_USAGES: dict[bytes, Usage] = {}
_USAGES_HELD = 10_000


def _usage(raw: Any) -> Usage:
    """``Usage.from_api(raw)``, read once per distinct usage."""
    try:
        key = orjson.dumps(raw)
    except TypeError:  # not JSON: no key to remember it by
        return Usage.from_api(raw)
    usage = _USAGES.get(key)
    if usage is None:
        if len(_USAGES) >= _USAGES_HELD:
            _USAGES.clear()
        usage = _USAGES[key] = Usage.from_api(raw)
    return usage


def failed_row(prompt: int, status: str, error: str | None, source: str, attempt: int) -> ResultRow:
    """The stored result of a request that got no answer (nothing was billed for it)."""
    return ResultRow(prompt, status, None, None, None, 0, 0, 0, 0, 0, error, source, attempt)


def batch_result_row(
    line: Mapping[str, Any], tag: str, attempt: int, batch_id: str
) -> ResultRow | None:
    """One line of a batch's results as a stored result (None: not one of this job's ids)."""
    # prompt_of, inlined: this runs once per line of 100,000-line result files.
    head, _, number = str(line.get("custom_id")).rpartition("-")
    if head != tag or not number.isdigit():
        return None
    prompt = int(number)
    result = line.get("result") or {}
    kind = result.get("type")
    if kind == "succeeded":
        return message_row(prompt, result.get("message") or {}, batch_id, attempt)
    if kind == "errored":
        # The error is nested twice: {"type": "error", "error": {"type": T, "message": M}}.
        outer: Mapping[str, Any] = result.get("error") or {}
        nested = outer.get("error")
        inner: Mapping[str, Any] = nested if isinstance(nested, Mapping) else outer
        error_type = str(inner.get("type") or "api_error")
        return failed_row(prompt, f"errored:{error_type}", inner.get("message"), batch_id, attempt)
    return failed_row(prompt, str(kind or "errored:unknown"), None, batch_id, attempt)
