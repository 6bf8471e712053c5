"""Server tools: the tool definitions the API runs itself, checked and emulated.

    check_definition(tool, "tools.0")               # the spec's shape for its type, or ApiError
    turn = run_server_tools(ServerRequest(...))     # the calls, their results, the cited answer

The API accepts client tools (``custom``), Anthropic-defined client tools (bash, text editor,
memory: the caller runs them) and server tools (web search, web fetch, code execution, tool
search: the API runs them and puts the results in the reply). `TOOL_TYPES` lists every type
the spec lists, with the fields each accepts; `check_definition` checks a definition the way
the API's schema does. Of the server tools, the emulator runs web search, web fetch and code
execution on fake, deterministic data, by `SERVER_TOOL_RULE`. Nothing leaves the machine: a
search returns example.com-style pages made from the query, a fetch returns a stand-in page
that names the URL, and code execution evaluates plain arithmetic with `ast` (never ``eval``)
and looks at the files of ``container_upload`` blocks (`files.describe`: a CSV is parsed for
its rows and columns). Asked to save or export, it writes ``output.txt``, a file the API made
(`created_files`): downloadable from the Files API, unlike uploads.
"""

from __future__ import annotations

import ast
import base64
import operator
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import urlsplit

from .errors import ApiError
from .files import StoredFile, created_file_id, describe
from .ratelimit import rfc3339
from .tokens import BLOCK_OVERHEAD, canonical, count_text, pieces

__all__ = [
    "RUN_TYPES",
    "SERVER_TOOL_RULE",
    "TOOL_TYPES",
    "ServerCall",
    "ServerRequest",
    "ServerTurn",
    "ToolType",
    "check_definition",
    "created_files",
    "run_server_tools",
]

#: When the emulator runs the server tools a request offers. Shown by ``--help``.
SERVER_TOOL_RULE = (
    "Server tools run when the request offers them, tool_choice is not none and the last user "
    "message asks something new (not only tool results). web_search searches once for each "
    "sentence of the last user message that contains search, latest, news, web, online, "
    "internet, today or web_search (at most 3 searches; the query is the sentence without an "
    "opening 'search the web for'); it returns 2 or 3 fake results on example.com-style hosts "
    "(or on allowed_domains, never on blocked_domains). web_fetch fetches each http(s) URL in "
    "the message (at most 3), returning a stand-in page that names the URL. code_execution runs"
    " when the message asks to compute, calculate, run, execute, evaluate or plot: it prints "
    "one line per file of the conversation's container_upload blocks (a CSV's name, row count "
    "without the header, column count and column names; a text file's lines; another file's "
    "size) and the value of the first arithmetic expression in the message (numbers, + - * / //"
    " % ** and parentheses), or with neither counts the message's words; asked to save or "
    "export, it also writes what it printed to output.txt, a downloadable file of the Files API"
    " (its id in the result's content). A tool_choice naming a server tool runs it whatever the"
    " words. A call beyond the tool's max_uses returns the max_uses_exceeded error. The reply "
    "is: the words before the calls, each server_tool_use with its result, then text citing "
    "every search result (web_search_result_location) and, when the fetch tool enables "
    "citations, the fetched page; stop_reason end_turn, no client tool call in the same turn. "
    "usage.server_tool_use counts the searches and fetches that returned results, and the "
    "results count as input tokens."
)


def _fail(message: str) -> NoReturn:
    raise ApiError.invalid(message)


# --------------------------------------------------------------------------- definitions


@dataclass(frozen=True)
class ToolType:
    """One tool type of the spec: the name it must carry and the fields it accepts."""

    name: str
    fields: frozenset[str]
    runs: str | None = None  # "web_search" | "web_fetch" | "code_execution": emulated


