"""What the emulated model says: reply content, stop reasons, and the stream of events.

    reply = build_reply(prompt, scripted=None, default_tokens=60)
    message_json(reply, prompt, usage, "msg_...")        # the non-streaming body
    stream_events(reply, prompt, usage, "msg_...", 1)    # the same content as SSE events

Generation is deterministic: every choice comes from a random.Random seeded with the request's
hash (``Prompt.seed``, which ignores ``stream``), so a streamed and a non-streamed call for the
same request produce the same content.

Reply rules: ``[[reply_tokens=N]]`` in the last user message sets the text to exactly N tokens
(default: ``default_tokens``), and ``[[refusal]]`` makes the reply a refusal (``[[error=TYPE]]``,
handled in `app`, fails the request with that API error instead). A default reply
starts by quoting the first words of the last user message. ``max_tokens`` cuts the output (in
order: thinking, text, tool call; a tool call that does not fit entirely is dropped) and
``stop_sequences`` cut text before the first occurrence. Thinking (enabled or adaptive) comes
first with a signature (its text left empty where the display is ``omitted``, the default of
the newest models); server tools (web search, web fetch, code execution) run by
`SERVER_TOOL_RULE` (see `server_tools`); client tools are called when ``tool_choice`` forces
one, or under ``auto`` by `AUTO_TOOL_RULE`, several in one turn when the message names several;
a turn of tool results is answered with text that quotes them; ``output_config.format`` makes
the text a JSON document valid against the schema (a label task's by `labeling.LABEL_RULE`: a
simulated labeler with each model's error rate); documents and search results with citations
enabled are cited by the text, where the question points (`CITE_RULE`). Models whose table
entry says ``text_between_tools: "thinking"`` (Opus 5.5, Sonnet 5.5) put the words before a
tool call in a thinking block instead of a text block.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from .catalog import token_ratio
from .instances import satisfying_instance
from .labeling import label_answer
from .server_tools import ServerRequest, ServerTurn, run_server_tools
from .tokens import count_pieces, pieces
from .validation import Prompt, ToolResult

__all__ = [
    "AUTO_TOOL_RULE",
    "CITE_RULE",
    "Event",
    "Reply",
    "ResultBlock",
    "ScriptedReply",
    "TextBlock",
    "ThinkingBlock",
    "ToolUseBlock",
    "build_reply",
    "derived_id",
    "encode_frame",
    "message_json",
    "reply_usage",
    "stream_events",
]

_SENTENCES = (
    "That is a good question and it deserves a careful answer.",
    "The short version is that it depends on a few practical details.",
    "Here is how I would think about it, step by step.",
    "First, look at what you already know and what you still need.",
    "Second, check the assumptions before drawing any firm conclusion.",
    "A small example usually makes the idea much easier to see.",
    "In most cases the simplest approach is also the most reliable one.",
    "It helps to write the steps down and test each of them in turn.",
    "If the numbers look surprising, it is worth checking them twice.",
    "There are trade-offs, so the right choice depends on your goals.",
    "Many people find it useful to start small and then iterate.",
    "You can always refine the result once the basic version works.",
    "The details matter less than getting the overall structure right.",
    "Keep the data and the assumptions visible so others can follow.",
    "A quick summary at the end makes the answer easier to reuse.",
    "This is an emulated reply, so the content is illustrative only.",
    "Let me know if you would like me to go deeper into any part.",
    "Clear names and short functions make the code easier to read.",
    "Measure first, then optimise the part that is actually slow.",
    "Good tests describe the behaviour rather than the implementation.",
)
_THOUGHTS = (
    "Let me work through this carefully.",
    "The user wants a clear and accurate answer.",
    "I should check the key facts before answering.",
    "A structured reply with an example would help here.",
    "I will keep the answer concise but complete.",
    "There may be an edge case worth mentioning.",
)
# Words that end a reply on an exact token count: index = pieces the word takes (with a dot).
_ENDINGS = {1: ("yes.", "it.", "now.", "so."), 2: ("done.", "again.", "clear.", "works.")}
_DIRECTIVE = re.compile(r"\[\[\s*(reply_tokens\s*=\s*(\d+)|refusal)\s*\]\]", re.IGNORECASE)
_CODE_REQUEST = re.compile(
    r"\b(code|function|python|script|snippet|implement|write a (class|def|loop))\b", re.IGNORECASE
)
# Small, runnable answers for code requests (the emulator does not understand the request).
_CODE_SNIPPETS = (
    "def clean(values):\n"
    '    """Drop missing values and strip whitespace from strings."""\n'
    "    return [v.strip() if isinstance(v, str) else v for v in values if v is not None]\n",
    "def summarise(series):\n"
    '    """Count, mean and the share of missing values of a pandas Series."""\n'
    "    return {\n"
    '        "count": int(series.count()),\n'
    '        "mean": float(series.mean()),\n'
    '        "missing": float(series.isna().mean()),\n'
    "    }\n",
    "def drop_outliers(series, k=3.0):\n"
    '    """Keep the values within k standard deviations of the mean."""\n'
    "    mean, std = series.mean(), series.std()\n"
    "    return series[(series - mean).abs() <= k * std]\n",
)
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

#: How the emulator decides, under ``tool_choice: auto``, whether a message calls a tool. Shown
#: by ``python -m claude_magics.emulator --help`` and in the README.
AUTO_TOOL_RULE = (
    "Under tool_choice auto (the default when tools are given), the emulator calls every tool "
    "the last user message names, in the order they are first named, each with its own id "
    "(only the first when tool_choice sets disable_parallel_tool_use). When the message names "
    "none, it calls the one tool that shares the most content words with it through the tool's "
    "name or description (the first listed on a tie; none when no word is shared). Content "
    "words are runs of letters of three or more, lower-cased, a final 's' dropped (not 'ss'), "
    "common English words such as 'the', 'what' and 'please' left out. Every input is generated "
    "to satisfy the tool's input_schema, with the optional properties whose names the message "
    "uses (an enum value named in the message is preferred); the others are left out. "
    "A user turn that returns tool results (and asks "
    "nothing new) is answered with text, so tool loops end: it names the tools that were "
    "called and quotes each result's text (whitespace collapsed, its first 200 characters, "
    "'...' when cut), saying which results were errors (is_error)."
)
_QUOTED_RESULT_CHARS = 200
_WORD = re.compile(r"[a-z]{3,}")
# One string split on spaces: 120 quoted words would fill a screen.
_STOP_TEXT = (
    "about above after again all also and any are because been before being between both but "
    "call can could did does doing done each few for from get give got had has have having "
    "her here hers him his how into its just let like made make many may might more most "
    "much must need not now off once only other our out over own please same say see shall "
    "she should show some such tell than that the their them then there these they this "
    "those through too under until use used using very want was way were what when where "
    "which while who whom why will with would you your yours"
)
_STOP_WORDS = frozenset(_STOP_TEXT.split())


@dataclass
class ScriptedReply:
    """A reply queued with ``Emulator.add_reply`` for the next /v1/messages request."""

    text: str | None = None
    thinking: str | None = None
    tool_use: dict[str, Any] | None = None
    stop_reason: str | None = None


@dataclass
class TextBlock:
    text: str
    citations: list[dict[str, Any]] | None = None


@dataclass
class ThinkingBlock:
    thinking: str  # "" when display is "omitted"
    signature: str
    tokens: int  # what the thinking cost, shown or not


@dataclass
class ToolUseBlock:
    id: str
    name: str
    input: dict[str, Any]
    json_text: str = ""
    server: bool = False  # a server_tool_use block (the API runs the tool)

    def __post_init__(self) -> None:
        if not self.json_text:
            self.json_text = orjson.dumps(self.input).decode()


@dataclass
class ResultBlock:
    """A server tool's result (web_search_tool_result...), sent whole: it costs no output
    tokens, and its ``input_tokens`` are billed as input."""

    content: dict[str, Any]
    input_tokens: int
    counter: str | None = None  # the usage.server_tool_use field it counts in


Block = TextBlock | ThinkingBlock | ToolUseBlock | ResultBlock


@dataclass
class Reply:
    blocks: list[Block] = field(default_factory=list)
    stop_reason: str = "end_turn"
    stop_sequence: str | None = None
    stop_details: dict[str, Any] | None = None
    output_tokens: int = 0
    #: usage.server_tool_use (None when the request offers neither web search nor web fetch).
    server_tool_use: dict[str, int] | None = None
    server_input_tokens: int = 0  # what the server tool results add to input_tokens
    container: dict[str, Any] | None = None


class Event(NamedTuple):
    """One encoded SSE frame, with the output tokens it carries (for pacing)."""

    name: str
    frame: bytes  # b"event: NAME\ndata: JSON\n\n"
    tokens: int = 0
    is_delta: bool = False


def encode_frame(name: str, data: Any) -> bytes:
    """An SSE frame whose event name equals ``data["type"]``."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _b62(digest: bytes, length: int) -> str:
    # One character per byte: the slight bias of ``% 62`` does not matter for ids.
    return "".join([_B62[byte % 62] for byte in digest[:length]])


