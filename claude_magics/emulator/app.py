"""The emulated API as plain functions of a request: routing, auth, faults, limits, endpoints.

    app = App(EmulatorOptions())
    out = app.handle(Incoming("GET", "/v1/models", {}, headers, b""), admitted=True)

Nothing here touches sockets. `server` turns HTTP into `Incoming` and writes the `Outgoing`
back (JSON, an SSE stream with its pacing and faults, JSON lines, or a dropped connection).
All mutable state (faults, scripted replies, the request log, the prompt cache, batches, rate
limit buckets, the clock offset) lives on `App` behind one lock.
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import catalog
from .batches import Batch, BatchItem, BatchTiming
from .caching import PromptCache
from .errors import DEFAULT_MESSAGES, ERROR_STATUS, ApiError, error_body, error_type_for_status
from .files import (
    FILES_BETA,
    MAX_FILE_BYTES,
    MULTIPART_OVERHEAD,
    FileStore,
    named_files,
    not_found,
    parse_upload,
)
from .generation import (
    Event,
    Reply,
    ResultBlock,
    ScriptedReply,
    build_reply,
    derived_id,
    message_json,
    reply_usage,
    stream_events,
)
from .options import EmulatorOptions, Fault
from .ratelimit import RateLimiter
from .rules import RequestContext
from .server_tools import created_files
from .validation import Prompt, parse_request

__all__ = [
    "App",
    "DropOut",
    "Incoming",
    "JsonOut",
    "LinesOut",
    "Outgoing",
    "RecordedRequest",
    "StreamOut",
]

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
MAX_BATCH_REQUESTS = 100_000
MAX_BATCH_BYTES = 256 * 1024 * 1024
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_REDACTED_HEADERS = frozenset({"x-api-key", "authorization", "x-amz-security-token"})
_STOP_REASONS = frozenset(
    {"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"}
)


def random_id(prefix: str, length: int = 24) -> str:
    """``prefix`` + random base62 characters (request ids, message and batch ids)."""
    return prefix + "".join([_B62[byte % 62] for byte in os.urandom(length)])


@dataclass(frozen=True)
class RecordedRequest:
    """A request the emulator received (admin routes excluded), as it answered it.

    ``status`` is the HTTP status sent, or 0 when the connection was dropped without a
    response. Credentials are never stored: ``x-api-key`` reads ``"<redacted>"``.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int
    request_id: str
    time: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Incoming:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    oversized: bool = False  # the body exceeded the route's limit and was discarded


@dataclass
class JsonOut:
    status: int
    body: bytes
    headers: dict[str, str]
    delay: float = 0.0


@dataclass
class StreamOut:
    headers: dict[str, str]
    events: list[Event]
    request_id: str
    fault: Fault | None
    time_to_first_token: float
    tokens_per_second: float | None
    ping_every: int
    delay: float = 0.0
    #: "sse", or "eventstream" (Bedrock's InvokeModelWithResponseStream: AWS event-stream
    #: frames, no pings, faults as exception frames).
    framing: str = "sse"


@dataclass
class LinesOut:
    headers: dict[str, str]
    lines: Iterator[bytes]
    delay: float = 0.0


@dataclass
class DropOut:
    delay: float = 0.0


Outgoing = JsonOut | StreamOut | LinesOut | DropOut


@dataclass
class _ArmedFault:
    fault: Fault
    seen: int = 0
    hits: int = 0


@dataclass
class _Context:
    """What a route handler gets: the request, its parsed body, a snapshot of options, what
    the headers decided (API version, betas) and the models served under those options."""

    request: Incoming
    body: Any
    request_id: str
    options: EmulatorOptions
    api: RequestContext
    params: list[str] = field(default_factory=list)

    @property
    def catalog(self) -> catalog.Catalog:
        return catalog.catalog_for(self.options.registered_models)


def _json(status: int, payload: Any, headers: Mapping[str, str]) -> JsonOut:
    return JsonOut(status, orjson.dumps(payload), {"content-type": "application/json", **headers})


