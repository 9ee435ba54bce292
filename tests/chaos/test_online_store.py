"""A real redis-server online store killed (-9) and restarted under steady load: no 5xx, every
answer while it is down flagged ``features_unavailable``, and unflagged answers again once the
breaker's half-open trial finds it back."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from features.guarded import FEATURES_UNAVAILABLE
from features.store import FeatureStoreConfig
from recsys.artifacts import TrainConfig, load_bundle, train_bundle
from recsys.data.synth import generate
from recsys.ranking.train import RankerTrainConfig
from recsys.retrieval.retriever import RetrievalConfig
from serving.app import create_app
from serving.settings import ServingSettings
from tests.chaos.conftest import HANG_GUARD_S, Load, report

RESET_S = 0.5  # the breaker's open period; recovery is measured against it, not asserted


class RedisServer:
    """A redis-server on a fixed port and directory, so it can be killed and started again with
    the same data (saved to dump.rdb before the kill)."""

    def __init__(self, binary: str, port: int, where: Path) -> None:
        self.binary, self.port, self.where = binary, port, where
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.where), "--dbfilename", "dump.rdb"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + HANG_GUARD_S
        while True:
            try:
                if redis.Redis(port=self.port, socket_timeout=1).ping():
                    return
            except redis.exceptions.RedisError:
                assert self.proc.poll() is None, "redis-server exited"
                assert time.monotonic() < deadline, "redis-server never answered"
                time.sleep(0.05)

    def kill(self) -> None:
        redis.Redis(port=self.port).save()  # what a restart loads back
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=HANG_GUARD_S)


@pytest.fixture()
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server binary not found on PATH (apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = RedisServer(binary, port, tmp_path)
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None:
            server.proc.kill()


KILL_LANDS_S = 0.2


def test_redis_killed_and_restarted_under_load(
    redis_server: RedisServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    load_of: Callable[..., Load],
) -> None:
    url = f"127.0.0.1:{redis_server.port}"
    monkeypatch.setenv("RECSYS_FEATURES_ONLINE_STORE", "redis")
    monkeypatch.setenv("RECSYS_FEATURES_REDIS_URL", url)
    config = TrainConfig(
        sources=("popular", "covisit", "als"),
        retrieval=RetrievalConfig(total=60, depth=60),
        ranking=RankerTrainConfig(rankers=("lightgbm",)),
    )
    path = train_bundle(generate(users=300, items=80, seed=3), tmp_path / "bundle", config)
    # no user cache: every request reads Redis, so every request while it is down is a probe
    features = FeatureStoreConfig(
        online_store="redis", redis_url=url, user_cache_size=0, breaker_reset_s=RESET_S
    )
    bundle = load_bundle(path, features)
    settings = ServingSettings(
        bundle_path=path, events_path=tmp_path / "events.sqlite", decision_log_path=None,
        load_on_start=False, features=features,
    )  # fmt: skip
    client = TestClient(create_app(settings, bundle))
    users = [str(u) for u in bundle.user_ids[:50]] + [f"cold-{i}" for i in range(10)]

    def recommend(c: TestClient, n: int):  # type: ignore[no-untyped-def]
        return c.post("/v1/recommend", json={"user_id": users[n % len(users)], "k": 5})

    load = load_of(client, recommend)
    load.wait_for("answered while Redis is up", lambda: len(load.answers) >= 40)
    redis_server.kill()
    killed = time.monotonic()
    load.wait_for("answered while Redis is down", lambda: len(load.since(killed)) >= 60)
    ready = client.get("/readyz").json()
    assert ready["dependencies"]["online_store"] in ("open", "half_open"), ready
    metrics = client.get("/metrics").text
    assert re.search(r'recsys_breaker_state\{breaker="online_store"\} [12]\.0', metrics)
    restarted = time.monotonic()
    redis_server.start()

    def recovered() -> bool:
        after = load.since(restarted)
        return len(after) >= 40 and not any(a.degraded for a in after[-40:])

    load.wait_for("recovered", recovered)
    answers = load.stop()

    errors = [a for a in answers if a.status >= 500]
    up = [a for a in answers if a.ended < killed]
    # a request that had its features in flight as the process died may still be served:
    # the down window starts once the kill has landed
    down = [a for a in answers if a.started > killed + KILL_LANDS_S and a.ended < restarted]
    after = [a for a in answers if a.started > restarted]
    first_ok = next(a for a in after if not a.degraded)
    recovery_s = first_ok.ended - restarted
    flagged = [a for a in down if FEATURES_UNAVAILABLE in a.degraded]
    report(
        "redis_killed_and_restarted",
        requests=len(answers), errors_5xx=len(errors), statuses=sorted({a.status for a in answers}),
        down_requests=len(down), down_degraded_share=round(len(flagged) / len(down), 4),
        recovery_s=round(recovery_s, 3), breaker_reset_s=RESET_S,
        slowest_down_answer_s=round(max(a.ended - a.started for a in down), 3),
        degraded_after_recovery=sum(bool(a.degraded) for a in after if a.started > first_ok.ended),
    )  # fmt: skip
    assert {a.status for a in answers} == {200}, errors[:3]
    assert not any(a.degraded for a in up)
    assert down and len(flagged) == len(down)  # every answer while down: flagged, not failed
    assert all(len(a.body["items"]) == 5 for a in down)  # neutral features still rank
    assert not any(a.degraded for a in after if a.started > first_ok.ended)
    assert client.get("/readyz").json()["dependencies"]["online_store"] == "closed"