_COMMON = frozenset({"type", "name", "allowed_callers", "cache_control", "defer_loading", "strict"})
_CLIENT = _COMMON | {"input_examples"}
_SEARCH = _COMMON | {"allowed_domains", "blocked_domains", "max_uses", "user_location"}
_FETCH = _COMMON | {
    "allowed_domains", "blocked_domains", "citations", "max_content_tokens", "max_uses",
}  # fmt: skip

#: Every tool type the spec's ``tools`` accepts besides ``custom``, by ``type``.
TOOL_TYPES: dict[str, ToolType] = {
    "bash_20250124": ToolType("bash", _CLIENT),
    "code_execution_20250522": ToolType("code_execution", _COMMON, "code_execution"),
    "code_execution_20250825": ToolType("code_execution", _COMMON, "code_execution"),
    "code_execution_20260120": ToolType("code_execution", _COMMON, "code_execution"),
    "memory_20250818": ToolType("memory", _CLIENT),
    "text_editor_20250124": ToolType("str_replace_editor", _CLIENT),
    "text_editor_20250429": ToolType("str_replace_based_edit_tool", _CLIENT),
    "text_editor_20250728": ToolType("str_replace_based_edit_tool", _CLIENT | {"max_characters"}),
    "web_search_20250305": ToolType("web_search", _SEARCH, "web_search"),
    "web_search_20260209": ToolType("web_search", _SEARCH, "web_search"),
    "web_fetch_20250910": ToolType("web_fetch", _FETCH, "web_fetch"),
    "web_fetch_20260209": ToolType("web_fetch", _FETCH, "web_fetch"),
    "web_fetch_20260309": ToolType("web_fetch", _FETCH | {"use_cache"}, "web_fetch"),
    "tool_search_tool_bm25_20251119": ToolType("tool_search_tool_bm25", _COMMON),
    "tool_search_tool_bm25": ToolType("tool_search_tool_bm25", _COMMON),
    "tool_search_tool_regex_20251119": ToolType("tool_search_tool_regex", _COMMON),
    "tool_search_tool_regex": ToolType("tool_search_tool_regex", _COMMON),
}
#: The tool types the emulator runs (the others are accepted and never called).
RUN_TYPES = frozenset(t for t, info in TOOL_TYPES.items() if info.runs)
_CALLERS = ("direct", "code_execution_20250825", "code_execution_20260120")
_LOCATION_FIELDS = frozenset({"type", "city", "region", "country", "timezone"})


def _count(value: Any, where: str, *, above_zero: bool) -> None:
    """A count the spec bounds: ``exclusiveMinimum: 0`` or ``minimum: 1`` (or null)."""
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        _fail(f"{where}: Input should be a valid integer")
    if value < 1:
        bound = "greater than 0" if above_zero else "greater than or equal to 1"
        _fail(f"{where}: Input should be {bound}")


def _domains(value: Any, where: str) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        _fail(f"{where}: Input should be a valid list")
    for k, item in enumerate(value):
        if not isinstance(item, str):
            _fail(f"{where}.{k}: Input should be a valid string")


def _location(value: Any, where: str) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        _fail(f"{where}: Input should be a valid dictionary")
    for key in value:
        if key not in _LOCATION_FIELDS:
            _fail(f"{where}.{key}: Extra inputs are not permitted")
    if value.get("type") != "approximate":
        _fail(f"{where}.type: Input should be 'approximate'")
    for key, (low, high) in (
        ("city", (1, 255)),
        ("region", (1, 255)),
        ("timezone", (1, 255)),
        ("country", (2, 2)),
    ):
        item = value.get(key)
        if item is None:
            continue
        if not isinstance(item, str):
            _fail(f"{where}.{key}: Input should be a valid string")
        if len(item) < low:
            _fail(f"{where}.{key}: String should have at least {low} character{'s' * (low > 1)}")
        if len(item) > high:
            _fail(f"{where}.{key}: String should have at most {high} characters")


