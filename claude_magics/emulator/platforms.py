"""Amazon Bedrock and Google Cloud (Vertex AI) in front of the emulated API.

    route = match(request.path)          # a PlatformRoute, or None for first-party paths
    denied = verify_sigv4(method, raw_path, query, headers, body, {"AKID": "secret"}, now)
    frame = encode_message({":event-type": "chunk", ...}, payload)   # AWS event-stream

Bedrock: ``POST /anthropic/v1/messages`` (the Messages API for current models, Bedrock ids in the
body), ``POST /model/{id}/invoke`` and ``/invoke-with-response-stream`` (InvokeModel for older
models: ``anthropic_version: "bedrock-2023-05-31"`` in the body, no ``model``; the stream framed
as AWS event-stream, each ``chunk`` carrying a base64 JSON event) and
``POST /model/{id}/count-tokens`` (the InvokeModel body base64 in ``input.invokeModel.body``).
Requests are authenticated by a SigV4 signature, verified here with hashlib and hmac against
``aws_credentials`` (any well-formed signature when none are configured), or by a Bedrock API
key as a bearer token (``bedrock_api_keys``); errors come in Bedrock's shape (``{"message"}``,
``x-amzn-errortype``, ``x-amzn-requestid``). ``aws_denied_actions`` refuses actions such as
``bedrock:InvokeModelWithResponseStream`` with the AccessDeniedException that names them.

Vertex: ``POST /v1/projects/{p}/locations/{r}/publishers/anthropic/models/{model}:rawPredict``
and ``:streamRawPredict`` (``anthropic_version: "vertex-2023-10-16"`` in the body, the model in
the URL) and ``.../models/count-tokens:rawPredict`` (the model in the body); a bearer token
(``vertex_tokens``, or one the emulator issued at ``POST /oauth2/token`` and that has not
expired; any when none are configured and none were issued); Google's error shape for auth and
quota.

Behind both: the same models, generation, faults and rate limits as the first-party routes.
Standard library only, like the rest of the emulator; model ids from the platform table.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

import orjson

from ..platform_table import load as load_platforms

__all__ = [
    "PLATFORM_RULE",
    "PlatformRoute",
    "bedrock_error",
    "chunk_frame",
    "encode_message",
    "exception_frame",
    "match",
    "verify_sigv4",
    "vertex_error",
]

#: Where the emulator issues Google OAuth tokens (an authorized-user credentials file whose
#: ``token_uri`` points here makes google-auth refresh against the emulator).
TOKEN_PATH = "/oauth2/token"
#: What ``--help`` says of the platform routes.
PLATFORM_RULE = (
    "Amazon Bedrock: POST /anthropic/v1/messages (current models, Bedrock ids such as "
    "global.anthropic.claude-sonnet-5-5 in the body, SSE), POST /model/{id}/invoke and "
    "/invoke-with-response-stream (older models; anthropic_version bedrock-2023-05-31 in the "
    "body; AWS event-stream framing) and /model/{id}/count-tokens; SigV4 signatures are "
    "verified against --aws-credentials (a wrong secret: 403 InvalidSignatureException), or a "
    "Bedrock API key is taken as a bearer token; errors in Bedrock's shape with "
    "x-amzn-requestid. Google Cloud Vertex AI: POST /v1/projects/{p}/locations/{r}/publishers/"
    "anthropic/models/{model}:rawPredict and :streamRawPredict (anthropic_version "
    "vertex-2023-10-16 in the body, the model in the URL) and .../models/count-tokens:rawPredict;"
    " a bearer token (--vertex-token, or one issued at POST /oauth2/token to a service account's"
    " JWT or a refresh token, good for --vertex-token-seconds). The same models, replies, faults"
    " and rate limits as the first-party routes."
)
_BEDROCK_MESSAGES = re.compile(r"/anthropic/v1/messages")
_BEDROCK_MODEL = re.compile(r"/model/([^/]+)/(invoke|invoke-with-response-stream|count-tokens)")
_VERTEX = re.compile(
    r"/v1/projects/([^/]+)/locations/([^/]+)/publishers/anthropic/models/([^/:]+)"
    r":(rawPredict|streamRawPredict)"
)
_ACTIONS = {
    "invoke": "bedrock:InvokeModel",
    "invoke-with-response-stream": "bedrock:InvokeModelWithResponseStream",
    "count-tokens": "bedrock:CountTokens",
}
#: How long a signature stays good either side of the server's clock (AWS: 5 minutes).
SIGNATURE_WINDOW = dt.timedelta(minutes=5)
_CREDENTIAL = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=([^/\s]+)/(\d{8})/([^/\s]+)/([^/\s]+)/aws4_request,\s*"
    r"SignedHeaders=([a-z0-9;\-]+),\s*Signature=([0-9a-f]{64})"
)


@dataclass(frozen=True)
class PlatformRoute:
    """A platform request: which platform, which first-party endpoint it stands for, the
    model named in the URL (None: in the body), and whether it streams."""

    platform: str  # "bedrock" | "vertex"
    kind: str  # "messages" | "invoke" | "count_tokens"
    model: str | None
    stream: bool
    action: str  # the IAM action (Bedrock) or the method (Vertex)


def match(path: str) -> PlatformRoute | None:
    """The platform route ``path`` names (the raw path, percent-escapes kept), or None."""
    if path == TOKEN_PATH:
        return PlatformRoute("vertex", "token", None, False, "token")
    if _BEDROCK_MESSAGES.fullmatch(path):
        return PlatformRoute("bedrock", "messages", None, False, "bedrock:InvokeModel")
    found = _BEDROCK_MODEL.fullmatch(path)
    if found:
        model, action = unquote(found.group(1)), found.group(2)
        kind = "count_tokens" if action == "count-tokens" else "invoke"
        stream = action == "invoke-with-response-stream"
        return PlatformRoute("bedrock", kind, model, stream, _ACTIONS[action])
    found = _VERTEX.fullmatch(path)
    if found:
        model, method = unquote(found.group(3)), found.group(4)
        if model == "count-tokens":
            return PlatformRoute("vertex", "count_tokens", None, False, method)
        return PlatformRoute("vertex", "messages", model, method == "streamRawPredict", method)
    return None


def canonical_model(model: str) -> str:
    """The model table's id for a Bedrock id (others unchanged)."""
    return load_platforms().canonical(model)


