"""Under steady load: a reload of a bundle whose online store lost a table is refused with no
failed request, and an events disk that fills up answers 503s and loses no acknowledged event."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from recsys.artifacts import Bundle, TrainConfig, load_bundle, train_bundle
from recsys.data.synth import generate
from recsys.events import EventLog
from recsys.ranking.train import RankerTrainConfig
from recsys.retrieval.retriever import RetrievalConfig
from serving.app import create_app
from serving.settings import ServingSettings
from tests.chaos.conftest import Load, report
from tests.conftest import fill

KEY = "chaos-admin-key"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    config = TrainConfig(
        sources=("popular", "covisit", "als"),
        retrieval=RetrievalConfig(total=60, depth=60),
        ranking=RankerTrainConfig(rankers=("lightgbm",)),
    )
    ds = generate(users=300, items=80, seed=4)
    return load_bundle(train_bundle(ds, tmp_path_factory.mktemp("chaos") / "bundle", config))


def _settings(tmp_path: Path, events: Path | None = None) -> ServingSettings:
    return ServingSettings(
        bundle_path=tmp_path / "none",
        events_path=events or tmp_path / "events.sqlite",
        decision_log_path=None,
        load_on_start=False,
        admin_api_key=SecretStr(KEY),
    )


def test_a_broken_store_reload_under_load_is_refused_with_no_failed_request(
    bundle: Bundle, tmp_path: Path, load_of: Callable[..., Load]
) -> None:
    client = TestClient(create_app(_settings(tmp_path), bundle), headers={"X-API-Key": KEY})
    broken = Path(shutil.copytree(bundle.path, tmp_path / "broken"))
    with sqlite3.connect(broken / "feature_repo/data/online_store.db") as db:
        db.execute("DROP TABLE recsys_user_activity")
    users = [str(u) for u in bundle.user_ids[:40]] + ["cold-1", "cold-2"]

    def traffic(c: TestClient, n: int):  # type: ignore[no-untyped-def]
        if n % 3 == 2:
            return c.post("/v1/search", json={"query": "a", "k": 5})
        return c.post("/v1/recommend", json={"user_id": users[n % len(users)], "k": 5})

    load = load_of(client, traffic)
    load.wait_for("warm", lambda: len(load.answers) >= 30)
    refused = client.post("/admin/reload", json={"bundle_path": str(broken), "wait": True})
    before = len(load.answers)
    load.wait_for("answered after the refusal", lambda: len(load.answers) >= before + 30)
    answers = load.stop()
    failed = [a for a in answers if a.status != 200]
    versions = {a.body.get("model_version") for a in answers}
    report(
        "broken_store_reload",
        requests=len(answers),
        failed=len(failed),
        reload_status=refused.status_code,
        degraded=sum(bool(a.degraded) for a in answers),
    )
    assert refused.status_code == 422, refused.text
    assert "failed its trial" in refused.json()["error"]["message"]
    assert not failed and versions == {bundle.version}
    assert not any(a.degraded for a in answers)


def test_events_disk_full_under_load_answers_503_and_loses_nothing(
    bundle: Bundle, tmp_path: Path, small_disk: Path, load_of: Callable[..., Load]
) -> None:
    log_path = small_disk / "events.sqlite"
    client = TestClient(create_app(_settings(tmp_path, log_path), bundle))
    item = str(bundle.item_ids[0])

    acknowledged: list[str] = []

    def send(c: TestClient, n: int):  # type: ignore[no-untyped-def]
        body = {"event_id": f"e-{n}", "user_id": f"u-{n % 11}", "item_id": item, "event": "view"}
        r = c.post("/v1/events", json=body)
        if r.status_code == 200:
            acknowledged.append(body["event_id"])  # list.append: safe across the load threads
        return r

    load = load_of(client, send)
    load.wait_for("events logged", lambda: len(load.answers) >= 30)
    ballast = fill(small_disk)
    full_from = len(load.answers)
    load.wait_for("503s", lambda: sum(a.status == 503 for a in load.answers) >= 30)
    not_ready = client.get("/readyz").status_code
    ballast.unlink()
    freed_at = len(load.answers)
    load.wait_for(
        "taken again", lambda: sum(a.status == 200 for a in load.answers[freed_at:]) >= 30
    )
    answers = load.stop()
    statuses = [a.status for a in answers]
    stored = {e.event_id for e in EventLog(log_path).events()}
    lost = sorted(set(acknowledged) - stored)
    report(
        "events_disk_full",
        requests=len(answers),
        acknowledged=len(acknowledged),
        refused_503=statuses.count(503),
        errors_other=sum(s not in (200, 503) for s in statuses),
        events_lost=len(lost),
        readyz_while_full=not_ready,
    )
    assert set(statuses) <= {200, 503} and 503 in statuses[full_from:]
    assert all(a.body["error"]["type"] == "unavailable" for a in answers if a.status == 503)
    assert not_ready == 503
    assert not lost, f"acknowledged but not in the log: {lost[:5]}"
