"""Scale-out: two API worker processes share one Redis online store and one event log.

An event posted to one worker is seen by the other: its next recommendation for that shopper
reflects the purchase, and the shopper's Feast row in Redis is updated by the feed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from features.store import FeatureRepo
from recsys.artifacts import TrainConfig, load_bundle, train_bundle
from recsys.data.synth import generate
from recsys.ranking.bundle import FEATURE_REPO
from recsys.ranking.train import RankerTrainConfig
from recsys.retrieval.retriever import RetrievalConfig


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _n_items(repo: FeatureRepo, user: str) -> float:
    out = repo.store.get_online_features(
        features=["user_activity:n_items"], entity_rows=[{"user_id": user}]
    ).to_dict()
    return float(out["n_items"][0])


def test_an_event_posted_to_one_worker_is_seen_by_the_other(
    redis_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis_env = {
        "RECSYS_FEATURES_ONLINE_STORE": "redis",
        "RECSYS_FEATURES_REDIS_URL": f"127.0.0.1:{redis_port}",
    }
    for key, value in redis_env.items():
        monkeypatch.setenv(key, value)
    config = TrainConfig(
        sources=("popular", "covisit", "als"),
        retrieval=RetrievalConfig(total=80, depth=80),
        ranking=RankerTrainConfig(rankers=("lightgbm",)),
    )
    bundle = load_bundle(train_bundle(generate(users=400, items=120, seed=2),
                                      tmp_path / "bundle", config))  # fmt: skip
    env = {
        **os.environ, **redis_env,
        "RECSYS_BUNDLE_PATH": str(bundle.path),
        "RECSYS_EVENTS_PATH": str(tmp_path / "events.sqlite"),  # the one shared log
        "RECSYS_PUSH_EVENTS_TO_FEAST": "true",
        "RECSYS_DECISION_LOG_PATH": str(tmp_path / "decisions.jsonl"),
        "RECSYS_CHAT_MEMORY": str(tmp_path / "chat.sqlite"),
    }  # fmt: skip
    ports = [_free_port(), _free_port()]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "serving.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    a, b = (f"http://127.0.0.1:{port}" for port in ports)
    try:
        deadline = time.monotonic() + 180  # two processes loading on a shared machine
        for url in (a, b):
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"{url} never became ready"
                time.sleep(0.5)
        user = str(bundle.user_ids[5])
        repo = FeatureRepo(bundle.path / FEATURE_REPO)
        before = _n_items(repo, user)
        top = httpx.post(f"{b}/v1/recommend", json={"user_id": user, "k": 5}).json()["items"]
        bought = top[0]["item_id"]
        event = {"event_id": "x-1", "user_id": user, "item_id": bought, "event": "purchase"}
        assert httpx.post(f"{a}/v1/events", json=event).json() == {
            "accepted": True, "duplicate": False,
        }  # fmt: skip
        after = httpx.post(f"{b}/v1/recommend", json={"user_id": user, "k": 50}).json()
        assert bought not in {it["item_id"] for it in after["items"]}  # B saw A's event
        again = httpx.post(f"{b}/v1/events", json=event).json()
        assert again == {"accepted": True, "duplicate": True}  # one log: B knows the id
        waited = time.monotonic() + 60
        while _n_items(repo, user) == before and time.monotonic() < waited:
            time.sleep(0.5)
        assert _n_items(repo, user) == before + 1  # the Redis row has the new item
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