def derived_id(prefix: str, *parts: object) -> str:
    """A stable id from its parts (tool_use ids, batch message ids)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return prefix + _b62(digest, 24)


def _word_pieces(word: str) -> int:
    return -(-len(word) // 4)


def _prepare(sentences: tuple[str, ...]) -> tuple[tuple[tuple[str, ...], int], ...]:
    """Sentences as (words, token pieces), so whole sentences can be placed at once."""
    return tuple((tuple(s.split()), sum(_word_pieces(w) for w in s.split())) for s in sentences)


_REPLY_BANK = _prepare(_SENTENCES)
_THOUGHT_BANK = _prepare(_THOUGHTS)


def compose(
    words: list[str],
    n: int,
    rng: random.Random,
    bank: tuple[tuple[tuple[str, ...], int], ...],
) -> str:
    """Text of exactly ``n`` token pieces: ``words`` first, then sentences from ``bank``.

    Words are kept whole (a word with a leading space costs ceil(len / 4) pieces); whole
    sentences are added while they fit, and near the end the last word is chosen (or given a
    full stop) so the count lands exactly on ``n``.
    """
    out: list[str] = []
    used = 0

    def place(word: str) -> None:
        nonlocal used
        cost = _word_pieces(word)
        remaining = n - used
        if cost <= remaining:
            out.append(word)
            used += cost
        elif remaining in _ENDINGS:
            out.append(rng.choice(_ENDINGS[remaining]))
            used = n
        # Otherwise the word is too long for the space left: skip it, a shorter one follows.

    for word in words:
        if used >= n:
            break
        place(word)
    while used < n:
        sentence, cost = rng.choice(bank)
        if used + cost < n:  # fits with room to spare: no need to look at single words
            out.extend(sentence)
            used += cost
            continue
        for word in sentence:
            if used >= n:
                break
            place(word)
    text = " ".join(out)
    if out and text[-1].isalnum() and _word_pieces(out[-1] + ".") == _word_pieces(out[-1]):
        text += "."
    if count_pieces(text) != n:  # cannot happen with the banks above; cut to be safe
        text = "".join(pieces(text)[:n])
    return text


def _quote(text: str) -> list[str]:
    """The opening words of a default reply: a quote of the user's first few words."""
    words = _DIRECTIVE.sub(" ", text).split()
    if not words:
        return ["Continuing", "from", "the", "previous", "turn."]
    quoted = words[:6]
    quoted[0] = '"' + quoted[0]
    quoted[-1] += '..."' if len(words) > 6 else '".'
    return ["You", "wrote", *quoted]


