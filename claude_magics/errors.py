"""The errors claude_magics raises, and their short notebook tracebacks.

    try:
        client.messages.create(...)
    except RateLimitError as exc:
        print(exc.status_code, exc.error_type, exc.request_id)

The tree::

    ClaudeError                      anything claude_magics raises on purpose
    ├── MissingAPIKeyError           no key passed and ANTHROPIC_API_KEY unset
    │   ├── MalformedAPIKeyError     a key with spaces, line breaks or non-ASCII inside
    │   └── MissingCredentialsError  Bedrock or Vertex found no credentials (AWS chain, ADC)
    ├── PlatformConfigError          a platform, region or credential argument that cannot be
    │                                right (CLAUDE_MAGICS_PLATFORM=azure, a region with a "/")
    ├── RequestBodyError             a body that cannot be sent (lone surrogates, over 32 MB,
    │                                a FIFO or a file over 500 MB for the Files API)
    ├── StorageError                 the ledger or job store could not be opened or written
    ├── ReplayMissError              a cassette in replay mode lacks an answer
    ├── PromptError                  the cell cannot become a prompt (bad reference, attachment)
    ├── ToolDescriptionError         a function that cannot be offered to Claude as a tool
    ├── JobNotFoundError             no DataFrame job with that id in the job ledger; job_id
    └── APIError                     something went wrong talking to the API
        ├── APIConnectionError       the request did not get a response
        │   └── APITimeoutError      ... because it timed out
        ├── APIResponseError         a 2xx whose body is not JSON
        ├── APIStreamError           a stream broke after it started (partial message kept)
        └── APIStatusError           the API answered 4xx/5xx; status_code, error_type, error_code,
            │                        request_id
            ├── BadRequestError            400 invalid_request_error
            ├── AuthenticationError        401 authentication_error
            ├── BillingError               402 billing_error
            ├── PermissionDeniedError      403 permission_error
            ├── NotFoundError              404 not_found_error
            │   └── EndpointNotFoundError  ... a 404 that is not the API's: no such endpoint
            │       └── PlatformUnsupportedError  what Bedrock or Vertex lacks (batches, files),
            │                                     refused before sending
            ├── RequestTooLargeError       413 request_too_large
            ├── RateLimitError             429 rate_limit_error
            ├── InternalServerError        500 api_error (and other 5xx)
            ├── GatewayTimeoutError        504 timeout_error
            └── OverloadedError            529 overloaded_error

Every error renders in IPython as a few lines (what happened, status, type, message, request id,
what to do) instead of a traceback wall: IPython calls ``_render_traceback_`` when it exists.
No error message ever contains the API key: messages are built only from what the API returned.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseError",
    "APIStatusError",
    "APIStreamError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BillingError",
    "ClaudeError",
    "EndpointNotFoundError",
    "GatewayTimeoutError",
    "InternalServerError",
    "JobNotFoundError",
    "MalformedAPIKeyError",
    "MissingAPIKeyError",
    "MissingCredentialsError",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "PlatformConfigError",
    "PlatformUnsupportedError",
    "PromptError",
    "RateLimitError",
    "ReplayMissError",
    "RequestBodyError",
    "RequestTooLargeError",
    "StorageError",
    "ToolDescriptionError",
    "status_error_class",
]


class ClaudeError(Exception):
    """Base class of every error claude_magics raises on purpose."""

    #: One line telling the user what to do next; shown under the error in notebooks.
    hint: str = ""

    def _headline(self) -> str:
        return f"{type(self).__name__}: {self}"

    def _details(self) -> list[str]:
        return []

    def _render_traceback_(self) -> list[str]:
        # IPython shows exactly these lines instead of a traceback.
        lines = [self._headline(), *self._details()]
        if self.hint:
            lines.append(self.hint)
        return lines


class PromptError(ClaudeError, ValueError):
    """The cell cannot be turned into a prompt: a bad reference, or an attachment the API would
    refuse. The message is one line saying what is wrong; the magic shows it as a UsageError."""


class ToolDescriptionError(ClaudeError, ValueError):
    """A function cannot be offered to Claude as a tool (``--tools f``): no type hint the API
    can describe, ``*args``, a name the API refuses, two tools with one name. The message is one
    line naming the tool and what to change; the magic shows it as a UsageError."""


class JobNotFoundError(ClaudeError):
    """No DataFrame job has this id (or a unique prefix of it) in the job ledger."""

    def __init__(self, job_id: str, ledger: str) -> None:
        super().__init__(f"no job {job_id!r} in {ledger}; %claude_batch list shows the jobs there")
        self.job_id = job_id
        self.ledger = ledger


class ReplayMissError(ClaudeError):
    """A cassette in replay mode has no answer for a request: nothing was sent. The message
    names the request (model and the start of the prompt) and how to record it."""


class StorageError(ClaudeError):
    """A local SQLite file (the spend ledger, the job store) could not be opened or written.
    Callers that hold a paid answer warn with this one line and keep the answer."""


class RequestBodyError(ClaudeError, ValueError):
    """A request that cannot be sent as it is (text JSON cannot carry, over the API's size
    limit, a file to upload that is a device, a FIFO or too big): refused before anything
    leaves, in one line."""


class MissingAPIKeyError(ClaudeError):
    """No API key was passed and the environment variable holding it is unset."""

    def __init__(self, env_var: str = "ANTHROPIC_API_KEY") -> None:
        super().__init__(f"No Anthropic API key: {env_var} is not set.")
        self.env_var = env_var
        self.hint = (
            f"Set {env_var} in the environment that starts Jupyter (or load it from a .env "
            "file with python-dotenv) rather than typing it into a cell, where it would be "
            "saved. To try things offline, run the local emulator: "
            "python -m claude_magics.emulator, then set ANTHROPIC_BASE_URL to the URL it prints."
        )


class MalformedAPIKeyError(MissingAPIKeyError):
    """The key has characters no key has (spaces inside, line breaks, non-ASCII): it would fail
    in the HTTP header. The message never contains the key, only where it came from."""

    def __init__(self, source: str) -> None:
        ClaudeError.__init__(
            self,
            f"The Anthropic API key from {source} has spaces, line breaks or non-ASCII "
            "characters inside it, so it cannot be a key.",
        )
        self.env_var = source
        self.hint = f"Copy the key again from the Anthropic console into {source}."


class MissingCredentialsError(MissingAPIKeyError):
    """A cloud platform found no credentials: Amazon Bedrock (the AWS credential chain, or
    ``aws_access_key=``/``api_key=``) or Google Cloud (Application Default Credentials, or
    ``access_token=``). The message names the platform and where it looked, never a secret."""

    def __init__(self, message: str, hint: str, source: str = "") -> None:
        ClaudeError.__init__(self, message)
        self.env_var = source
        self.hint = hint


class PlatformConfigError(ClaudeError, ValueError):
    """A platform setting that cannot be right: an unknown platform name, a region or project
    that is not a name, half of an AWS key pair. One line, raised before anything is sent."""


class APIError(ClaudeError):
    """Something went wrong talking to the API."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id

    def _details(self) -> list[str]:
        return [f"request id: {self.request_id}"] if self.request_id else []