def bedrock_api(model: str) -> str | None:
    """ "messages" or "invoke" for a Bedrock id the table knows, else None."""
    found = load_platforms().bedrock_model(model)
    return found.api if found is not None else None


# -- SigV4 ---------------------------------------------------------------------------------


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def _canonical_query(query: str) -> str:
    pairs = sorted(
        (quote(k, safe="-_.~"), quote(v, safe="-_.~"))
        for k, v in parse_qsl(query, keep_blank_values=True)
    )
    return "&".join(f"{k}={v}" for k, v in pairs)


def verify_sigv4(
    method: str,
    raw_path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: Mapping[str, str] | None,
    now: dt.datetime,
) -> tuple[str, str] | None:
    """None when the SigV4 ``Authorization`` header is valid; else (exception, message) as
    Bedrock answers it. ``credentials`` maps access key ids to secrets; None accepts any
    well-formed signature (the emulator cannot know an unconfigured secret)."""
    authorization = headers.get("authorization", "")
    if not authorization:
        return "MissingAuthenticationTokenException", "Missing Authentication Token"
    parsed = _CREDENTIAL.fullmatch(authorization.strip())
    if parsed is None:
        return (
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' "
            "parameters.",
        )
    access_key, day, region, service, signed_headers, signature = parsed.groups()
    stamp = headers.get("x-amz-date", "")
    try:
        signed_at = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return "IncompleteSignatureException", "X-Amz-Date is missing or malformed."
    if abs(now - signed_at) > SIGNATURE_WINDOW:
        return (
            "InvalidSignatureException",
            f"Signature expired: {stamp} is now earlier than the allowed window.",
        )
    if credentials is None:
        return None
    secret = credentials.get(access_key)
    if secret is None:
        return (
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    names = signed_headers.split(";")
    if "host" not in names:
        return "InvalidSignatureException", "'Host' must be a signed header."
    canonical_headers = "".join(
        f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in names
    )
    # Services other than S3 encode the path's escapes once more (a "%3A" signs as "%253A").
    canonical_uri = quote(raw_path or "/", safe="/~")
    canonical = "\n".join(
        [
            method,
            canonical_uri,
            _canonical_query(query),
            canonical_headers,
            signed_headers,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret}".encode(), day), region), service), "aws4_request")
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return (
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details.",
        )
    return None


# -- AWS event-stream ------------------------------------------------------------------------


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One event-stream message: the prelude (total and headers lengths, their CRC32), string
    headers (type 7), the payload and the CRC32 of everything before it."""
    encoded = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode("utf-8"), value.encode("utf-8")
        encoded += bytes([len(raw_name)]) + raw_name + b"\x07"
        encoded += struct.pack(">H", len(raw_value)) + raw_value
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def chunk_frame(event_json: bytes) -> bytes:
    """A ``chunk`` event carrying one Messages-API event's JSON, base64 in ``bytes``."""
    payload = orjson.dumps({"bytes": base64.b64encode(event_json).decode("ascii")})
    return encode_message(
        {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"},
        payload,
    )


def exception_frame(name: str, message: str) -> bytes:
    """A stream exception (``throttlingException``, ``modelStreamErrorException``...)."""
    return encode_message(
        {
            ":exception-type": name,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        orjson.dumps({"message": message}),
    )


def sse_to_chunk(frame: bytes) -> bytes:
    """An SSE frame (``event: X\\ndata: JSON\\n\\n``) as an event-stream chunk."""
    data = frame.split(b"\ndata: ", 1)[1].rstrip(b"\n")
    return chunk_frame(data)


#: The first-party error types as Bedrock's stream exceptions.
STREAM_EXCEPTIONS = {
    "rate_limit_error": "throttlingException",
    "overloaded_error": "serviceUnavailableException",
    "timeout_error": "modelTimeoutException",
    "invalid_request_error": "validationException",
}


# -- error shapes ----------------------------------------------------------------------------

_BEDROCK_EXCEPTIONS = {
    "invalid_request_error": (400, "ValidationException"),
    "authentication_error": (403, "UnrecognizedClientException"),
    "permission_error": (403, "AccessDeniedException"),
    "not_found_error": (404, "ResourceNotFoundException"),
    "request_too_large": (413, "ValidationException"),
    "rate_limit_error": (429, "ThrottlingException"),
    "api_error": (500, "InternalServerException"),
    "timeout_error": (408, "ModelTimeoutException"),
    "overloaded_error": (503, "ServiceUnavailableException"),
    "billing_error": (403, "AccessDeniedException"),
}
_EXCEPTION_STATUS = {
    "MissingAuthenticationTokenException": 403,
    "IncompleteSignatureException": 403,
    "InvalidSignatureException": 403,
    "UnrecognizedClientException": 403,
    "AccessDeniedException": 403,
    "ValidationException": 400,
    "ResourceNotFoundException": 404,
}


def bedrock_error(
    error_type: str | None, message: str, *, exception: str | None = None, status: int | None = None
) -> tuple[int, bytes, dict[str, str]]:
    """(status, body, headers) of a Bedrock error for a first-party error type, or for a
    named exception."""
    if exception is None:
        status, exception = _BEDROCK_EXCEPTIONS.get(
            error_type or "", (500, "InternalServerException")
        )
    elif status is None:
        status = _EXCEPTION_STATUS.get(exception, 400)
    headers = {
        "content-type": "application/json",
        "x-amzn-errortype": f"{exception}:http://internal.amazon.com/coral/com.amazon.bedrock/",
    }
    return status, orjson.dumps({"message": message}), headers


_GOOGLE_STATUS = {
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
}


def vertex_error(status: int, message: str) -> tuple[int, bytes, dict[str, str]]:
    """(status, body, headers) of an error in Google's shape."""
    body = {
        "error": {
            "code": status,
            "message": message,
            "status": _GOOGLE_STATUS.get(status, "INTERNAL"),
        }
    }
    return status, orjson.dumps(body), {"content-type": "application/json"}


def decode_count_body(body: Any) -> dict[str, Any] | None:
    """The InvokeModel body inside a CountTokens request, or None when it has none."""
    try:
        blob = body["input"]["invokeModel"]["body"]
        data = orjson.loads(base64.b64decode(blob, validate=True))
    except (KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
