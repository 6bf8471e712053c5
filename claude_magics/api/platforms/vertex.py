"""Google Cloud (Vertex AI): ``:rawPredict`` and ``:streamRawPredict``, an OAuth bearer token.

    client = Client(platform="vertex", region="us-east5", project="my-project")  # ADC
    client = Client(platform="vertex", region="global", project="p", access_token=token)

The model goes in the URL
(``/v1/projects/{project}/locations/{region}/publishers/anthropic/models/{model}:rawPredict`` on
``{region}-aiplatform.googleapis.com``, ``aiplatform.googleapis.com`` for ``global``, the
multi-region hosts for ``us`` and ``eu``),
not in the body, which carries ``anthropic_version: "vertex-2023-10-16"`` instead; streams are
server-sent events as on the first-party API. Token counts go to the ``count-tokens:rawPredict``
model with the model in the body. Model ids are the first-party ones.

Credentials: ``access_token=`` (used as given, never refreshed), else Application Default
Credentials through google-auth (the optional ``vertex`` extra, imported on first use:
``gcloud auth application-default login``, ``GOOGLE_APPLICATION_CREDENTIALS``, or the metadata
server), refreshed when less than five minutes of the token remain. Region: argument, else
``CLOUD_ML_REGION``; project: argument, else ``ANTHROPIC_VERTEX_PROJECT_ID``, else
``GOOGLE_CLOUD_PROJECT``, else the ADC's own project.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from ...errors import APIStatusError, MissingCredentialsError, status_error_class
from ...platform_table import load as load_platforms
from . import Platform, body_version, checked_name, json_body

if TYPE_CHECKING:
    import httpx

__all__ = ["Vertex"]

#: A token with less than this left is refreshed before it is sent.
REFRESH_MARGIN = dt.timedelta(minutes=5)
# Google's error statuses as the Messages API's error types.
_ERROR_TYPES = {
    "INVALID_ARGUMENT": "invalid_request_error",
    "FAILED_PRECONDITION": "invalid_request_error",
    "UNAUTHENTICATED": "authentication_error",
    "PERMISSION_DENIED": "permission_error",
    "NOT_FOUND": "not_found_error",
    "RESOURCE_EXHAUSTED": "rate_limit_error",
    "UNAVAILABLE": "overloaded_error",
    "DEADLINE_EXCEEDED": "timeout_error",
    "INTERNAL": "api_error",
}


class Vertex(Platform):
    """Google Cloud Vertex AI (see the module docstring)."""

    name = "vertex"
    label = "Google Cloud Vertex AI"

    def __init__(
        self,
        *,
        region: str | None = None,
        project: str | None = None,
        base_url: str | None = None,
        access_token: str | None = None,
    ) -> None:
        self.table = load_platforms()
        self._region_source = "argument (ClaudeMagics.region)" if region else "CLOUD_ML_REGION"
        region = region or os.environ.get("CLOUD_ML_REGION") or ""
        if not region:
            self._region_source = "unset"
        self._project_source = "argument (ClaudeMagics.project)"
        if not project:
            for variable in ("ANTHROPIC_VERTEX_PROJECT_ID", "GOOGLE_CLOUD_PROJECT"):
                if os.environ.get(variable):
                    project, self._project_source = os.environ[variable], variable
                    break
            else:
                self._project_source = "Application Default Credentials"
        self.project = checked_name(project or "", "project")
        region = checked_name(region, "region")
        self._token = access_token
        self._credentials: Any = None
        self._lock = threading.RLock()  # held by _access_token around _adc
        self._base_url_source = "argument (ClaudeMagics.base_url)" if base_url else "default"
        if not base_url and os.environ.get("ANTHROPIC_VERTEX_BASE_URL"):
            base_url = os.environ["ANTHROPIC_VERTEX_BASE_URL"]
            self._base_url_source = "ANTHROPIC_VERTEX_BASE_URL"
        vertex = self.table.vertex
        if not base_url:
            host = vertex["multi_region_hosts"].get(region) or (
                vertex["global_host"] if region == "global" else vertex["host"]
            )
            base_url = f"https://{str(host).format(region=region or 'REGION')}"
        if urlsplit(base_url).path in ("", "/"):
            # A bare host (the emulator's URL): the API's path goes after it. A URL with a
            # path is taken whole, as the official SDK takes ANTHROPIC_VERTEX_BASE_URL.
            base_url = base_url.rstrip("/") + vertex["api_path"]
        super().__init__(region, base_url)

    def __repr__(self) -> str:
        return f"<Vertex region={self.region!r} project={self.project!r}>"

    # -- credentials ------------------------------------------------------------------------------

    def _adc(self) -> Any:
        """The Application Default Credentials (and their project), loaded once, even when
        several threads ask at once (the async client routes and signs in worker threads)."""
        with self._lock:
            return self._load_adc()

    def _load_adc(self) -> Any:
        if self._credentials is None:
            try:
                import google.auth
                import google.auth.exceptions
            except ImportError:
                raise MissingCredentialsError(
                    "Google Cloud Vertex AI authenticates with google-auth, which is not installed",
                    "pip install 'claude-magics[vertex]', or pass access_token= a token from "
                    "`gcloud auth print-access-token`.",
                ) from None
            try:
                credentials, project = google.auth.default(scopes=[self.table.vertex["scope"]])
            except google.auth.exceptions.DefaultCredentialsError:
                raise MissingCredentialsError(
                    "Google Cloud Vertex AI: no Application Default Credentials found",
                    "Run `gcloud auth application-default login`, set "
                    "GOOGLE_APPLICATION_CREDENTIALS, or pass access_token=.",
                    "Application Default Credentials",
                ) from None
            self._credentials = credentials
            if not self.project and project:
                self.project = str(project)
        return self._credentials

    def _access_token(self) -> str:
        if self._token:
            return self._token
        with self._lock:
            credentials = self._adc()
            expiry = getattr(credentials, "expiry", None)
            now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)  # google-auth: naive UTC
            stale = not credentials.token or (expiry is not None and expiry - now < REFRESH_MARGIN)
            if stale:
                import google.auth.exceptions
                import google.auth.transport.requests

                try:
                    credentials.refresh(google.auth.transport.requests.Request())
                except google.auth.exceptions.GoogleAuthError as exc:
                    raise MissingCredentialsError(
                        f"Google Cloud Vertex AI: the access token could not be refreshed "
                        f"({type(exc).__name__})",
                        "Run `gcloud auth application-default login` again.",
                        "Application Default Credentials",
                    ) from None
            return str(credentials.token)

    def authorize(self, request: httpx.Request) -> None:
        request.headers.pop("x-api-key", None)
        request.headers["authorization"] = f"Bearer {self._access_token()}"

    def secrets(self) -> list[tuple[str, str]]:
        token = self._token or getattr(self._credentials, "token", None) or ""
        return [("Google access token", token)] if len(token) >= 8 else []

    def credentials_status(self) -> str:
        if self._token:
            return "access token (argument)"
        try:
            self._adc()
        except MissingCredentialsError as error:
            return f"not found ({error})"
        return "found (Application Default Credentials)"

    # -- routing ------------------------------------------------------------------------------

    def _model_url(self, model: str, action: str) -> str:
        return (
            f"{self.base_url}/projects/{quote(self.project, safe='')}/locations/"
            f"{quote(self.region, safe='')}/publishers/anthropic/models/"
            f"{quote(model, safe='@')}:{action}"
        )

    def route(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[str, Any]:
        if method == "POST" and path in ("/v1/messages", "/v1/messages/count_tokens"):
            if not self.region:
                raise MissingCredentialsError(
                    "Google Cloud Vertex AI needs a region: none was given and CLOUD_ML_REGION "
                    "is unset",
                    "Client(platform='vertex', region='global'), %config ClaudeMagics.region = "
                    "'us-east5', or set CLOUD_ML_REGION.",
                    "region",
                )
            if not self.project and not self._token:
                self._adc()  # ADC may name the project
            if not self.project:
                raise MissingCredentialsError(
                    "Google Cloud Vertex AI needs a project: none was given, and "
                    "ANTHROPIC_VERTEX_PROJECT_ID, GOOGLE_CLOUD_PROJECT and the credentials "
                    "name none",
                    "Client(platform='vertex', project='my-project'), %config "
                    "ClaudeMagics.project = 'my-project', or set ANTHROPIC_VERTEX_PROJECT_ID.",
                    "project",
                )
            version = body_version(headers, self.table.vertex["anthropic_version"])
            headers.pop("anthropic-version", None)
            if path.endswith("count_tokens"):
                return self._model_url("count-tokens", "rawPredict"), {
                    **body,
                    "anthropic_version": version,
                }
            model = str(body.get("model") or "")
            sent = {k: v for k, v in body.items() if k != "model"}
            sent["anthropic_version"] = version
            action = "streamRawPredict" if body.get("stream") else "rawPredict"
            return self._model_url(model, action), sent
        raise self.unsupported(method, path)

    def describe(self) -> list[tuple[str, str, str]]:
        return [
            ("platform", self.label, self.source),
            ("region", self.region or "unset", self._region_source),
            ("project", self.project or "unset", self._project_source),
            ("endpoint", self.base_url, self._base_url_source),
            ("credentials", self.credentials_status(), "never shown"),
        ]

    # -- errors ----------------------------------------------------------------------------

    def refine_error(
        self,
        error: APIStatusError,
        status: int,
        reason: str,
        headers: Mapping[str, str],
        body: bytes | None,
    ) -> APIStatusError:
        where = f"{self.label} ({self.region})"
        data = json_body(body)
        google = data.get("error") if isinstance(data, dict) else None
        if not isinstance(google, Mapping) or "status" not in google:
            # The model's own error (the Messages API's shape): what the client read stands.
            error.message = f"{where}: {error.message}"
            error.args = (error.message,)
            return error
        google_status = str(google.get("status") or "")
        error_type = _ERROR_TYPES.get(google_status, error.error_type)
        refined = status_error_class(status)(
            f"{where}: {google_status}: {google.get('message') or reason}",
            status_code=status,
            error_type=error_type,
            request_id=self.request_id(headers),
            headers=dict(headers),
            attempts=error.attempts,
        )
        if error_type == "authentication_error":
            refined.hint = (
                "Google Cloud rejected the token: run `gcloud auth application-default login`, "
                "or pass a fresh access_token=."
            )
        elif error_type == "permission_error":
            refined.hint = (
                "The Google identity lacks aiplatform.endpoints.predict on this project, or "
                "the model is not enabled in Model Garden."
            )
        elif error_type == "rate_limit_error":
            refined.hint = "Vertex AI quota reached even after retrying; wait, or ask for more."
        return refined
