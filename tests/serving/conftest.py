"""One small real bundle (four sources, a LightGBM ranker) for every serving test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recsys.artifacts import Bundle, TrainConfig, load_bundle, train_bundle
from recsys.data.synth import generate
from recsys.ranking.train import RankerTrainConfig
from recsys.retrieval.retriever import RetrievalConfig
from serving.app import create_app
from serving.settings import ServingSettings

CANDIDATES = 100
ERROR_KEYS = {"code", "type", "message", "param"}


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    ds = generate(users=800, items=200, seed=0)
    config = TrainConfig(
        sources=("popular", "covisit", "als", "attributes"),
        retrieval=RetrievalConfig(total=CANDIDATES, depth=CANDIDATES),
        ranking=RankerTrainConfig(rankers=("lightgbm",)),
    )
    return load_bundle(train_bundle(ds, tmp_path_factory.mktemp("serving") / "bundle", config))


@pytest.fixture()
def settings(tmp_path: Path) -> ServingSettings:
    return ServingSettings(
        bundle_path=tmp_path / "no-bundle-here",
        events_path=tmp_path / "events.sqlite",
        decision_log_path=tmp_path / "decisions.jsonl",
        load_on_start=False,
    )


@pytest.fixture()
def client(bundle: Bundle, settings: ServingSettings) -> TestClient:
    return TestClient(create_app(settings, bundle))


def assert_error(response: Any, code: int, param: str | None = None) -> dict[str, Any]:
    """The one error shape, with the status repeated in the body; returns the error object."""
    assert response.status_code == code, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == ERROR_KEYS, error
    assert error["code"] == code
    assert isinstance(error["type"], str) and error["type"]
    assert isinstance(error["message"], str) and error["message"]
    assert error["param"] == param, error
    return dict(error)
