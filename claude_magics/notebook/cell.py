"""One ``%%claude`` call, from request body to shown result: what the magic hands over to.

    result = send(client, body, view, stream=True, fmt="markdown")  # streams, then shows
    record_spend(ledger, result, cell="In[3]")  # once the answer is kept; warns, never raises
    keep_answer(replayer, key, body, result)     # for replay, last; warns, never raises

    result = replay(stored, view, source="2026-12-02 14:03")  # an answer already paid for
    record_replay(ledger, result, cell="In[3]")

:func:`send` knows nothing of traitlets or IPython's ``Magics``: it takes a client, the request
body and a view (any object with the methods of :class:`~.views.View`), streams the answer into
the view, shows the final output and returns a :class:`~.result.ClaudeResult`. The caller keeps
the answer (``--out``, the conversation) and only then records it with :func:`record_spend`, so
an answer already paid for is never lost to a spend ledger that cannot be written: a ledger
that fails is one warning line on stderr, and the cell goes on. Last, :func:`raise_outcome`
fails the cell when the call did not end well (interrupted, a broken stream, an answer that is
not the JSON asked for), after all of that has happened.

A request answered before (the replay store, a cassette) is shown by :func:`replay` through the
same view calls and :func:`final_output` as a live answer, so the saved notebook, ``--out`` and
the conversation cannot tell them apart; only the status line and ``metadata`` say "replayed".

An answer cut short (interrupted, or a broken stream) before the API reported its final usage
is priced and recorded with the output tokens that did arrive, estimated from the text and
marked so (``result.output_estimate``; the ledger's kind reads "realtime (output estimated)"),
never with the one token ``message_start`` announces: a budget must see what was streamed.
"""

from __future__ import annotations

import html
import json
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..cost.pricing import Cost, price_usage
from ..errors import APIStreamError, ClaudeError, StorageError
from .content import answer_text, steps_text
from .result import ClaudeResult, ThinkingClock

if TYPE_CHECKING:
    from ..api.client import Client
    from ..api.uploads import Uploads
    from ..cost.ledger import Ledger
    from ..cost.replay import Replayer, StoredAnswer
    from .views import View

__all__ = [
    "FORMATS",
    "ClaudeInterrupted",
    "extract_code",
    "final_output",
    "keep_answer",
    "parse_json",
    "raise_outcome",
    "record_replay",
    "record_spend",
    "replay",
    "send",
    "show_ledger_notices",
    "show_replay_notices",
    "show_upload_notices",
]

#: How an answer is shown: ``-f/--format``.
FORMATS = ("markdown", "text", "code", "json")


#: What an interrupt mid-answer says: the partial answer is shown, kept (``--out``, the
#: conversation) and recorded.
PARTIAL_KEPT = "Interrupted: the partial answer above is kept."
#: What an interrupt says before any of the answer arrived (waiting for the first token, in a
#: retry's back-off): there is nothing to keep.
NOTHING_ARRIVED = "Interrupted before the answer began: there is no answer to keep."
#: The ledger kind of a realtime call whose output tokens are estimated (see the docstring).
ESTIMATED_KIND = "realtime (output estimated)"


class ClaudeInterrupted(KeyboardInterrupt):
    """The kernel was interrupted during a call. It is still a KeyboardInterrupt (so whatever
    stops on Ctrl-C stops), but IPython shows it as one line saying what was kept, instead
    of the traceback of wherever the signal happened to land."""

    def __init__(self, message: str = PARTIAL_KEPT) -> None:
        super().__init__(message)
        self.message = message

    def _render_traceback_(self) -> list[str]:
        return [self.message]


