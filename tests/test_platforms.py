"""Amazon Bedrock and Google Cloud (Vertex AI) against the emulator's platform routes: create,
stream (server-sent events and AWS event-stream), count, retries, signatures, refusals, and
``%%claude`` end to end with ``ClaudeMagics.platform`` set."""

from __future__ import annotations

import asyncio
import base64
import sys
import threading
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import pandas as pd
import pytest
from batch_support import FAST, LABELS, REVIEWS
from IPython.core.interactiveshell import InteractiveShell
from shell_support import magics_of, ok, run_cell

from claude_magics.api.client import AsyncClient, Client
from claude_magics.api.platforms.eventstream import EventStreamDecoder, sse_events_of
from claude_magics.cost.ledger import Ledger
from claude_magics.emulator import Emulator
from claude_magics.emulator.platforms import chunk_frame, encode_message, exception_frame
from claude_magics.errors import (
    AuthenticationError,
    PermissionDeniedError,
    PlatformUnsupportedError,
    RateLimitError,
)
from claude_magics.jobs import entry
from claude_magics.jobs.entry import BatchesUnavailableError
from claude_magics.jobs.store import JobStore
from claude_magics.jobs.tasks import label_task

AKID, SECRET = "AKIDEMULATOR", "emulator-secret"
TOKEN = "ya29.emulator-token"
MSGS = [{"role": "user", "content": "Name a colour."}]
T = TypeVar("T")
pytestmark = pytest.mark.claude_emulator(
    aws_credentials={AKID: SECRET}, vertex_tokens=[TOKEN], bedrock_api_keys=["bedrock-key"]
)


def bedrock(emulator: Emulator, secret: str = SECRET, **kwargs: object) -> Client:
    return Client(
        platform="bedrock",
        region="us-east-1",
        base_url=emulator.url,
        aws_access_key=AKID,
        aws_secret_key=secret,
        initial_retry_delay=0.01,
        **kwargs,  # type: ignore[arg-type]
    )


def vertex(emulator: Emulator, token: str = TOKEN) -> Client:
    return Client(
        platform="vertex",
        region="us-east5",
        project="proj-1",
        base_url=emulator.url,
        access_token=token,
        initial_retry_delay=0.01,
    )


def test_bedrock_messages_api_create_stream_and_count(emulator: Emulator) -> None:
    client = bedrock(emulator)
    message = client.messages.create(model="claude-sonnet-5-5", max_tokens=64, messages=MSGS)
    with client.messages.stream(
        model="us.anthropic.claude-sonnet-5-5", max_tokens=64, messages=MSGS
    ) as stream:
        streamed = "".join(stream.text_stream)
    count = client.messages.count_tokens(model="claude-sonnet-5-5", messages=MSGS)
    first, second, counted = emulator.requests[-3:]
    # The table id became its Bedrock id (global profile by default), sent in the body to the
    # Messages-API path; a profile id is sent as given; the request id is AWS's.
    assert first.path == "/anthropic/v1/messages"
    assert first.body["model"] == "global.anthropic.claude-sonnet-5-5"
    assert second.body["model"] == "us.anthropic.claude-sonnet-5-5"
    assert message.request_id == first.request_id and "-" in message.request_id
    assert stream.request_id == second.request_id
    assert streamed == message["content"][0]["text"]  # same request, same answer
    # CountTokens takes the InvokeModel body, base64.
    assert counted.path == "/model/global.anthropic.claude-sonnet-5-5/count-tokens"
    inner = orjson.loads(base64.b64decode(counted.body["input"]["invokeModel"]["body"]))
    assert inner["anthropic_version"] == "bedrock-2023-05-31" and "model" not in inner
    assert count == emulator_count(emulator, MSGS)
    assert first.headers["authorization"] == "<redacted>"


def emulator_count(emulator: Emulator, messages: list[dict[str, object]]) -> int:
    with Client(api_key="test", base_url=emulator.url) as first_party:
        return int(first_party.messages.count_tokens(model="claude-sonnet-5-5", messages=messages))


