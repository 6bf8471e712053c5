"""Amazon Bedrock: the Messages-API endpoint for current models, InvokeModel for older ones.

    client = Client(platform="bedrock", region="us-east-1")   # the AWS credential chain
    client = Client(platform="bedrock", region="eu-west-1", aws_profile="work")
    client = Client(platform="bedrock", api_key=BEDROCK_API_KEY)  # sent as a bearer token

Current models (the platform table's ``"api": "messages"``) are sent to
``POST /anthropic/v1/messages`` on ``bedrock-runtime.{region}.amazonaws.com``: the first-party
body, the Bedrock model id in it, server-sent events back. Older models go through InvokeModel:
``/model/{id}/invoke`` and ``/model/{id}/invoke-with-response-stream``, the model in the URL,
``anthropic_version: "bedrock-2023-05-31"`` (and betas as ``anthropic_beta``) in the body, and the
stream in AWS event-stream framing (:mod:`.eventstream`). Token counts go to CountTokens
(``/model/{id}/count-tokens``), which takes the InvokeModel body base64-encoded.

Requests are signed with SigV4 (``botocore.auth.SigV4Auth``, the optional ``bedrock`` extra,
imported on first use) after the body is encoded, since the signature covers its bytes; each
attempt is signed afresh. Credentials: ``aws_access_key=``/``aws_secret_key=``
(``aws_session_token=``), else the standard AWS chain (environment, ``AWS_PROFILE``, config and
credentials files, SSO, instance roles). A Bedrock API key (``api_key=`` or
``AWS_BEARER_TOKEN_BEDROCK``) is sent as ``Authorization: Bearer`` instead and needs no botocore.
"""

from __future__ import annotations

import base64
import os
import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from ...errors import (
    APIStatusError,
    AuthenticationError,
    MissingCredentialsError,
    PlatformConfigError,
    status_error_class,
)
from ...platform_table import load as load_platforms
from . import Platform, body_version, checked_name, json_body
from .eventstream import EVENTSTREAM_CONTENT_TYPE, BedrockEventDecoder

if TYPE_CHECKING:
    import httpx

    from ..streaming import EventDecoder

__all__ = ["Bedrock"]