def send(
    client: Client,
    body: dict[str, Any],
    view: View,
    *,
    stream: bool = True,
    fmt: str = "markdown",
    chat: str | None = None,
    price_overrides: Mapping[str, Any] | None = None,
) -> ClaudeResult:
    """Send ``body`` (a Messages API request), show the answer in ``view`` and return it.

    With ``stream`` the answer is streamed into the live view, event by event; a kernel
    interrupt stops it there (the connection is closed, the partial answer kept, and
    ``result.interrupted`` set), and a stream that breaks mid-answer leaves its error in
    ``result.failure`` instead of raising it, so the partial answer can still be shown, kept
    and recorded. Either way the final output (``fmt``: markdown, text, code or json) is shown
    through ``view.finish``. An error before any answer (a 4xx, no connection) retires the
    view and is raised as it is. Cost is priced with
    :func:`~claude_magics.cost.pricing.price_usage` (``price_overrides`` as there).
    """
    started = time.monotonic()
    clock = ThinkingClock()
    first_token: float | None = None
    interrupted = False
    failure: APIStreamError | None = None
    request_id: str | None = None
    # Whether the API reported the answer's final usage (message_delta): until it does, the
    # usage holds message_start's placeholder output count.
    final_usage = not stream
    try:
        if stream:
            view.start()
            with client.messages.stream(**body) as live:
                request_id = live.request_id
                try:
                    for event in live:
                        if event.type == "message_delta":
                            final_usage = True
                        if first_token is None and event.type in ("text", "thinking"):
                            first_token = time.monotonic() - started
                        clock.feed(event, time.monotonic())
                        view.event(event, live.accumulator)
                except KeyboardInterrupt:
                    # Leaving the `with` closes the connection: the API stops generating.
                    interrupted = True
                except APIStreamError as exc:
                    failure = exc
                message = live.message
        else:
            reply = client.messages.create(**body)
            request_id = reply.request_id
            message = dict(reply)
    except KeyboardInterrupt:
        # Before any of the answer arrived (waiting for the first byte, a retry's back-off):
        # one line, not the traceback of wherever in httpx or time.sleep the signal landed.
        view.abandon()
        raise ClaudeInterrupted(NOTHING_ARRIVED) from None
    except BaseException:
        view.abandon()
        raise
    text = "".join(b.get("text", "") for b in message.get("content", []) if b.get("type") == "text")
    model = str(message.get("model") or body["model"])
    result = ClaudeResult(
        text=text,
        message=message,
        model=model,
        request_id=request_id,
        elapsed=time.monotonic() - started,
        time_to_first_token=first_token,
        interrupted=interrupted,
        error=str(failure) if failure else None,
        chat=chat,
        failure=failure,
        thinking_seconds=clock.seconds(time.monotonic()),
    )
    if not final_usage:
        result.output_estimate = _estimate_output(result)
    result.cost = price_usage(result.tokens, model, overrides=price_overrides)
    if fmt == "json":
        result.data, problem = parse_json(text)
        if problem and not interrupted and failure is None:
            result.error = problem
    bundle, metadata = final_output(result, fmt)
    view.finish(result, bundle, metadata)
    return result


def replay(
    stored: StoredAnswer,
    view: View,
    *,
    source: str,
    stream: bool = True,
    fmt: str = "markdown",
    chat: str | None = None,
    price_overrides: Mapping[str, Any] | None = None,
) -> ClaudeResult:
    """Show ``stored`` (an answer already paid for) in ``view`` as :func:`send` shows a live
    one, and return it: cost $0, ``saved_usd`` what it cost then (priced from its usage when
    the store does not know), ``replayed_from`` is ``source``.

    The view gets the calls a live answer gives it (``start`` when streamed, then ``finish``),
    so a notebook shows the same outputs whether a cell was answered or replayed: nbval,
    comparing a CI run against the recorded notebook, sees no difference."""
    message = stored.message
    text = "".join(b.get("text", "") for b in message.get("content", []) if b.get("type") == "text")
    model = str(message.get("model") or "")
    result = ClaudeResult(
        text=text,
        message=message,
        model=model,
        request_id=stored.request_id,
        cost=Cost(0.0, 0.0, 0.0, 0.0),
        chat=chat,
        replayed_from=source,
    )
    saved = stored.cost_usd
    if saved is None:
        priced = price_usage(result.tokens, model, overrides=price_overrides)
        saved = priced.total if priced is not None else None
    result.saved_usd = saved
    if fmt == "json":
        result.data, result.error = parse_json(text)
    bundle, metadata = final_output(result, fmt)
    if stream:
        view.start()
        # The stored answer goes through the view as the stream went, so each view shows what
        # it showed live (the terminal prints the text as it came, not re-shaped).
        from ..api.streaming import MessageAccumulator, events_of_message

        acc = MessageAccumulator()
        for data in events_of_message(message):
            event = acc.feed(data)
            if event is not None:
                view.event(event, acc)
    view.finish(result, bundle, metadata)
    return result


