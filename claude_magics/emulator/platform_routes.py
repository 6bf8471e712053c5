"""The Bedrock and Vertex routes: check the platform's credentials and body, then let the
first-party endpoints answer, and dress the answer (and every error) in the platform's shape.

    out = handle_platform(app, request, platforms.match(request.path), admitted)

The same models, generation, faults and rate limits as the first-party routes: the request is
translated into the ``POST /v1/messages`` (or ``count_tokens``) it stands for and served by
``App.api``. See :mod:`.platforms` for the routes, SigV4 and the event-stream framing.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

from .app import INVALID_BODY, App, DropOut, Incoming, JsonOut, Outgoing, StreamOut, random_id
from .errors import ApiError
from .generation import Event
from .options import EmulatorOptions
from .platforms import (
    PlatformRoute,
    bedrock_api,
    bedrock_error,
    canonical_model,
    decode_count_body,
    sse_to_chunk,
    verify_sigv4,
    vertex_error,
)
from .rules import VERSIONS

__all__ = ["handle_platform"]

BEDROCK_VERSION = "bedrock-2023-05-31"
VERTEX_VERSION = "vertex-2023-10-16"
_EVENTSTREAM = "application/vnd.amazon.eventstream"
_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class _Refused(Exception):
    """A platform-level refusal, already in the platform's shape."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        super().__init__(status)
        self.out = JsonOut(status, body, headers)


def _bedrock_refusal(exception: str, message: str, status: int | None = None) -> _Refused:
    return _Refused(*bedrock_error(None, message, exception=exception, status=status))


def _check_bedrock_auth(
    request: Incoming,
    route: PlatformRoute,
    action: str,
    model: str,
    options: EmulatorOptions,
    now: float,
) -> None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        keys = options.bedrock_api_keys
        if not token.strip() or (keys is not None and token.strip() not in keys):
            raise _bedrock_refusal(
                "UnrecognizedClientException", "The API key included in the request is invalid."
            )
    else:
        denied = verify_sigv4(
            request.method,
            request.path,
            urlencode(request.query),
            request.headers,
            request.body,
            options.aws_credentials,
            dt.datetime.fromtimestamp(now, dt.timezone.utc),
        )
        if denied is not None:
            raise _bedrock_refusal(*denied)
    if action in options.aws_denied_actions:
        raise _bedrock_refusal(
            "AccessDeniedException",
            f"User: arn:aws:iam::123456789012:user/emulator is not authorized to perform: "
            f"{action} on resource: arn:aws:bedrock:us-east-1::foundation-model/{model} "
            f"because no identity-based policy allows the {action} action",
        )


def _bedrock_body(
    route: PlatformRoute, body: Any, headers: dict[str, str]
) -> tuple[str, dict[str, Any]]:
    """The first-party path and body a Bedrock request stands for."""
    if not isinstance(body, dict):
        raise _bedrock_refusal(
            "ValidationException", "Malformed input request: expected a JSON object."
        )
    if route.kind == "messages":
        model = str(body.get("model") or "")
        if bedrock_api(model) == "invoke":
            raise _bedrock_refusal(
                "ValidationException",
                f"The model {model} is not served by the Messages API endpoint; use "
                "InvokeModel (/model/{modelId}/invoke).",
            )
        return "/v1/messages", {**body, "model": canonical_model(model)}
    if route.kind == "count_tokens":
        inner = decode_count_body(body)
        if inner is None:
            raise _bedrock_refusal(
                "ValidationException",
                "input.invokeModel.body must be a base64 JSON InvokeModel body.",
            )
        body = inner
    version = body.get("anthropic_version")
    if version != BEDROCK_VERSION and version not in VERSIONS:
        raise _bedrock_refusal(
            "ValidationException",
            f"Malformed input request: anthropic_version must be {BEDROCK_VERSION!r} (or an "
            f"API version: {', '.join(VERSIONS)}), got {version!r}",
        )
    headers["anthropic-version"] = version if version in VERSIONS else "2023-06-01"
    if "model" in body:
        raise _bedrock_refusal(
            "ValidationException",
            "Malformed input request: extraneous key [model] is not permitted",
        )
    betas = body.get("anthropic_beta")
    if isinstance(betas, list) and betas:
        headers["anthropic-beta"] = ",".join(str(b) for b in betas)
    sent = {k: v for k, v in body.items() if k not in ("anthropic_version", "anthropic_beta")}
    sent["model"] = canonical_model(route.model or "")
    if route.kind == "count_tokens":
        sent.pop("max_tokens", None)
        return "/v1/messages/count_tokens", sent
    if route.stream:
        sent["stream"] = True
    else:
        sent.pop("stream", None)
    return "/v1/messages", sent


def _issue_token(app: App, request: Incoming) -> JsonOut:
    """An OAuth token response, as Google's token endpoint gives for a refresh token."""
    form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
    # A user's refresh token, or a service account's signed JWT (not verified here).
    grants = {"refresh_token": "refresh_token", _JWT_BEARER: "assertion"}
    needed = grants.get(form.get("grant_type", ""))
    if needed is None or not form.get(needed):
        refused = {"error": "invalid_grant", "error_description": "Bad Request"}
        return JsonOut(400, orjson.dumps(refused), {"content-type": "application/json"})
    token = random_id("ya29.emulator-")
    seconds = app.options.vertex_token_seconds
    with app.lock:
        app.issued_tokens[token] = time.time() + seconds  # clients expire tokens by wall clock
    body: dict[str, Any] = {
        "access_token": token,
        "expires_in": int(seconds),
        "token_type": "Bearer",
    }
    return JsonOut(200, orjson.dumps(body), {"content-type": "application/json"})