def check_definition(tool: Mapping[str, Any], path: str) -> ToolType:
    """Check a non-custom tool definition as the spec's schema for its type does.

    Raises the API's 400 for an unknown type, a field the type does not have, a wrong name or
    a bad value (``cache_control`` is checked by the caller, which counts breakpoints).
    """
    kind = tool.get("type")
    info = TOOL_TYPES.get(kind) if isinstance(kind, str) else None
    if info is None:
        tags = ", ".join(f"'{t}'" for t in ("custom", *sorted(TOOL_TYPES)))
        _fail(
            f"{path}: Input tag '{kind}' found using 'type' does not match any of the expected "
            f"tags: {tags}"
        )
    where = f"{path}.{kind}"
    for key in tool:
        if key not in info.fields:
            _fail(f"{where}.{key}: Extra inputs are not permitted")
    if tool.get("name") != info.name:
        _fail(f"{where}.name: Input should be '{info.name}'")
    for key in ("defer_loading", "strict", "use_cache"):
        if key in tool and not isinstance(tool[key], bool):
            _fail(f"{where}.{key}: Input should be a valid boolean")
    callers = tool.get("allowed_callers")
    if callers is not None:
        if not isinstance(callers, list):
            _fail(f"{where}.allowed_callers: Input should be a valid list")
        for k, caller in enumerate(callers):
            if caller not in _CALLERS:
                _fail(
                    f"{where}.allowed_callers.{k}: Input should be 'direct', "
                    "'code_execution_20250825' or 'code_execution_20260120'"
                )
    examples = tool.get("input_examples")
    if examples is not None:
        if not isinstance(examples, list):
            _fail(f"{where}.input_examples: Input should be a valid list")
        for k, example in enumerate(examples):
            if not isinstance(example, dict):
                _fail(f"{where}.input_examples.{k}: Input should be a valid dictionary")
    _count(tool.get("max_uses"), f"{where}.max_uses", above_zero=True)
    _count(tool.get("max_content_tokens"), f"{where}.max_content_tokens", above_zero=True)
    _count(tool.get("max_characters"), f"{where}.max_characters", above_zero=False)
    _domains(tool.get("allowed_domains"), f"{where}.allowed_domains")
    _domains(tool.get("blocked_domains"), f"{where}.blocked_domains")
    if (
        info.runs == "web_search"
        and tool.get("allowed_domains") is not None
        and tool.get("blocked_domains") is not None
    ):
        _fail(f"{where}: allowed_domains and blocked_domains cannot be used together")
    _location(tool.get("user_location"), f"{where}.user_location")
    citations = tool.get("citations")
    if citations is not None:
        if not isinstance(citations, dict):
            _fail(f"{where}.citations: Input should be a valid dictionary")
        for key in citations:
            if key != "enabled":
                _fail(f"{where}.citations.{key}: Extra inputs are not permitted")
        if "enabled" in citations and not isinstance(citations["enabled"], bool):
            _fail(f"{where}.citations.enabled: Input should be a valid boolean")
    return info


# --------------------------------------------------------------------------- running them


@dataclass(frozen=True)
class ServerRequest:
    """What the server tools of one request need to know."""

    tools: list[dict[str, Any]]  # the request's definitions of the types in RUN_TYPES
    text: str  # the last user message's own words
    seed: int
    ratio: tuple[int, int]  # the model's input text ratio (result tokens)
    forced: str | None = None  # a server tool that tool_choice forces, by name
    documents: int = 0  # document blocks already in the request (citation indexes)
    container: str | None = None  # the request's ``container`` id
    now: float | None = None  # the emulator clock; None leaves times out (null)
    uploads: tuple[StoredFile, ...] = ()  # the container_upload files the sandbox sees


@dataclass
class ServerCall:
    """One call: the ``server_tool_use`` block's fields and its result block."""

    id: str
    name: str
    input: dict[str, Any]
    result: dict[str, Any]
    #: The usage counter this call adds one to ("web_search_requests"...), None if unbilled.
    counter: str | None
    input_tokens: int  # what the result adds to the prompt