def _directives(text: str) -> tuple[int | None, bool]:
    length: int | None = None
    refusal = False
    for match in _DIRECTIVE.finditer(text):
        if match.group(2) is not None:
            length = max(1, int(match.group(2)))
        else:
            refusal = True
    return length, refusal


def _signature(seed: int, thinking: str) -> str:
    digest = hashlib.sha256(f"{seed}:{thinking}".encode()).digest()
    return base64.b64encode(digest + hashlib.sha256(digest).digest()).decode()


def _content_words(text: str) -> set[str]:
    """The words `AUTO_TOOL_RULE` compares: 3+ letters, lower-case, no plural s, no stop words."""
    words = set()
    for word in _WORD.findall(text.lower()):
        if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
            word = word[:-1]
        if word not in _STOP_WORDS:
            words.add(word)
    return words


def _tools_named(prompt: Prompt) -> list[dict[str, Any]]:
    """The tools the last user message names, in the order they are first named."""
    text = prompt.last_user_text.lower()
    found: list[tuple[int, dict[str, Any]]] = []
    for tool in prompt.tools:
        match = re.search(rf"(?<![\w-]){re.escape(tool['name'].lower())}(?![\w-])", text)
        if match is not None:
            found.append((match.start(), tool))
    return [tool for _, tool in sorted(found, key=lambda pair: pair[0])]


