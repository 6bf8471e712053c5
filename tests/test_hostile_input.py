"""What a careless or hostile user feeds the prompt builder: devices, FIFOs and directories as
attachments, huge files, lone surrogates, a request over the API's size limit. Each gets one
clear line at once, never a hang or a traceback from inside the client."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from claude_magics.api.client import Client
from claude_magics.emulator import Emulator
from claude_magics.errors import MalformedAPIKeyError, PromptError, RequestBodyError
from claude_magics.prompt import file_block, image_block, pdf_block


@pytest.mark.timeout(10)
@pytest.mark.parametrize("make", [image_block, pdf_block, file_block])
def test_devices_are_refused_before_they_are_read(make: object) -> None:
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero on this system")
    with pytest.raises(PromptError, match="is a device or socket, not a regular file"):
        make("/dev/zero")  # type: ignore[operator]


@pytest.mark.timeout(10)
def test_a_fifo_with_no_writer_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(PromptError, match="is a FIFO, not a regular file"):
        file_block(fifo)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="is a directory, not a file"):
        pdf_block(tmp_path)


def test_a_huge_file_is_refused_from_its_size_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    with big.open("wb") as handle:  # a sparse 64 MB file: cheap to make, costly to read
        handle.truncate(64 * 1024 * 1024)
    with pytest.raises(PromptError, match=r"big.txt is 64.0 MB, over the 32.0 MB"):
        file_block(big)


def test_lone_surrogates_are_repaired_in_the_one_body_builder() -> None:
    from claude_magics.prompt.body import CallOptions, build_body

    name = b"caf\xe9.csv".decode("utf-8", "surrogateescape")  # a Latin-1 file name
    pair = "\ud83d\ude00"  # an emoji written as two surrogates
    body = build_body(
        CallOptions(model="claude-sonnet-5-5", max_tokens=64, system=f"About {name}"),
        [],
        [{"type": "text", "text": f"Read {name} {pair}"}],
    )
    assert body["system"][0]["text"] == "About caf\ufffd.csv"
    assert body["messages"][-1]["content"][0]["text"] == "Read caf\ufffd.csv \U0001f600"


def test_what_json_cannot_carry_is_one_line_before_sending(emulator: Emulator) -> None:
    client = Client(api_key="sk-test", base_url=emulator.url)
    bad = [{"role": "user", "content": "caf\udce9"}]
    with pytest.raises(RequestBodyError, match="lone surrogates") as caught:
        client.messages.create(model="claude-sonnet-5-5", max_tokens=16, messages=bad)
    assert "\n" not in str(caught.value)
    assert not emulator.requests


def test_a_request_over_32_mb_is_refused_with_its_size_not_the_context_window(
    emulator: Emulator,
) -> None:
    client = Client(api_key="sk-test", base_url=emulator.url)
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "A" * (5 * 2**20)},
    }
    content = [image] * 7  # seven 5 MB images: 35 MB of JSON
    with pytest.raises(RequestBodyError, match=r"is 35\.0 MB, over the 32 MB") as caught:
        client.messages.create(
            model="claude-sonnet-5-5",
            max_tokens=16,
            messages=[{"role": "user", "content": content}],
        )
    assert "context window" not in str(caught.value)
    assert not emulator.requests


def test_a_trailing_newline_on_the_key_is_stripped(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-emulator-test-key\n")
    client = Client(base_url=emulator.url)
    reply = client.messages.create(
        model="claude-haiku-5-5", max_tokens=8, messages=[{"role": "user", "content": "Hi"}]
    )
    assert reply["type"] == "message"


@pytest.mark.parametrize("key", ["sk-ant-abc def", "sk-ant-abc\ndef", "sk-ant-clé"])
def test_a_malformed_key_is_one_line_that_never_shows_it(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    monkeypatch.setenv("MY_KEY", key)
    client = Client(base_url=emulator.url, api_key_env="MY_KEY")
    with pytest.raises(MalformedAPIKeyError) as caught:
        client.messages.create(
            model="claude-haiku-5-5", max_tokens=8, messages=[{"role": "user", "content": "Hi"}]
        )
    shown = str(caught.value) + caught.value.hint + "".join(caught.value._render_traceback_())
    assert "MY_KEY" in shown
    for piece in ("abc", "def", "clé"):
        assert piece not in shown
    assert not emulator.requests


def test_the_client_redacts_its_key_from_anything_it_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret-0042")
    client = Client(base_url="http://127.0.0.1:9")
    env_dump = {"HOME": "/root", "ANTHROPIC_API_KEY": "sk-ant-secret-0042"}
    body = {"messages": [{"role": "user", "content": f"Explain {env_dump}"}], "n": 3}
    clean, count = client.redact_key(body)
    assert count == 1
    assert "sk-ant-secret-0042" not in repr(clean)
    assert "<ANTHROPIC_API_KEY: redacted>" in clean["messages"][0]["content"]
    assert "sk-ant-secret-0042" in body["messages"][0]["content"]  # the input is untouched
    assert client.redact_key({"plain": "text"}) == ({"plain": "text"}, 0)


def test_a_refused_setting_in_the_ipython_config_is_one_line(shell: Any) -> None:
    from traitlets.config import Config

    from claude_magics.notebook.magics import SettingRefused

    shell.config.ClaudeMagics = Config({"api_key_env": "sk-ant-pasted-by-mistake-0042"})
    try:
        with pytest.raises(SettingRefused) as caught:
            shell.run_line_magic("load_ext", "claude_magics")
        text = "".join(caught.value._render_traceback_())
        assert "pasted-by-mistake" not in text
        assert "\n" not in text and "api_key_env" in text
    finally:
        shell.config.pop("ClaudeMagics", None)
        shell.extension_manager.loaded.discard("claude_magics")