@dataclass
class ServerTurn:
    """The server part of a reply: the words before, the calls, the cited answer after."""

    preamble: str
    calls: list[ServerCall] = field(default_factory=list)
    #: Text blocks after the results: (text, citations or None).
    answer: list[tuple[str, list[dict[str, Any]] | None]] = field(default_factory=list)
    container: dict[str, Any] | None = None


_SEARCH_WORDS = re.compile(
    r"\b(search\w*|latest|news|web|online|internet|today)\b|web_search", re.I
)
_CODE_WORDS = re.compile(
    r"\b(compute|calculate|calculation|run|execute|evaluate|plot)\b|code_execution", re.I
)
_URL = re.compile(r"https?://[^\s<>\"'`)\]}]+", re.I)
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+|\n+")
_QUERY_OPENING = re.compile(
    r"^(please\s+)?(can you\s+|could you\s+)?(do\s+a\s+)?(web\s+)?(search|look\s+up|find)"
    r"(\s+(the\s+)?(web|internet|online))?(\s+(for|about|on))?\s+",
    re.I,
)
_MAX_CALLS = 3
_HOSTS = ("www.example.com", "docs.example.org", "news.example.net", "blog.example.io")
_SECTIONS = ("articles", "guide", "reference", "news", "notes")
_PAGE_AGES = ("2 days ago", "1 week ago", "3 weeks ago", "March 3, 2026", "November 18, 2026")
_PAGE_LINES = (
    "It summarises the main points and links to the primary sources.",
    "The page was last reviewed by its editors this year.",
    "Several examples show how the idea applies in practice.",
    "A short list of related reading closes the article.",
)
_CONTAINER_DAYS = 30


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def _query(sentence: str) -> str:
    query = _QUERY_OPENING.sub("", _URL.sub(" ", sentence).strip())
    query = " ".join(query.strip(" ?!.,;:").split())
    return query[:120] or "web search"


def _host_ok(host: str, domains: list[str]) -> bool:
    """Whether ``host`` is one of ``domains`` or a subdomain of one."""
    for domain in domains:
        bare = domain.lower().split("://")[-1].split("/")[0].removeprefix("www.")
        if bare and (host == bare or host.endswith("." + bare) or host == "www." + bare):
            return True
    return False


def _hosts(tool: Mapping[str, Any]) -> list[str]:
    allowed = tool.get("allowed_domains")
    if allowed:
        return [d.split("://")[-1].split("/")[0].lower() for d in allowed if d.strip()] or []
    blocked = tool.get("blocked_domains") or []
    return [h for h in _HOSTS if not _host_ok(h, blocked)]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _result_tokens(result: Mapping[str, Any], ratio: tuple[int, int]) -> int:
    # Counted like the same block passed back in a later request (see tokens.py).
    return BLOCK_OVERHEAD + count_text(canonical(result).decode(), ratio)


def _web_result(kind: str, call_id: str, content: Any) -> dict[str, Any]:
    """A web_search or web_fetch result block (called directly by the model)."""
    return {
        "type": f"{kind}_tool_result",
        "tool_use_id": call_id,
        "caller": {"type": "direct"},
        "content": content,
    }


def _web_error(kind: str, call_id: str, code: str) -> dict[str, Any]:
    return _web_result(kind, call_id, {"type": f"{kind}_tool_result_error", "error_code": code})


