"""An OpenAI-compatible LLM server that accepts connections and never answers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agents.layer import LLMLayer
from agents.llm import LLMSettings
from agents.rerank import RerankConfig
from recsys.artifacts import TrainConfig, load_bundle, train_bundle
from recsys.data.synth import generate
from recsys.retrieval.retriever import RetrievalConfig
from serving.app import create_app
from serving.settings import ServingSettings
from tests.chaos.conftest import report


@pytest.fixture()
def silent_server() -> Iterator[str]:
    """Accepts every connection and reads, never writes a byte."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                held.append(conn)
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    sock.close()


def test_a_silent_llm_degrades_every_answer_and_opens_its_circuit(
    silent_server: str, tmp_path: Path
) -> None:
    ds = generate(users=300, items=150, seed=1)
    config = TrainConfig(sources=("popular", "covisit", "attributes"),
                         retrieval=RetrievalConfig(total=40, depth=40), ranking=None)  # fmt: skip
    bundle = load_bundle(train_bundle(ds, tmp_path / "bundle", config))
    deadline = 1.0
    layer = LLMLayer(LLMSettings(backend="openai", base_url=silent_server, timeout_s=deadline,
                                 retries=0, breaker_failures=2, breaker_reset_s=600))  # fmt: skip
    layer.rerank_config = RerankConfig(weight=1.0, timeout_s=deadline)
    settings = ServingSettings(
        bundle_path=tmp_path / "none", events_path=tmp_path / "e.sqlite",
        decision_log_path=tmp_path / "d.jsonl", load_on_start=False,
    )  # fmt: skip
    client = TestClient(create_app(settings, bundle, llm=layer))
    user = str(bundle.user_ids[0])
    answers, seconds = [], []
    for n in range(6):
        started = time.perf_counter()
        body = client.post("/v1/recommend", json={"user_id": user, "k": 5, "llm_rerank": True})
        seconds.append(time.perf_counter() - started)
        assert body.status_code == 200, body.text
        answers.append(body.json())
        assert len(answers[-1]["items"]) == 5  # the non-LLM answer, every time
        assert set(answers[-1]["degraded"]) & {"llm_timeout", "llm_error"}, (n, answers[-1])
    # a hang guard, far above the deadline: without deadlines these calls never return
    assert max(seconds) < deadline + 30
    ready = client.get("/readyz").json()
    assert ready["dependencies"]["llm:openai:smollm2-135m-instruct"] == "open"
    assert "llm_error" in answers[-1]["degraded"]  # refused at once, the server not waited for
    metrics = client.get("/metrics").text
    assert 'recsys_breaker_state{breaker="llm:openai:smollm2-135m-instruct"} 2.0' in metrics
    report("llm_silent", requests=len(answers), non_200=0,
           degraded_share=1.0, first_s=round(seconds[0], 3),
           after_open_s=round(seconds[-1], 3))  # fmt: skip