def _tool_fitting(prompt: Prompt) -> dict[str, Any] | None:
    """The tool whose name and description share the most content words with the message."""
    asked = _content_words(_DIRECTIVE.sub(" ", prompt.last_user_text))
    best, best_score = None, 0
    for tool in prompt.tools:
        # Names are snake_case or kebab-case: split them into words too.
        name = tool["name"].replace("_", " ").replace("-", " ")
        offered = f"{name} {tool.get('description') or ''}"
        score = len(asked & _content_words(offered))
        if score > best_score:
            best, best_score = tool, score
    return best


def _choose_tools(prompt: Prompt, rng: random.Random) -> tuple[list[dict[str, Any]], bool]:
    """The client tools to call (several when the message names several) and whether the
    call is forced."""
    if not prompt.tools:
        return [], False
    choice = prompt.tool_choice or {"type": "auto"}
    kind = choice["type"]
    if kind == "tool":  # a server tool named here is run by `run_server_tools` instead
        return [t for t in prompt.tools if t["name"] == choice["name"]], True
    if kind == "none" or (kind == "auto" and prompt.answers_tool_results):
        return [], False
    named = _tools_named(prompt)
    if named and choice.get("disable_parallel_tool_use"):
        named = named[:1]
    if named:
        return named, kind == "any"
    fitting = _tool_fitting(prompt)
    if kind == "any":
        return [fitting or rng.choice(prompt.tools)], True
    return ([fitting] if fitting is not None else []), False


def _server_turn(prompt: Prompt, now: float | None) -> ServerTurn | None:
    """The server tools this request runs (None: none), by `SERVER_TOOL_RULE`."""
    choice = prompt.tool_choice or {"type": "auto"}
    if not prompt.server_tools or choice["type"] == "none" or prompt.answers_tool_results:
        return None
    forced: str | None = None
    if choice["type"] == "tool":
        if any(t["name"] == choice["name"] for t in prompt.tools):
            return None  # a client tool is forced
        forced = choice["name"]
    elif choice["type"] == "any" and not prompt.tools:
        forced = prompt.server_tools[0]["name"]
    request = ServerRequest(
        tools=prompt.server_tools,
        text=_DIRECTIVE.sub(" ", prompt.question),
        seed=prompt.seed,
        ratio=token_ratio(prompt.spec),
        forced=forced,
        documents=len(prompt.documents),
        container=prompt.body.get("container"),
        now=now,
        uploads=prompt.uploads,
    )
    return run_server_tools(request, lambda k: derived_id("srvtoolu_", prompt.seed, "server", k))


def _results_summary(results: list[ToolResult]) -> str:
    """The answer to a turn of tool results: which tools ran and what each returned."""
    names = list(dict.fromkeys(r.name for r in results))
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    parts = [f"I called {listed}."]
    for result in results:
        said = " ".join(result.text.split())
        if len(said) > _QUOTED_RESULT_CHARS:
            said = said[:_QUOTED_RESULT_CHARS] + "..."
        if result.is_error:
            parts.append(f'{result.name} returned an error: "{said}".')
        elif said:
            parts.append(f'{result.name} returned: "{said}".')
        else:
            parts.append(f"{result.name} returned nothing.")
    return " ".join(parts)


_SENTENCE_END = re.compile(r"[.!?](\s+|$)")


def _sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, trailing spaces included (at most 300
    characters each)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, min(match.end(), start + 300)))
        start = match.end()
    if start < len(text):
        spans.append((start, min(len(text), start + 300)))
    return spans


def _best(texts: list[str], question: str) -> int:
    """The index of the text sharing the most content words with ``question`` (`CITE_RULE`);
    on a tie, or with none shared, the first that is not empty."""
    wanted = _content_words(question)
    scores = [len(wanted & _content_words(t)) if t else -1 for t in texts]
    if not scores:
        return 0
    best = max(scores)
    return scores.index(best) if best > 0 else next((i for i, t in enumerate(texts) if t), 0)


#: How the emulator chooses what it cites (also in ``--help``).
CITE_RULE = (
    "Each document and search result with citations enabled is cited once, in the text "
    "block of the answer: a PDF by the page, and the sentence in it, sharing the most words "
    "with the question (else the first sentence of the first page with text), a plain-text "
    "document by such a sentence (char_location), a content document or search result by "
    "such a block (content_block_location, search_result_location)."
)