class APIConnectionError(APIError):
    """The request got no response: the server could not be reached, or the connection broke.

    ``may_have_reached_server`` is True when the request was sent before the failure, so the
    server may have acted on it (matters for creating batches: check before re-sending).
    """

    hint = "Check the network and ANTHROPIC_BASE_URL, then run the cell again."

    def __init__(
        self,
        message: str = "Connection error.",
        *,
        may_have_reached_server: bool = True,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.may_have_reached_server = may_have_reached_server
        self.attempts = attempts

    def _details(self) -> list[str]:
        return [f"gave up after {self.attempts} attempts"] if self.attempts > 1 else []


class APITimeoutError(APIConnectionError):
    """The request timed out."""

    hint = "The API took too long to answer; try again, or raise the client's timeout."

    def __init__(
        self,
        message: str = "Request timed out.",
        *,
        may_have_reached_server: bool = True,
        attempts: int = 1,
    ) -> None:
        super().__init__(
            message, may_have_reached_server=may_have_reached_server, attempts=attempts
        )


class APIResponseError(APIError):
    """The server answered 2xx with a body that is not a JSON object (a proxy's error page, a
    cut-off body): nothing usable came back. Sending again may be billed again."""

    hint = "The server's answer was not the API's JSON; check ANTHROPIC_BASE_URL, or try again."


class APIStreamError(APIError):
    """A stream failed after it started: an ``error`` event, a dropped connection, a bad frame.

    ``partial`` is the message accumulated before the failure (text, thinking, tool input and
    usage so far): it is real output, so callers show or keep it rather than throw it away.
    """

    def __init__(
        self,
        message: str,
        *,
        error_type: str,
        partial: dict[str, Any] | None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.error_type = error_type
        self.partial = partial
        if error_type == "overloaded_error":
            self.hint = "The API is overloaded; the partial answer above is kept. Try again."
        else:
            self.hint = "The stream broke; the partial answer above is kept. Try again."

    def _details(self) -> list[str]:
        return [f"error type: {self.error_type}", *super()._details()]


class APIStatusError(APIError):
    """The API answered with an error status."""

    status_code: int = 0
    default_error_type: str = "api_error"

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_type: str | None = None,
        request_id: str | None = None,
        headers: dict[str, str] | None = None,
        attempts: int = 1,
        error_code: str | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.status_code = status_code
        self.error_type = error_type or self.default_error_type
        #: The cause within the error type, when the API names one (``error.details.error_code``,
        #: e.g. ``file_not_downloadable``): branch on it rather than on the message.
        self.error_code = error_code
        # Only the response's headers: never the request's, which carry the key.
        self.headers = dict(headers or {})
        self.attempts = attempts

    def _headline(self) -> str:
        return f"{type(self).__name__}: {self.status_code} {self.error_type}: {self.message}"

    def _details(self) -> list[str]:
        lines = super()._details()
        if self.attempts > 1:
            lines.append(f"gave up after {self.attempts} attempts")
        return lines


class BadRequestError(APIStatusError):
    status_code = 400
    default_error_type = "invalid_request_error"
    hint = "The request was rejected as invalid: fix what the message names."


class AuthenticationError(APIStatusError):
    status_code = 401
    default_error_type = "authentication_error"
    hint = "Check that ANTHROPIC_API_KEY holds a valid key for this base URL."


class BillingError(APIStatusError):
    status_code = 402
    default_error_type = "billing_error"
    hint = "Check your plan and credit balance in the Anthropic Console."


class PermissionDeniedError(APIStatusError):
    status_code = 403
    default_error_type = "permission_error"
    hint = "This key is not allowed to use that resource."


class NotFoundError(APIStatusError):
    status_code = 404
    default_error_type = "not_found_error"
    hint = "Check the model name or id; client.models.list() shows the models you can use."


class EndpointNotFoundError(NotFoundError):
    """A 404 that is not the API's own: the server has no such endpoint (a proxy or gateway
    that speaks only part of the Messages API, such as one without token counting or
    batches). Callers that can do without the endpoint fall back, and say so."""

    hint = (
        "This server is not the Anthropic API or lacks this endpoint; point ANTHROPIC_BASE_URL "
        "at one that has it, or use a way that does without it."
    )


class PlatformUnsupportedError(EndpointNotFoundError):
    """What a cloud platform does not have (Message Batches and the Files API on Amazon Bedrock
    and Google Cloud): refused before anything is sent. A subclass of
    ``EndpointNotFoundError``, so every feature that can do without the endpoint falls back
    (realtime instead of batch, inline attachments instead of uploads) and says so."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message, status_code=404, error_type="not_supported_on_platform")
        self.hint = hint

    def _headline(self) -> str:
        return f"{type(self).__name__}: {self.message}"


class RequestTooLargeError(APIStatusError):
    status_code = 413
    default_error_type = "request_too_large"
    hint = "Send less at once: split the batch or shrink the attachments."


class RateLimitError(APIStatusError):
    status_code = 429
    default_error_type = "rate_limit_error"
    hint = "Rate limited even after retrying; wait a minute or lower the request rate."


class InternalServerError(APIStatusError):
    status_code = 500
    default_error_type = "api_error"
    hint = "The API had an internal error; try again shortly."


class GatewayTimeoutError(APIStatusError):
    status_code = 504
    default_error_type = "timeout_error"
    hint = "The API timed out; try again, or ask for a shorter answer."


class OverloadedError(APIStatusError):
    status_code = 529
    default_error_type = "overloaded_error"
    hint = "The API is overloaded even after retrying; try again in a little while."


_BY_STATUS: dict[int, type[APIStatusError]] = {
    cls.status_code: cls
    for cls in (
        BadRequestError,
        AuthenticationError,
        BillingError,
        PermissionDeniedError,
        NotFoundError,
        RequestTooLargeError,
        RateLimitError,
        InternalServerError,
        GatewayTimeoutError,
        OverloadedError,
    )
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The error class for an HTTP status (a 5xx without its own class: InternalServerError)."""
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code]
    if status_code >= 500:
        return InternalServerError
    return APIStatusError
