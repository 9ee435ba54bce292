"""Attribution end to end: a list's request_id and positions go back on /v1/events, and the
decision log joins the event log on them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recsys.artifacts import Bundle
from recsys.experiments.attribution import (
    AttributionLog,
    join_outcomes,
    read_decisions,
    read_events,
)
from serving.app import create_app
from serving.settings import ServingSettings


def _settings(tmp_path: Path) -> ServingSettings:
    return ServingSettings(
        bundle_path=tmp_path / "none",
        events_path=tmp_path / "events.sqlite",
        decision_log_path=tmp_path / "decisions.jsonl",
        load_on_start=False,
    )


def _wait_for_lines(path: Path, n: int) -> list[dict]:
    for _ in range(200):  # the decision log is written off the request path
        if path.is_file() and len(path.read_text().splitlines()) >= n:
            break
        time.sleep(0.05)
    return list(read_decisions(path))


def test_clicks_join_the_list_that_showed_them(bundle: Bundle, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    user = str(bundle.user_ids[0])
    with TestClient(create_app(settings, bundle)) as client:
        lists = []
        for endpoint, body in (
            ("/v1/recommend", {"user_id": user, "k": 5}),
            (
                "/v1/rank",
                {"user_id": user, "item_ids": list(map(str, bundle.item_ids[:8])), "k": 5},
            ),
        ):
            r = client.post(endpoint, json=body)
            assert r.status_code == 200, r.text
            lists.append(r.json())
        for answer in lists:
            assert [it["position"] for it in answer["items"]] == list(range(len(answer["items"])))
        rec, rank = lists
        clicked = rec["items"][2]
        bought = rank["items"][0]
        events = [
            {
                "event_id": "e1",
                "user_id": user,
                "item_id": clicked["item_id"],
                "event": "click",
                "request_id": rec["request_id"],
                "position": 2,
            },
            {
                "event_id": "e2",
                "user_id": user,
                "item_id": bought["item_id"],
                "event": "purchase",
                "request_id": rank["request_id"],
                "value": 42.5,
            },
            # not attributed: no request id
            {
                "event_id": "e3",
                "user_id": user,
                "item_id": rec["items"][0]["item_id"],
                "event": "click",
            },
        ]
        for e in events:
            r = client.post("/v1/events", json=e)
            assert r.status_code == 200, r.text
        bad = client.post("/v1/events", json={**events[0], "event_id": "e4", "position": -1})
        assert bad.status_code == 422 and bad.json()["error"]["param"].endswith("position")
    records = _wait_for_lines(settings.decision_log_path, 2)  # type: ignore[arg-type]
    assert {r["request_id"] for r in records} == {rec["request_id"], rank["request_id"]}
    assert all(r["arm"] is None and "explored" in r["shown"][0] for r in records)

    joined = join_outcomes(records, read_events(settings.events_path))
    assert len(joined) == len(rec["items"]) + len(rank["items"])
    hits = joined[joined["click"] == 1]
    assert sorted(zip(hits["request_id"], hits["position"], strict=True)) == sorted(
        [(rec["request_id"], 2), (rank["request_id"], 0)]
    )
    sale = joined[joined["conversion"] == 1]
    assert sale["value"].tolist() == [42.5] and sale["item_id"].tolist() == [bought["item_id"]]


def test_first_attribution_of_an_event_stands(tmp_path: Path) -> None:
    log = AttributionLog(tmp_path / "events.sqlite")
    from recsys.experiments.attribution import Attribution

    assert log.record(Attribution("e1", "r1", 0, None))
    assert not log.record(Attribution("e1", "r2", 3, None))
    assert log.get("e1") == Attribution("e1", "r1", 0, None)
    with pytest.raises(ValueError, match="position must be >= 0"):
        Attribution("e2", "r1", -1)


def test_event_logs_in_jsonl_are_read_too(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps({"user_id": "u", "item_id": "i", "event": "click"}) + "\n")
    frame = read_events(path)
    assert frame["request_id"].isna().all() and frame["item_id"].tolist() == ["i"]
    other = tmp_path / "events.txt"
    other.write_text("")
    with pytest.raises(ValueError, match=r"valid: \.sqlite"):
        read_events(other)
