"""Model knowledge at run time: GET /v1/models once per session, an hour on disk, the bundled
table as the fallback and as the source of the rules the API does not report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from claude_magics.api.client import Client
from claude_magics.api.models import ModelCatalog, ModelInfo, cache_min_tokens
from claude_magics.emulator import Emulator
from claude_magics.model_table import load


def _model_listings(emulator: Emulator) -> int:
    return sum(1 for r in emulator.requests if r.method == "GET" and r.path == "/v1/models")


@pytest.fixture
def client(emulator: Emulator) -> Client:
    return Client(api_key="sk-test", base_url=emulator.url)


def test_limits_come_from_the_server_and_rules_from_the_table(
    client: Client, emulator: Emulator, tmp_path: Path
) -> None:
    catalog = ModelCatalog(client, cache_path=tmp_path / "models.json")
    sonnet = catalog.get("claude-sonnet-5-5")
    assert sonnet.source == "api"
    assert sonnet.max_input_tokens == 1_000_000
    assert sonnet.max_tokens == 128_000
    assert sonnet.accepts_adaptive_thinking
    assert sonnet.rejects_thinking_budget is False or sonnet.thinking_types == {"adaptive"}
    assert sonnet.rejects_sampling and sonnet.rejects_prefill and sonnet.rejects_forced_tool
    assert "high" in (sonnet.effort_levels or ())
    haiku_old = catalog.get("claude-haiku-4-5")  # an alias of a dated id
    assert haiku_old.id.startswith("claude-haiku-4-5")
    assert haiku_old.cache_min_tokens == 4096 == cache_min_tokens("claude-haiku-4-5-20251001")
    assert not haiku_old.rejects_prefill
    assert haiku_old.status == "legacy"
    # Asked once, however many look-ups.
    catalog.get("claude-opus-5-5")
    catalog.all()
    assert _model_listings(emulator) == 1


def test_the_list_is_kept_an_hour_on_disk_per_server(
    client: Client, emulator: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "models.json"
    ModelCatalog(client, cache_path=path).get("claude-sonnet-5-5")
    assert _model_listings(emulator) == 1
    later = ModelCatalog(client, cache_path=path).get("claude-sonnet-5-5")  # a new session
    assert later.source == "cache"
    assert _model_listings(emulator) == 1
    ModelCatalog(client, cache_path=path, cache_seconds=0).get("claude-sonnet-5-5")
    assert _model_listings(emulator) == 2
    stored = json.loads(path.read_text())
    assert list(stored) == [emulator.url]  # keyed by server: never another server's list
    other = Client(api_key="sk-test", base_url=emulator.url + "/")  # same server, same key
    assert ModelCatalog(other, cache_path=path).get("claude-haiku-5-5").source == "cache"


def test_a_corrupt_cache_is_asked_again(client: Client, emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    path.write_bytes(b"\x00{not json")
    info = ModelCatalog(client, cache_path=path).get("claude-haiku-5-5")
    assert info.source == "api"
    assert json.loads(path.read_text())[emulator.url]["models"]


def test_offline_the_bundled_table_answers(tmp_path: Path) -> None:
    # Nothing listens on port 9: the list cannot be had.
    offline = Client(api_key="sk-test", base_url="http://127.0.0.1:9", max_retries=0)
    catalog = ModelCatalog(offline, cache_path=tmp_path / "models.json")
    info = catalog.get("claude-haiku-5-5")
    assert info.source == "bundled"
    assert info.max_input_tokens == load().find("claude-haiku-5-5").max_input_tokens  # type: ignore[union-attr]
    assert catalog.unavailable and "APIConnectionError" in catalog.unavailable
    assert [m.id for m in catalog.all()] == [m.id for m in load().models]


def test_an_unknown_model_is_served_with_nothing_refused(client: Client, tmp_path: Path) -> None:
    info = ModelCatalog(client, cache_path=tmp_path / "m.json").get("my-gateway-model")
    assert info == ModelInfo(id="my-gateway-model")
    assert info.max_input_tokens is None
    assert not (info.rejects_sampling or info.rejects_prefill or info.rejects_thinking_budget)


def test_retired_models_name_their_replacement(client: Client, tmp_path: Path) -> None:
    catalog = ModelCatalog(client, cache_path=tmp_path / "m.json")
    retired = catalog.retired("claude-opus-4-1-20250805")
    assert retired is not None
    assert retired.replacement in catalog.current()
    assert catalog.retired("claude-sonnet-5-5") is None


def test_without_a_key_the_table_answers_until_there_is_one(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_KEY_YET", raising=False)
    keyless = Client(base_url=emulator.url, api_key_env="NO_KEY_YET")
    catalog = ModelCatalog(keyless, cache_path=tmp_path / "m.json")
    assert catalog.get("claude-haiku-5-5").source == "bundled"
    assert catalog.unavailable and "NO_KEY_YET" in catalog.unavailable
    monkeypatch.setenv("NO_KEY_YET", "sk-now-there-is-one")
    assert catalog.get("claude-haiku-5-5").source == "api"


def test_the_default_models_come_from_the_table_and_are_current() -> None:
    from claude_magics.config import DEFAULTS

    table = load()
    assert DEFAULTS.model == table.defaults["model"]
    assert DEFAULTS.job_model == table.defaults["job_model"]
    current = {entry.id for entry in table.active()}
    assert {DEFAULTS.model, DEFAULTS.job_model} <= current


def test_a_default_that_names_no_served_model_is_refused() -> None:
    import json

    from claude_magics.model_table import ModelTable

    data = json.loads(
        (Path(__file__).parents[1] / "claude_magics" / "data" / "models.json").read_text()
    )
    data["defaults"]["model"] = "claude-retired-1"
    with pytest.raises(ValueError, match=r"defaults.model: 'claude-retired-1' is not a served"):
        ModelTable.from_dict(data)