def _citations(prompt: Prompt) -> list[dict[str, Any]]:
    """The answer's citations: one per document and search result that enables them."""
    question = _DIRECTIVE.sub(" ", prompt.question)
    cited: list[dict[str, Any]] = []
    for doc in prompt.documents:
        if not doc.citations:
            continue
        base = {"document_index": doc.index, "document_title": doc.title, "file_id": doc.file_id}
        if doc.kind == "pdf":
            page = _best(doc.page_texts, question)
            text = doc.page_texts[page] if doc.page_texts else ""
            spans = _sentences(text)
            start, end = spans[_best([text[a:b] for a, b in spans], question)] if spans else (0, 0)
            cited.append(
                {
                    "type": "page_location",
                    "cited_text": text[start:end],
                    **base,
                    "start_page_number": page + 1,
                    "end_page_number": page + 2,  # exclusive, as the API reports it
                }
            )
        elif doc.kind == "content":
            block = _best(doc.block_texts, question)
            cited.append(
                {
                    "type": "content_block_location",
                    "cited_text": doc.block_texts[block] if doc.block_texts else "",
                    **base,
                    "start_block_index": block,
                    "end_block_index": block + 1,
                }
            )
        elif doc.kind == "text":
            spans = _sentences(doc.text) or [(0, 0)]
            start, end = spans[_best([doc.text[a:b] for a, b in spans], question)]
            cited.append(
                {
                    "type": "char_location",
                    "cited_text": doc.text[start:end],
                    **base,
                    "start_char_index": start,
                    "end_char_index": end,
                }
            )
    for result in prompt.search_results:
        if not result.citations:
            continue
        block = _best(result.texts, question)
        cited.append(
            {
                "type": "search_result_location",
                "cited_text": result.texts[block] if result.texts else "",
                "search_result_index": result.index,
                "source": result.source,
                "title": result.title,
                "start_block_index": block,
                "end_block_index": block + 1,
            }
        )
    return cited


#: How the emulator answers a JSON schema asked for in words (also in ``--help``).
JSON_RULE = (
    "A request without output_config.format whose system prompt holds a JSON schema inside "
    "<json_schema>...</json_schema> is answered with JSON satisfying it, as text; with cited "
    "documents, the value of its first string field is a text block of its own that carries "
    "the citations."
)
_JSON_SCHEMA_TAG = re.compile(r"<json_schema>(.*?)</json_schema>", re.DOTALL)


def _schema_in_system(prompt: Prompt) -> dict[str, Any] | None:
    """The JSON schema the system prompt asks for in words (``JSON_RULE``), or None."""
    system = prompt.body.get("system")
    if isinstance(system, list):
        system = "".join(b.get("text", "") for b in system if isinstance(b, dict))
    found = _JSON_SCHEMA_TAG.search(system) if isinstance(system, str) else None
    if found is None:
        return None
    try:
        schema = orjson.loads(found.group(1))
    except orjson.JSONDecodeError:
        return None
    return schema if isinstance(schema, dict) else None


def _json_in_text(prompt: Prompt, schema: dict[str, Any], rng: random.Random) -> list[Block]:
    """The answer ``JSON_RULE`` describes: JSON in text blocks, the citations on a value."""
    value = satisfying_instance(schema, rng, prompt.last_user_text)
    text = orjson.dumps(value).decode()
    cited = _citations(prompt)
    if not cited or not isinstance(value, dict):
        return [TextBlock(text, cited or None)]
    for name, field_value in value.items():
        if isinstance(field_value, str):
            key = orjson.dumps(name).decode() + ":"
            start = text.index(key) + len(key)
            end = start + len(orjson.dumps(field_value))
            return [
                TextBlock(text[:start]),
                TextBlock(text[start:end], cited),
                TextBlock(text[end:]),
            ]
    return [TextBlock(text, cited)]


def _cut(text: str, budget: int) -> tuple[str, int, bool]:
    """The text limited to ``budget`` pieces, its piece count, and whether it was cut."""
    count = count_pieces(text)
    if count <= budget:
        return text, count, False
    return "".join(pieces(text)[:budget]), budget, True


