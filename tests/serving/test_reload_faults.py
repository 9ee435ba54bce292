"""Reloads that fail in any way end as `failed` with the reason, and the old bundle serves on.

Each broken bundle here once left the status at `loading` forever (wait=true answered 500), was
accepted and then failed every request (a table dropped from the online store), or killed the
bundle watcher thread (a manifest of `[]`).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Callable
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
STORE = Path("feature_repo/data/online_store.db")


@pytest.fixture()
def admin(bundle: Bundle, settings: ServingSettings) -> TestClient:
    keyed = settings.model_copy(update={"admin_api_key": SecretStr(KEY)})
    return TestClient(create_app(keyed, bundle), headers={"X-API-Key": KEY})


def _manifest(root: Path) -> dict:  # type: ignore[type-arg]
    return dict(json.loads((root / "manifest.json").read_text()))


def _write_manifest(root: Path, manifest: object) -> None:
    (root / "manifest.json").write_text(json.dumps(manifest))


def _unlisted(root: Path, rel: str) -> None:
    """Drop ``rel``'s checksum: what a bundle written by hand or by an older tool looks like."""
    manifest = _manifest(root)
    del manifest["checksums"][rel]
    _write_manifest(root, manifest)


def manifest_is_a_list(root: Path) -> None:
    _write_manifest(root, [])


def checksums_is_a_list(root: Path) -> None:
    _write_manifest(root, {**_manifest(root), "checksums": []})


def truncated_pickle_without_checksum(root: Path) -> None:
    model = next((root / "models").glob("*.pkl"))
    model.write_bytes(model.read_bytes()[:40])
    _unlisted(root, str(model.relative_to(root)))


def garbage_online_store(root: Path) -> None:
    (root / STORE).write_bytes(b"this is not a sqlite database" * 100)


def deleted_registry(root: Path) -> None:
    (root / "feature_repo/data/registry.db").unlink()


def deleted_registry_without_checksum(root: Path) -> None:
    deleted_registry(root)
    _unlisted(root, "feature_repo/data/registry.db")


def changed_feature_source(root: Path) -> None:
    source = next((root / "feature_repo/data/sources").glob("*.parquet"))
    source.write_bytes(source.read_bytes()[:-8])


def dropped_user_table(root: Path) -> None:
    with sqlite3.connect(root / STORE) as db:
        db.execute("DROP TABLE recsys_user_activity")


def dropped_item_table(root: Path) -> None:
    with sqlite3.connect(root / STORE) as db:
        db.execute("DROP TABLE recsys_item_catalog")


BREAKAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "manifest []": (manifest_is_a_list, "expected a JSON object"),
    "checksums []": (checksums_is_a_list, "'checksums' must be a JSON dict"),
    "truncated pickle": (truncated_pickle_without_checksum, "not a loadable model"),
    "garbage store": (garbage_online_store, ""),
    "deleted registry": (deleted_registry, "registry.db: listed in the manifest but missing"),
    "deleted registry, unlisted": (deleted_registry_without_checksum, ""),
    "feature source changed": (changed_feature_source, "checksum differs"),
    "user table dropped": (dropped_user_table, "failed its trial"),
    "item table dropped": (dropped_item_table, "recsys_item_catalog"),
}


@pytest.mark.parametrize("name", list(BREAKAGES))
def test_a_broken_bundle_ends_the_reload_as_failed_and_the_old_one_serves(
    name: str, admin: TestClient, bundle: Bundle, tmp_path: Path
) -> None:
    broken = Path(shutil.copytree(bundle.path, tmp_path / "broken"))
    breakage, reason = BREAKAGES[name]
    breakage(broken)
    r = admin.post("/admin/reload", json={"bundle_path": str(broken), "wait": True})
    error = assert_error(r, 422)
    assert error["type"] == "bundle_refused" and reason in error["message"], error
    status = admin.get("/admin/reload").json()
    assert status["state"] == "failed" and status["error"], status
    assert status["serving_version"] == bundle.version
    for user in (str(bundle.user_ids[0]), "someone-new"):
        answer = admin.post("/v1/recommend", json={"user_id": user})
        assert answer.status_code == 200, answer.text
        assert answer.json()["degraded"] == []  # the old bundle's store is untouched
    assert admin.post("/v1/search", json={"query": "a"}).status_code == 200


def test_a_reload_in_the_background_ends_as_failed_too(
    admin: TestClient, bundle: Bundle, tmp_path: Path
) -> None:
    broken = Path(shutil.copytree(bundle.path, tmp_path / "broken"))
    checksums_is_a_list(broken)
    assert admin.post("/admin/reload", json={"bundle_path": str(broken)}).status_code == 202
    deadline = time.monotonic() + 300  # a hang guard, not a speed limit
    while admin.get("/admin/reload").json()["state"] == "loading":
        assert time.monotonic() < deadline, "the reload never ended"
        time.sleep(0.02)
    assert admin.get("/admin/reload").json()["state"] == "failed"


def test_the_watcher_survives_a_bad_manifest_and_loads_the_next_good_one(
    bundle: Bundle, settings: ServingSettings, tmp_path: Path
) -> None:
    served = Path(shutil.copytree(bundle.path, tmp_path / "served"))
    good = _manifest(served)
    app = create_app(settings, bundle)
    reloader = Reloader(app.state.serving, served, None)
    watcher = BundleWatcher(reloader, served, interval=0.01).start()
    try:
        _write_manifest(served, [])
        deadline = time.monotonic() + 300
        while reloader.status().state != "failed":
            assert time.monotonic() < deadline, "the bad manifest was never tried"
            time.sleep(0.01)
        assert "expected a JSON object" in str(reloader.status().error)
        _write_manifest(served, {**good, "created_at": "2030-01-01T00:00:00+00:00"})
        while reloader.status().state != "loaded":
            assert watcher._thread.is_alive(), "the watcher thread died"
            assert time.monotonic() < deadline, "the good manifest was never loaded"
            time.sleep(0.01)
        assert app.state.serving.require().bundle.path == served
    finally:
        watcher.stop()
