"""The events disk full: 503 with Retry-After, /readyz not ready, nothing acknowledged lost,
and recovery once the disk takes writes again; a read-only or unwritable one fails at start,
naming the path.

The faults are real: a small tmpfs filled to the last byte, or remounted read-only (needs
root, as CI's container has; skipped elsewhere).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recsys.artifacts import Bundle
from recsys.events import EventLog, EventStoreError
from serving.app import create_app
from serving.settings import ServingSettings
from tests.conftest import fill, mount
from tests.serving.conftest import assert_error


def _event(item: str, i: int) -> dict[str, object]:
    return {"event_id": f"e-{i}", "user_id": f"u-{i % 7}", "item_id": item, "event": "view"}


def test_a_full_then_read_only_events_disk_is_503_and_loses_nothing(
    bundle: Bundle, settings: ServingSettings, small_disk: Path
) -> None:
    log_path = small_disk / "events.sqlite"
    app = create_app(settings.model_copy(update={"events_path": log_path}), bundle)
    item = str(bundle.item_ids[0])
    acknowledged: set[str] = set()
    with TestClient(app) as client:

        def send(n: int, start: int) -> list[int]:
            codes = []
            for i in range(start, start + n):
                r = client.post("/v1/events", json=_event(item, i))
                codes.append(r.status_code)
                if r.status_code == 200:
                    acknowledged.add(f"e-{i}")
                else:
                    error = assert_error(r, 503)
                    assert error["type"] == "unavailable" and str(log_path) in error["message"]
                    assert int(r.headers["retry-after"]) > 0
            return codes

        assert set(send(20, 0)) == {200}
        assert client.get("/readyz").status_code == 200
        ballast = fill(small_disk)
        full = send(200, 20)
        assert 503 in full and set(full) <= {200, 503}
        assert full[-20:] == [503] * 20  # once full, it stays refused, never a 500
        not_ready = client.get("/readyz")
        assert "cannot write" in assert_error(not_ready, 503)["message"]
        assert int(not_ready.headers["retry-after"]) > 0
        assert client.post("/v1/recommend", json={"user_id": "u-1"}).status_code == 200

        ballast.unlink()  # room again: ready, and events are taken
        assert client.get("/readyz").status_code == 200
        assert set(send(10, 1000)) == {200}
    stored = {e.event_id for e in EventLog(log_path).events()}
    assert acknowledged <= stored, f"acknowledged but lost: {sorted(acknowledged - stored)}"
    assert len(acknowledged) >= 20 + 10


def test_a_read_only_events_disk_fails_at_start_naming_the_path(
    bundle: Bundle, settings: ServingSettings, small_disk: Path
) -> None:
    log_path = small_disk / "events.sqlite"
    EventLog(log_path).close()  # a log from an earlier run, then the disk turns read-only
    mount(["-o", "remount,ro", str(small_disk)])
    with pytest.raises(EventStoreError, match=str(log_path)):
        create_app(settings.model_copy(update={"events_path": log_path}), bundle)


def test_an_unwritable_events_path_is_named_when_the_app_starts(
    bundle: Bundle, settings: ServingSettings, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    bad = blocker / "events.sqlite"
    with pytest.raises(EventStoreError, match=str(bad)):
        create_app(settings.model_copy(update={"events_path": bad}), bundle)