def build_reply(
    prompt: Prompt,
    scripted: ScriptedReply | None,
    default_tokens: int,
    now: float | None = None,
) -> Reply:
    """Decide the reply's blocks, then apply stop sequences and max_tokens.

    ``now`` (the emulator clock) dates what server tools return (a fetch's ``retrieved_at``,
    a code execution container's expiry); without it those are left out."""
    rng = random.Random(prompt.seed)
    length, refusal = _directives(prompt.last_user_text)
    blocks: list[Block] = []
    stop_reason = "end_turn"
    stop_details: dict[str, Any] | None = None
    container: dict[str, Any] | None = None

    thinking_text: str | None = None
    if scripted is not None and scripted.thinking is not None:
        thinking_text = scripted.thinking
    elif prompt.thinking is not None:
        budget = prompt.thinking.get("budget_tokens", 10**9)
        ceiling = (prompt.max_tokens or 10**9) // 2
        size = max(1, min(budget, ceiling, 30 + rng.randint(0, 30)))
        thinking_text = compose([], size, rng, _THOUGHT_BANK)
    omitted = prompt.thinking is not None and prompt.thinking_display == "omitted"
    if thinking_text is not None:
        blocks.append(
            ThinkingBlock(
                thinking="" if omitted else thinking_text,
                signature=_signature(prompt.seed, thinking_text),
                tokens=count_pieces(thinking_text),
            )
        )

    if scripted is not None and (scripted.text is not None or scripted.tool_use is not None):
        if scripted.text is not None:
            blocks.append(TextBlock(scripted.text))
        if scripted.tool_use is not None:
            call = scripted.tool_use
            name = str(call.get("name", "tool"))
            blocks.append(
                ToolUseBlock(
                    id=str(call.get("id") or derived_id("toolu_", prompt.seed, name)),
                    name=name,
                    input=dict(call.get("input") or {}),
                )
            )
            stop_reason = "tool_use"
    elif refusal:
        blocks.append(TextBlock("I can't help with that request."))
        stop_reason = "refusal"
        stop_details = {
            "type": "refusal",
            "category": None,
            "explanation": "The emulator refused because the message contains [[refusal]].",
        }
    elif (server := _server_turn(prompt, now)) is not None:
        _say_before_tools(blocks, server.preamble, prompt)
        for ran in server.calls:
            blocks.append(ToolUseBlock(ran.id, ran.name, ran.input, server=True))
            blocks.append(ResultBlock(ran.result, ran.input_tokens, ran.counter))
        blocks += [TextBlock(text, citations) for text, citations in server.answer]
        container = server.container
    else:
        tools, forced = _choose_tools(prompt, rng)
        if tools:
            if not forced:
                listed = " and ".join(t["name"] for t in tools)
                _say_before_tools(
                    blocks, f"I'll use the {listed} tool{'s' * (len(tools) > 1)}.", prompt
                )
            for tool in tools:
                seed = prompt.seed ^ int.from_bytes(tool["name"].encode()[:8], "big")
                arguments = satisfying_instance(
                    tool["input_schema"],
                    random.Random(seed),
                    prompt.last_user_text,
                    hinted_optionals=True,
                )
                blocks.append(
                    ToolUseBlock(
                        id=derived_id("toolu_", prompt.seed, tool["name"]),
                        name=tool["name"],
                        input=arguments if isinstance(arguments, dict) else {},
                    )
                )
            stop_reason = "tool_use"
        elif prompt.output_schema is not None:
            value = label_answer(prompt)  # a label task: by LABEL_RULE
            if value is None:
                value = satisfying_instance(prompt.output_schema, rng, prompt.last_user_text)
            blocks.append(TextBlock(orjson.dumps(value).decode()))
        elif (asked := _schema_in_system(prompt)) is not None:
            blocks += _json_in_text(prompt, asked, rng)
        elif prompt.tool_results:
            summary = _results_summary(prompt.tool_results)
            text = summary if length is None else compose(summary.split(), length, rng, _REPLY_BANK)
            blocks.append(TextBlock(text, _citations(prompt) or None))
        elif length is None and _CODE_REQUEST.search(_DIRECTIVE.sub(" ", prompt.last_user_text)):
            # Asked for code: answer the way a model does, with a fenced block, so notebooks
            # that show code (``%%claude -f code``) have code to show offline too.
            intro = "Here is one way to write it:"
            outro = compose([], 20, rng, _REPLY_BANK)
            code = rng.choice(_CODE_SNIPPETS)
            blocks.append(TextBlock(f"{intro}\n\n```python\n{code}```\n\n{outro}"))
        else:
            target = length if length is not None else default_tokens
            text = compose(_quote(prompt.last_user_text), target, rng, _REPLY_BANK)
            cited = _citations(prompt)
            blocks.append(TextBlock(text, cited or None))
    if scripted is not None and scripted.stop_reason is not None:
        stop_reason = scripted.stop_reason
        if stop_reason == "refusal":
            stop_details = {"type": "refusal", "category": None, "explanation": None}

    reply = Reply(stop_reason=stop_reason, stop_details=stop_details)
    _finish(reply, blocks, prompt)
    results = [b for b in reply.blocks if isinstance(b, ResultBlock)]
    if any(t["name"] in ("web_search", "web_fetch") for t in prompt.server_tools):
        reply.server_tool_use = {
            "web_search_requests": sum(b.counter == "web_search_requests" for b in results),
            "web_fetch_requests": sum(b.counter == "web_fetch_requests" for b in results),
        }
    reply.server_input_tokens = sum(b.input_tokens for b in results)
    if any(b.content["type"].endswith("code_execution_tool_result") for b in results):
        reply.container = container
    return reply


