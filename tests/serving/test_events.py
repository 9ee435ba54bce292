"""POST /v1/events over a real SQLite log: the next request sees the event, ids are idempotent,
a restart replays the log, and malformed events get the one error shape."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pytest
from fastapi.testclient import TestClient

from recsys.artifacts import Bundle
from recsys.data.contract import EVENTS
from recsys.decision import DecisionRequest
from recsys.events import Event, EventConflictError, EventLog, SessionState
from serving.app import create_app
from serving.events.protocol import EventName
from serving.settings import ServingSettings
from tests.serving.conftest import assert_error

NEW_USER = "shopper-with-no-training-history"


def _user(bundle: Bundle, row: int = 0) -> str:
    return str(bundle.user_ids[row])


def _top(client: TestClient, user_id: str, k: int = 10) -> list[str]:
    r = client.post("/v1/recommend", json={"user_id": user_id, "k": k})
    assert r.status_code == 200, r.text
    return [it["item_id"] for it in r.json()["items"]]


def _history(client: TestClient, user_id: str) -> np.ndarray:
    """The history the served recommend pipeline reads for ``user_id``."""
    served = client.app.state.serving.require()  # type: ignore[attr-defined]
    result = served.recommend.run({"user_id": user_id, "request": DecisionRequest()})
    history: np.ndarray = result.state["history"]
    return history


def _event(event_id: str, user_id: str, item_id: str, **extra: Any) -> dict[str, Any]:
    return {"event_id": event_id, "user_id": user_id, "item_id": item_id, "event": "purchase",
            **extra}  # fmt: skip


def _post(client: TestClient, body: dict[str, Any], duplicate: bool = False) -> None:
    r = client.post("/v1/events", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": True, "duplicate": duplicate}


def test_a_purchase_leaves_the_next_recommendations(client: TestClient, bundle: Bundle) -> None:
    user = _user(bundle, 5)
    before_history = _history(client, user)
    top = _top(client, user)
    bought = top[3]
    _post(client, _event("e-1", user, bought, ts=2_000_000_000))
    assert bought not in _top(client, user, k=50)
    after = _history(client, user)
    index = list(bundle.item_ids).index(bought)
    assert len(after) == len(before_history) + 1 and after[-1] == index
    assert np.array_equal(after[:-1], before_history)
    # The rank pipeline reads the same live history.
    body = client.post("/v1/rank", json={"user_id": user, "item_ids": top}).json()
    assert body["cold_start"] is False and len(body["items"]) == len(top)
    # An item already in the history is not appended again (distinct-item sequences).
    seen = str(bundle.item_ids[before_history[0]])
    _post(client, _event("e-2", user, seen, event="view"))
    assert np.array_equal(_history(client, user), after)


def test_events_make_an_unknown_user_known(client: TestClient, bundle: Bundle) -> None:
    r = client.post("/v1/recommend", json={"user_id": NEW_USER, "trace": True})
    assert r.json()["cold_start"] is True
    item = str(bundle.item_ids[7])
    _post(client, _event("n-1", NEW_USER, item, event="view"))
    body = client.post("/v1/recommend", json={"user_id": NEW_USER, "k": 50}).json()
    assert body["cold_start"] is False
    assert item not in {it["item_id"] for it in body["items"]}
    assert list(_history(client, NEW_USER)) == [7]


def test_an_event_id_is_applied_once(client: TestClient, bundle: Bundle) -> None:
    user, item = _user(bundle, 1), str(bundle.item_ids[11])
    first = _event("dup-1", user, item, event="cart")  # no ts: the server's clock
    _post(client, first)
    length = len(_history(client, user))
    _post(client, first, duplicate=True)  # a retry without ts is the same event
    assert len(_history(client, user)) == length
    state = client.app.state.serving  # type: ignore[attr-defined]
    assert len(state.events) == 1
    for changed in ({"event": "purchase"}, {"item_id": str(bundle.item_ids[12])}, {"ts": 5}):
        error = assert_error(client.post("/v1/events", json={**first, **changed}), 409, "event_id")
        assert error["type"] == "conflict" and "'dup-1'" in error["message"]
        assert next(iter(changed)) in error["message"]
    assert len(state.events) == 1 and len(_history(client, user)) == length
    metrics = client.get("/metrics").text
    assert 'recsys_events_total{event="cart",outcome="applied"} 1.0' in metrics
    assert 'recsys_events_total{event="cart",outcome="duplicate"} 1.0' in metrics


def test_a_restart_replays_the_log(bundle: Bundle, settings: ServingSettings) -> None:
    user = _user(bundle, 9)
    with TestClient(create_app(settings, bundle)) as first:  # shutdown closes its log
        bought = _top(first, user)[0]
        _post(first, _event("r-1", user, bought))
        _post(first, _event("r-2", NEW_USER, bought, event="click"))
        history = _history(first, user)
    with TestClient(create_app(settings, bundle)) as second:  # a new app on the same log
        assert bought not in _top(second, user, k=50)
        assert np.array_equal(_history(second, user), history)
        body = second.post("/v1/recommend", json={"user_id": NEW_USER}).json()
        assert body["cold_start"] is False
        _post(second, _event("r-1", user, bought), duplicate=True)  # still idempotent
    # The rows are on disk, in the table the design names.
    with closing(sqlite3.connect(settings.events_path)) as db:
        rows = db.execute("SELECT event_id, user_id, item_id, event FROM events").fetchall()
        assert sorted(rows) == [
            ("r-1", user, bought, "purchase"),
            ("r-2", NEW_USER, bought, "click"),
        ]
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize(
    ("change", "param", "words"),
    [
        ({"event": "like"}, "event", ["view", "click", "cart", "purchase", "rating"]),
        ({"event_id": None}, "event_id", ["required"]),
        ({"event_id": ""}, "event_id", ["at least 1"]),
        ({"event_id": "x" * 129}, "event_id", ["at most 128"]),
        ({"ts": -1}, "ts", ["greater than or equal"]),
        ({"ts": "yesterday"}, "ts", ["integer"]),
        ({"colour": "red"}, "colour", ["not permitted"]),
    ],
)
def test_malformed_events_name_the_field(
    client: TestClient, bundle: Bundle, change: dict[str, Any], param: str, words: list[str]
) -> None:
    body = {**_event("bad-1", _user(bundle), str(bundle.item_ids[0])), **change}
    body = {key: value for key, value in body.items() if value is not None}
    error = assert_error(client.post("/v1/events", json=body), 422, param)
    assert error["type"] == "invalid_request"
    assert all(word in error["message"] for word in words), error["message"]
    assert len(client.app.state.serving.events) == 0  # type: ignore[attr-defined]


def test_unknown_items_are_rejected_not_dropped(client: TestClient, bundle: Bundle) -> None:
    body = _event("u-1", _user(bundle), "no-such-item")
    error = assert_error(client.post("/v1/events", json=body), 422, "item_id")
    assert error["type"] == "unknown_item" and "'no-such-item'" in error["message"]
    assert len(client.app.state.serving.events) == 0  # type: ignore[attr-defined]
    _post(client, {**body, "item_id": str(bundle.item_ids[0])})  # the id was not used up


def test_events_need_a_served_bundle(settings: ServingSettings) -> None:
    client = TestClient(create_app(settings))
    error = assert_error(client.post("/v1/events", json=_event("x", "u", "i")), 503)
    assert error["type"] == "unavailable"


def test_the_api_lists_the_contract_events(client: TestClient) -> None:
    assert get_args(EventName) == EVENTS
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/v1/events"]["post"]
    assert {"200", "409", "422", "503"} <= set(post["responses"])


def test_two_processes_on_one_log_see_each_others_events(
    bundle: Bundle, settings: ServingSettings
) -> None:
    one, two = (TestClient(create_app(settings, bundle)) for _ in range(2))  # like 2 workers
    user = _user(bundle, 13)
    bought = _top(two, user)[0]
    _post(one, _event("w-1", user, bought))
    assert bought not in _top(two, user, k=50)
    _post(two, _event("w-1", user, bought), duplicate=True)


def test_an_acknowledged_event_survives_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    script = (
        "import os, sys; from recsys.events import Event, EventLog; "
        "log = EventLog(sys.argv[1]); "
        "assert log.append(Event('k-1', 'u', 'i', 'view', ts=1)); "
        "os._exit(0)"  # no close, no clean shutdown: only the commit stands between
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, cwd=Path.cwd())
    log = EventLog(path)
    assert log.get("k-1") == Event("k-1", "u", "i", "view", ts=1)
    log.close()


def test_session_state_keeps_first_interactions_in_time_order(tmp_path: Path) -> None:
    class Catalog:
        item_ids = np.array(["a", "b", "c"], dtype=object)

    log = EventLog(tmp_path / "log.sqlite")
    live = SessionState.for_bundle(Catalog())
    events = [
        Event("1", "u", "b", "view", ts=20),
        Event("2", "u", "a", "view", ts=30),
        Event("3", "u", "b", "purchase", ts=40),  # b again: keeps its first place
        Event("4", "u", "c", "view", ts=10),  # late arrival with an earlier ts
        Event("5", "v", "c", "view", ts=10),
    ]
    for event in events:
        assert log.append(event)
        live.apply(event)
    assert live.items("u").tolist() == [2, 1, 0] and live.items("v").tolist() == [2]
    replayed = SessionState.replay(log, Catalog())
    assert replayed.items("u").tolist() == live.items("u").tolist()
    assert replayed.items("nobody").tolist() == []
    assert not log.append(events[0])
    with pytest.raises(EventConflictError, match="'1'"):
        log.append(Event("1", "u", "c", "view", ts=20))
    log.close()
    reopened = EventLog(tmp_path / "log.sqlite")  # committed before append returned
    assert len(reopened) == 5 and reopened.get("4") == events[3]
    reopened.close()


class _Shop:
    item_ids = np.array(["a", "b", "c"], dtype=object)


def test_a_sync_reads_the_log_only_when_its_stamp_moved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import recsys.events as events_module

    path = tmp_path / "log.sqlite"
    writer, reader = EventLog(path), EventLog(path)  # two processes' connections to one log
    live = SessionState.for_bundle(_Shop())
    reads: list[int] = []
    since = reader.since
    monkeypatch.setattr(reader, "since", lambda position: reads.append(position) or since(position))
    now = [100.0]
    monkeypatch.setattr(events_module.time, "monotonic", lambda: now[0])
    assert live.sync(reader) == 0 and len(reads) == 1  # the first sync reads
    for _ in range(3):
        now[0] += 0.1
        assert live.sync(reader) == 0
    assert len(reads) == 1  # nothing written: no query
    assert writer.append(Event("1", "u", "b", "view", ts=1))
    assert reader.stamp.read() == 1  # the rowid just committed, seen through the shared map
    assert live.sync(reader) == 1 and live.items("u").tolist() == [1]
    assert len(reads) == 2
    assert not writer.append(Event("1", "u", "b", "view", ts=1))  # a duplicate changes nothing
    assert live.sync(reader) == 0 and len(reads) == 2
    # a writer that commits without setting the stamp (it died in between) is read within
    # RESYNC_S of the last read
    with closing(sqlite3.connect(path)) as raw:
        raw.execute("INSERT INTO events VALUES ('2', 'u', 'c', 'view', 2, 0.0)")
        raw.commit()
    now[0] += events_module.RESYNC_S / 2
    assert live.sync(reader) == 0
    now[0] += events_module.RESYNC_S
    assert live.sync(reader) == 1 and live.items("u").tolist() == [1, 2]
    writer.close()
    reader.close()


def test_an_event_from_another_process_moves_the_stamp(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    log = EventLog(path)
    live = SessionState.replay(log, _Shop())
    script = (
        "import sys; from recsys.events import Event, EventLog; "
        "log = EventLog(sys.argv[1]); "
        "assert log.append(Event('p-1', 'u', 'c', 'cart', ts=1)); log.close()"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, cwd=Path.cwd())
    assert log.stamp.read() == 1
    assert live.sync(log) == 1 and live.items("u").tolist() == [2]
    log.close()


def test_without_a_stamp_every_sync_reads_the_log(tmp_path: Path) -> None:
    from recsys.stamp import ChangeStamp

    missing = ChangeStamp(tmp_path / "no-such-folder" / "stamp")
    assert missing.read() is None
    missing.set(5)  # ignored, not an error
    path = tmp_path / "log.sqlite"
    log = EventLog(path)
    log.stamp.close()
    log.stamp = missing
    live = SessionState.for_bundle(_Shop())
    assert log.append(Event("1", "v", "a", "view", ts=1))
    assert live.sync(log) == 1
    with closing(sqlite3.connect(path)) as raw:
        raw.execute("INSERT INTO events VALUES ('2', 'v', 'b', 'view', 2, 0.0)")
        raw.commit()
    assert live.sync(log) == 1  # no stamp to trust: read at once
    log.close()
