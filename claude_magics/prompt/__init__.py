"""Cell text, notebook variables, DataFrames and attachments turned into Messages API content.

    content = build_user_content("Why is {{df.columns[0]}} empty?", shell.user_ns)
    client.messages.create(messages=[{"role": "user", "content": content}], model=..., ...)

* :mod:`.references`: ``{{name}}``, ``{{name.attr}}``, ``{{name[0]}}``, ``{{_error}}``, resolved
  with ``getattr`` and ``[]`` only, never ``eval``;
* :mod:`.values`: values as text (strings as they are, containers as JSON, the rest by repr);
* :mod:`.dataframes`: DataFrames and Series within a token budget (head and tail, or a sample);
* :mod:`.attachments`: images, PDFs, text files and search results, checked before they
  are sent;
* :mod:`.budget`: the local token estimate and cutting text to a budget;
* :mod:`.body`: the one request-body builder (user turn, options, cache breakpoints).

This wing never imports httpx or pandas: DataFrames are recognised by their type's module.
"""

from __future__ import annotations

from ..errors import PromptError
from .attachments import file_block, image_block, pdf_block, search_result_blocks
from .body import build_user_content
from .budget import CHARS_PER_TOKEN, DEFAULT_DF_BUDGET, DEFAULT_VALUE_BUDGET, estimate_tokens
from .dataframes import DfFormat, dataframe_block, dataframe_text
from .references import (
    interpolate_text,
    resolve_reference,
    substitute_references,
    template_references,
)
from .values import find_last_error, format_error, render_value

__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_DF_BUDGET",
    "DEFAULT_VALUE_BUDGET",
    "DfFormat",
    "PromptError",
    "build_user_content",
    "dataframe_block",
    "dataframe_text",
    "estimate_tokens",
    "file_block",
    "find_last_error",
    "format_error",
    "image_block",
    "interpolate_text",
    "pdf_block",
    "render_value",
    "resolve_reference",
    "search_result_blocks",
    "substitute_references",
    "template_references",
]
