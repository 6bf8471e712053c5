"""API errors as the emulator raises and serialises them.

    raise ApiError(400, "invalid_request_error", "max_tokens: Field required")
    error_body("overloaded_error", "Overloaded", "req_...")  # the wire shape

Every error the emulator answers goes through here, so the body is always the API's shape:
``{"type": "error", "error": {"type": T, "message": M}, "request_id": "req_..."}``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DEFAULT_MESSAGES",
    "ERROR_STATUS",
    "ApiError",
    "error_body",
    "error_type_for_status",
]

# The error types the API documents, with the HTTP status each one travels with.
ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

# The messages the spec gives as defaults for each error type.
DEFAULT_MESSAGES: dict[str, str] = {
    "invalid_request_error": "Invalid request",
    "authentication_error": "Authentication error",
    "billing_error": "Billing error",
    "permission_error": "Permission denied",
    "not_found_error": "Not found",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Rate limited",
    "api_error": "Internal server error",
    "timeout_error": "Request timeout",
    "overloaded_error": "Overloaded",
}

_STATUS_TYPES = {status: kind for kind, status in ERROR_STATUS.items()}


def error_type_for_status(status: int) -> str:
    """The error type the API sends with ``status``; unlisted codes fall back by class."""
    if status in _STATUS_TYPES:
        return _STATUS_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_body(
    error_type: str, message: str, request_id: str | None, error_code: str | None = None
) -> dict[str, Any]:
    """The JSON body of an error response (and of a batch's errored result); ``error_code``
    names the cause within the type, as ``error.details.error_code`` (newer SDKs map it to
    their own error classes, e.g. ``file_not_downloadable``)."""
    error: dict[str, Any] = {"type": error_type, "message": message}
    if error_code is not None:
        error["details"] = {"error_code": error_code}
    return {"type": "error", "error": error, "request_id": request_id}


class ApiError(Exception):
    """An error answer: HTTP status, API error type and message, plus extra headers."""

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        headers: dict[str, str] | None = None,
        *,
        error_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.headers = headers or {}
        self.error_code = error_code

    @classmethod
    def invalid(cls, message: str) -> ApiError:
        """The common case: a 400 invalid_request_error."""
        return cls(400, "invalid_request_error", message)