def _estimate_output(result: ClaudeResult) -> int | None:
    """The output tokens of an answer cut short, counted from what arrived (text and thinking),
    when that is more than the usage reported so far; None when the report stands."""
    from ..prompt import estimate_tokens

    arrived = estimate_tokens(result.text) + estimate_tokens(result.thinking)
    return arrived if arrived > result.tokens.output else None


def record_spend(ledger: Ledger, result: ClaudeResult, *, cell: str | None = None) -> bool:
    """Write ``result``'s usage and cost to the spend ledger (nothing when no tokens were
    reported); True when it was written.

    Call it after the answer is shown and kept. A ledger that cannot be written (locked,
    damaged beyond repair, read-only, a full disk, a path that is a folder) costs no answer:
    it is one warning line on stderr that says what to do, and False. Notices the ledger has
    for the user (a damaged file moved aside) are shown once, the same way."""
    if not result.tokens:
        return True
    try:
        ledger.record_usage(
            model=result.model,
            usage=result.tokens,
            cost=result.cost,
            seconds=result.elapsed,
            request_id=result.request_id,
            kind="realtime" if result.output_estimate is None else ESTIMATED_KIND,
            cell=cell,
        )
    except StorageError as error:
        print(
            f"Warning: the answer is kept, but its spend was not recorded "
            f"(%claude_usage and the budget will not count it): {error}",
            file=sys.stderr,
        )
        return False
    finally:
        show_ledger_notices(ledger)
    return True


def record_replay(ledger: Ledger, result: ClaudeResult, *, cell: str | None = None) -> bool:
    """Write a replayed answer to the spend ledger (kind ``replay``, $0, with what it saved);
    like :func:`record_spend`, a ledger that cannot be written is one warning line."""
    try:
        ledger.record_replay(
            model=result.model,
            usage=result.tokens,
            saved=result.saved_usd,
            request_id=result.request_id,
            cell=cell,
        )
    except StorageError as error:
        print(
            f"Warning: the replayed answer is shown, but it was not recorded "
            f"(%claude_usage will not count what it saved): {error}",
            file=sys.stderr,
        )
        return False
    finally:
        show_ledger_notices(ledger)
    return True


def keep_answer(
    replayer: Replayer, key: str, body: Mapping[str, Any], result: ClaudeResult
) -> bool:
    """Keep a live answer for replay (the store, and the cassette when one records); True when
    kept. Only a whole answer is kept: one interrupted, cut by a broken stream or not the JSON
    asked for is asked again next time. Call it last: a store that cannot be written costs no
    answer, only one warning line on stderr."""
    if result.replayed or result.failure is not None or result.interrupted or result.error:
        return False
    try:
        replayer.keep(key, body, result.message, result.cost.total if result.cost else None)
    except (StorageError, OSError) as error:
        print(
            f"Warning: the answer is kept, but not for replay (a re-run will ask again): {error}",
            file=sys.stderr,
        )
        return False
    finally:
        show_replay_notices(replayer)
    return True


def show_replay_notices(replayer: Replayer) -> None:
    """Print, once, what the replay store has to tell (a damaged file moved aside)."""
    store = replayer.store
    while store is not None and store.notices:
        print(f"Warning: {store.notices.pop(0)}", file=sys.stderr)


def show_upload_notices(uploads: Uploads) -> None:
    """Print, once, what the uploads have to tell (a store that failed or was damaged, a
    server without the Files API), one warning line each on stderr."""
    while uploads.notices:
        print(f"Warning: {uploads.notices.pop(0)}", file=sys.stderr)


def show_ledger_notices(ledger: Ledger) -> None:
    """Print, once, what the ledger has to tell the user (a damaged file moved aside), one
    warning line each on stderr."""
    while ledger.notices:
        print(f"Warning: {ledger.notices.pop(0)}", file=sys.stderr)


def raise_outcome(result: ClaudeResult, fmt: str) -> None:
    """Fail the cell if the call did not end well: the stream's error, ``ClaudeInterrupted``,
    or a ``ClaudeError`` when ``fmt`` is json and the answer is not JSON. Call it last."""
    if result.failure is not None:
        raise result.failure
    if result.interrupted:
        raise ClaudeInterrupted(PARTIAL_KEPT if result.text or result.thought else NOTHING_ARRIVED)
    if fmt == "json" and result.data is None and result.error:
        raise ClaudeError(result.error)


