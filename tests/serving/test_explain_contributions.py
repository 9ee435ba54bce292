"""explain=true gives each shown item the ranker's top feature shares (exact TreeSHAP for
LightGBM), logged with the decision; without explain, and with no ranker serving, there are none."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from recsys.artifacts import Bundle
from recsys.ranking.explain import rows_of
from recsys.retrieval.merge import CandidateBatch
from serving.app import create_app
from serving.settings import ServingSettings


def _user(bundle: Bundle, n: int = 3) -> str:
    return str(bundle.user_ids[n])


def test_shares_add_up_to_the_native_score(bundle: Bundle) -> None:
    from recsys.ranking.features import build_frame
    from recsys.retrieval.retriever import history_of

    assert bundle.ranking is not None
    ranker = bundle.ranking.rankers["lightgbm"]
    history = history_of([1, 2, 3], len(bundle.item_ids))
    batch, _ = bundle.retriever.retrieve(history)
    frame = build_frame(ranker.spec, batch, history, [_user(bundle)], bundle.ranking.features)
    rows = np.arange(min(frame.n_rows, 20))
    shares, values, names = ranker.model.contributions(frame, rows)  # type: ignore[attr-defined]
    booster = ranker.model.booster_  # type: ignore[attr-defined]
    bias = booster.predict(values, pred_contrib=True)[:, -1]
    native = ranker.model.predict(frame)[rows]
    assert np.allclose(shares.sum(axis=1) + bias, native, atol=1e-4)
    assert shares.shape == values.shape == (len(rows), len(names))


def test_rows_of_maps_slots_to_frame_rows_and_refuses_empty_slots() -> None:
    ids = np.array([[7, -1, 9, 4, -1]])
    zeros, ones = np.zeros((1, 5, 1), np.float32), np.ones((1, 5, 1), np.int32)
    batch = CandidateBatch(("s",), ids, np.zeros((1, 5), np.float32), zeros, ones)
    assert list(rows_of(batch, [3, 0, 2])) == [2, 0, 1]
    try:
        rows_of(batch, [1])
    except ValueError as e:
        assert "slots [1] hold no candidate" in str(e)
    else:
        raise AssertionError("an empty slot was accepted")


def test_explain_returns_and_logs_the_rankers_top_features(bundle: Bundle, tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    settings = ServingSettings(bundle_path=tmp_path / "none", events_path=tmp_path / "e.sqlite",
                               decision_log_path=log, load_on_start=False,
                               ranker="lightgbm")  # fmt: skip
    with TestClient(create_app(settings, bundle)) as client:
        plain = client.post("/v1/recommend", json={"user_id": _user(bundle), "k": 5}).json()
        body = client.post(
            "/v1/recommend", json={"user_id": _user(bundle), "k": 5, "explain": True}
        ).json()
        given = [it["item_id"] for it in plain["items"]]
        ranked = client.post(
            "/v1/rank", json={"user_id": _user(bundle), "item_ids": given, "explain": True}
        ).json()
        query = str(bundle.items.row(0)["title"]).split()[0]
        searched = client.post("/v1/search", json={"query": query, "explain": True}).json()
    assert searched["items"] and all("contributions" not in it for it in searched["items"])
    assert all("contributions" not in it for it in plain["items"])
    assert [it["item_id"] for it in body["items"]] == given  # explaining changes nothing
    for item in body["items"] + ranked["items"]:
        shares = item["contributions"]
        assert 1 <= len(shares) <= 3
        sizes = [abs(s["contribution"]) for s in shares]
        assert sizes == sorted(sizes, reverse=True)
        assert all(isinstance(s["feature"], str) and s["feature"] for s in shares)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    logged = next(rec for rec in lines if rec["request_id"] == body["request_id"])
    assert [s["contributions"] for s in logged["shown"]] == [
        it["contributions"] for it in body["items"]
    ]
    unexplained = next(rec for rec in lines if rec["request_id"] == plain["request_id"])
    assert all("contributions" not in s for s in unexplained["shown"])


def test_no_ranker_or_no_exact_split_means_no_contributions(bundle: Bundle) -> None:
    from dataclasses import replace

    from recsys.ranking.explain import contributions
    from recsys.ranking.ranker import Ranker
    from serving.lists.service import shown_contributions
    from serving.state import Served

    served = Served.build(bundle, "lightgbm")
    assert shown_contributions(replace(served, ranker=None), {}) == {}  # the merged order

    class NoSplit:  # a model without contributions(), as the DLRM
        def predict(self, frame: object) -> None:
            raise AssertionError("not asked to score")

    assert bundle.ranking is not None
    ranker = Ranker("dlrm", bundle.ranking.rankers["lightgbm"].spec, NoSplit())  # type: ignore[arg-type]
    assert contributions(ranker, {}, len(bundle.item_ids), None, [0]) is None