def test_bedrock_invoke_model_streams_in_event_stream_framing(emulator: Emulator) -> None:
    client = bedrock(emulator)
    model = "claude-haiku-4-5-20251001"  # an older model: InvokeModel only
    message = client.messages.create(model=model, max_tokens=64, messages=MSGS)
    with client.messages.stream(model=model, max_tokens=64, messages=MSGS) as stream:
        text = "".join(stream.text_stream)
    invoke, streamed = emulator.requests[-2:]
    assert invoke.path == "/model/global.anthropic.claude-haiku-4-5-20251001-v1%3A0/invoke"
    assert streamed.path.endswith("-v1%3A0/invoke-with-response-stream")
    assert invoke.body["anthropic_version"] == "bedrock-2023-05-31" and "model" not in invoke.body
    assert text == message["content"][0]["text"] and text
    assert stream.message["stop_reason"] == "end_turn"
    assert stream.message["usage"]["output_tokens"] == message["usage"]["output_tokens"]


def test_event_stream_frames_decode_and_errors_become_error_events() -> None:
    event = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "é\u2028"},
    }
    frame = chunk_frame(orjson.dumps(event))
    # Byte by byte: messages are reassembled across reads.
    decoded = list(sse_events_of(bytes([b]) for b in frame))
    assert [(e.event, orjson.loads(e.data)) for e in decoded] == [("content_block_delta", event)]
    (message,) = list(EventStreamDecoder().feed(frame))
    assert message.headers == {
        ":event-type": "chunk",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    throttled = list(sse_events_of([exception_frame("throttlingException", "Too many tokens")]))
    assert orjson.loads(throttled[0].data)["error"]["type"] == "rate_limit_error"
    corrupt = bytearray(frame)
    corrupt[-1] ^= 1
    assert orjson.loads(next(sse_events_of([bytes(corrupt)])).data)["error"]["type"] == (
        "malformed_event"
    )
    assert orjson.loads(next(sse_events_of([frame[:-3]])).data)["error"]["type"] == (
        "incomplete_stream"
    )
    # botocore's own decoder reads the emulator's frames alike.
    botocore_eventstream = pytest.importorskip("botocore.eventstream")
    buffer = botocore_eventstream.EventStreamBuffer()
    buffer.add_data(encode_message({":event-type": "chunk"}, b'{"bytes": ""}'))
    (parsed,) = list(buffer)
    assert parsed.headers == {":event-type": "chunk"} and parsed.payload == b'{"bytes": ""}'


def test_bedrock_stream_error_mid_stream_keeps_the_partial_answer(emulator: Emulator) -> None:
    from claude_magics.errors import APIStreamError

    emulator.add_fault(kind="error_event", path=None, after_events=4, error_type="overloaded_error")
    client = bedrock(emulator)
    stream = client.messages.stream(model="claude-haiku-4-5-20251001", max_tokens=64, messages=MSGS)
    with pytest.raises(APIStreamError) as raised, stream:
        stream.until_done()
    assert raised.value.error_type == "overloaded_error"
    assert "serviceUnavailableException" in raised.value.message
    assert raised.value.partial is not None


def test_bedrock_429_is_retried_and_errors_name_the_platform(emulator: Emulator) -> None:
    client = bedrock(emulator)
    emulator.add_fault(status=429, path=None, retry_after=0)
    message = client.messages.create(model="claude-sonnet-5-5", max_tokens=32, messages=MSGS)
    assert message["type"] == "message"
    assert [r.status for r in emulator.requests[-2:]] == [429, 200]
    emulator.add_fault(status=429, path=None, count=5, retry_after=0)
    with pytest.raises(RateLimitError) as raised:
        client.messages.create(model="claude-sonnet-5-5", max_tokens=32, messages=MSGS)
    assert raised.value.message.startswith("Amazon Bedrock (us-east-1): ThrottlingException")
    assert raised.value.request_id == emulator.requests[-1].request_id
    assert raised.value.attempts == 3


def test_bedrock_wrong_secret_is_one_line_naming_bedrock(emulator: Emulator) -> None:
    with pytest.raises(AuthenticationError) as raised:
        bedrock(emulator, secret="not-the-secret").messages.create(
            model="claude-sonnet-5-5", max_tokens=32, messages=MSGS
        )
    error = raised.value
    assert error.status_code == 403
    headline = error._render_traceback_()[0]
    assert "Amazon Bedrock (us-east-1): InvalidSignatureException" in headline
    assert "not-the-secret" not in "".join(error._render_traceback_()) + repr(error.headers)
    assert emulator.requests[-1].status == 403
    # A Bedrock API key goes as a bearer token, without SigV4.
    keyed = Client(
        platform="bedrock", region="us-east-1", base_url=emulator.url, api_key="bedrock-key"
    )
    assert keyed.messages.create(model="claude-haiku-5-5", max_tokens=16, messages=MSGS)["content"]
    assert "bedrock-key" not in repr(keyed)


@pytest.mark.claude_emulator(aws_denied_actions=["bedrock:InvokeModelWithResponseStream"])
def test_access_denied_names_the_missing_permission(emulator: Emulator) -> None:
    stream = bedrock(emulator).messages.stream(
        model="claude-sonnet-5-5", max_tokens=32, messages=MSGS
    )
    with pytest.raises(PermissionDeniedError) as raised, stream:
        stream.until_done()
    assert "bedrock:InvokeModelWithResponseStream" in raised.value.hint


def test_batches_and_files_are_refused_in_one_line(emulator: Emulator) -> None:
    for client in (bedrock(emulator), vertex(emulator)):
        before = len(emulator.requests)
        with pytest.raises(PlatformUnsupportedError) as raised:
            client.batches.create([{"custom_id": "a", "params": {}}])
        assert "has no Message Batches API" in str(raised.value)
        assert "mode='realtime'" in raised.value.hint
        with pytest.raises(PlatformUnsupportedError, match="has no Files API"):
            client.files.upload(b"hello", filename="a.txt")
        assert len(emulator.requests) == before  # nothing was sent


def test_batch_job_explains_and_auto_sends_in_realtime(
    emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = pd.DataFrame({"review": REVIEWS})
    options: dict[str, Any] = {
        "client": bedrock(emulator),
        "store": JobStore(tmp_path / "jobs.sqlite"),
        "ledger": Ledger(tmp_path / "ledger.sqlite"),
        "progress": False,
        "settings": FAST,
    }
    before = len(emulator.requests)
    with pytest.raises(BatchesUnavailableError) as caught:
        entry.run(frame, "review", label_task(LABELS), mode="batch", **options)
    message = str(caught.value)
    assert message.startswith("Amazon Bedrock has no Message Batches API")
    assert 'mode="realtime"' in message and "\n" not in message
    assert len(emulator.requests) == before  # refused before anything was sent
    options["settings"] = replace(FAST, batch_threshold=2)
    capsys.readouterr()
    job = entry.run(frame, "review", label_task(LABELS), **options)
    assert "sending the 4 requests in realtime instead" in capsys.readouterr().out
    assert job.mode == "realtime" and job.counts() == {"succeeded": 5}
    assert {r.path for r in emulator.requests[before:]} == {"/anthropic/v1/messages"}


def test_vertex_create_stream_count_and_retry(emulator: Emulator) -> None:
    client = vertex(emulator)
    emulator.add_fault(status=429, path=None, retry_after=0)
    message = client.messages.create(model="claude-sonnet-5-5", max_tokens=64, messages=MSGS)
    with client.messages.stream(model="claude-sonnet-5-5", max_tokens=64, messages=MSGS) as s:
        text = "".join(s.text_stream)
    count = client.messages.count_tokens(model="claude-sonnet-5-5", messages=MSGS)
    limited, created, streamed, counted = emulator.requests[-4:]
    base = "/v1/projects/proj-1/locations/us-east5/publishers/anthropic/models/"
    assert limited.status == 429 and created.status == 200
    assert created.path == base + "claude-sonnet-5-5:rawPredict"
    assert streamed.path == base + "claude-sonnet-5-5:streamRawPredict"
    assert counted.path == base + "count-tokens:rawPredict"
    assert created.body["anthropic_version"] == "vertex-2023-10-16" and "model" not in created.body
    assert counted.body["model"] == "claude-sonnet-5-5"
    assert text == message["content"][0]["text"]
    assert count == emulator_count(emulator, MSGS)
    with pytest.raises(AuthenticationError) as raised:
        vertex(emulator, token="expired").messages.create(
            model="claude-sonnet-5-5", max_tokens=16, messages=MSGS
        )
    assert raised.value.message.startswith("Google Cloud Vertex AI (us-east5): UNAUTHENTICATED")


def test_environment_decides_the_platform(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAUDE_MAGICS_PLATFORM", "vertex")
    monkeypatch.setenv("CLOUD_ML_REGION", "europe-west1")
    monkeypatch.setenv("ANTHROPIC_VERTEX_PROJECT_ID", "env-project")
    monkeypatch.setenv("ANTHROPIC_VERTEX_BASE_URL", emulator.url)
    client = Client(access_token=TOKEN)
    client.messages.create(model="claude-haiku-5-5", max_tokens=16, messages=MSGS)
    assert emulator.requests[-1].path.startswith("/v1/projects/env-project/locations/europe-west1/")
    monkeypatch.setenv("CLAUDE_MAGICS_PLATFORM", "bedrock")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    monkeypatch.delenv("ANTHROPIC_BEDROCK_BASE_URL", raising=False)
    assert Client().base_url == "https://bedrock-runtime.eu-west-3.amazonaws.com"


def test_claude_cell_on_bedrock_end_to_end(
    ip: InteractiveShell, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AKID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    ok(
        ip,
        f"%config ClaudeMagics.platform = 'bedrock'\n%config ClaudeMagics.region = 'us-west-2'\n"
        f"%config ClaudeMagics.base_url = '{emulator.url}'",
    )
    captured = ok(ip, "%%claude --once --out t_answer\nName a colour.")
    answer = ip.user_ns["t_answer"]
    assert answer.text and answer.text in captured.outputs[-1].data["text/plain"]
    sent = emulator.requests[-1]
    assert sent.path == "/anthropic/v1/messages"
    assert sent.body["model"] == "global.anthropic.claude-sonnet-5-5"
    assert "us-west-2/bedrock/aws4_request" not in repr(sent.headers)  # redacted
    # --count, the budget and the ledger work the same.
    ok(ip, "%%claude --count\nName a colour.")
    assert emulator.requests[-1].path.endswith("/count-tokens")
    ledger = magics_of(ip).ledger
    assert any(r.request_id == sent.request_id for r in ledger.calls())
    config = ok(ip, "%claude_config").outputs[-1].data["text/plain"]
    assert "Amazon Bedrock" in config and "us-west-2" in config
    assert "found (AWS env)" in config and SECRET not in config and AKID not in config
    models = ok(ip, "%claude_models").outputs[-1].data["text/plain"]
    assert "global.anthropic.claude-sonnet-5-5 (model)" in models
    # A credential in a prompt never reaches the model.
    ip.user_ns["t_secret"] = SECRET
    ok(ip, "%%claude -m claude-haiku-4-5-20251001\nRepeat {{t_secret}}")
    assert SECRET not in orjson.dumps(emulator.requests[-1].body).decode()
    assert "<AWS_SECRET_ACCESS_KEY: redacted>" in orjson.dumps(emulator.requests[-1].body).decode()
    result, captured = run_cell(ip, "%claude_files upload /etc/hostname")
    assert not result.success


@pytest.fixture
def adc(emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Application Default Credentials: a service-account file whose token endpoint is the
    emulator's (google-auth signs its JWT with a fresh RSA key and trades it for a token)."""
    crypto = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.rsa")
    from cryptography.hazmat.primitives import serialization

    key = crypto.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path = tmp_path / "adc.json"
    info = {
        "type": "service_account",
        "project_id": "adc-project",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "notebook@adc-project.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": emulator.url + "/oauth2/token",
    }
    path.write_text(orjson.dumps(info).decode())
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    for name in ("ANTHROPIC_VERTEX_PROJECT_ID", "GOOGLE_CLOUD_PROJECT", "CLOUD_ML_REGION"):
        monkeypatch.delenv(name, raising=False)
    return path


def token_requests(emulator: Emulator) -> int:
    return sum(r.path == "/oauth2/token" for r in emulator.requests)


def test_vertex_adc_tokens_are_refreshed_before_they_expire(emulator: Emulator, adc: Path) -> None:
    client = Client(platform="vertex", region="global", base_url=emulator.url)
    for _ in range(3):
        client.messages.create(model="claude-haiku-5-5", max_tokens=16, messages=MSGS)
    assert token_requests(emulator) == 1  # an hour-long token serves every request
    assert emulator.requests[-1].path.startswith("/v1/projects/adc-project/locations/global/")
    # Tokens that last four minutes are inside the five-minute margin: each request gets a
    # fresh one, and none is refused.
    emulator.configure(vertex_token_seconds=240)
    client = Client(platform="vertex", region="global", base_url=emulator.url)
    for _ in range(2):
        client.messages.create(model="claude-haiku-5-5", max_tokens=16, messages=MSGS)
    assert token_requests(emulator) == 3
    assert all(r.status == 200 for r in emulator.requests)


def test_claude_cell_on_vertex_streams(ip: InteractiveShell, emulator: Emulator, adc: Path) -> None:
    # The claude_emulator fixture points ANTHROPIC_VERTEX_BASE_URL at the emulator.
    ok(ip, "%config ClaudeMagics.platform = 'vertex'\n%config ClaudeMagics.region = 'global'")
    captured = ok(ip, "%%claude --once --out t_answer\nName a colour.")
    assert ip.user_ns["t_answer"].text
    assert emulator.requests[-1].path == (
        "/v1/projects/adc-project/locations/global/publishers/anthropic/models/"
        "claude-sonnet-5-5:streamRawPredict"
    )
    config = ok(ip, "%claude_config").outputs[-1].data["text/plain"]
    assert "Google Cloud Vertex AI" in config and "adc-project" in config
    assert "found (Application Default Credentials)" in config
    assert "ANTHROPIC_VERTEX_BASE_URL" in config
    assert "more than these prices" not in ok(ip, "%claude_models").outputs[-1].data["text/plain"]
    ok(ip, "%config ClaudeMagics.region = 'us-east5'")
    models = ok(ip, "%claude_models").outputs[-1].data["text/plain"]
    assert "The us-east5 endpoint costs 10% more than these prices" in models
    # ...and the costs say so: the same answer from the regional endpoint costs 10% more.
    ok(ip, "%%claude --once --fresh --out t_regional\nName a colour.")
    regional, global_ = ip.user_ns["t_regional"], ip.user_ns["t_answer"]
    assert "locations/us-east5" in emulator.requests[-1].path
    assert regional.usage == global_.usage
    assert regional.cost.total == pytest.approx(global_.cost.total * 1.1)
    assert "BEGIN PRIVATE KEY" not in config + str(captured.stdout)


def test_a_pdf_goes_inline_on_bedrock_and_says_why(
    ip: InteractiveShell, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from test_documents import INVOICE, write_pdf

    invoice = write_pdf(tmp_path / "invoice.pdf", INVOICE)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AKID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    magics = magics_of(ip)
    magics.platform, magics.region, magics.base_url = "bedrock", "us-east-1", emulator.url
    magics.upload_above_kb = 0  # would upload anything, where there is a Files API
    captured = ok(ip, f"%%claude --once --pdf {invoice}\nWhat is the total due?")
    (sent,) = [r for r in emulator.requests if r.path.startswith("/anthropic/")]
    document = sent.body["messages"][-1]["content"][0]
    assert document["type"] == "document" and document["source"]["type"] == "base64"
    said = captured.stdout + captured.stderr
    assert "Amazon Bedrock has no Files API: documents and images go inline" in said
    assert not [r for r in emulator.requests if "/files" in r.path]


def test_the_official_sdk_platform_clients_agree_with_the_emulator(emulator: Emulator) -> None:
    """An independent check of the emulator's SigV4 verification, event-stream framing and
    Vertex routes: the official SDK's Bedrock client (boto3 signs) and Vertex client."""
    anthropic = pytest.importorskip("anthropic")
    pytest.importorskip("boto3")
    model = "anthropic.claude-haiku-4-5-20251001-v1:0"
    sdk = anthropic.AnthropicBedrock(
        aws_access_key=AKID,
        aws_secret_key=SECRET,
        aws_region="us-east-1",
        base_url=emulator.url,
        max_retries=0,
    )
    created = sdk.messages.create(model=model, max_tokens=64, messages=MSGS)
    with sdk.messages.stream(model=model, max_tokens=64, messages=MSGS) as stream:
        streamed = "".join(stream.text_stream)
    assert streamed == created.content[0].text
    wrong = anthropic.AnthropicBedrock(
        aws_access_key=AKID,
        aws_secret_key="not-the-secret",
        aws_region="us-east-1",
        base_url=emulator.url,
        max_retries=0,
    )
    with pytest.raises(anthropic.PermissionDeniedError, match="signature we calculated"):
        wrong.messages.create(model=model, max_tokens=64, messages=MSGS)
    google = anthropic.AnthropicVertex(
        region="us-east5",
        project_id="proj-1",
        access_token=TOKEN,
        base_url=emulator.url + "/v1",
        max_retries=0,
    )
    message = google.messages.create(model="claude-sonnet-5-5", max_tokens=64, messages=MSGS)
    with google.messages.stream(model="claude-sonnet-5-5", max_tokens=64, messages=MSGS) as s:
        assert "".join(s.text_stream) == message.content[0].text
    count = google.messages.count_tokens(model="claude-sonnet-5-5", messages=MSGS)
    assert count.input_tokens == emulator_count(emulator, MSGS)


def _no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An environment where the AWS credential chain finds nothing."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_BEARER_TOKEN_BEDROCK", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_bad_platform_settings_are_one_line(
    ip: InteractiveShell, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from claude_magics.errors import MissingCredentialsError, PlatformConfigError

    with pytest.raises(PlatformConfigError, match="go together"):
        Client(platform="bedrock", region="us-east-1", aws_access_key=AKID)
    with pytest.raises(PlatformConfigError, match="not a region name"):
        Client(platform="bedrock", region="evil.example/x")
    # No region anywhere: refused before anything is sent, saying where to set one.
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    _no_aws(monkeypatch, tmp_path)
    with pytest.raises(MissingCredentialsError, match="needs a region") as raised:
        Client(platform="bedrock", base_url=emulator.url).messages.create(
            model="claude-haiku-5-5", max_tokens=16, messages=MSGS
        )
    assert "AWS_REGION" in raised.value.hint
    # No credentials in the chain: one line naming what to do.
    with pytest.raises(MissingCredentialsError, match="no AWS credentials found") as raised:
        Client(platform="bedrock", region="us-east-1", base_url=emulator.url).messages.create(
            model="claude-haiku-5-5", max_tokens=16, messages=MSGS
        )
    assert "aws sso login" in raised.value.hint
    # botocore missing: the extra to install (an API key would do without it).
    monkeypatch.setitem(sys.modules, "botocore", None)
    with pytest.raises(MissingCredentialsError, match="botocore") as raised:
        bedrock(emulator).messages.create(model="claude-haiku-5-5", max_tokens=16, messages=MSGS)
    assert "claude-magics[bedrock]" in raised.value.hint
    monkeypatch.delitem(sys.modules, "botocore")
    assert not emulator.requests  # nothing was sent
    # In a notebook: a setting that cannot be a region is refused; a bad environment fails the
    # cell in one line.
    result, captured = run_cell(ip, "%config ClaudeMagics.region = 'us-east-1.evil.example/'")
    assert not result.success and "not a region name" in captured.stdout + captured.stderr
    monkeypatch.setenv("CLAUDE_MAGICS_PLATFORM", "azure")
    result, captured = run_cell(ip, "%%claude\nHello")
    shown = [line for line in (captured.stdout + captured.stderr).splitlines() if line.strip()]
    assert not result.success
    assert shown == [
        "PlatformConfigError: CLAUDE_MAGICS_PLATFORM='azure' is not a platform: use one of "
        "anthropic, bedrock, vertex"
    ]


def test_platform_answers_are_valid_against_the_spec(emulator: Emulator) -> None:
    from spec_validation import check_event, validate

    body = {"model": "claude-haiku-4-5-20251001", "max_tokens": 64, "messages": MSGS}
    client = bedrock(emulator)
    validate(dict(client.messages.create(**body)), "Message")
    response = client.send("POST", "/v1/messages", body={**body, "stream": True}, stream=True)
    try:
        assert response.headers["content-type"] == "application/vnd.amazon.eventstream"
        events = list(sse_events_of(response.iter_bytes()))
    finally:
        response.close()
    assert events[0].event == "message_start" and events[-1].event == "message_stop"
    for event in events:
        check_event(event.event, orjson.loads(event.data))
    validate(dict(vertex(emulator).messages.create(**body)), "Message")


def test_a_newer_api_version_travels_in_the_platform_body(emulator: Emulator) -> None:
    from claude_magics.errors import BadRequestError

    client = Client(
        platform="vertex",
        region="global",
        project="proj-1",
        base_url=emulator.url,
        access_token=TOKEN,
        api_version="2026-10-21",
    )
    with pytest.raises(BadRequestError) as raised:  # 2026-10-21 takes no sampling parameters
        client.messages.create(
            model="claude-sonnet-4-5-20250929", max_tokens=16, messages=MSGS, temperature=0.5
        )
    assert raised.value.message.startswith("Google Cloud Vertex AI (global): ")
    assert emulator.requests[-1].body["anthropic_version"] == "2026-10-21"
    bedrock(emulator).messages.create(
        model="claude-sonnet-4-5-20250929", max_tokens=16, messages=MSGS, temperature=0.5
    )
    assert emulator.requests[-1].body["anthropic_version"] == "bedrock-2023-05-31"


def test_malformed_platform_requests_get_the_platforms_errors(emulator: Emulator) -> None:
    import httpx

    with httpx.Client(base_url=emulator.url) as http:
        model_path = "/model/anthropic.claude-haiku-5-5/invoke"
        cases = [
            (model_path, {"authorization": "AWS4-HMAC-SHA256 nonsense"}, b"{}"),
            (model_path, {}, b"{}"),
            ("/anthropic/v1/messages", {"authorization": "Bearer bedrock-key"}, b"not json"),
            ("/model/x/count-tokens", {"authorization": "Bearer bedrock-key"}, b'{"input": 1}'),
            (model_path, {"authorization": "Bearer bedrock-key"}, b'{"model": "m"}'),
        ]
        for path, headers, body in cases:
            response = http.post(path, headers=headers, content=body)
            assert 400 <= response.status_code < 500, (path, response.status_code)
            assert response.headers["x-amzn-errortype"].split(":")[0].endswith("Exception")
            assert set(response.json()) == {"message"} and response.headers["x-amzn-requestid"]
        vertex_path = "/v1/projects/p/locations/global/publishers/anthropic/models/m:rawPredict"
        refused = http.post(vertex_path, headers={"authorization": "Basic x"}, content=b"{}")
        assert refused.status_code == 401 and refused.json()["error"]["status"] == "UNAUTHENTICATED"
        bad_version = http.post(
            vertex_path,
            headers={"authorization": f"Bearer {TOKEN}"},
            json={"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": MSGS},
        )
        assert bad_version.status_code == 400
        assert "vertex-2023-10-16" in bad_version.json()["error"]["message"]
        assert http.post("/oauth2/token", content=b"grant_type=password").status_code == 400
    assert all(r.status < 500 for r in emulator.requests)


# -- AsyncClient: the same platform hooks, from the shared core ------------------------------


def async_bedrock(emulator: Emulator, secret: str = SECRET) -> AsyncClient:
    return AsyncClient(
        platform="bedrock",
        region="us-east-1",
        base_url=emulator.url,
        aws_access_key=AKID,
        aws_secret_key=secret,
        initial_retry_delay=0.01,
    )


def async_vertex(emulator: Emulator) -> AsyncClient:
    return AsyncClient(
        platform="vertex",
        region="us-east5",
        project="proj-1",
        base_url=emulator.url,
        access_token=TOKEN,
        initial_retry_delay=0.01,
    )


def run_async(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(main())


def test_async_bedrock_create_streams_in_both_framings_and_counts(emulator: Emulator) -> None:
    client = async_bedrock(emulator)
    old = "claude-haiku-4-5-20251001"  # InvokeModel: an event-stream answer

    async def main() -> tuple[Any, ...]:
        async with client:
            created = await client.messages.create(
                model="claude-sonnet-5-5", max_tokens=64, messages=MSGS
            )
            async with client.messages.stream(
                model="claude-sonnet-5-5", max_tokens=64, messages=MSGS
            ) as sse:
                sse_text = "".join([text async for text in sse.text_stream])
            invoked = await client.messages.create(model=old, max_tokens=64, messages=MSGS)
            async with client.messages.stream(model=old, max_tokens=64, messages=MSGS) as framed:
                framed_text = "".join([text async for text in framed.text_stream])
            count = await client.messages.count_tokens(model="claude-sonnet-5-5", messages=MSGS)
            return created, sse, sse_text, invoked, framed, framed_text, count

    created, sse, sse_text, invoked, framed, framed_text, count = run_async(main)
    first, streamed, invoke, framed_request, counted = emulator.requests[-5:]
    assert first.path == streamed.path == "/anthropic/v1/messages"
    assert first.body["model"] == "global.anthropic.claude-sonnet-5-5"
    assert created.request_id == first.request_id and sse.request_id == streamed.request_id
    assert sse_text == created["content"][0]["text"]
    assert invoke.path == "/model/global.anthropic.claude-haiku-4-5-20251001-v1%3A0/invoke"
    assert framed_request.path.endswith("-v1%3A0/invoke-with-response-stream")
    assert framed.response_headers["content-type"] == "application/vnd.amazon.eventstream"
    assert framed_text == invoked["content"][0]["text"] and framed_text
    assert framed.message["stop_reason"] == "end_turn"
    assert counted.path == "/model/global.anthropic.claude-sonnet-5-5/count-tokens"
    assert count == emulator_count(emulator, MSGS)
    assert all(r.status == 200 for r in emulator.requests[-5:])


def test_async_bedrock_429_is_retried_signed_afresh_off_the_loop(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = async_bedrock(emulator)
    assert client.platform is not None
    signed_in: list[bool] = []
    sign = client.platform.authorize

    def spy(request: httpx.Request) -> None:
        signed_in.append(threading.current_thread() is threading.main_thread())
        sign(request)

    monkeypatch.setattr(client.platform, "authorize", spy)
    emulator.add_fault(status=429, path=None, retry_after=0)

    async def create() -> Any:
        async with client:
            return await client.messages.create(
                model="claude-sonnet-5-5", max_tokens=32, messages=MSGS
            )

    assert run_async(create)["type"] == "message"
    assert [r.status for r in emulator.requests[-2:]] == [429, 200]
    # Each attempt was signed (the emulator verified both), in a worker thread.
    assert signed_in == [False, False]
    emulator.add_fault(status=429, path=None, count=5, retry_after=0)
    with pytest.raises(RateLimitError) as raised:
        run_async(create)
    assert raised.value.message.startswith("Amazon Bedrock (us-east-1): ThrottlingException")
    assert raised.value.request_id == emulator.requests[-1].request_id
    assert raised.value.attempts == 3


def test_async_bedrock_wrong_secret_and_refusals_are_one_line(emulator: Emulator) -> None:
    async def create() -> Any:
        async with async_bedrock(emulator, secret="not-the-secret") as client:
            return await client.messages.create(
                model="claude-sonnet-5-5", max_tokens=32, messages=MSGS
            )

    with pytest.raises(AuthenticationError) as raised:
        run_async(create)
    rendered = raised.value._render_traceback_()
    assert "Amazon Bedrock (us-east-1): InvalidSignatureException" in rendered[0]
    assert "not-the-secret" not in "".join(rendered) + repr(raised.value.headers)
    assert emulator.requests[-1].status == 403

    async def refused(client: AsyncClient) -> list[PlatformUnsupportedError]:
        errors = []
        async with client:
            for call in (
                client.batches.create([{"custom_id": "a", "params": {}}]),
                client.files.upload(b"hello", filename="a.txt"),
            ):
                with pytest.raises(PlatformUnsupportedError) as caught:
                    await call
                errors.append(caught.value)
        return errors

    before = len(emulator.requests)
    for client in (async_bedrock(emulator), async_vertex(emulator)):
        batches, files = asyncio.run(refused(client))
        assert "has no Message Batches API" in str(batches) and "mode='realtime'" in batches.hint
        assert "has no Files API" in str(files)
    assert len(emulator.requests) == before  # nothing was sent


def test_async_vertex_create_stream_and_count(emulator: Emulator) -> None:
    client = async_vertex(emulator)

    async def main() -> tuple[Any, str, int]:
        async with client:
            created = await client.messages.create(
                model="claude-sonnet-5-5", max_tokens=64, messages=MSGS
            )
            async with client.messages.stream(
                model="claude-sonnet-5-5", max_tokens=64, messages=MSGS
            ) as stream:
                text = "".join([t async for t in stream.text_stream])
            count = await client.messages.count_tokens(model="claude-sonnet-5-5", messages=MSGS)
            return created, text, count

    created, text, count = run_async(main)
    made, streamed, counted = emulator.requests[-3:]
    base = "/v1/projects/proj-1/locations/us-east5/publishers/anthropic/models/"
    assert made.path == base + "claude-sonnet-5-5:rawPredict"
    assert streamed.path == base + "claude-sonnet-5-5:streamRawPredict"
    assert counted.path == base + "count-tokens:rawPredict"
    assert made.body["anthropic_version"] == "vertex-2023-10-16" and "model" not in made.body
    assert text == created["content"][0]["text"] and text
    assert count == emulator_count(emulator, MSGS)


def test_async_vertex_with_adc_gets_its_project_and_token_in_threads(
    emulator: Emulator, adc: Path
) -> None:
    client = AsyncClient(platform="vertex", region="global", base_url=emulator.url)

    async def main() -> list[Any]:
        async with client:
            return list(
                await asyncio.gather(
                    *(
                        client.messages.create(
                            model="claude-haiku-5-5", max_tokens=16, messages=MSGS
                        )
                        for _ in range(3)
                    )
                )
            )

    assert all(m["type"] == "message" for m in run_async(main))
    assert token_requests(emulator) == 1  # the lock held: one token for the three at once
    assert emulator.requests[-1].path.startswith("/v1/projects/adc-project/locations/global/")