def _format_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class App:
    def __init__(self, options: EmulatorOptions) -> None:
        self.lock = threading.RLock()
        self.options = options
        self.base_url = ""
        self.clock_offset = 0.0
        self.faults: list[_ArmedFault] = [_ArmedFault(f) for f in options.faults]
        self.replies: deque[ScriptedReply] = deque()
        self.records: list[RecordedRequest] = []
        self.cache = PromptCache()
        self.batches: dict[str, Batch] = {}
        self.batch_sequence = 0
        self.files = FileStore()
        self.limiter = RateLimiter(options, self.now())
        self.in_flight = 0
        #: Google OAuth tokens issued at /oauth2/token (Vertex routes): token -> expiry time.
        self.issued_tokens: dict[str, float] = {}
        self._routes: list[tuple[re.Pattern[str], dict[str, Callable[[_Context], Outgoing]]]] = [
            (re.compile(r"/v1/messages"), {"POST": self._messages}),
            (re.compile(r"/v1/messages/count_tokens"), {"POST": self._count_tokens}),
            (re.compile(r"/v1/models"), {"GET": self._list_models}),
            (re.compile(r"/v1/models/([^/]+)"), {"GET": self._get_model}),
            (
                re.compile(r"/v1/messages/batches"),
                {"POST": self._create_batch, "GET": self._list_batches},
            ),
            (
                re.compile(r"/v1/messages/batches/([^/]+)"),
                {"GET": self._get_batch, "DELETE": self._delete_batch},
            ),
            (re.compile(r"/v1/messages/batches/([^/]+)/cancel"), {"POST": self._cancel_batch}),
            (re.compile(r"/v1/messages/batches/([^/]+)/results"), {"GET": self._batch_results}),
            (re.compile(r"/v1/files"), {"POST": self._upload_file, "GET": self._list_files}),
            (
                re.compile(r"/v1/files/([^/]+)"),
                {"GET": self._get_file, "DELETE": self._delete_file},
            ),
            (re.compile(r"/v1/files/([^/]+)/content"), {"GET": self._download_file}),
        ]

    # ------------------------------------------------------------------ state operations

    def now(self) -> float:
        """The emulator clock: wall time plus whatever ``advance_clock`` added."""
        return time.time() + self.clock_offset

    def advance_clock(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self.lock:
            self.clock_offset += seconds
            return self.now()

    def add_fault(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(_ArmedFault(fault))
        return fault

    def add_reply(self, reply: ScriptedReply) -> None:
        if reply.stop_reason is not None and reply.stop_reason not in _STOP_REASONS:
            raise ValueError(f"stop_reason must be one of {sorted(_STOP_REASONS)}")
        if reply.tool_use is not None and not isinstance(reply.tool_use.get("name"), str):
            raise ValueError("tool_use needs a 'name' (and optionally 'input' and 'id')")
        with self.lock:
            self.replies.append(reply)

    def add_model(self, model: Any) -> catalog.ModelSpec:
        """Serve one more model (see `catalog.register` for the forms); returns its entry.

        Registered models are options, so they survive ``reset()`` like the other settings.
        """
        if not isinstance(model, (str, Mapping, catalog.ModelSpec)):
            raise TypeError("a model is 'ID,MAX_INPUT,MAX_OUTPUT', a JSON object or a ModelEntry")
        entry = catalog.register(model)
        with self.lock:
            self.options = self.options.replace(models=(*self.options.models, entry))
        return entry

    def recorded(self) -> list[RecordedRequest]:
        with self.lock:
            return list(self.records)

    def reset(self) -> None:
        with self.lock:
            self.faults.clear()
            self.replies.clear()
            self.records.clear()
            self.cache.clear()
            self.batches.clear()
            self.files.clear()
            self.issued_tokens.clear()
            self.limiter.configure(self.options, self.now())

    def configure(self, changes: Mapping[str, Any], *, allow_address: bool) -> EmulatorOptions:
        with self.lock:
            new = self.options.replace(**changes)
            if not allow_address and (new.host, new.port) != (self.options.host, self.options.port):
                raise ValueError("host and port cannot change while the emulator is running")
            old = self.options
            self.options = new
            limits = (
                "requests_per_minute",
                "input_tokens_per_minute",
                "output_tokens_per_minute",
            )
            if any(getattr(old, n) != getattr(new, n) for n in limits):
                self.limiter.configure(new, self.now())
            if "faults" in changes:
                self.faults = [_ArmedFault(f) for f in new.faults]
            return new

    def enter_flight(self, path: str) -> bool | None:
        """Count an API request (first-party or platform) in flight: None (not counted), True,
        or False (over the limit)."""
        if not path.startswith(("/v1/", "/anthropic/", "/model/")):
            return None
        with self.lock:
            limit = self.options.max_concurrent_requests
            if limit is not None and self.in_flight >= limit:
                return False
            self.in_flight += 1
            return True

    def exit_flight(self) -> None:
        with self.lock:
            self.in_flight -= 1

    @staticmethod
    def body_limit(path: str) -> int:
        if path.startswith("/v1/files"):
            return MAX_FILE_BYTES + MULTIPART_OVERHEAD
        return MAX_BATCH_BYTES if path.startswith("/v1/messages/batches") else MAX_MESSAGE_BYTES

    # ------------------------------------------------------------------ dispatch

    def handle(self, request: Incoming, admitted: bool | None) -> Outgoing:
        if request.path.startswith("/_emulator/") or request.path == "/_emulator":
            admin = self._admin(request)
            admin.headers["request-id"] = random_id("req_")
            return admin
        request_id = random_id("req_")
        arrived = self.now()
        options = self.options
        body = self.parse_body(request)
        try:
            out = self.api(request, body, request_id, options, admitted is not False)
        except ApiError as error:
            out = self.error_out(error, request_id)
        out.delay += options.latency
        if isinstance(out, (JsonOut, StreamOut, LinesOut)):
            out.headers["request-id"] = request_id
        self.record(request, body, out, request_id, arrived)
        return out

    def record(
        self, request: Incoming, body: Any, out: Outgoing, request_id: str, arrived: float
    ) -> None:
        """Keep ``request`` in the log as it was answered (credentials redacted)."""
        status = out.status if isinstance(out, JsonOut) else 0 if isinstance(out, DropOut) else 200
        headers = {
            k: ("<redacted>" if k in _REDACTED_HEADERS else v) for k, v in request.headers.items()
        }
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=headers,
            body=None if body is _INVALID else body,
            status=status,
            request_id=request_id,
            time=arrived,
        )
        with self.lock:
            self.records.append(record)

    @staticmethod
    def parse_body(request: Incoming) -> Any:
        if not request.body or request.body.isspace():  # no copy of a large body
            return None
        if request.headers.get("content-type", "").lower().startswith("multipart/"):
            # An upload: its handler reads the raw bytes; the log keeps only their size.
            return {"multipart/form-data": f"{len(request.body)} bytes"}
        try:
            return orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return _INVALID

    @staticmethod
    def error_out(error: ApiError, request_id: str | None) -> JsonOut:
        body = error_body(error.error_type, error.message, request_id, error.error_code)
        return _json(error.status, body, error.headers)

    def _route(self, method: str, path: str) -> tuple[Callable[[_Context], Outgoing], list[str]]:
        for pattern, methods in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            handler = methods.get(method)
            if handler is None:
                raise ApiError(
                    405,
                    "invalid_request_error",
                    f"Method {method} is not allowed for {path}",
                    {"allow": ", ".join(sorted(methods))},
                )
            return handler, list(match.groups())
        raise ApiError(404, "not_found_error", f"Not found: {method} {path}")

    def _take_fault(self, request: Incoming) -> Fault | None:
        """The fault that hits this request, if any (the first matching one decides)."""
        with self.lock:
            for armed in self.faults:
                fault = armed.fault
                if fault.path is not None and fault.path != request.path:
                    continue
                if fault.method is not None and fault.method != request.method:
                    continue
                armed.seen += 1
                if fault.every is not None and armed.seen % fault.every:
                    return None
                armed.hits += 1
                if fault.count and armed.hits >= fault.count:
                    self.faults.remove(armed)
                return fault
        return None

    @staticmethod
    def _fault_headers(fault: Fault) -> dict[str, str]:
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["retry-after"] = _format_seconds(fault.retry_after)
        if fault.retry_after_ms is not None:
            headers["retry-after-ms"] = _format_seconds(fault.retry_after_ms)
        if fault.should_retry is not None:
            headers["x-should-retry"] = "true" if fault.should_retry else "false"
        return headers

    def _fault_error(self, fault: Fault, error_type: str | None = None) -> ApiError:
        if error_type is None:
            status = fault.status or 529
            error_type = error_type_for_status(status)
        else:
            status = ERROR_STATUS[error_type]
        message = fault.message or DEFAULT_MESSAGES.get(error_type, "Error")
        return ApiError(status, error_type, message, self._fault_headers(fault))

    def api(
        self,
        request: Incoming,
        body: Any,
        request_id: str,
        options: EmulatorOptions,
        admitted: bool,
        *,
        authenticated: bool = False,
    ) -> Outgoing:
        if not authenticated:  # a platform route has checked its own credentials
            self._authenticate(request, options)
        return self._serve(request, body, request_id, options, admitted)

    @staticmethod
    def _authenticate(request: Incoming, options: EmulatorOptions) -> None:
        key = request.headers.get("x-api-key", "")
        if not key:
            # Newer SDKs may send the key as a bearer token instead; the API accepts both.
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            key = token.strip() if scheme.lower() == "bearer" else ""
        if not key:
            raise ApiError(401, "authentication_error", "x-api-key header is required")
        if options.api_keys is not None and key not in options.api_keys:
            raise ApiError(401, "authentication_error", "invalid x-api-key")

    def _serve(
        self,
        request: Incoming,
        body: Any,
        request_id: str,
        options: EmulatorOptions,
        admitted: bool,
    ) -> Outgoing:
        api = RequestContext.from_headers(request.headers, request.query)
        handler, params = self._route(request.method, request.path)
        fault = self._take_fault(request)
        delay = 0.0
        if fault is not None:
            if fault.kind == "status":
                raise self._fault_error(fault)
            if fault.kind == "slow":
                delay, fault = fault.delay, None
        if not admitted:
            raise ApiError(
                429,
                "rate_limit_error",
                "Number of concurrent connections has exceeded your rate limit. "
                "Please try again later.",
                {"retry-after": "1"},
            )
        if request.oversized:
            raise ApiError(
                413, "request_too_large", "Request exceeds the maximum allowed number of bytes."
            )
        if body is _INVALID:
            raise ApiError.invalid("Request body is not valid JSON.")
        streaming = (
            request.path == "/v1/messages" and isinstance(body, dict) and body.get("stream") is True
        )
        if fault is not None and not streaming:
            if fault.kind == "drop":
                return DropOut(delay)
            if fault.kind == "error_event":
                raise self._fault_error(fault, fault.error_type)
        out = handler(_Context(request, body, request_id, options, api, params))
        out.delay += delay
        if fault is not None and fault.kind == "drop_response":
            # The server acted (the state change above is kept); only the answer is lost.
            return DropOut(out.delay)
        if fault is not None:
            if isinstance(out, StreamOut):
                out.fault = fault
            elif isinstance(out, JsonOut) and fault.kind == "malformed":
                out.body = out.body[: max(1, len(out.body) // 2)]
        return out

    # ------------------------------------------------------------------ messages

    def _cache_min(self, options: EmulatorOptions, prompt: Prompt) -> int:
        overrides = options.cache_min_tokens or {}
        for name in (prompt.model, prompt.spec.id, *prompt.spec.aliases):
            if name in overrides:
                return overrides[name]
        return prompt.spec.cache_min_tokens

    @staticmethod
    def _ignored_header(prompt: Prompt) -> dict[str, str]:
        """Names the beta fields that were accepted but had no effect."""
        return {"x-emulator-ignored": ", ".join(prompt.ignored)} if prompt.ignored else {}

    def _messages(self, ctx: _Context) -> Outgoing:
        prompt = parse_request(ctx.body, catalog=ctx.catalog, context=ctx.api, files=self.files)
        directed = directed_error(prompt)
        if directed is not None:
            raise directed
        options = ctx.options
        with self.lock:
            now = self.now()
            plan = self.cache.plan(prompt.segments, self._cache_min(options, prompt), now)
            denied = self.limiter.admit(
                now, prompt.spec.id, plan.input_tokens + plan.creation_tokens
            )
            if denied is not None:
                raise self._rate_limited(denied, now, prompt.spec.id)
            self.cache.commit(plan, now)
            scripted = self.replies.popleft() if self.replies else None
        reply = build_reply(prompt, scripted, options.default_reply_tokens, now)
        self._keep_created_files(reply, now)
        self.limiter.spend_output(now, prompt.spec.id, reply.output_tokens)
        usage = reply_usage(reply, prompt, plan.usage_fields(), "standard")
        headers = {**self.limiter.headers(now, prompt.spec.id), **self._ignored_header(prompt)}
        message_id = random_id("msg_")
        if not prompt.stream:
            return _json(200, message_json(reply, prompt, usage, message_id), headers)
        events = stream_events(reply, prompt, usage, message_id, options.tokens_per_delta)
        return StreamOut(
            headers={
                "content-type": "text/event-stream; charset=utf-8",
                "cache-control": "no-cache",
                **headers,
            },
            events=events,
            request_id=ctx.request_id,
            fault=None,
            time_to_first_token=options.time_to_first_token,
            tokens_per_second=options.tokens_per_second,
            ping_every=options.ping_every,
        )

    def _rate_limited(
        self, denied: tuple[int, str], now: float, model: str = "", *, count: bool = False
    ) -> ApiError:
        retry_after, reason = denied
        limit = self.limiter.limit_of(reason)
        headers = self.limiter.headers(now, model, count_tokens=count)
        headers["retry-after"] = str(retry_after)
        return ApiError(
            429,
            "rate_limit_error",
            f"This request would exceed the rate limit for your organization of {limit} "
            f"{reason} per minute. Please retry after {retry_after} seconds.",
            headers,
        )

    def _count_tokens(self, ctx: _Context) -> Outgoing:
        prompt = parse_request(
            ctx.body, count_tokens=True, catalog=ctx.catalog, context=ctx.api, files=self.files
        )
        with self.lock:
            now = self.now()
            denied = self.limiter.admit(now, "", 0, count_tokens=True)
            if denied is not None:
                raise self._rate_limited(denied, now, count=True)
        headers = {**self.limiter.headers(now, count_tokens=True), **self._ignored_header(prompt)}
        return _json(200, {"input_tokens": prompt.input_tokens}, headers)

    # ------------------------------------------------------------------ models

    @staticmethod
    def _page(ids: list[str], query: Mapping[str, str]) -> tuple[int, int, bool]:
        """Slice bounds and has_more for before_id / after_id / limit pagination."""
        raw = query.get("limit", "20")
        try:
            limit = int(raw)
        except ValueError:
            raise ApiError.invalid("limit: Input should be a valid integer") from None
        if limit < 1:
            raise ApiError.invalid("limit: Input should be greater than or equal to 1")
        if limit > 1000:
            raise ApiError.invalid("limit: Input should be less than or equal to 1000")
        before, after = query.get("before_id"), query.get("after_id")
        if before and after:
            raise ApiError.invalid("before_id and after_id cannot both be given")
        if after:
            if after not in ids:
                raise ApiError.invalid(f"after_id: {after} not found")
            start = ids.index(after) + 1
            return start, min(len(ids), start + limit), start + limit < len(ids)
        if before:
            if before not in ids:
                raise ApiError.invalid(f"before_id: {before} not found")
            end = ids.index(before)
            return max(0, end - limit), end, end - limit > 0
        return 0, min(limit, len(ids)), limit < len(ids)

    @staticmethod
    def _list_json(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
        return {
            "data": data,
            "has_more": has_more,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }

    def _list_models(self, ctx: _Context) -> Outgoing:
        models = ctx.catalog.models
        start, end, more = self._page([m.id for m in models], ctx.request.query)
        data = [catalog.model_info(m) for m in models[start:end]]
        return _json(200, self._list_json(data, more), {})

    def _get_model(self, ctx: _Context) -> Outgoing:
        return _json(200, catalog.model_info(ctx.catalog.lookup(ctx.params[0])), {})

    # ------------------------------------------------------------------ batches

    def _create_batch(self, ctx: _Context) -> Outgoing:
        body = ctx.body
        if not isinstance(body, dict):
            raise ApiError.invalid("Request body must be a JSON object")
        for key in body:
            if key != "requests":
                raise ApiError.invalid(f"{key}: Extra inputs are not permitted")
        if "requests" not in body:
            raise ApiError.invalid("requests: Field required")
        requests = body["requests"]
        if not isinstance(requests, list):
            raise ApiError.invalid("requests: Input should be a valid list")
        if not requests:
            raise ApiError.invalid(
                "requests: List should have at least 1 item after validation, not 0"
            )
        if len(requests) > MAX_BATCH_REQUESTS:
            raise ApiError(
                413,
                "request_too_large",
                f"requests: a batch may contain at most {MAX_BATCH_REQUESTS:,} requests; "
                f"got {len(requests):,}",
            )
        seen: set[str] = set()
        for i, raw in enumerate(requests):
            path = f"requests.{i}"
            if not isinstance(raw, dict):
                raise ApiError.invalid(f"{path}: Input should be a valid dictionary")
            for key in raw:
                if key not in ("custom_id", "params"):
                    raise ApiError.invalid(f"{path}.{key}: Extra inputs are not permitted")
            custom_id = raw.get("custom_id")
            if custom_id is None:
                raise ApiError.invalid(f"{path}.custom_id: Field required")
            if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
                raise ApiError.invalid(
                    f"{path}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$' "
                    f"(got {custom_id!r})"
                )
            if custom_id in seen:
                raise ApiError.invalid(
                    f"{path}.custom_id: duplicate custom_id {custom_id!r}; custom_id values "
                    "must be unique within a batch"
                )
            seen.add(custom_id)
            if "params" not in raw:
                raise ApiError.invalid(f"{path}.params: Field required")
            if not isinstance(raw["params"], dict):
                raise ApiError.invalid(f"{path}.params: Input should be a valid dictionary")
            if "stream" in raw["params"]:
                raise ApiError.invalid(
                    f"{path}.params.stream: streaming is not supported in batch requests"
                )
        items: list[BatchItem] = []
        for raw in requests:
            item = BatchItem(raw["custom_id"], raw["params"], file_ids=named_files(raw["params"]))
            try:
                item.prompt = parse_request(
                    raw["params"], catalog=ctx.catalog, context=ctx.api, files=self.files
                )
                item.error = directed_error(item.prompt)
            except ApiError as error:  # checked during processing: an errored result, not a 400
                item.error = error
            items.append(item)
        options = ctx.options
        timing = BatchTiming(
            processing=options.batch_processing_seconds,
            cancel=options.batch_cancel_seconds,
            expiry=options.batch_expiry_seconds,
            results_seed=options.batch_results_seed,
            default_reply_tokens=options.default_reply_tokens,
        )
        with self.lock:
            self.batch_sequence += 1
            batch = Batch(random_id("msgbatch_"), self.now(), items, timing, self.batch_sequence)
            self.batches[batch.id] = batch
            payload = batch.to_json(self.now(), self.base_url)
        return _json(200, payload, {})

    def _find_batch(self, batch_id: str) -> Batch:
        batch = self.batches.get(batch_id)
        if batch is None:
            raise ApiError(404, "not_found_error", f"message_batch_id: no batch {batch_id!r}")
        return batch

    def _list_batches(self, ctx: _Context) -> Outgoing:
        with self.lock:
            now = self.now()
            ordered = sorted(self.batches.values(), key=lambda b: -b.sequence)
            start, end, more = self._page([b.id for b in ordered], ctx.request.query)
            data = [b.to_json(now, self.base_url) for b in ordered[start:end]]
        return _json(200, self._list_json(data, more), {})

    def _get_batch(self, ctx: _Context) -> Outgoing:
        with self.lock:
            batch = self._find_batch(ctx.params[0])
            return _json(200, batch.to_json(self.now(), self.base_url), {})

    def _cancel_batch(self, ctx: _Context) -> Outgoing:
        with self.lock:
            batch = self._find_batch(ctx.params[0])
            now = self.now()
            batch.cancel(now)
            return _json(200, batch.to_json(now, self.base_url), {})

    def _delete_batch(self, ctx: _Context) -> Outgoing:
        with self.lock:
            batch = self._find_batch(ctx.params[0])
            status = batch.status(self.now())
            if status != "ended":
                raise ApiError.invalid(
                    f"Batch {batch.id} cannot be deleted while it is {status}; cancel it and "
                    "wait until it has ended."
                )
            del self.batches[batch.id]
        return _json(200, {"id": batch.id, "type": "message_batch_deleted"}, {})

    def _batch_results(self, ctx: _Context) -> Outgoing:
        with self.lock:
            batch = self._find_batch(ctx.params[0])
            status = batch.status(self.now())
            if status != "ended":
                raise ApiError.invalid(
                    f"Batch {batch.id} has not ended yet (processing_status: {status}); "
                    "results are available once it has ended."
                )
            self._settle(batch, ctx.options)
        return LinesOut({"content-type": "application/x-jsonl"}, self._result_lines(batch))

    def _settle(self, batch: Batch, options: EmulatorOptions) -> None:
        """Run the batch's succeeded requests through the prompt cache, once, in finish order."""
        if batch.results_ready:
            return
        for index, item in enumerate(batch.items):
            if item.prompt is None or batch.outcome(index) != "succeeded":
                continue
            finished = batch.finish_time(index)
            plan = self.cache.plan(
                item.prompt.segments, self._cache_min(options, item.prompt), finished
            )
            self.cache.commit(plan, finished)
            item.usage = plan.usage_fields()
        batch.results_ready = True

    def _result_lines(self, batch: Batch) -> Iterator[bytes]:
        for index in batch.result_order():
            item = batch.items[index]
            outcome = batch.outcome(index)
            result: dict[str, Any]
            if outcome == "succeeded":
                assert item.prompt is not None and item.usage is not None
                reply = build_reply(
                    item.prompt,
                    None,
                    batch.timing.default_reply_tokens,
                    batch.finish_time(index),
                )
                self._keep_created_files(reply, batch.finish_time(index))
                usage = reply_usage(reply, item.prompt, item.usage, "batch")
                message_id = derived_id("msg_", batch.id, item.custom_id)
                message = message_json(reply, item.prompt, usage, message_id)
                result = {"type": "succeeded", "message": message}
            elif outcome == "errored":
                assert item.error is not None
                error = error_body(item.error.error_type, item.error.message, None)
                result = {"type": "errored", "error": error}
            else:
                result = {"type": outcome}
            yield orjson.dumps({"custom_id": item.custom_id, "result": result}) + b"\n"

    # ------------------------------------------------------------------ files

    def _keep_created_files(self, reply: Reply, now: float) -> None:
        """Keep the files the sandbox wrote in this reply: files the API made (downloadable)."""
        for block in reply.blocks:
            if isinstance(block, ResultBlock):
                for file_id, filename, mime_type, data in created_files(block.content):
                    self.files.create(file_id, filename, mime_type, data, now)

    @staticmethod
    def _files_beta(ctx: _Context) -> None:
        """The Files API is a beta (spec, May 2026): without its header there is no such path."""
        if FILES_BETA not in ctx.api.betas:
            raise ApiError(
                404,
                "not_found_error",
                f"Not found: {ctx.request.method} {ctx.request.path} (the Files API is a beta: "
                f"send the header anthropic-beta: {FILES_BETA})",
            )

    def _upload_file(self, ctx: _Context) -> Outgoing:
        self._files_beta(ctx)
        request = ctx.request
        filename, mime_type, data = parse_upload(
            request.headers.get("content-type", ""), request.body
        )
        stored = self.files.upload(
            filename, mime_type, data, self.now(), limit=ctx.options.files_storage_bytes
        )
        return _json(200, stored.metadata(), {})

    def _list_files(self, ctx: _Context) -> Outgoing:
        self._files_beta(ctx)
        ordered = self.files.newest_first()
        if ctx.request.query.get("scope_id"):
            ordered = []  # the emulator's files belong to no session scope
        start, end, more = self._page([f.id for f in ordered], ctx.request.query)
        data = [f.metadata() for f in ordered[start:end]]
        return _json(200, self._list_json(data, more), {})

    def _get_file(self, ctx: _Context) -> Outgoing:
        self._files_beta(ctx)
        return _json(200, self.files.find(ctx.params[0]).metadata(), {})

    def _delete_file(self, ctx: _Context) -> Outgoing:
        self._files_beta(ctx)
        file_id = ctx.params[0]
        self.files.delete(file_id)
        # A batch reads its requests' files when it processes them, not when it is created:
        # a request of a running batch that names this file and has not finished yet errors.
        with self.lock:
            now = self.now()
            for batch in self.batches.values():
                if batch.status(now) == "ended":
                    continue
                for index, item in enumerate(batch.items):
                    if (
                        item.error is None
                        and file_id in item.file_ids
                        and batch.finish_time(index) > now
                    ):
                        item.error = not_found(file_id)
        return _json(200, {"id": file_id, "type": "file_deleted"}, {})

    def _download_file(self, ctx: _Context) -> Outgoing:
        self._files_beta(ctx)
        stored = self.files.find(ctx.params[0])
        if not stored.downloadable:
            raise ApiError(
                400,
                "invalid_request_error",
                "File is not downloadable",
                error_code="file_not_downloadable",
            )
        return JsonOut(200, stored.data, {"content-type": "application/octet-stream"})

    # ------------------------------------------------------------------ admin API

    def _admin(self, request: Incoming) -> JsonOut:
        try:
            return self._admin_route(request)
        except ApiError as error:
            return self.error_out(error, None)
        except (TypeError, ValueError) as error:
            return self.error_out(ApiError.invalid(str(error)), None)

    def _admin_route(self, request: Incoming) -> JsonOut:
        body = self.parse_body(request)
        if body is _INVALID:
            raise ApiError.invalid("Request body is not valid JSON.")
        route = (request.method, request.path.rstrip("/"))
        if route == ("POST", "/_emulator/faults"):
            specs = body if isinstance(body, list) else [body]
            added = [self.add_fault(Fault.from_obj(spec or {})) for spec in specs]
            return _json(200, {"faults": [f.to_dict() for f in added]}, {})
        if route == ("GET", "/_emulator/faults"):
            with self.lock:
                pending = [a.fault.to_dict() for a in self.faults]
            return _json(200, {"faults": pending}, {})
        if route == ("POST", "/_emulator/replies"):
            specs = body if isinstance(body, list) else [body]
            for spec in specs:
                if not isinstance(spec, dict):
                    raise ApiError.invalid("a reply is a JSON object")
                self.add_reply(ScriptedReply(**spec))
            return _json(200, {"queued": len(self.replies)}, {})
        if route == ("GET", "/_emulator/requests"):
            return _json(200, [r.to_dict() for r in self.recorded()], {})
        if route == ("POST", "/_emulator/reset"):
            self.reset()
            return _json(200, {"reset": True}, {})
        if route == ("POST", "/_emulator/clock"):
            advance = (body or {}).get("advance", 0) if isinstance(body, dict) else None
            if not isinstance(advance, (int, float)) or isinstance(advance, bool):
                raise ApiError.invalid("advance: a number of seconds is required")
            return _json(200, {"now": self.advance_clock(float(advance))}, {})
        if route == ("GET", "/_emulator/clock"):
            return _json(200, {"now": self.now(), "offset": self.clock_offset}, {})
        if route == ("PATCH", "/_emulator/config"):
            if not isinstance(body, dict):
                raise ApiError.invalid("config changes are a JSON object")
            new = self.configure(body, allow_address=False)
            return _json(200, new.to_dict(), {})
        if route == ("GET", "/_emulator/config"):
            return _json(200, self.options.to_dict(), {})
        if route == ("POST", "/_emulator/models"):
            models = body if isinstance(body, list) else [body]
            entries = [self.add_model(model) for model in models]
            return _json(200, {"models": [catalog.model_info(m) for m in entries]}, {})
        if route == ("GET", "/_emulator/models"):
            served = catalog.catalog_for(self.options.registered_models)
            payload = {
                "models": [m.to_dict() for m in served.models],
                "retired": [r.to_dict() for r in served.table.retired],
            }
            return _json(200, payload, {})
        raise ApiError(404, "not_found_error", f"Not found: {request.method} {request.path}")


_INVALID: Any = object()  # marks a body that is not valid JSON
#: What ``App.parse_body`` returns for a body that is not JSON.
INVALID_BODY = _INVALID

_ERROR_DIRECTIVE = re.compile(r"\[\[\s*error\s*=\s*([a-z_]+)\s*\]\]")


def directed_error(prompt: Prompt) -> ApiError | None:
    """The error ``[[error=TYPE]]`` in the last user message asks for (TYPE: an API error type
    such as ``overloaded_error``), or None: a per-request failure for tests, answered as that
    HTTP error by /v1/messages and as an errored result inside a batch."""
    match = _ERROR_DIRECTIVE.search(prompt.last_user_text)
    if match is None or match.group(1) not in ERROR_STATUS:
        return None
    error_type = match.group(1)
    message = DEFAULT_MESSAGES.get(error_type, "Error") + " ([[error]] directive)"
    return ApiError(ERROR_STATUS[error_type], error_type, message)
