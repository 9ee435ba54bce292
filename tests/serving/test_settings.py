"""One settings object: the server's own fields, the LLM's and the feature store's."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.settings import ServingSettings, get_settings


def test_one_object_reads_llm_and_feature_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSYS_LLM_BACKEND", "openai")
    monkeypatch.setenv("RECSYS_LLM_API_KEY", "k3y")
    monkeypatch.setenv("RECSYS_FEATURES_ONLINE_STORE", "redis")
    monkeypatch.setenv("RECSYS_FEATURES_REDIS_URL", "10.0.0.5:6380")
    get_settings.cache_clear()
    try:
        settings = get_settings()
        assert settings.llm.backend == "openai"
        assert settings.features.online_store == "redis"
        assert settings.features.redis_url == "10.0.0.5:6380"
        key = settings.llm.api_key
        assert key is not None and key.get_secret_value() == "k3y" and "k3y" not in repr(settings)
        assert get_settings() is settings
    finally:
        get_settings.cache_clear()


def test_defaults_and_secrets_without_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RECSYS_LLM_BACKEND", "RECSYS_LLM_API_KEY", "RECSYS_FEATURES_ONLINE_STORE"):
        monkeypatch.delenv(name, raising=False)
    settings = ServingSettings()
    assert settings.llm.backend == "llama_cpp" and settings.llm.api_key is None
    assert settings.features.online_store == "sqlite"
    assert settings.admin_api_key is None


def test_a_bad_feature_store_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSYS_FEATURES_ONLINE_STORE", "mongo")
    with pytest.raises(ValueError, match=r"RECSYS_FEATURES_ONLINE_STORE='mongo'.*'sqlite'"):
        ServingSettings()


def test_feature_store_settings_from_a_mapping() -> None:
    from features.store import FeatureStoreConfig, FeatureStoreSettings

    assert FeatureStoreConfig is FeatureStoreSettings
    env = {"RECSYS_FEATURES_ONLINE_STORE": " Redis ", "RECSYS_FEATURES_CHECK_INTERVAL_S": "2.5"}
    config = FeatureStoreSettings.from_env(env)
    assert (config.online_store, config.check_interval_s) == ("redis", 2.5)
    assert config.redis_url == "localhost:6379"
    with pytest.raises(ValueError) as err:
        FeatureStoreSettings.from_env({"RECSYS_FEATURES_USER_CACHE_SIZE": "-1"})
    assert str(err.value) == (
        "RECSYS_FEATURES_USER_CACHE_SIZE='-1': Input should be greater than or equal to 0"
    )


def test_an_empty_admin_key_turns_admin_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from serving.app import create_app

    for empty in ("", "   "):
        monkeypatch.setenv("RECSYS_ADMIN_API_KEY", empty)
        settings = ServingSettings(
            bundle_path=tmp_path / "none", events_path=tmp_path / "e.sqlite",
            decision_log_path=None, load_on_start=False,
        )  # fmt: skip
        assert settings.admin_api_key is None
        client = TestClient(create_app(settings))
        assert client.post("/admin/reload", json={}).status_code == 404  # no admin routes


def test_an_empty_optional_path_or_name_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ("RANKER", "DECISION_CONFIG", "DECISION_LOG_PATH", "METRICS_DIR")
    for empty in ("", "  "):
        for name in names:
            monkeypatch.setenv(f"RECSYS_{name}", empty)
        settings = ServingSettings()
        assert [getattr(settings, n.lower()) for n in names] == [None] * 4
    monkeypatch.setenv("RECSYS_DECISION_LOG_PATH", "logs/d.jsonl")
    assert ServingSettings().decision_log_path == Path("logs/d.jsonl")


def test_the_chat_planner_follows_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSYS_LLM_BACKEND", "openai")
    monkeypatch.setenv("RECSYS_LLM_MODEL", "Qwen/Qwen2.5-7B-Instruct")
    assert ServingSettings().planner() == "agent"  # a capable server plans with the agent
    monkeypatch.setenv("RECSYS_LLM_MODEL", "smollm2-135m-instruct")
    assert ServingSettings().planner() == "router"  # the packaged model behind a server
    monkeypatch.setenv("RECSYS_CHAT_PLANNER", "router")
    monkeypatch.setenv("RECSYS_LLM_MODEL", "Qwen/Qwen2.5-7B-Instruct")
    assert ServingSettings().planner() == "router"  # said outright


def test_fastapi_native_telemetry_is_off_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    from serving.app import _telemetry

    assert ServingSettings().otel is False
    monkeypatch.setenv("RECSYS_OTEL", "true")
    assert ServingSettings().otel is True
    assert _telemetry(True) == {}
    off = _telemetry(False)
    assert off in ({}, {"telemetry": {"tracing": False, "metrics": False, "logs": False}})