def _say_before_tools(blocks: list[Block], words: str, prompt: Prompt) -> None:
    """The words before tool calls: a text block, or on models whose table says
    ``text_between_tools: "thinking"`` a thinking block (a new one if none opens the reply)."""
    if prompt.spec.text_between_tools == "text":
        blocks.append(TextBlock(words))
    elif not blocks:
        blocks.append(
            ThinkingBlock(
                thinking="" if prompt.thinking_display == "omitted" else words,
                signature=_signature(prompt.seed, words),
                tokens=count_pieces(words),
            )
        )


def _finish(reply: Reply, blocks: list[Block], prompt: Prompt) -> None:
    """Apply stop sequences and max_tokens, and count the output tokens."""
    budget = prompt.max_tokens if prompt.max_tokens is not None else 10**12
    used = 0
    for block in blocks:
        if isinstance(block, ThinkingBlock):
            if used + block.tokens > budget:
                block.tokens = budget - used
                if block.thinking:
                    block.thinking = _cut(block.thinking, block.tokens)[0]
                reply.blocks.append(block)
                _hit_max_tokens(reply, budget)
                return
            used += block.tokens
            reply.blocks.append(block)
        elif isinstance(block, TextBlock):
            stopped: str | None = None
            position = len(block.text)
            for stop in prompt.stop_sequences:
                found = block.text.find(stop)
                if found != -1 and found < position:
                    position, stopped = found, stop
            block.text = block.text[:position]
            block.text, count, was_cut = _cut(block.text, budget - used)
            reply.blocks.append(block)
            if was_cut:
                _hit_max_tokens(reply, budget)
                return
            used += count
            if stopped is not None:
                reply.stop_reason = "stop_sequence"
                reply.stop_sequence = stopped
                reply.stop_details = None
                reply.output_tokens = used
                return
        elif isinstance(block, ResultBlock):
            reply.blocks.append(block)  # input to the model, not output
        else:
            cost = count_pieces(block.json_text)
            if used + cost > budget:
                _hit_max_tokens(reply, budget)
                return
            used += cost
            reply.blocks.append(block)
    reply.output_tokens = used


def _hit_max_tokens(reply: Reply, budget: int) -> None:
    reply.stop_reason = "max_tokens"
    reply.stop_sequence = None
    reply.stop_details = None
    reply.output_tokens = budget


def block_json(block: Block) -> dict[str, Any]:
    """A finished content block as the Message object carries it."""
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text, "citations": block.citations}
    if isinstance(block, ThinkingBlock):
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    if isinstance(block, ResultBlock):
        return dict(block.content)
    return {
        "type": "server_tool_use" if block.server else "tool_use",
        "id": block.id,
        "name": block.name,
        "input": block.input,
        "caller": {"type": "direct"},
    }


def message_json(
    reply: Reply, prompt: Prompt, usage: dict[str, Any], message_id: str
) -> dict[str, Any]:
    """The Message object of a non-streaming response (and of a batch result)."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": prompt.model,
        "content": [block_json(b) for b in reply.blocks],
        "stop_reason": reply.stop_reason,
        "stop_sequence": reply.stop_sequence,
        "stop_details": reply.stop_details,
        "container": reply.container,
        "usage": usage,
    }


def reply_usage(
    reply: Reply, prompt: Prompt, cache_usage: dict[str, Any], service_tier: str
) -> dict[str, Any]:
    """The Usage object of ``reply``: the prompt cache's figures (``PromptCache`` plan), the
    output, and the server tools' requests, whose results count as input tokens."""
    return {
        **cache_usage,
        "input_tokens": cache_usage["input_tokens"] + reply.server_input_tokens,
        "output_tokens": reply.output_tokens,
        "inference_geo": prompt.body.get("inference_geo"),
        "server_tool_use": reply.server_tool_use,
        "service_tier": service_tier,
    }


