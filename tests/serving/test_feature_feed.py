"""POST /v1/events with RECSYS_PUSH_EVENTS_TO_FEAST: the event reaches Feast's online store."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from features import USER_FEATURES
from features.store import FeatureRepo
from recsys.artifacts import Bundle, load_bundle
from recsys.ranking.bundle import FEATURE_REPO
from serving.app import create_app
from serving.settings import ServingSettings


def _feast_user(repo: FeatureRepo, user: str) -> dict[str, float]:
    out = repo.store.get_online_features(
        features=[f"user_activity:{f}" for f in ("n_items", "purchase_share")],
        entity_rows=[{"user_id": user}],
    ).to_dict()
    return {k: out[k][0] for k in ("n_items", "purchase_share")}


def test_an_event_is_pushed_to_the_online_store(
    bundle: Bundle, settings: ServingSettings, tmp_path: Path
) -> None:
    own = load_bundle(shutil.copytree(bundle.path, tmp_path / "bundle"))  # its own online store
    repo = FeatureRepo(own.path / FEATURE_REPO)
    user = str(own.user_ids[4])
    before = _feast_user(repo, user)
    history = set(own.sequences.user(4).tolist())
    new_item = next(str(i) for n, i in enumerate(own.item_ids) if n not in history)
    pushing = settings.model_copy(update={"push_events_to_feast": True})
    with TestClient(create_app(pushing, own)) as client:
        body = {"event_id": "f-1", "user_id": user, "item_id": new_item, "event": "purchase"}
        assert client.post("/v1/events", json=body).status_code == 200
        served = client.app.state.serving.require()  # type: ignore[attr-defined]
        assert served.feed.flush(timeout=60) and served.feed.failed == 0
        # the ranker's cache was told: its next read is the pushed row
        cached = served.bundle.ranking.features.users([user])[0]
    after = _feast_user(repo, user)
    # one more distinct item, and it was bought (the snapshot is the training split)
    assert after["n_items"] == before["n_items"] + 1
    bought = before["purchase_share"] * before["n_items"] + 1
    assert abs(after["purchase_share"] - bought / after["n_items"]) < 1e-6
    assert cached[USER_FEATURES.index("n_items")] == after["n_items"]