def _vertex_token_ok(app: App, token: str, options: EmulatorOptions) -> bool:
    if not token:
        return False
    expiry = app.issued_tokens.get(token)
    if expiry is not None:
        return time.time() < expiry
    if options.vertex_tokens is not None:
        return token in options.vertex_tokens
    return not app.issued_tokens  # none configured, none issued: any token


def _vertex_body(
    app: App,
    route: PlatformRoute,
    body: Any,
    request: Incoming,
    headers: dict[str, str],
) -> tuple[str, dict[str, Any]]:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not _vertex_token_ok(app, token.strip(), app.options):
        raise _Refused(
            *vertex_error(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
            )
        )
    if not isinstance(body, dict):
        raise ApiError.invalid("Request body must be a JSON object.")
    version = body.get("anthropic_version")
    if version != VERTEX_VERSION and version not in VERSIONS:
        raise ApiError.invalid(
            f"anthropic_version: must be {VERTEX_VERSION!r} on Vertex AI (or an API version: "
            f"{', '.join(VERSIONS)}), got {version!r}"
        )
    headers["anthropic-version"] = version if version in VERSIONS else "2023-06-01"
    sent = {k: v for k, v in body.items() if k != "anthropic_version"}
    if route.kind == "count_tokens":
        return "/v1/messages/count_tokens", sent
    if "model" in sent:
        raise ApiError.invalid("model: Extra inputs are not permitted (the model is in the URL)")
    sent["model"] = route.model
    if route.stream:
        sent["stream"] = True
    return "/v1/messages", sent


def _as_eventstream(out: StreamOut) -> StreamOut:
    out.events = [Event(e.name, sse_to_chunk(e.frame), e.tokens, e.is_delta) for e in out.events]
    out.headers["content-type"] = _EVENTSTREAM
    out.headers.pop("cache-control", None)
    out.framing = "eventstream"
    return out


def _platform_error(route: PlatformRoute, error: ApiError, request_id: str) -> JsonOut:
    if route.platform == "bedrock":
        status, body, headers = bedrock_error(error.error_type, error.message)
    elif error.error_type == "rate_limit_error":
        status, body, headers = vertex_error(
            429,
            "Quota exceeded for aiplatform.googleapis.com/"
            "online_prediction_requests_per_base_model with base model: anthropic-claude. "
            f"{error.message}",
        )
    else:
        return App.error_out(error, request_id)
    # Retry advice (retry-after, x-should-retry) and rate-limit headers stay.
    kept = {k: v for k, v in error.headers.items() if k not in headers}
    return JsonOut(status, body, {**headers, **kept})


def handle_platform(
    app: App, request: Incoming, route: PlatformRoute, admitted: bool | None
) -> Outgoing:
    """Answer a Bedrock or Vertex request (see the module docstring)."""
    arrived = app.now()
    options = app.options
    if route.kind == "token":
        issued = _issue_token(app, request)
        issued.headers["request-id"] = random_id("req_")
        app.record(request, None, issued, issued.headers["request-id"], arrived)
        return issued
    request_id = str(uuid.uuid4()) if route.platform == "bedrock" else random_id("req_")
    body = app.parse_body(request)
    out: Outgoing
    try:
        if request.method != "POST":
            raise ApiError(405, "invalid_request_error", f"Method {request.method} is not allowed")
        if body is INVALID_BODY:
            raise ApiError.invalid("Request body is not valid JSON.")
        headers = dict(request.headers)
        headers.setdefault("anthropic-version", "2023-06-01")
        if route.platform == "bedrock":
            model = route.model or str((body or {}).get("model") if isinstance(body, dict) else "")
            action = route.action
            if route.kind == "messages" and isinstance(body, dict) and body.get("stream") is True:
                action = "bedrock:InvokeModelWithResponseStream"
            # Signatures carry the client's wall-clock time, whatever the emulator's clock says.
            _check_bedrock_auth(request, route, action, model, options, time.time())
            path, sent = _bedrock_body(route, body, headers)
        else:
            path, sent = _vertex_body(app, route, body, request, headers)
        inner = Incoming(
            request.method,
            path,
            dict(request.query),
            headers,
            orjson.dumps(sent),
            request.oversized,
        )
        out = app.api(inner, sent, request_id, options, admitted is not False, authenticated=True)
        if isinstance(out, StreamOut) and route.platform == "bedrock" and route.kind == "invoke":
            out = _as_eventstream(out)
        if (
            isinstance(out, JsonOut)
            and route.platform == "bedrock"
            and route.kind == "count_tokens"
        ) and out.status == 200:
            counted = orjson.loads(out.body)
            out.body = orjson.dumps({"inputTokens": counted["input_tokens"]})
    except _Refused as refused:
        out = refused.out
    except ApiError as error:
        out = _platform_error(route, error, request_id)
    out.delay += options.latency
    if not isinstance(out, DropOut):
        name = "x-amzn-requestid" if route.platform == "bedrock" else "request-id"
        out.headers[name] = request_id
    app.record(request, None if body is INVALID_BODY else body, out, request_id, arrived)
    return out