def _search(
    tool: Mapping[str, Any], query: str, call_id: str, rng: random.Random
) -> tuple[dict[str, Any], list[tuple[str, list[dict[str, Any]] | None]]]:
    hosts = _hosts(tool)
    slug = "-".join(re.findall(r"[a-z0-9]+", query.lower())[:6]) or "results"
    found: list[dict[str, Any]] = []
    answer: list[tuple[str, list[dict[str, Any]] | None]] = []
    count = rng.choice((2, 3)) if hosts else 0
    for k, section in enumerate(rng.sample(_SECTIONS, count)):
        host = hosts[k % len(hosts)]
        url = f"https://{host}/{section}/{slug}"
        site = host.removeprefix("www.").split(".")[0].capitalize()
        title = f"{query[:80]} | {site}"
        claim = (
            f"{site} has a page on {query}, {('updated', 'reviewed', 'written')[k % 3]} recently."
        )
        page = f"{claim} {' '.join(rng.sample(_PAGE_LINES, 2))}"
        found.append(
            {
                "type": "web_search_result",
                "url": url,
                "title": title,
                "encrypted_content": _b64(f"emulator page:{page}"),
                "page_age": rng.choice(_PAGE_AGES),
            }
        )
        citation = {
            "type": "web_search_result_location",
            "url": url,
            "title": title,
            "encrypted_index": _b64(f"{call_id}:{k}"),
            "cited_text": claim,
        }
        answer.append((claim, [citation]))
    if not answer:
        answer.append((f'The search for "{query}" found no pages.', None))
    else:
        answer.insert(0, (f'Here is what the search for "{query}" found:', None))
    return _web_result("web_search", call_id, found), answer


def _fetch(
    tool: Mapping[str, Any], url: str, call_id: str, request: ServerRequest, index: int
) -> tuple[dict[str, Any], list[tuple[str, list[dict[str, Any]] | None]], bool]:
    """The fetch result, the answer about it, and whether it returned a page."""
    host = (urlsplit(url).hostname or "").lower()
    allowed, blocked = tool.get("allowed_domains"), tool.get("blocked_domains") or []
    if (allowed is not None and not _host_ok(host, allowed)) or _host_ok(host, blocked):
        result = _web_error("web_fetch", call_id, "url_not_allowed")
        return result, [(f"I could not fetch {url}: the URL is not allowed.", None)], False
    if not host:
        result = _web_error("web_fetch", call_id, "invalid_tool_input")
        return result, [("There was no URL to fetch.", None)], False
    first = f"This is the emulator's stand-in for the page at {url}."
    data = f"{first} {' '.join(_PAGE_LINES)}"
    limit = tool.get("max_content_tokens")
    if limit is not None:
        data = "".join(pieces(data)[:limit])
    cited = bool((tool.get("citations") or {}).get("enabled"))
    title = f"Page at {host}"
    document = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": data},
        "title": title,
        "citations": {"enabled": True} if cited else None,
    }
    content = {
        "type": "web_fetch_result",
        "url": url,
        "retrieved_at": rfc3339(request.now) if request.now is not None else None,
        "content": document,
    }
    result = _web_result("web_fetch", call_id, content)
    quote = data[: len(first)]
    citations = None
    if cited and quote:
        citations = [
            {
                "type": "char_location",
                "cited_text": quote,
                "document_index": request.documents + index,
                "document_title": title,
                "start_char_index": 0,
                "end_char_index": len(quote),
                "file_id": None,
            }
        ]
    answer: list[tuple[str, list[dict[str, Any]] | None]] = [(f"The page at {url} says:", None)]
    answer.append((quote or "(nothing: the page's content was cut to zero tokens)", citations))
    return result, answer, True


# ---------------------------------------------------------------- arithmetic, without eval

_EXPRESSION = re.compile(r"[\d(][\d\s.+\-*/%()]*[\d)]")
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


class _Unsafe(Exception):
    """The expression is not plain arithmetic of a size worth computing."""


def _value(node: ast.AST) -> int | float:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        raise _Unsafe
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_value(node.operand))  # type: ignore[no-any-return]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > 1000 or abs(left) > 10**9):
            raise _Unsafe
        return _BINARY[type(node.op)](left, right)  # type: ignore[no-any-return]
    raise _Unsafe


