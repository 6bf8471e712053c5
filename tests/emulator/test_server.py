"""The emulator as a server: lifecycle, auth, routing, request log, admin API, CLI, plugin."""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import select
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import httpx
import pytest
from spec_validation import HEADERS, Api, check_error

from claude_magics.emulator import Emulator, EmulatorOptions, Fault, RecordedRequest

from .support import MODEL, body

BODY = body(max_tokens=50)


def test_start_stop_idempotent_and_socket_closed() -> None:
    emu = Emulator()
    with pytest.raises(RuntimeError):
        _ = emu.url
    assert emu.start() is emu
    url = emu.url
    assert emu.start() is emu and emu.url == url  # second start is a no-op
    assert url.startswith("http://127.0.0.1:") and not url.endswith("/")
    port = int(url.rsplit(":", 1)[1])
    # A keep-alive connection stays open across stop(): stop must still return promptly.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/v1/models", headers=HEADERS)
    assert conn.getresponse().read()
    started = time.monotonic()
    emu.stop()
    emu.stop()
    assert time.monotonic() - started < 2
    assert not emu.running
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", port), timeout=1),
    ):
        pass
    conn.close()


def test_options_dataclass_and_configure() -> None:
    options = EmulatorOptions(requests_per_minute=5, api_keys=["a", "b"])  # type: ignore[arg-type]
    assert options.api_keys == frozenset({"a", "b"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.latency = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="tokens_per_delta"):
        EmulatorOptions(tokens_per_delta=0)
    with pytest.raises(TypeError):
        Emulator(no_such_option=1)
    emu = Emulator(options, latency=0.0, default_reply_tokens=7)
    assert emu.options.requests_per_minute == 5 and emu.options.default_reply_tokens == 7
    with emu:
        assert emu.configure(default_reply_tokens=9).default_reply_tokens == 9
        with pytest.raises(ValueError, match="host and port"):
            emu.configure(port=1)
        with Api(emu.url, headers={**HEADERS, "x-api-key": "a"}) as api:
            message = api.create(**BODY)
            assert message["usage"]["output_tokens"] == 9


def test_every_response_has_request_id_and_unknown_routes(emulator_api: Api) -> None:
    error = emulator_api.error(404, "not_found_error", "GET", "/v1/nothing-here")
    assert "/v1/nothing-here" in error["message"]
    emulator_api.error(404, "not_found_error", "GET", "/")
    error = emulator_api.error(405, "invalid_request_error", "GET", "/v1/messages")
    assert "GET" in error["message"]
    response = emulator_api.request("DELETE", "/v1/models")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    ids = {emulator_api.request("GET", "/v1/models").headers["request-id"] for _ in range(5)}
    assert len(ids) == 5


def test_auth_and_version_errors(emulator: Emulator) -> None:
    with httpx.Client(base_url=emulator.url) as client:
        response = client.post(
            "/v1/messages", json=BODY, headers={"anthropic-version": "2023-06-01"}
        )
        assert response.status_code == 401
        check_error(response.json(), "authentication_error")
        assert response.json()["error"]["message"] == "x-api-key header is required"
        response = client.post("/v1/messages", json=BODY, headers={"x-api-key": "k"})
        assert response.status_code == 400
        check_error(response.json(), "invalid_request_error")
        assert "anthropic-version" in response.json()["error"]["message"]
        # A bearer token is accepted in place of x-api-key (newer SDKs send it that way).
        bearer = {"authorization": "Bearer k", "anthropic-version": "2023-06-01"}
        assert client.post("/v1/messages", json=BODY, headers=bearer).status_code == 200
        # Without a key configured, any non-empty key works; with one, only that key.
        emulator.configure(api_keys=frozenset({"right"}))
        wrong = {"x-api-key": "wrong", "anthropic-version": "2023-06-01"}
        response = client.post("/v1/messages", json=BODY, headers=wrong)
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "invalid x-api-key"
        right = {"x-api-key": "right", "anthropic-version": "2023-06-01"}
        assert client.post("/v1/messages", json=BODY, headers=right).status_code == 200


def test_invalid_json_body(emulator_api: Api) -> None:
    error = emulator_api.error(
        400, "invalid_request_error", "POST", "/v1/messages", content=b"{not json"
    )
    assert "JSON" in error["message"]
    message = emulator_api.invalid(**{"model": MODEL})  # a JSON body that is no request
    assert message == "max_tokens: Field required"


def test_chunked_request_body(emulator_api: Api) -> None:
    payload = json.dumps(BODY).encode()

    def parts() -> Iterator[bytes]:  # a generator body makes httpx send it chunked
        yield payload[:10]
        yield payload[10:]

    response = emulator_api.request("POST", "/v1/messages", content=parts())
    assert response.status_code == 200
    assert response.json()["type"] == "message"


def test_request_log_redacts_keys(emulator: Emulator) -> None:
    secret = "sk-ant-very-secret-123"
    with Api(emulator.url, headers={**HEADERS, "x-api-key": secret}) as api:
        api.create(**BODY)
        api.request("GET", "/v1/models", params={"limit": "2"})
        api.request("GET", "/v1/nope")
    with httpx.Client(base_url=emulator.url) as client:
        client.get("/_emulator/requests")  # admin routes are not logged
    log = emulator.requests
    assert [(r.method, r.path, r.status) for r in log] == [
        ("POST", "/v1/messages", 200),
        ("GET", "/v1/models", 200),
        ("GET", "/v1/nope", 404),
    ]
    first = log[0]
    assert isinstance(first, RecordedRequest)
    assert first.body == BODY
    assert first.headers["x-api-key"] == "<redacted>"
    assert first.headers["anthropic-version"] == "2023-06-01"
    assert first.request_id.startswith("req_")
    assert abs(first.time - emulator.now()) < 5
    assert log[1].query == {"limit": "2"} and log[1].body is None
    assert secret not in repr(log)
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.status = 500  # type: ignore[misc]


def test_keep_alive_and_content_length(emulator: Emulator) -> None:
    port = int(emulator.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    for _ in range(3):
        conn.request("POST", "/v1/messages", body=json.dumps(BODY), headers=HEADERS)
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200
        assert int(response.headers["content-length"]) == len(body)
        assert response.headers.get("connection") != "close"
    conn.close()
    assert len(emulator.requests) == 3


def test_client_disconnect_mid_stream_is_quiet(
    emulator: Emulator, capfd: pytest.CaptureFixture[str]
) -> None:
    emulator.configure(tokens_per_second=200)
    port = int(emulator.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    body = json.dumps({**BODY, "stream": True, "max_tokens": 300}).encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
    sock.sendall(
        f"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{head}"
        f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    assert sock.recv(100).startswith(b"HTTP/1.1 200")
    sock.close()
    time.sleep(0.3)  # the server keeps writing into the closed socket
    with Api(emulator.url) as api:  # and still serves others
        api.create(**BODY)
    emulator.stop()
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err and "Error" not in captured.err


def test_admin_http_api(emulator: Emulator) -> None:
    with httpx.Client(base_url=emulator.url) as admin, Api(emulator.url) as api:
        # Faults: JSON body = add_fault kwargs; no key needed.
        response = admin.post("/_emulator/faults", json={"status": 500, "count": 1})
        assert response.status_code == 200
        assert response.json()["faults"][0]["status"] == 500
        api.error(500, "api_error", "POST", "/v1/messages", json=BODY)
        # Replies.
        assert admin.post("/_emulator/replies", json={"text": "scripted!"}).status_code == 200
        assert api.create(**BODY)["content"][0]["text"] == "scripted!"
        # Request log.
        log = admin.get("/_emulator/requests").json()
        assert [r["status"] for r in log] == [500, 200]
        assert log[0]["headers"]["x-api-key"] == "<redacted>"
        # Clock.
        before = emulator.now()
        now = admin.post("/_emulator/clock", json={"advance": 3600}).json()["now"]
        assert now - before >= 3600
        assert admin.post("/_emulator/clock", json={"advance": "x"}).status_code == 400
        # Config.
        response = admin.patch("/_emulator/config", json={"default_reply_tokens": 11})
        assert response.status_code == 200 and response.json()["default_reply_tokens"] == 11
        assert api.create(**BODY)["usage"]["output_tokens"] == 11
        bad = admin.patch("/_emulator/config", json={"nonsense": 1})
        assert bad.status_code == 400
        check_error({**bad.json(), "request_id": "req_x"}, "invalid_request_error")
        assert admin.post("/_emulator/faults", json={"kind": "bogus"}).status_code == 400
        # Reset clears faults, replies and the log.
        admin.post("/_emulator/faults", json={"status": 529, "count": 0})
        admin.post("/_emulator/replies", json={"text": "never"})
        assert admin.post("/_emulator/reset").status_code == 200
        assert emulator.requests == []
        assert api.create(**BODY)["content"][0]["text"] != "never"
        assert admin.get("/_emulator/nothing").status_code == 404


def test_reset_clears_state(emulator: Emulator, emulator_api: Api) -> None:
    emulator.add_fault(status=529, count=0)
    emulator.add_reply("queued")
    emulator_api.error(529, "overloaded_error", "POST", "/v1/messages", json=BODY)
    emulator.reset()
    assert emulator.requests == []
    assert emulator_api.create(**BODY)["content"][0]["text"] != "queued"


def test_add_fault_accepts_dict_json_and_validates() -> None:
    emu = Emulator()
    assert emu.add_fault({"status": 429, "count": 2}).count == 2
    assert emu.add_fault('{"kind": "drop"}').kind == "drop"
    assert emu.add_fault(Fault(status=500)).status == 500
    with pytest.raises(ValueError, match="kind"):
        emu.add_fault(kind="explode")
    with pytest.raises(TypeError, match="unknown fault field"):
        emu.add_fault({"stauts": 500})
    with pytest.raises(ValueError, match="status"):
        emu.add_fault(status=200)


def test_plugin_fixture_sets_environment(claude_emulator: Emulator) -> None:
    assert os.environ["ANTHROPIC_BASE_URL"] == claude_emulator.url
    assert os.environ["ANTHROPIC_API_KEY"]
    assert claude_emulator.options.batch_processing_seconds == 0.2
    with urllib.request.urlopen(
        urllib.request.Request(claude_emulator.url + "/v1/models", headers=HEADERS)
    ) as response:
        assert response.status == 200


@pytest.mark.claude_emulator(default_reply_tokens=5)
def test_plugin_marker_passes_options(claude_emulator: Emulator, emulator_api: Api) -> None:
    assert emulator_api.create(**BODY)["usage"]["output_tokens"] == 5


def test_cli_serves_until_terminated(tmp_path: object) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "claude_magics.emulator",
            "--port",
            "0",
            "--api-key",
            "cli-key",
            "--fault",
            '{"status": 503}',
            "--rpm",
            "100",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with Api(url, headers={**HEADERS, "x-api-key": "cli-key"}) as api:
            api.error(503, "api_error", "POST", "/v1/messages", json=BODY)  # the --fault
            response = api.request("POST", "/v1/messages", json=BODY)
            assert response.status_code == 200
            assert response.headers["anthropic-ratelimit-requests-limit"] == "100"
        with Api(url) as wrong_key:
            wrong_key.error(401, "authentication_error", "POST", "/v1/messages", json=BODY)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert out == "" and err == ""


def test_cli_help_documents_every_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "claude_magics.emulator", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for flag in (
        "--host", "--port", "--ttft", "--tokens-per-second", "--latency", "--batch-seconds",
        "--rpm", "--itpm", "--otpm", "--max-concurrent", "--api-key", "--fault", "--model",
    ):  # fmt: skip
        assert flag in result.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "claude_magics.emulator", "--fault", '{"kind": "nope"}'],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "kind" in bad.stderr


def test_package_import_is_cheap() -> None:
    code = (
        "import sys, claude_magics.emulator as e\n"
        "print(' '.join(m for m in ('http.server', 'claude_magics.emulator.app') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_a_burst_of_connections_is_queued_not_dropped() -> None:
    # A realtime job opens dozens of connections at once. With socketserver's backlog of 5 the
    # kernel dropped the handshakes beyond it and clients tried again only after a second.
    # Here nothing is accepted at all: every connection must still be established (queued).
    from claude_magics.emulator.app import App
    from claude_magics.emulator.server import EmulatorServer

    server = EmulatorServer(("127.0.0.1", 0), App(EmulatorOptions()))
    sockets = []
    try:
        for _ in range(100):
            sock = socket.socket()
            sock.setblocking(False)
            sockets.append(sock)
            sock.connect_ex(server.server_address[:2])
        pending = set(sockets)
        deadline = time.monotonic() + 10
        while pending and time.monotonic() < deadline:
            _, ready, _ = select.select([], list(pending), [], 0.1)
            pending -= set(ready)
        assert not pending, f"{len(pending)} of 100 connections were never established"
    finally:
        for sock in sockets:
            sock.close()
        server.server_close()
