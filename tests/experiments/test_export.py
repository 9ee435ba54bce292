"""Batch export: `recsys recommend` writes what /v1/recommend answers, through the same pipeline."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from recsys.artifacts import Bundle
from recsys.cli import app
from recsys.experiments.attribution import decisions_frame
from recsys.experiments.export import export_frame, iter_lists, read_users, targets_for
from serving.app import create_app
from serving.settings import ServingSettings

runner = CliRunner()


def test_export_matches_the_api(bundle: Bundle, tmp_path: Path) -> None:
    users = [str(u) for u in bundle.user_ids[:5]] + ["nobody-knows-me"]
    (tmp_path / "users.txt").write_text("\n".join(users + users[:2]) + "\n")
    out = tmp_path / "recs.parquet"
    result = runner.invoke(
        app,
        [
            "recommend",
            "--bundle",
            str(bundle.path),
            "--users",
            str(tmp_path / "users.txt"),
            "--k",
            "7",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    recs = pd.read_parquet(out)
    assert list(recs.columns) == ["user_id", "position", "item_id", "score", "model_version"]
    assert recs["user_id"].drop_duplicates().tolist() == users  # each once, in file order
    assert (recs.groupby("user_id").size() == 7).all()
    settings = ServingSettings(
        bundle_path=tmp_path / "none",
        events_path=tmp_path / "events.sqlite",
        decision_log_path=None,
        load_on_start=False,
    )
    with TestClient(create_app(settings, bundle)) as client:
        for user in users:
            r = client.post("/v1/recommend", json={"user_id": user, "k": 7, "explore": False})
            served = [it["item_id"] for it in r.json()["items"]]
            exported = recs[recs["user_id"] == user].sort_values("position")["item_id"].tolist()
            assert exported == served, user


def test_users_all_and_bad_files(bundle: Bundle, tmp_path: Path) -> None:
    assert read_users("all", bundle) == [str(u) for u in bundle.user_ids]
    pd.DataFrame({"shopper": ["a"]}).to_parquet(tmp_path / "u.parquet")
    with pytest.raises(ValueError, match=r"no user_id column; columns: \['shopper'\]"):
        read_users(str(tmp_path / "u.parquet"), bundle)
    result = runner.invoke(
        app,
        [
            "recommend",
            "--bundle",
            str(bundle.path),
            "--users",
            str(tmp_path / "missing"),
            "--out",
            str(tmp_path / "r.parquet"),
        ],
    )
    assert result.exit_code == 2 and "users file" in result.output


def test_candidate_lists_become_ope_targets(bundle: Bundle) -> None:
    users = [str(u) for u in bundle.user_ids[:3]]
    lists = export_frame(iter_lists(bundle, users, 4), bundle.version)
    logged = decisions_frame(
        [
            {
                "request_id": f"r{n}",
                "user_id": u,
                "shown": [{"item_id": "x", "position": 0, "propensity": 1.0}],
            }
            for n, u in enumerate(users)
        ]
    )
    target = targets_for(logged, lists)
    assert len(target) == 12 and set(target["request_id"]) == {"r0", "r1", "r2"}