def _arithmetic(text: str) -> tuple[str, str, str, int] | None:
    """(source, stdout, stderr, return code) for the first arithmetic expression in ``text``."""
    for match in _EXPRESSION.finditer(text):
        source = " ".join(match.group().split())
        if not re.search(r"\d\s*(\*\*|//|[-+*/%])\s*[\d(]", source):
            continue
        try:
            tree = ast.parse(source, mode="eval")
        except SyntaxError:
            continue
        try:
            value = _value(tree.body)
        except _Unsafe:
            continue
        except (ArithmeticError, ValueError) as error:
            trace = (
                'Traceback (most recent call last):\n  File "<string>", line 1, in <module>\n'
                f"{type(error).__name__}: {error}\n"
            )
            return source, "", trace, 1
        return source, f"{value}\n", "", 0
    return None


_SAVE_WORDS = re.compile(r"\b(save|export)\b|\bwrite\b[^.?!]*\bfile\b", re.I)
#: The file the sandbox writes when asked to save: what it printed.
OUTPUT_FILE = "output.txt"
# What the sandbox's program looks like when it reads uploaded files (shown, never run).
_READ_FILES = """import csv, pathlib
for name in {names!r}:
    path = pathlib.Path(name)
    if path.suffix in ('.csv', '.tsv'):
        sep = ',' if path.suffix == '.csv' else '\\t'
        with path.open(newline='') as f:
            rows = [r for r in csv.reader(f, delimiter=sep) if any(r)]
        head = ', '.join(rows[0])
        print(f"{{name}}: {{len(rows) - 1}} rows, {{len(rows[0])}} columns ({{head}})")
    else:
        print(f"{{name}}: {{path.stat().st_size}} bytes")"""


