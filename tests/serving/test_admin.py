"""POST /admin/reload: key-guarded, atomic swap, and a broken bundle never replaces a good one."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from recsys.artifacts import Bundle
from serving.admin.service import BundleWatcher, Reloader
from serving.app import create_app
from serving.settings import ServingSettings
from tests.serving.conftest import assert_error

KEY = "test-admin-key"


@pytest.fixture()
def admin(bundle: Bundle, settings: ServingSettings) -> TestClient:
    keyed = settings.model_copy(update={"admin_api_key": SecretStr(KEY)})
    return TestClient(create_app(keyed, bundle), headers={"X-API-Key": KEY})


def _copy(bundle: Bundle, dest: Path) -> Path:
    shutil.copytree(bundle.path, dest)
    return dest


def _served_path(client: TestClient) -> Path:
    return Path(client.app.state.serving.require().bundle.path)  # type: ignore[attr-defined]


def test_admin_routes_are_off_without_a_key(client: TestClient) -> None:
    assert_error(client.post("/admin/reload", json={}), 404)


def test_a_wrong_or_missing_key_is_401(admin: TestClient) -> None:
    for headers in ({"X-API-Key": "nope"}, {"X-API-Key": ""}):
        assert_error(admin.post("/admin/reload", json={}, headers=headers), 401, "X-API-Key")
    bare = TestClient(admin.app)
    assert_error(bare.get("/admin/reload"), 401, "X-API-Key")


def test_a_broken_bundle_is_refused_and_the_old_one_answers(
    admin: TestClient, bundle: Bundle, tmp_path: Path
) -> None:
    broken = _copy(bundle, tmp_path / "broken")
    model = next((broken / "models").glob("*.pkl"))
    model.write_bytes(model.read_bytes()[:-10])  # truncated: its checksum no longer matches
    r = admin.post("/admin/reload", json={"bundle_path": str(broken), "wait": True})
    error = assert_error(r, 422)
    assert error["type"] == "bundle_refused" and "checksum" in error["message"]
    status = admin.get("/admin/reload").json()
    assert status["state"] == "failed" and status["serving_version"] == bundle.version
    user = str(bundle.user_ids[0])
    answer = admin.post("/v1/recommend", json={"user_id": user})
    assert answer.status_code == 200 and answer.json()["model_version"] == bundle.version
    assert _served_path(admin) == bundle.path
    nowhere = {"bundle_path": str(tmp_path / "nope"), "wait": True}
    missing = admin.post("/admin/reload", json=nowhere)
    assert "manifest.json: missing" in assert_error(missing, 422)["message"]


def test_reload_swaps_while_requests_keep_being_answered(
    admin: TestClient, bundle: Bundle, tmp_path: Path
) -> None:
    fresh = _copy(bundle, tmp_path / "fresh")
    user = str(bundle.user_ids[1])
    statuses: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            statuses.append(admin.post("/v1/recommend", json={"user_id": user}).status_code)

    worker = threading.Thread(target=hammer)
    worker.start()
    r = admin.post("/admin/reload", json={"bundle_path": str(fresh)})
    assert r.status_code == 202 and r.json()["state"] == "loading"
    deadline = time.monotonic() + 120
    while admin.get("/admin/reload").json()["state"] == "loading" and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    worker.join()
    status = admin.get("/admin/reload").json()
    assert status["state"] == "loaded" and status["previous_version"] == bundle.version
    assert _served_path(admin) == fresh
    assert statuses and set(statuses) == {200}


def test_a_new_bundle_appearing_is_picked_up(
    bundle: Bundle, settings: ServingSettings, tmp_path: Path
) -> None:
    served = _copy(bundle, tmp_path / "served")
    app = create_app(settings, bundle)
    reloader = Reloader(app.state.serving, served, None)
    watcher = BundleWatcher(reloader, served, interval=3600)
    assert watcher.check() is False  # nothing changed yet
    manifest = json.loads((served / "manifest.json").read_text())
    manifest["created_at"] = "2030-01-01T00:00:00+00:00"  # a retrain wrote a new manifest
    (served / "manifest.json").write_text(json.dumps(manifest))
    assert watcher.check() is True
    assert reloader.status().state == "loaded"
    assert app.state.serving.require().bundle.path == served
    assert watcher.check() is False  # once per change
