"""The realtime runner of a DataFrame job: its distinct prompts sent concurrently as single
messages, each answer kept in the job store (with the spend it owes) the moment it is handed
over, so a ``kill -9`` loses no answer that had arrived and a re-run pays for no row twice.
(Sending goes on meanwhile, in the fan-out's own thread: a slow disk never idles the wire.)

    run_realtime(job, prompts)          # from Job.start / Job.wait in realtime mode
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import (
    APIConnectionError,
    APIError,
    APIResponseError,
)
from .replaying import Fresh
from .spend import row_spend
from .store import OwedSpend
from .wire import (
    failed_row,
    message_row,
)

if TYPE_CHECKING:
    from ..api.client import ApiObject
    from ..api.fanout import Outcome
    from .state import JobState


from .sending import MAX_ATTEMPTS, SPEND_EVERY, JobInterrupted

__all__ = ["run_realtime"]


# --------------------------------------------------------------------------------------------
# Realtime


class _MalformedAnswer(APIError):
    """A 2xx response whose body is not a message (cut short, not JSON, another shape)."""

    error_type = "malformed_response"


def _is_message(response: Any) -> bool:
    content = response.get("content") if isinstance(response, Mapping) else None
    return isinstance(content, list) and all(isinstance(block, Mapping) for block in content)


def run_realtime(job: JobState, prompts: list[int]) -> None:
    """Send ``prompts`` as concurrent ``/v1/messages`` calls (blocking, with progress), storing
    every answer as it arrives. An interrupt keeps what came and raises :class:`JobInterrupted`.
    """
    from ..api.fanout import run_concurrently
    from ..prompt import estimate_tokens
    from .progress import Progress

    record = job.record
    done_before = record.n_prompts - len(prompts)
    bar = Progress(
        record.n_prompts, f"{job.id} realtime", enabled=job.progress, initial=done_before
    )
    last_spend = time.monotonic()
    answered = 0
    attempt = job.store.next_attempt(job.id)

    def send(prompt: int) -> ApiObject:
        try:
            return job.client.request(
                "POST",
                "/v1/messages",
                body=orjson.Fragment(job.params(prompt)),
                max_retries=0,
                betas=job.betas,
            )
        except APIResponseError as exc:  # a 2xx body cut short or not JSON
            raise _MalformedAnswer(f"the answer was cut short or is not JSON ({exc})") from None

    def keep(outcome: Outcome[int]) -> None:
        nonlocal answered, last_spend
        owed: OwedSpend | None = None
        response = outcome.response
        if response is not None and _is_message(response):
            row = message_row(outcome.item, response, response.request_id or "", attempt)
            owed = row_spend(
                row,
                kind="realtime",
                model=record.model,
                overrides=job.price_overrides,
                seconds=outcome.seconds,
            )
        else:
            error: Any = outcome.error or _MalformedAnswer("the answer is not a message")
            kind = getattr(error, "error_type", None) or (
                "connection_error" if isinstance(error, APIConnectionError) else "api_error"
            )
            row = failed_row(outcome.item, f"errored:{kind}", str(error), "realtime", attempt)
        # In the store before the next answer is looked at: a process killed now has it.
        job.put_results([row], [owed] if owed is not None else None)
        if owed is not None and response is not None:
            cost = None if owed.cost is None else owed.cost.total
            fresh = Fresh()
            fresh.add(outcome.item, response, cost)
            job.keep_answers(fresh)
        answered += 1
        bar.advance(1)
        now = time.monotonic()
        if now - last_spend >= SPEND_EVERY:
            job.write_spend()
            last_spend = now
        job.check_claim()

    cacheable = bool(record.spec.get("cacheable"))
    # What each request costs against an input-token budget: cache reads do not count.
    shared = 0 if cacheable else int(record.spec.get("instruction_tokens") or 0)
    fresh_tokens = {n: shared + estimate_tokens(job.texts[n]) for n in prompts}
    interrupted = False
    try:
        run_concurrently(
            prompts,
            send,
            on_outcome=keep,
            weight=lambda n: float(fresh_tokens[n]),
            first_alone=cacheable,
            max_attempts=MAX_ATTEMPTS,
            # One backoff for every retry the package makes: the client's.
            initial_backoff=job.client.initial_retry_delay,
            max_backoff=job.client.max_retry_delay,
            # A second job of this model on this client starts at the limit the first learned.
            remember=(job.client, record.model),
        )
    except KeyboardInterrupt:
        interrupted = True
    finally:
        job.save()
        job.write_spend()
        job.keep_answers(final=True)
        bar.close()
    if interrupted:
        job.set_state("interrupted")
        raise JobInterrupted(job, done_before + answered, record.n_prompts) from None
    job.set_state("done")