def _code(
    tool_type: str, text: str, call_id: str, uploads: tuple[StoredFile, ...] = ()
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The call's name and input, and its result block, for the tool's version."""
    programs: list[str] = []
    printed: list[str] = []
    stderr, code = "", 0
    if uploads:
        programs.append(_READ_FILES.format(names=[f.filename for f in uploads]))
        printed += [describe(f) + "\n" for f in uploads]
    found = _arithmetic(text)
    if found is not None:
        source, stdout, stderr, code = found
        programs.append(f"print({source})")
        printed.append(stdout)
    if not programs:
        request = " ".join(text.split())[:200]
        programs.append(f"request = {request!r}\nprint(len(request.split()), 'words')")
        printed.append(f"{len(request.split())} words\n")
    program, stdout = "\n".join(programs), "".join(printed)
    written: list[dict[str, str]] = []
    if _SAVE_WORDS.search(text) and not code:
        program += f"\nopen({OUTPUT_FILE!r}, 'w').write({stdout!r})"
        kind = "code_execution_output"
        if tool_type != "code_execution_20250522":
            kind = "bash_code_execution_output"
        written.append({"type": kind, "file_id": created_file_id(call_id, OUTPUT_FILE)})
    output = {"stdout": stdout, "stderr": stderr, "return_code": code, "content": written}
    if tool_type == "code_execution_20250522":
        result = {
            "type": "code_execution_tool_result",
            "tool_use_id": call_id,
            "content": {"type": "code_execution_result", **output},
        }
        return "code_execution", {"code": program}, result
    result = {
        "type": "bash_code_execution_tool_result",
        "tool_use_id": call_id,
        "content": {"type": "bash_code_execution_result", **output},
    }
    return "bash_code_execution", {"command": f"python3 <<'EOF'\n{program}\nEOF"}, result


def created_files(result: Mapping[str, Any]) -> list[tuple[str, str, str, bytes]]:
    """The files a code execution result says the sandbox wrote: (file id, filename, MIME
    type, bytes), for the Files API to keep as files the API made."""
    content = result.get("content")
    if not isinstance(content, Mapping) or not str(result.get("type", "")).endswith(
        "code_execution_tool_result"
    ):
        return []
    stdout = str(content.get("stdout", "")).encode()
    return [
        (str(item["file_id"]), OUTPUT_FILE, "text/plain", stdout)
        for item in content.get("content") or ()
        if isinstance(item, Mapping) and "file_id" in item
    ]


def _code_answer(result: Mapping[str, Any]) -> str:
    content = result["content"]
    if content["return_code"]:
        last = content["stderr"].strip().splitlines()[-1]
        return f"The code failed: {last}"
    return f"Running it printed: {content['stdout'].strip()}"


# ---------------------------------------------------------------- the turn


def run_server_tools(request: ServerRequest, new_id: Callable[[int], str]) -> ServerTurn | None:
    """The server tool calls `SERVER_TOOL_RULE` makes for this request, or None for none.

    ``new_id(k)`` gives the k-th call its ``srvtoolu_`` id. Deterministic: the same request
    gives the same calls, results and answer (times aside).
    """
    by_kind = {TOOL_TYPES[t["type"]].runs: t for t in request.tools}
    text = request.text
    forced = request.forced
    planned: list[tuple[str, str]] = []  # (kind, argument): a query, a URL, a program source
    fetch = by_kind.get("web_fetch")
    search = by_kind.get("web_search")
    if search is not None:
        queries: list[str] = []
        for sentence in _sentences(text):
            if fetch is not None and _URL.search(sentence):
                continue  # a sentence with a URL is web_fetch's
            if _SEARCH_WORDS.search(_URL.sub(" ", sentence)):
                query = _query(sentence)
                if query not in queries:
                    queries.append(query)
        if not queries and forced == "web_search":
            queries.append(_query(text))
        planned += [("web_search", q) for q in queries[:_MAX_CALLS]]
    if fetch is not None:
        urls: list[str] = []
        for url in _URL.findall(text):
            url = url.rstrip(".,;:!?")
            if url not in urls:
                urls.append(url)
        if not urls and forced == "web_fetch":
            urls.append("")
        planned += [("web_fetch", u) for u in urls[:_MAX_CALLS]]
    code = by_kind.get("code_execution")
    if code is not None and (_CODE_WORDS.search(text) or forced == "code_execution"):
        planned.append(("code_execution", text))
    if not planned:
        return None

    rng = random.Random(request.seed ^ 0x5E4E)
    names = sorted({kind for kind, _ in planned})
    turn = ServerTurn(preamble=f"I'll use the {' and '.join(names)} tool{'s' * (len(names) > 1)}.")
    used: dict[str, int] = {}
    fetched = 0
    for number, (kind, argument) in enumerate(planned):
        tool = by_kind[kind]
        call_id = new_id(number)
        used[kind] = used.get(kind, 0) + 1
        limit = tool.get("max_uses")
        over = limit is not None and used[kind] > limit
        counter: str | None = None
        if kind == "web_search":
            name, arguments = "web_search", {"query": argument}
            if over:
                result = _web_error(kind, call_id, "max_uses_exceeded")
                turn.answer.append((f'The search for "{argument}" was not run: max_uses.', None))
            else:
                result, answer = _search(tool, argument, call_id, rng)
                turn.answer += answer
                counter = "web_search_requests"
        elif kind == "web_fetch":
            name, arguments = "web_fetch", {"url": argument}
            if over:
                result = _web_error(kind, call_id, "max_uses_exceeded")
                turn.answer.append((f"{argument} was not fetched: max_uses.", None))
            else:
                result, answer, ok = _fetch(tool, argument, call_id, request, fetched)
                fetched += ok
                turn.answer += answer
                counter = "web_fetch_requests" if ok else None
        else:
            name, arguments, result = _code(tool["type"], argument, call_id, request.uploads)
            turn.answer.append((_code_answer(result), None))
            if request.now is not None:
                turn.container = {
                    "id": request.container or f"container_{call_id.removeprefix('srvtoolu_')}",
                    "expires_at": rfc3339(request.now + _CONTAINER_DAYS * 86400),
                }
        tokens = _result_tokens(result, request.ratio)
        turn.calls.append(ServerCall(call_id, name, arguments, result, counter, tokens))
    return turn
