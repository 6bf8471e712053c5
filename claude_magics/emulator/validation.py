"""Validation of Messages request bodies: the API's shape checks, then its rules.

    prompt = parse_request(body)                      # raises ApiError on a bad body
    prompt.input_tokens, prompt.segments, prompt.seed

`parse_request` checks a /v1/messages body (``count_tokens=True``: a count_tokens body) the way
the API does, with its error messages (``"max_tokens: Field required"``,
``"messages.0.content.1.text: ..."``): first the shape of every field and block (here), then
the model is looked up in the catalog (404 for unknown and retired models) and the rules of
`rules` apply (per model, per API version, per conversation). The result is a `Prompt`: the
facts generation needs, plus the request cut into token-counted segments (see `tokens`).

With ``files=`` (the emulator's `files.FileStore`) and the Files API beta in the headers,
``document`` and ``image`` sources may be ``{"type": "file", "file_id": ...}`` (checked and
counted as the same bytes sent as base64 or text would be) and a user turn may hold
``container_upload`` blocks (the files the code-execution sandbox sees, `Prompt.uploads`). An
unknown or deleted id is the API's 404.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import orjson

from . import media, tokens
from .catalog import Catalog, ModelSpec, catalog_for, token_ratio
from .errors import ApiError
from .files import FILES_BETA, FileStore, StoredFile
from .instances import schema_problem
from .rules import (
    BETA_FIELDS,
    IGNORED_BETA_FIELDS,
    RequestContext,
    check_model_rules,
    check_tool_turns,
    check_tool_types,
    check_version_rules,
)
from .server_tools import RUN_TYPES, check_definition

__all__ = [
    "COUNT_FIELDS",
    "MESSAGE_FIELDS",
    "Document",
    "Prompt",
    "RequestContext",
    "SearchResult",
    "ToolResult",
    "parse_request",
    "request_seed",
]

MESSAGE_FIELDS = frozenset(
    {
        "model", "messages", "cache_control", "container", "inference_geo", "max_tokens",
        "metadata", "output_config", "service_tier", "stop_sequences", "stream", "system",
        "temperature", "thinking", "tool_choice", "tools", "top_k", "top_p",
    }
)  # fmt: skip
COUNT_FIELDS = frozenset(
    {
        "cache_control", "messages", "model", "output_config", "system", "thinking",
        "tool_choice", "tools",
    }
)  # fmt: skip

MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_PDF_BYTES = 32 * 1024 * 1024
MAX_PDF_PAGES = 100
MAX_IMAGE_EDGE = 8000
MAX_BREAKPOINTS = 4
MAX_MCP_SERVERS = 20
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")

_BLOCK_KEYS: dict[str, frozenset[str]] = {
    "text": frozenset({"type", "text", "cache_control", "citations"}),
    "image": frozenset({"type", "source", "cache_control"}),
    "document": frozenset({"type", "source", "cache_control", "citations", "context", "title"}),
    "search_result": frozenset(
        {"type", "content", "source", "title", "cache_control", "citations"}
    ),
    "thinking": frozenset({"type", "thinking", "signature"}),
    "redacted_thinking": frozenset({"type", "data"}),
    "tool_use": frozenset({"type", "id", "name", "input", "cache_control", "caller"}),
    "tool_result": frozenset({"type", "tool_use_id", "content", "is_error", "cache_control"}),
}
# Server tool blocks passed back in assistant turns are the API's own output: accepted as sent
# (their pairing is checked in `rules.check_tool_turns`).
_OPAQUE_BLOCKS = frozenset(
    {
        "server_tool_use", "web_search_tool_result", "web_fetch_tool_result",
        "code_execution_tool_result", "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result", "tool_search_tool_result", "container_upload",
    }
)  # fmt: skip
_TOOL_RESULT_BLOCKS = ("text", "image", "search_result", "document", "tool_reference")
_CUSTOM_TOOL_KEYS = frozenset(
    {
        "type", "description", "name", "input_schema", "cache_control", "strict",
        "eager_input_streaming", "allowed_callers", "defer_loading", "input_examples",
    }
)  # fmt: skip
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


@dataclass
class Document:
    """A document block, remembered for citations."""

    index: int
    kind: str  # "text" | "pdf" | "content" | "url"
    title: str | None
    citations: bool
    text: str = ""
    page_texts: list[str] = field(default_factory=list)
    block_texts: list[str] = field(default_factory=list)
    file_id: str | None = None  # a Files API source: citations name the file


@dataclass(frozen=True)
class SearchResult:
    """A search_result block, remembered for citations (``search_result_location``)."""

    index: int  # among all search results of the request, tool results included
    source: str
    title: str
    texts: list[str]  # its content's text blocks
    citations: bool


@dataclass(frozen=True)
class ToolResult:
    """A tool_result of the last user turn, with the name of the tool call it answers."""

    name: str
    text: str  # its text content (other blocks as [image], [document]...)
    is_error: bool


@dataclass
class Prompt:
    """A validated request: what generation, caching and billing need."""

    body: dict[str, Any]
    model: str  # as requested (responses echo it)
    spec: ModelSpec
    max_tokens: int | None
    stream: bool
    segments: list[tokens.Segment]
    input_tokens: int
    stop_sequences: list[str]
    tools: list[dict[str, Any]]  # custom (client) tools only
    server_tools: list[dict[str, Any]]  # the server tools the emulator runs (RUN_TYPES)
    tool_choice: dict[str, Any] | None
    # The thinking that happens (an always-on model thinks unasked), None when off; and
    # whether its text is shown ("summarized") or left empty ("omitted").
    thinking: dict[str, Any] | None
    thinking_display: str
    output_schema: dict[str, Any] | None
    documents: list[Document]
    last_user_text: str
    # True when the last user turn returns tool results and asks nothing new.
    answers_tool_results: bool
    # The tool results of the last user turn, in order (empty when it has none).
    tool_results: list[ToolResult]
    # The last user message's own words: its text, without tool results' content.
    question: str
    seed: int
    context: RequestContext = field(default_factory=RequestContext)
    ignored: tuple[str, ...] = ()  # beta fields accepted but not acted on
    # The files of the conversation's container_upload blocks, in order: the sandbox's inputs.
    uploads: tuple[StoredFile, ...] = ()
    # The search_result blocks of the conversation, in order (top level and in tool results).
    search_results: list[SearchResult] = field(default_factory=list)


def _fail(message: str) -> NoReturn:
    raise ApiError.invalid(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Parser:
    """Walks one request body; check methods raise ApiError at the first problem."""

    def __init__(
        self,
        body: dict[str, Any],
        context: RequestContext | None = None,
        files: FileStore | None = None,
    ) -> None:
        self.body = body
        self.breakpoints = 0
        # Decoded media by id(block), so token counting does not decode twice.
        self.images: dict[int, tuple[int, int] | None] = {}
        self.pdfs: dict[int, media.PdfInfo | None] = {}
        # The text of plain-text documents whose source is a stored file, by id(block).
        self.file_texts: dict[int, str] = {}
        self.files = files
        self.files_beta = context is not None and FILES_BETA in context.betas
        self.uploads: dict[str, StoredFile] = {}
        # Every stored file the body names (file sources and container uploads), by id.
        self.named: dict[str, StoredFile] = {}
        self.user_turn = False  # whether the blocks being checked are in a user message

    # ---------------------------------------------------------------- small checks

    def _dict(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            _fail(f"{path}: Input should be a valid dictionary")
        return value

    def _extra(self, obj: dict[str, Any], allowed: frozenset[str], path: str) -> None:
        for key in obj:
            if key not in allowed:
                prefix = f"{path}.{key}" if path else key
                _fail(f"{prefix}: Extra inputs are not permitted")

    def _str(self, obj: dict[str, Any], key: str, path: str, *, required: bool = True) -> Any:
        if key not in obj:
            if required:
                _fail(f"{path}.{key}: Field required")
            return None
        value = obj[key]
        if not isinstance(value, str):
            if value is None and not required:
                return None
            _fail(f"{path}.{key}: Input should be a valid string")
        return value

    def _cache_control(self, block: dict[str, Any], path: str) -> str | None:
        value = block.get("cache_control")
        if value is None:
            return None
        where = f"{path}.cache_control" if path else "cache_control"
        value = self._dict(value, where)
        self._extra(value, frozenset({"type", "ttl"}), where)
        if value.get("type") != "ephemeral":
            _fail(f"{where}.type: Input should be 'ephemeral'")
        ttl = value.get("ttl", "5m")
        if ttl not in ("5m", "1h"):
            _fail(f"{where}.ttl: Input should be '5m' or '1h'")
        self.breakpoints += 1
        return str(ttl)

    # ---------------------------------------------------------------- blocks

    def _tag(self, block: Any, path: str, allowed: tuple[str, ...]) -> tuple[dict[str, Any], str]:
        block = self._dict(block, path)
        kind = block.get("type")
        if not isinstance(kind, str):
            _fail(f"{path}: Unable to extract tag using discriminator 'type'")
        if kind not in allowed:
            tags = ", ".join(f"'{t}'" for t in allowed)
            _fail(
                f"{path}: Input tag '{kind}' found using 'type' does not match any of the "
                f"expected tags: {tags}"
            )
        return block, kind

    def block(self, raw: Any, path: str, allowed: tuple[str, ...]) -> str | None:
        """Validate one content block; returns its cache ttl if it carries cache_control."""
        block, kind = self._tag(raw, path, allowed)
        if kind == "container_upload" and self.user_turn:
            self._container_upload(block, path)
            return self._cache_control(block, path)
        if kind in _OPAQUE_BLOCKS:
            return self._cache_control(block, path)
        keys = _BLOCK_KEYS.get(kind)
        if keys is not None:
            self._extra(block, keys, path)
        ttl = self._cache_control(block, path)
        if kind == "text":
            text = self._str(block, "text", path)
            if not text:
                _fail(f"{path}.text: text content blocks must be non-empty")
        elif kind == "image":
            self._image(block, path)
        elif kind == "document":
            self._document(block, path)
        elif kind == "search_result":
            self._str(block, "source", path)
            self._str(block, "title", path)
            self._citations_config(block, path)
            content = block.get("content")
            if not isinstance(content, list):
                _fail(f"{path}.content: Input should be a valid list")
            for i, inner in enumerate(content):
                ttl = self.block(inner, f"{path}.content.{i}", ("text",)) or ttl
        elif kind == "thinking":
            self._str(block, "thinking", path)
            self._str(block, "signature", path)
        elif kind == "redacted_thinking":
            self._str(block, "data", path)
        elif kind == "tool_use":
            ident = self._str(block, "id", path)
            if not _ID.match(ident):
                _fail(f"{path}.id: String should match pattern '^[a-zA-Z0-9_-]+$'")
            self._str(block, "name", path)
            if "input" not in block:
                _fail(f"{path}.input: Field required")
            self._dict(block["input"], f"{path}.input")
        elif kind == "tool_result":
            ident = self._str(block, "tool_use_id", path)
            if not _ID.match(ident):
                _fail(f"{path}.tool_use_id: String should match pattern '^[a-zA-Z0-9_-]+$'")
            if "is_error" in block and not isinstance(block["is_error"], bool):
                _fail(f"{path}.is_error: Input should be a valid boolean")
            content = block.get("content")
            if isinstance(content, list):
                for i, inner in enumerate(content):
                    ttl = self.block(inner, f"{path}.content.{i}", _TOOL_RESULT_BLOCKS) or ttl
            elif content is not None and not isinstance(content, str):
                _fail(f"{path}.content: Input should be a valid string or list")
        return ttl

    def _base64(self, source: dict[str, Any], path: str) -> bytes:
        data = self._str(source, "data", path)
        try:
            return base64.b64decode("".join(data.split()), validate=True)
        except (binascii.Error, ValueError):
            _fail(f"{path}.data: Input should be a valid base64 string")

    def _source_tags(self, tags: tuple[str, ...]) -> tuple[str, ...]:
        """The source types a block takes: ``file`` too under the Files API beta."""
        return (*tags, "file") if self.files_beta else tags

    def _stored(self, source: dict[str, Any], where: str) -> StoredFile:
        """The stored file a ``file`` source names; the API's 404 when there is none."""
        self._extra(source, frozenset({"type", "file_id"}), where)
        file_id = self._str(source, "file_id", where)
        if self.files is None:
            raise ApiError(404, "not_found_error", f"File not found: {file_id}")
        stored = self.named[file_id] = self.files.find(file_id)
        return stored

    def _container_upload(self, block: dict[str, Any], path: str) -> None:
        self._extra(block, frozenset({"type", "file_id", "cache_control"}), path)
        if not self.files_beta:
            _fail(
                f"{path}: container_upload blocks name a file of the Files API, which needs "
                f"the header anthropic-beta: {FILES_BETA}"
            )
        file_id = self._str(block, "file_id", path)
        if self.files is None:
            raise ApiError(404, "not_found_error", f"File not found: {file_id}")
        self.uploads.setdefault(file_id, self.files.find(file_id))
        self.named[file_id] = self.uploads[file_id]

    def _image(self, block: dict[str, Any], path: str) -> None:
        if "source" not in block:
            _fail(f"{path}.source: Field required")
        source, kind = self._tag(
            block["source"], f"{path}.source", self._source_tags(("base64", "url"))
        )
        where = f"{path}.source.{kind}"
        if kind == "url":
            self._extra(source, frozenset({"type", "url"}), where)
            self._str(source, "url", where)
            self.images[id(block)] = None
            return
        if kind == "file":
            stored = self._stored(source, where)
            declared, raw = stored.mime_type, stored.data
            if declared not in IMAGE_TYPES:
                _fail(
                    f"{where}.file_id: {stored.id} is a {declared} file; an image block takes "
                    "image/jpeg, image/png, image/gif or image/webp files"
                )
            self._check_image(block, raw, declared, where, "file_id")
            return
        self._extra(source, frozenset({"type", "media_type", "data"}), where)
        declared = self._str(source, "media_type", where)
        if declared not in IMAGE_TYPES:
            _fail(
                f"{where}.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' "
                "or 'image/webp'"
            )
        self._check_image(block, self._base64(source, where), declared, where, "data")

    def _check_image(
        self, block: dict[str, Any], raw: bytes, declared: str, where: str, field: str
    ) -> None:
        if len(raw) > MAX_IMAGE_BYTES:
            _fail(
                f"{where}: image exceeds 5 MB maximum: {len(raw)} bytes > {MAX_IMAGE_BYTES} bytes"
            )
        detected = media.sniff_image(raw)
        if detected is None:
            _fail(f"{where}.{field}: Could not process image")
        if detected != declared:
            _fail(
                f"{where}.{field}: The image was specified using the {declared} media type, "
                f"but the image appears to be a {detected} image"
            )
        size = media.image_size(raw)
        if size is None or min(size) < 1:
            _fail(f"{where}.{field}: Could not process image")
        if max(size) > MAX_IMAGE_EDGE:
            _fail(
                f"{where}.{field}: image dimensions exceed max allowed size: "
                f"{MAX_IMAGE_EDGE} pixels"
            )
        self.images[id(block)] = size

    def _citations_config(self, block: dict[str, Any], path: str) -> None:
        """A document's or search result's ``citations`` (RequestCitationsConfig)."""
        citations = block.get("citations")
        if citations is not None:
            citations = self._dict(citations, f"{path}.citations")
            self._extra(citations, frozenset({"enabled"}), f"{path}.citations")
            if "enabled" in citations and not isinstance(citations["enabled"], bool):
                _fail(f"{path}.citations.enabled: Input should be a valid boolean")

    def _document(self, block: dict[str, Any], path: str) -> None:
        if "source" not in block:
            _fail(f"{path}.source: Field required")
        self._str(block, "title", path, required=False)
        context = self._str(block, "context", path, required=False)
        if context == "":
            _fail(f"{path}.context: String should have at least 1 character")
        self._citations_config(block, path)
        source, kind = self._tag(
            block["source"],
            f"{path}.source",
            self._source_tags(("base64", "text", "content", "url")),
        )
        where = f"{path}.source.{kind}"
        if kind == "file":
            stored = self._stored(source, where)
            if stored.mime_type == "application/pdf":
                self._check_pdf(block, stored.data, f"{where}.file_id")
            elif stored.mime_type == "text/plain":
                try:
                    self.file_texts[id(block)] = stored.data.decode("utf-8-sig")
                except UnicodeDecodeError:
                    _fail(f"{where}.file_id: {stored.id} is not UTF-8 text")
            else:
                _fail(
                    f"{where}.file_id: {stored.id} is a {stored.mime_type} file; a document "
                    "block takes application/pdf or text/plain files (other files go to code "
                    "execution in a container_upload block)"
                )
        elif kind == "base64":
            self._extra(source, frozenset({"type", "media_type", "data"}), where)
            if source.get("media_type") != "application/pdf":
                _fail(f"{where}.media_type: Input should be 'application/pdf'")
            raw = self._base64(source, where)
            if len(raw) > MAX_PDF_BYTES:
                _fail(
                    f"{where}: PDF exceeds 32 MB maximum: {len(raw)} bytes > {MAX_PDF_BYTES} bytes"
                )
            self._check_pdf(block, raw, f"{where}.data")
        elif kind == "text":
            self._extra(source, frozenset({"type", "media_type", "data"}), where)
            if source.get("media_type") != "text/plain":
                _fail(f"{where}.media_type: Input should be 'text/plain'")
            self._str(source, "data", where)
        elif kind == "content":
            self._extra(source, frozenset({"type", "content"}), where)
            content = source.get("content")
            if isinstance(content, list):
                for i, inner in enumerate(content):
                    self.block(inner, f"{where}.content.{i}", ("text", "image"))
            elif not isinstance(content, str):
                _fail(f"{where}.content: Field required")
        else:
            self._extra(source, frozenset({"type", "url"}), where)
            self._str(source, "url", where)

    def _check_pdf(self, block: dict[str, Any], raw: bytes, where: str) -> None:
        info = media.inspect_pdf(raw)
        if info is None:
            _fail(f"{where}: The PDF specified was not valid.")
        if info.pages > MAX_PDF_PAGES:
            _fail(
                f"{where}: A maximum of {MAX_PDF_PAGES} PDF pages may be provided; "
                f"this PDF has {info.pages} pages."
            )
        self.pdfs[id(block)] = info

    # ---------------------------------------------------------------- top level

    def messages(self) -> list[dict[str, Any]]:
        if "messages" not in self.body:
            _fail("messages: Field required")
        messages = self.body["messages"]
        if not isinstance(messages, list):
            _fail("messages: Input should be a valid list")
        if not messages:
            _fail("messages: at least one message is required")
        last = len(messages) - 1
        for i, raw in enumerate(messages):
            path = f"messages.{i}"
            message = self._dict(raw, path)
            self._extra(message, frozenset({"role", "content"}), path)
            if "role" not in message:
                _fail(f"{path}.role: Field required")
            if message["role"] not in ("user", "assistant"):
                _fail(f"{path}.role: Input should be 'user' or 'assistant'")
            if "content" not in message:
                _fail(f"{path}.content: Field required")
            content = message["content"]
            final_assistant = i == last and message["role"] == "assistant"
            if isinstance(content, str):
                if not content and not final_assistant:
                    _fail(
                        f"{path}.content: all messages must have non-empty content except for "
                        "the optional final assistant message"
                    )
            elif isinstance(content, list):
                if not content and not final_assistant:
                    _fail(
                        f"{path}.content: all messages must have non-empty content except for "
                        "the optional final assistant message"
                    )
                allowed = tuple(_BLOCK_KEYS) + tuple(sorted(_OPAQUE_BLOCKS))
                self.user_turn = message["role"] == "user"
                for j, block in enumerate(content):
                    self.block(block, f"{path}.content.{j}", allowed)
                self.user_turn = False
            else:
                _fail(f"{path}.content: Input should be a valid string or list")
        return messages

    def system(self) -> None:
        system = self.body.get("system")
        if system is None or isinstance(system, str):
            return
        if not isinstance(system, list):
            _fail("system: Input should be a valid string or list")
        for i, block in enumerate(system):
            self.block(block, f"system.{i}", ("text",))

    def tools(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], set[str]]:
        """The custom tools, the server tools the emulator runs, and every tool name."""
        tools = self.body.get("tools")
        if tools is None:
            return [], [], set()
        if not isinstance(tools, list):
            _fail("tools: Input should be a valid list")
        custom: list[dict[str, Any]] = []
        server: list[dict[str, Any]] = []
        names: set[str] = set()
        for i, raw in enumerate(tools):
            path = f"tools.{i}"
            tool = self._dict(raw, path)
            kind = tool.get("type")
            name = self._str(tool, "name", path)
            if kind in (None, "custom"):
                self._extra(tool, _CUSTOM_TOOL_KEYS, path)
                if not _TOOL_NAME.match(name):
                    _fail(f"{path}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
                self._str(tool, "description", path, required=False)
                if "input_schema" not in tool:
                    _fail(f"{path}.input_schema: Field required")
                schema = self._dict(tool["input_schema"], f"{path}.input_schema")
                if schema.get("type") != "object":
                    _fail(f"{path}.input_schema.type: Input should be 'object'")
                custom.append(tool)
            elif not isinstance(kind, str):
                _fail(f"{path}.type: Input should be a valid string")
            else:
                check_definition(tool, path)
                if kind in RUN_TYPES:
                    server.append(tool)
            self._cache_control(tool, path)
            if name in names:
                _fail("tools: Tool names must be unique.")
            names.add(name)
        return custom, server, names

    def tool_choice(self, names: set[str]) -> dict[str, Any] | None:
        choice = self.body.get("tool_choice")
        if choice is None:
            return None
        choice, kind = self._tag(choice, "tool_choice", ("auto", "any", "tool", "none"))
        allowed = {"type", "disable_parallel_tool_use"} | ({"name"} if kind == "tool" else set())
        if kind == "none":
            allowed = {"type"}
        self._extra(choice, frozenset(allowed), f"tool_choice.{kind}")
        if "disable_parallel_tool_use" in choice and not isinstance(
            choice["disable_parallel_tool_use"], bool
        ):
            _fail(f"tool_choice.{kind}.disable_parallel_tool_use: Input should be a valid boolean")
        if kind == "tool":
            name = self._str(choice, "name", "tool_choice.tool")
            if name not in names:
                _fail(f"tool_choice.tool.name: Tool '{name}' not found in tools")
        elif kind == "any" and not names:
            _fail("tool_choice: tool_choice.type 'any' requires at least one tool in tools")
        return choice

    def thinking(self) -> dict[str, Any] | None:
        """The ``thinking`` object as sent (``disabled`` included), or None when absent."""
        thinking = self.body.get("thinking")
        if thinking is None:
            return None
        thinking, kind = self._tag(thinking, "thinking", ("enabled", "disabled", "adaptive"))
        path = f"thinking.{kind}"
        if kind == "disabled":
            self._extra(thinking, frozenset({"type"}), path)
            return thinking
        self._extra(
            thinking,
            frozenset({"type", "display"} | ({"budget_tokens"} if kind == "enabled" else set())),
            path,
        )
        if thinking.get("display") not in (None, "summarized", "omitted"):
            _fail(f"{path}.display: Input should be 'summarized' or 'omitted'")
        if kind == "enabled":
            if "budget_tokens" not in thinking:
                _fail(f"{path}.budget_tokens: Field required")
            budget = thinking["budget_tokens"]
            if not _is_int(budget):
                _fail(f"{path}.budget_tokens: Input should be a valid integer")
            if budget < 1024:
                _fail(f"{path}.budget_tokens: Input should be greater than or equal to 1024")
        return thinking

    def _format(self, fmt: Any, path: str) -> dict[str, Any]:
        """A json_schema output format (``output_config.format`` or beta ``output_format``)."""
        fmt, _ = self._tag(fmt, path, ("json_schema",))
        self._extra(fmt, frozenset({"type", "schema"}), f"{path}.json_schema")
        if "schema" not in fmt:
            _fail(f"{path}.json_schema.schema: Field required")
        return self._dict(fmt["schema"], f"{path}.json_schema.schema")

    def output_config(self) -> tuple[str | None, dict[str, Any] | None]:
        """The effort level and the structured-output schema (beta ``output_format`` too)."""
        config = self.body.get("output_config")
        effort = schema = None
        if config is not None:
            config = self._dict(config, "output_config")
            self._extra(config, frozenset({"effort", "format"}), "output_config")
            effort = config.get("effort")
            if effort is not None and effort not in ("low", "medium", "high", "xhigh", "max"):
                _fail(
                    "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or "
                    "'max'"
                )
            if config.get("format") is not None:
                schema = self._format(config["format"], "output_config.format")
        if self.body.get("output_format") is not None:
            # The deprecated beta spelling of output_config.format: the same thing.
            if schema is not None:
                _fail("output_format: give either output_format or output_config.format, not both")
            schema = self._format(self.body["output_format"], "output_format")
        return effort, schema

    def beta_fields(self) -> tuple[str, ...]:
        """Check the beta fields the emulator accepts without acting on; return their names."""
        body = self.body
        if "speed" in body and body["speed"] not in (None, "standard", "fast"):
            _fail("speed: Input should be 'standard' or 'fast'")
        if body.get("context_management") is not None:
            config = self._dict(body["context_management"], "context_management")
            self._extra(config, frozenset({"edits"}), "context_management")
            edits = config.get("edits", [])
            if not isinstance(edits, list):
                _fail("context_management.edits: Input should be a valid list")
            for i, edit in enumerate(edits):
                self._tag(
                    edit,
                    f"context_management.edits.{i}",
                    ("clear_tool_uses_20250919", "clear_thinking_20251015", "compact_20260112"),
                )
        if "mcp_servers" in body:
            servers = body["mcp_servers"]
            if not isinstance(servers, list):
                _fail("mcp_servers: Input should be a valid list")
            if len(servers) > MAX_MCP_SERVERS:
                _fail(f"mcp_servers: List should have at most {MAX_MCP_SERVERS} items")
            for i, raw in enumerate(servers):
                server, _ = self._tag(raw, f"mcp_servers.{i}", ("url",))
                self._str(server, "name", f"mcp_servers.{i}")
                self._str(server, "url", f"mcp_servers.{i}")
        return tuple(name for name in IGNORED_BETA_FIELDS if body.get(name) is not None)

    def scalars(self) -> None:
        body = self.body
        if "stop_sequences" in body:
            stops = body["stop_sequences"]
            if not isinstance(stops, list):
                _fail("stop_sequences: Input should be a valid list")
            for i, stop in enumerate(stops):
                if not isinstance(stop, str):
                    _fail(f"stop_sequences.{i}: Input should be a valid string")
                if not stop.strip():
                    _fail("stop_sequences: each stop sequence must contain non-whitespace")
        for name, low in (("temperature", 0.0), ("top_p", 0.0)):
            if name in body:
                value = body[name]
                if not _is_number(value):
                    _fail(f"{name}: Input should be a valid number")
                if value < low:
                    _fail(f"{name}: Input should be greater than or equal to 0")
                if value > 1:
                    _fail(f"{name}: Input should be less than or equal to 1")
        if "top_k" in body:
            if not _is_int(body["top_k"]):
                _fail("top_k: Input should be a valid integer")
            if body["top_k"] < 0:
                _fail("top_k: Input should be greater than or equal to 0")
        if "stream" in body and not isinstance(body["stream"], bool):
            _fail("stream: Input should be a valid boolean")
        if "metadata" in body:
            metadata = self._dict(body["metadata"], "metadata")
            self._extra(metadata, frozenset({"user_id"}), "metadata")
            user = metadata.get("user_id")
            if user is not None and (not isinstance(user, str) or len(user) > 512):
                _fail("metadata.user_id: Input should be a valid string of at most 512 characters")
        if "service_tier" in body and body["service_tier"] not in ("auto", "standard_only"):
            _fail("service_tier: Input should be 'auto' or 'standard_only'")
        for name in ("container", "inference_geo"):
            if body.get(name) is not None and not isinstance(body[name], str):
                _fail(f"{name}: Input should be a valid string")
        if "cache_control" in body:
            self._cache_control(body, "")


def _last_user_text(messages: list[dict[str, Any]], *, results: bool = True) -> str:
    """The last user message's text; ``results``: with its tool results' string content."""
    for message in reversed(messages):
        if message["role"] != "user":
            continue
        content = message["content"]
        if isinstance(content, str):
            return content
        parts = [b["text"] for b in content if b.get("type") == "text"]
        for block in content if results else ():
            if block.get("type") == "tool_result" and isinstance(block.get("content"), str):
                parts.append(block["content"])
        return "\n".join(parts)
    return ""


def _block_text(block: dict[str, Any]) -> str:
    """What a block inside a tool result says, as text."""
    kind = block.get("type")
    if kind == "text":
        return str(block["text"])
    if kind == "search_result":
        return " ".join(str(b.get("text", "")) for b in block["content"])
    return f"[{kind}]"


def _tool_results(messages: list[dict[str, Any]]) -> list[ToolResult]:
    """The tool results of the last message (a user turn), named after their tool calls."""
    last = messages[-1]
    if last["role"] != "user" or isinstance(last["content"], str) or len(messages) < 2:
        return []
    previous = messages[-2]["content"]
    names = (
        {}
        if isinstance(previous, str)
        else {b["id"]: b["name"] for b in previous if b.get("type") == "tool_use"}
    )
    found = []
    for block in last["content"]:
        if block.get("type") != "tool_result":
            continue
        content = block.get("content")
        if isinstance(content, list):
            text = " ".join(_block_text(b) for b in content)
        else:
            text = content or ""
        name = names.get(block["tool_use_id"], "a tool")
        found.append(ToolResult(name, text, bool(block.get("is_error"))))
    return found


def request_seed(body: dict[str, Any], files: Mapping[str, StoredFile] | None = None) -> int:
    """Seed for generation: equal for equal requests, whether streamed or not. A stored file
    the body names (``files``: by id) counts by its content, not its id: the same document
    uploaded again, in another run or after a delete, gets the same answer."""
    canonical = orjson.dumps(
        {k: v for k, v in body.items() if k != "stream"}, option=orjson.OPT_SORT_KEYS
    )
    for file_id, stored in (files or {}).items():
        digest = hashlib.sha256(stored.data).hexdigest()
        canonical = canonical.replace(orjson.dumps(file_id), orjson.dumps(f"sha256:{digest}"))
    return int.from_bytes(hashlib.sha256(canonical).digest()[:8], "big")


@functools.lru_cache(maxsize=512)
def _schema_problem_cached(schema_json: bytes) -> str | None:
    return schema_problem(orjson.loads(schema_json))


def _check_schemas(tools: list[dict[str, Any]], output_schema: dict[str, Any] | None) -> None:
    """A schema no JSON value satisfies is a 400, as the API's grammar compiler rejects it.

    Checked per distinct schema (cached), so a batch of 100,000 rows with one schema pays once.
    """
    for i, tool in enumerate(tools):
        problem = _schema_problem_cached(tokens.canonical(tool["input_schema"]))
        if problem is not None:
            _fail(f"tools.{i}.input_schema: Invalid schema: {problem}")
    if output_schema is not None:
        problem = _schema_problem_cached(tokens.canonical(output_schema))
        if problem is not None:
            _fail(f"output_config.format.schema: Invalid schema: {problem}")


def _documents(parser: _Parser, messages: list[dict[str, Any]]) -> list[Document]:
    """The document blocks of the conversation in order (nested in tool results too)."""
    found: list[Document] = []

    def visit(block: dict[str, Any]) -> None:
        if block.get("type") == "tool_result" and isinstance(block.get("content"), list):
            for inner in block["content"]:
                visit(inner)
        if block.get("type") != "document":
            return
        source = block["source"]
        citations = bool((block.get("citations") or {}).get("enabled"))
        doc = Document(len(found), source["type"], block.get("title"), citations)
        if source["type"] == "file":
            doc.file_id = source["file_id"]
            if id(block) in parser.file_texts:
                doc.kind, doc.text = "text", parser.file_texts[id(block)]
            else:
                info = parser.pdfs[id(block)]
                assert info is not None  # validated before
                doc.kind, doc.page_texts = "pdf", info.page_texts
        elif source["type"] == "base64":
            info = parser.pdfs[id(block)]
            assert info is not None  # validated before
            doc.kind = "pdf"
            doc.page_texts = info.page_texts
        elif source["type"] == "text":
            doc.text = source["data"]
        elif source["type"] == "content":
            content = source["content"]
            doc.block_texts = (
                [content] if isinstance(content, str) else [b.get("text", "") for b in content]
            )
        found.append(doc)

    for message in messages:
        if isinstance(message["content"], list):
            for block in message["content"]:
                visit(block)
    return found


def _search_results(messages: list[dict[str, Any]]) -> list[SearchResult]:
    """The search_result blocks of the conversation in order, nested in tool results too."""
    found: list[SearchResult] = []

    def visit(block: dict[str, Any]) -> None:
        if block.get("type") == "tool_result" and isinstance(block.get("content"), list):
            for inner in block["content"]:
                visit(inner)
        if block.get("type") != "search_result":
            return
        enabled = bool((block.get("citations") or {}).get("enabled"))
        texts = [str(b.get("text", "")) for b in block["content"]]
        found.append(SearchResult(len(found), block["source"], block["title"], texts, enabled))

    for message in messages:
        if isinstance(message["content"], list):
            for block in message["content"]:
                visit(block)
    return found


def _answers_tool_results(messages: list[dict[str, Any]]) -> bool:
    last = messages[-1]
    return (
        last["role"] == "user"
        and isinstance(last["content"], list)
        and any(b.get("type") == "tool_result" for b in last["content"])
        and not any(b.get("type") == "text" for b in last["content"])
    )


def parse_request(
    body: Any,
    *,
    count_tokens: bool = False,
    catalog: Catalog | None = None,
    context: RequestContext | None = None,
    files: FileStore | None = None,
) -> Prompt:
    """Validate a /v1/messages (or count_tokens) body; raises ApiError like the API would.

    ``catalog`` holds the served models (default: the bundled table); ``context`` is what the
    headers said (API version, beta fields allowed; default: 2023-06-01, no betas); ``files``
    the stored files that ``file_id`` sources and ``container_upload`` blocks name.
    """
    catalog = catalog if catalog is not None else catalog_for(())
    context = context if context is not None else RequestContext()
    if not isinstance(body, dict):
        _fail("Request body must be a JSON object")
    parser = _Parser(body, context, files)
    allowed = COUNT_FIELDS if count_tokens else MESSAGE_FIELDS
    parser._extra(body, (allowed | BETA_FIELDS) if context.beta else allowed, "")
    if "model" not in body:
        _fail("model: Field required")
    model = body["model"]
    if not isinstance(model, str):
        _fail("model: Input should be a valid string")
    max_tokens: int | None = None
    if not count_tokens:
        if "max_tokens" not in body:
            _fail("max_tokens: Field required")
        max_tokens = body["max_tokens"]
        if not _is_int(max_tokens):
            _fail("max_tokens: Input should be a valid integer")
        if max_tokens < 1:
            _fail("max_tokens: Input should be greater than or equal to 1")
    messages = parser.messages()
    parser.system()
    custom_tools, server_tools, names = parser.tools()
    choice = parser.tool_choice(names)
    requested_thinking = parser.thinking()
    effort, output_schema = parser.output_config()
    ignored = parser.beta_fields()
    parser.scalars()
    if parser.breakpoints > MAX_BREAKPOINTS:
        _fail(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {parser.breakpoints}."
        )
    spec = catalog.lookup(model)
    check_version_rules(body, context)
    thinking = check_model_rules(body, spec, max_tokens, requested_thinking, effort, choice)
    check_tool_types(body.get("tools") or [], spec)
    check_tool_turns(messages, thinking is not None)
    if not body.get("tools") and _has_tool_blocks(messages):
        _fail("Requests which include `tool_use` or `tool_result` blocks must define tools.")
    _check_schemas(custom_tools, output_schema)
    segments = tokens.request_segments(
        body,
        spec.id,
        token_ratio(spec),
        parser.images,
        parser.pdfs,
        output_schema,
        file_texts=parser.file_texts,
    )
    seen_5m = False
    for segment in segments:
        if segment.ttl == "5m":
            seen_5m = True
        elif segment.ttl == "1h" and seen_5m:
            _fail(
                "cache_control: a ttl='1h' cache_control block must not come after a "
                "ttl='5m' cache_control block"
            )
    total = sum(s.tokens for s in segments)
    if total > spec.max_input_tokens:
        _fail(f"prompt is too long: {total} tokens > {spec.max_input_tokens} maximum")
    display = (requested_thinking or {}).get("display") or spec.thinking_display_default
    documents = _documents(parser, messages)
    if output_schema is not None and any(d.citations for d in documents):
        # The API's rule: a cited answer interleaves citations with its text, which a JSON
        # schema's constrained output cannot hold.
        _fail(
            "Citations are not supported with structured outputs (output_config.format): "
            "turn citations off on the documents, or leave out output_config.format."
        )
    return Prompt(
        body=body,
        model=model,
        spec=spec,
        max_tokens=max_tokens,
        stream=bool(body.get("stream", False)),
        segments=segments,
        input_tokens=total,
        stop_sequences=list(body.get("stop_sequences") or ()),
        tools=custom_tools,
        server_tools=server_tools,
        tool_choice=choice,
        thinking=thinking,
        thinking_display=display,
        output_schema=output_schema,
        documents=documents,
        last_user_text=_last_user_text(messages),
        answers_tool_results=_answers_tool_results(messages),
        tool_results=_tool_results(messages),
        question=_last_user_text(messages, results=False),
        seed=request_seed(body, parser.named),
        context=context,
        ignored=ignored,
        uploads=tuple(parser.uploads.values()),
        search_results=_search_results(messages),
    )


def _has_tool_blocks(messages: list[dict[str, Any]]) -> bool:
    """Whether any turn holds a tool call or result (the API then wants ``tools`` defined)."""
    for message in messages:
        content = message.get("content")
        if isinstance(content, list) and any(
            isinstance(b, dict) and b.get("type") in ("tool_use", "tool_result") for b in content
        ):
            return True
    return False