def _groups(parts: list[str], size: int) -> list[tuple[str, int]]:
    if size == 1:
        return [(part, 1) for part in parts]
    return [
        ("".join(parts[i : i + size]), len(parts[i : i + size])) for i in range(0, len(parts), size)
    ]


# Content deltas are most of a stream: they are encoded from templates rather than dicts, which
# keeps a 20,000-delta stream well under a second. The bytes equal orjson's encoding of the dict.
_DELTA_FRAMES = {
    kind: (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
        b'"delta":{"type":"' + kind.encode() + b'","' + field.encode() + b'":%s}}\n\n'
    )
    for kind, field in (
        ("text_delta", "text"),
        ("thinking_delta", "thinking"),
        ("input_json_delta", "partial_json"),
        ("signature_delta", "signature"),
    )
}


def _deltas(index: int, kind: str, parts: list[str], size: int) -> list[Event]:
    template = _DELTA_FRAMES[kind]
    dumps = orjson.dumps
    return [
        Event("content_block_delta", template % (index, dumps(chunk)), count, True)
        for chunk, count in _groups(parts, size)
    ]


def stream_events(
    reply: Reply,
    prompt: Prompt,
    usage: dict[str, Any],
    message_id: str,
    tokens_per_delta: int,
) -> list[Event]:
    """The SSE events (pings excluded) that stream ``reply``; they fold to `message_json`."""
    # The stream starts before any server tool runs: its results and requests come at the end.
    start_usage = dict(
        usage,
        input_tokens=usage["input_tokens"] - reply.server_input_tokens,
        output_tokens=1,
        server_tool_use=None
        if reply.server_tool_use is None
        else dict.fromkeys(reply.server_tool_use, 0),
    )
    start = message_json(Reply(), prompt, start_usage, message_id)
    start.update(stop_reason=None, stop_sequence=None, stop_details=None)
    events = [_event({"type": "message_start", "message": start})]
    for index, block in enumerate(reply.blocks):
        if isinstance(block, TextBlock):
            events.append(_start(index, {"type": "text", "text": "", "citations": None}))
            for citation in block.citations or ():
                cite = {"type": "citations_delta", "citation": citation}
                events.append(_event(_delta_data(index, cite), is_delta=True))
            events += _deltas(index, "text_delta", pieces(block.text), tokens_per_delta)
        elif isinstance(block, ResultBlock):
            events.append(_start(index, block_json(block)))  # whole, no deltas
        elif isinstance(block, ThinkingBlock):
            events.append(_start(index, {"type": "thinking", "thinking": "", "signature": ""}))
            events += _deltas(index, "thinking_delta", pieces(block.thinking), tokens_per_delta)
            # Omitted thinking is still generated: its signature delta carries the time it took.
            (signature,) = _deltas(index, "signature_delta", [block.signature], 1)
            hidden = block.tokens if not block.thinking else 0
            events.append(signature._replace(tokens=hidden))
        else:
            events.append(_start(index, {**block_json(block), "input": {}}))
            # The first input_json_delta is empty, as the API sends it.
            (first,) = _deltas(index, "input_json_delta", [""], 1)
            events.append(first._replace(tokens=0))
            events += _deltas(index, "input_json_delta", pieces(block.json_text), tokens_per_delta)
        events.append(_event({"type": "content_block_stop", "index": index}))
    delta: dict[str, Any] = {
        "stop_reason": reply.stop_reason,
        "stop_sequence": reply.stop_sequence,
        "stop_details": reply.stop_details,
        "container": reply.container,
    }
    final_usage = {
        "input_tokens": usage["input_tokens"],
        "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
        "cache_read_input_tokens": usage["cache_read_input_tokens"],
        "output_tokens": usage["output_tokens"],
        "server_tool_use": usage["server_tool_use"],
    }
    events.append(_event({"type": "message_delta", "delta": delta, "usage": final_usage}))
    events.append(_event({"type": "message_stop"}))
    return events


def _event(data: dict[str, Any], *, is_delta: bool = False) -> Event:
    return Event(data["type"], encode_frame(data["type"], data), 0, is_delta)


def _start(index: int, block: dict[str, Any]) -> Event:
    return _event({"type": "content_block_start", "index": index, "content_block": block})


def _delta_data(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}