API_KEY_ENV = "AWS_BEARER_TOKEN_BEDROCK"
# Environment variables holding secrets the AWS chain may use (redacted from prompts).
_SECRET_ENV = (API_KEY_ENV, "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# Bedrock's exception names (x-amzn-errortype) as the Messages API's error types.
_ERROR_TYPES = {
    "ValidationException": "invalid_request_error",
    "AccessDeniedException": "permission_error",
    "UnrecognizedClientException": "authentication_error",
    "InvalidSignatureException": "authentication_error",
    "MissingAuthenticationTokenException": "authentication_error",
    "ExpiredTokenException": "authentication_error",
    "ResourceNotFoundException": "not_found_error",
    "ThrottlingException": "rate_limit_error",
    "ServiceQuotaExceededException": "rate_limit_error",
    "ModelTimeoutException": "timeout_error",
    "ServiceUnavailableException": "overloaded_error",
    "InternalServerException": "api_error",
    "ModelErrorException": "api_error",
    "ModelNotReadyException": "overloaded_error",
}
_ACTION = re.compile(r"not authorized to perform:?\s+(\S+?)[\s,]")
# The headers worth signing: what the server reads and httpx does not rewrite.
_SIGNED = ("content-type", "accept", "anthropic-version", "anthropic-beta")


class _Redacted:
    """A secret no repr or dump shows."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<redacted>"


def _botocore() -> Any:
    try:
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials
        import botocore.session
    except ImportError:
        raise MissingCredentialsError(
            "Amazon Bedrock signs requests with botocore, which is not installed",
            "pip install 'claude-magics[bedrock]' (or pass api_key= a Bedrock API key, sent "
            "as a bearer token without botocore).",
        ) from None
    return botocore


class Bedrock(Platform):
    """Amazon Bedrock (see the module docstring)."""

    name = "bedrock"
    label = "Amazon Bedrock"

    def __init__(
        self,
        *,
        region: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        aws_access_key: str | None = None,
        aws_secret_key: str | None = None,
        aws_session_token: str | None = None,
        aws_profile: str | None = None,
    ) -> None:
        self.table = load_platforms()
        self._profile_given = bool(aws_profile)
        self.aws_profile = aws_profile or os.environ.get("AWS_PROFILE") or None
        self._region_source = "argument (ClaudeMagics.region)"
        if not region:
            region, self._region_source = self._region_from_environment()
        if bool(aws_access_key) != bool(aws_secret_key):
            raise PlatformConfigError(
                "aws_access_key and aws_secret_key go together: pass both, or neither (the "
                "AWS credential chain)"
            )
        region = checked_name(region, "region")
        self._keys = (
            (_Redacted(aws_access_key), _Redacted(aws_secret_key or "")) if aws_access_key else None
        )
        self._session_token = _Redacted(aws_session_token) if aws_session_token else None
        self._api_key = _Redacted(api_key) if api_key else None
        self._credentials: Any = None
        self._lock = threading.Lock()
        self._base_url_source = "argument (ClaudeMagics.base_url)" if base_url else "default"
        if not base_url and os.environ.get("ANTHROPIC_BEDROCK_BASE_URL"):
            base_url, self._base_url_source = (
                os.environ["ANTHROPIC_BEDROCK_BASE_URL"],
                "ANTHROPIC_BEDROCK_BASE_URL",
            )
        host = str(self.table.bedrock["host"]).format(region=region or "REGION")
        super().__init__(region or "", base_url or f"https://{host}")

    def _region_from_environment(self) -> tuple[str, str]:
        for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            if os.environ.get(variable):
                return os.environ[variable], variable
        try:
            import botocore.session
        except ImportError:
            return "", "unset"
        region = botocore.session.Session(profile=self.aws_profile).get_config_variable("region")
        return (
            (str(region), f"AWS profile {self.aws_profile or 'default'}")
            if region
            else ("", "unset")
        )

    # -- routing ------------------------------------------------------------------------------

    def model_id(self, model: str) -> str:
        return self.table.bedrock_id(model)

    def models_note(self) -> str:
        default = self.table.bedrock["default_profile"]
        others = ", ".join(f"{p}." for p in self.table.bedrock_profiles if p != default)
        return (
            f"{self.label} ids under the {default}. profile (the table's ids are sent as "
            f"these); other profiles ({others}) or none (in-region, anthropic.) work as model "
            "ids too, at the regional price. Bedrock serves no model list here: this is the "
            "bundled table."
        )

    def _api(self, model: str) -> tuple[str, str]:
        found = self.table.bedrock_model(model)
        # An id the table does not know is a new model: current models use the Messages API.
        return (found.id, found.api) if found is not None else (model, "messages")

    def _invoke_body(self, body: Mapping[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        sent = {k: v for k, v in body.items() if k not in ("model", "stream")}
        sent["anthropic_version"] = body_version(headers, self.table.bedrock["anthropic_version"])
        betas = headers.pop("anthropic-beta", "")
        if betas:
            sent["anthropic_beta"] = [b for b in betas.split(",") if b]
        return sent

    def route(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[str, Any]:
        if not self.region:  # the endpoint's host and the signature's scope both name it
            raise MissingCredentialsError(
                "Amazon Bedrock needs a region: none was given and AWS_REGION, "
                "AWS_DEFAULT_REGION and the AWS profile name none",
                "Client(platform='bedrock', region='us-east-1'), %config ClaudeMagics.region = "
                "'us-east-1', or set AWS_REGION.",
                "region",
            )
        if method == "POST" and path in ("/v1/messages", "/v1/messages/count_tokens"):
            model = str((body or {}).get("model") or "")
            model_id, api = self._api(model)
            quoted = quote(model_id, safe="")
            if path.endswith("count_tokens"):
                invoke = self._invoke_body(body, headers)
                # CountTokens takes a whole InvokeModel body, which must name max_tokens.
                invoke.setdefault("max_tokens", 1)
                blob = base64.b64encode(orjson.dumps(invoke)).decode("ascii")
                return (
                    f"{self.base_url}/model/{quoted}/count-tokens",
                    {"input": {"invokeModel": {"body": blob}}},
                )
            if api == "messages":
                return f"{self.base_url}/anthropic/v1/messages", {**body, "model": model_id}
            action = "invoke-with-response-stream" if body.get("stream") else "invoke"
            return f"{self.base_url}/model/{quoted}/{action}", self._invoke_body(body, headers)
        raise self.unsupported(method, path)

    def adapt_json(self, data: dict[str, Any]) -> dict[str, Any]:
        if "inputTokens" in data and "input_tokens" not in data:
            return {**data, "input_tokens": data["inputTokens"]}
        return data

    def event_decoder(self, content_type: str) -> EventDecoder | None:
        # InvokeModelWithResponseStream frames the events in AWS event-stream.
        return BedrockEventDecoder() if EVENTSTREAM_CONTENT_TYPE in content_type else None

    # -- credentials -----------------------------------------------------------------------------

    def _bearer(self) -> str | None:
        """The Bedrock API key to send, if that is the way: an argument wins; the
        environment's key only when no AWS keys or profile were passed either."""
        if self._api_key is not None:
            return self._api_key.value
        if self._keys is not None or self._profile_given:
            return None
        return os.environ.get(API_KEY_ENV) or None

    def _aws_credentials(self) -> Any:
        botocore = _botocore()
        with self._lock:
            if self._credentials is None:
                if self._keys is not None:
                    access, secret = self._keys
                    self._credentials = botocore.credentials.Credentials(
                        access.value,
                        secret.value,
                        self._session_token.value if self._session_token else None,
                    )
                else:
                    session = botocore.session.Session(profile=self.aws_profile)
                    self._credentials = session.get_credentials()
            if self._credentials is None:
                raise MissingCredentialsError(
                    "Amazon Bedrock: no AWS credentials found (environment, AWS_PROFILE, "
                    "~/.aws/credentials and config, SSO or an instance role)",
                    "Run `aws configure` or `aws sso login`, set AWS_PROFILE, pass "
                    "aws_access_key=/aws_secret_key=, or a Bedrock API key as api_key=.",
                    "AWS credential chain",
                )
            # Refreshable credentials (SSO, roles) renew themselves here when near expiry.
            return self._credentials.get_frozen_credentials()

    def authorize(self, request: httpx.Request) -> None:
        request.headers.pop("x-api-key", None)
        bearer = self._bearer()
        if bearer:
            request.headers["authorization"] = f"Bearer {bearer}"
            return
        frozen = self._aws_credentials()
        botocore = _botocore()
        signed = botocore.awsrequest.AWSRequest(
            method=request.method,
            url=str(request.url),
            data=request.content,
            headers={k: request.headers[k] for k in _SIGNED if k in request.headers},
        )
        botocore.auth.SigV4Auth(frozen, self.table.bedrock["service"], self.region).add_auth(signed)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in signed.headers:
                request.headers[name.lower()] = signed.headers[name]

    def secrets(self) -> list[tuple[str, str]]:
        found = [
            (name, value)
            for name, value in (
                ("Bedrock API key", self._api_key.value if self._api_key else ""),
                ("AWS secret key", self._keys[1].value if self._keys else ""),
                ("AWS session token", self._session_token.value if self._session_token else ""),
                *((name, os.environ.get(name, "")) for name in _SECRET_ENV),
            )
            if len(value) >= 8
        ]
        if self._credentials is not None:
            frozen = self._credentials.get_frozen_credentials()
            found += [
                (name, value)
                for name, value in (
                    ("AWS secret key", frozen.secret_key),
                    ("AWS session token", frozen.token),
                )
                if value and len(value) >= 8
            ]
        return found

    def credentials_status(self) -> str:
        if self._api_key is not None:
            return "Bedrock API key (argument)"
        if self._keys is not None:
            return "AWS access key (argument)"
        if self._bearer():
            return f"Bedrock API key ({API_KEY_ENV})"
        try:
            import botocore.session
        except ImportError:
            return "not found: botocore is not installed (pip install 'claude-magics[bedrock]')"
        found = botocore.session.Session(profile=self.aws_profile).get_credentials()
        if found is None:
            return "not found (AWS credential chain)"
        return f"found (AWS {getattr(found, 'method', 'credential chain')})"

    def describe(self) -> list[tuple[str, str, str]]:
        return [
            ("platform", self.label, self.source),
            ("region", self.region or "unset", self._region_source),
            ("endpoint", self.base_url, self._base_url_source),
            (
                "AWS profile",
                self.aws_profile or "default",
                "AWS_PROFILE" if self.aws_profile else "default",
            ),
            ("credentials", self.credentials_status(), "never shown"),
        ]

    # -- errors ----------------------------------------------------------------------------

    def request_id(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("x-amzn-requestid") or headers.get("request-id")

    def refine_error(
        self,
        error: APIStatusError,
        status: int,
        reason: str,
        headers: Mapping[str, str],
        body: bytes | None,
    ) -> APIStatusError:
        where = f"{self.label} ({self.region})" if self.region else self.label
        data = json_body(body)
        request_id = self.request_id(headers) or error.request_id
        exception = headers.get("x-amzn-errortype", "").split(":")[0]
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            exception = ""  # the Messages API's own error body: keep what the client read
        if not exception:
            error.message = f"{where}: {error.message}"
            error.args = (error.message,)
            error.request_id = request_id
            return error
        message = ""
        if isinstance(data, dict):
            message = str(data.get("message") or data.get("Message") or "")
        error_type = _ERROR_TYPES.get(exception, error.error_type)
        # Bedrock answers bad credentials with a 403: still an authentication error.
        cls = (
            AuthenticationError
            if error_type == "authentication_error"
            else status_error_class(status)
        )
        refined = cls(
            f"{where}: {exception}: {message or reason}",
            status_code=status,
            error_type=error_type,
            request_id=request_id,
            headers=dict(headers),
            attempts=error.attempts,
        )
        action = _ACTION.search(message + " ")
        if exception == "AccessDeniedException" and action:
            refined.hint = (
                f"The AWS identity lacks the IAM permission {action.group(1)}: add it to its "
                "policy (and enable model access for this model in the Bedrock console)."
            )
        elif exception == "AccessDeniedException":
            refined.hint = (
                "The AWS identity may not use this model: check its IAM policy and the model "
                "access page of the Bedrock console."
            )
        elif error_type == "authentication_error":
            refined.hint = (
                "Bedrock rejected the credentials: check AWS_PROFILE or the access and secret "
                "keys (aws_access_key=, aws_secret_key=), or the Bedrock API key."
            )
        elif error_type == "not_found_error":
            refined.hint = (
                "Check the model id and region: %claude_models lists the Bedrock ids; some "
                "models are served only through a profile (global., us., eu., apac.)."
            )
        return refined
