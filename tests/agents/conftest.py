"""The real packaged LLM (SmolLM2-135M-Instruct, in process) and a small bundle to use it on."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.llm import LLMClient, LLMSettings
from recsys.artifacts import Bundle, TrainConfig, load_bundle, train_bundle
from recsys.data.synth import generate
from recsys.retrieval.retriever import RetrievalConfig


@pytest.fixture(scope="session")
def llm() -> LLMClient:
    pytest.importorskip("llama_cpp", reason="the llm extra (llama-cpp-python) is not installed")
    return LLMClient.from_settings(LLMSettings(timeout_s=30.0))


@pytest.fixture(scope="session")
def shop_bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    ds = generate(users=300, items=150, seed=1)
    config = TrainConfig(
        sources=("popular", "covisit", "attributes"),
        retrieval=RetrievalConfig(total=60, depth=60),
        ranking=None,
    )
    out: Path = tmp_path_factory.mktemp("agents") / "bundle"
    return load_bundle(train_bundle(ds, out, config))