def extract_code(text: str) -> str:
    """The first fenced code block of an answer, or the whole answer when it has none."""
    lines = text.splitlines()
    start = None
    for index, line in enumerate(lines):
        if line.strip().startswith("```"):
            if start is None:
                start = index
            else:
                return "\n".join(lines[start + 1 : index])
    return text.strip()


def parse_json(text: str) -> tuple[Any, str | None]:
    """The answer as JSON (a fenced block is unwrapped), or None and what is wrong with it."""
    body = text.strip()
    if body.startswith("```"):
        body = extract_code(body)
    try:
        return json.loads(body), None
    except json.JSONDecodeError as exc:
        return None, f"the answer is not valid JSON ({exc.msg} at line {exc.lineno}); shown as text"


def final_output(result: ClaudeResult, fmt: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The static output of a finished call: a MIME bundle and its metadata.

    Markdown with a ``text/plain`` twin (plain text only for ``fmt="text"``), the status line
    under it, and the call's model, usage, cost and timing in ``metadata["claude_magics"]``:
    what the saved notebook keeps.
    """
    status = html.escape(result.status())
    metadata = {
        "claude_magics": {
            "model": result.model,
            "usage": result.usage,
            # An answer cut short before its final usage: the output tokens that arrived.
            "output_tokens_estimate": result.output_estimate,
            "cost_usd": result.cost.total if result.cost else None,
            "request_id": result.request_id,
            "stop_reason": result.stop_reason,
            "interrupted": result.interrupted,
            "time_to_first_token": result.time_to_first_token,
            "thinking_seconds": (
                None if result.thinking_seconds is None else round(result.thinking_seconds, 3)
            ),
            "seconds": round(result.elapsed, 3),
        }
    }
    facts: dict[str, Any] = metadata["claude_magics"]
    if result.replayed:
        facts["replayed_from"] = result.replayed_from
        facts["saved_usd"] = result.saved_usd
    steps_md, steps_plain = steps_text(result)
    if steps_md is not None:
        facts["tool_steps"] = [
            {"tool": s.tool, "input": s.input, "summary": s.summary, "is_error": s.is_error}
            for s in result.steps
        ]
        facts["loop_calls"] = result.loop_calls
        facts["loop_cost_usd"] = result.loop_cost_usd
        if result.loop_note:
            facts["loop_note"] = result.loop_note
    # A tool loop's steps go above the answer, in every format.
    head_md = f"{steps_md}\n\n" if steps_md else ""
    head_plain = f"{steps_plain}\n\n" if steps_plain else ""
    footer = f"\n\n<sub>{status}</sub>"
    if fmt == "text":
        return {"text/plain": f"{head_plain}{result.text}\n\n[{result.status()}]"}, metadata
    if fmt == "code":
        code = extract_code(result.text)
        return {
            "text/markdown": f"{head_md}```python\n{code}\n```{footer}",
            "text/plain": head_plain + code,
        }, metadata
    if fmt == "json" and result.data is not None:
        pretty = json.dumps(result.data, indent=2, ensure_ascii=False)
        return {
            "text/markdown": f"{head_md}```json\n{pretty}\n```{footer}",
            "text/plain": head_plain + pretty,
        }, metadata
    # Citations as numbered footnotes, searches and sandbox runs in place (--web and
    # --code-execution); a plain answer is its text.
    rich_md, rich_plain = answer_text(result.message)
    md = rich_md if rich_md is not None else result.text
    plain = rich_plain if rich_plain is not None else result.text
    if result.thought:
        md = _thinking_section(result) + md
    return {"text/markdown": head_md + md + footer, "text/plain": head_plain + plain}, metadata


def _thinking_section(result: ClaudeResult) -> str:
    """A collapsed section above the answer: the thinking text, or, when the model left it
    out (new models do unless asked), how to get it. The status line says for how long."""
    text = result.thinking
    if text:
        return f"<details><summary>Thinking</summary>\n\n{text}\n\n</details>\n\n"
    return (
        "<details><summary>Thinking (no text returned)</summary>\n\n"
        "The model thought but returned no thinking text, as new models do unless asked: run "
        "the cell with --show-thinking (or %config ClaudeMagics.show_thinking = True) for a "
        "summary of it.\n\n</details>\n\n"
    )
