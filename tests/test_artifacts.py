"""The artifact bundle: train, write, verify, load, serve one request, evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from recsys.artifacts import BundleError, TrainConfig, load_bundle, train_bundle
from recsys.cli import app
from recsys.data.contract import Dataset
from recsys.evaluation.retrieval import evaluate_bundle
from recsys.pipeline import Pipeline
from recsys.retrieval.retriever import HistoryStage, RetrievalConfig, RetrievalStage

SOURCES = ("popular", "covisit", "als")
CONFIG = TrainConfig(sources=SOURCES, retrieval=RetrievalConfig(total=50, depth=60))


@pytest.fixture(scope="module")
def bundle_dir(aisles: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_bundle(aisles, tmp_path_factory.mktemp("bundle") / "b1", CONFIG)


def test_manifest_describes_the_bundle(bundle_dir: Path, aisles: Dataset) -> None:
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    assert manifest["version"].startswith("aisles-")
    assert manifest["dataset"]["counts"]["users"] == 600
    assert set(manifest["sources"]) == set(SOURCES)
    assert "index" in manifest["sources"]["als"] and "index" not in manifest["sources"]["covisit"]
    for name in SOURCES:
        assert manifest["sources"][name]["valid"]["ndcg@10"] >= 0.0
    assert {"numpy", "python"} <= set(manifest["versions"])
    assert "models/als.pkl" in manifest["checksums"]
    fusion = dict(manifest["config"]["retrieval"]["fusion_weights"])
    assert fusion["covisit"] > fusion["popular"], "fusion follows validation quality"


def test_one_request_through_the_pipeline(bundle_dir: Path) -> None:
    bundle = load_bundle(bundle_dir)
    pipe = Pipeline(
        [
            HistoryStage(bundle.user_index(), bundle.sequences),
            RetrievalStage(bundle.retriever, len(bundle.item_ids)),
        ],
        inputs=["user_id"],
    )
    known = pipe.run({"user_id": "u0"})
    cands = known.state["candidates"]
    history = set(known.state["history"].tolist())
    ids = [i for i in cands.ids[0].tolist() if i >= 0]
    assert len(ids) == 50 and not history & set(ids)
    assert not known.state["cold_start"]
    assert [name for name, _ in known.trace] == ["history", "retrieval"]

    cold = pipe.run({"user_id": "somebody-new"})
    assert cold.state["cold_start"]
    cold_ids = cold.state["candidates"].ids[0]
    assert (cold_ids >= 0).all()
    assert all(cold.state["candidates"].found_by(0, s) == ["popular"] for s in range(5))


def test_same_seed_same_bundle(bundle_dir: Path, aisles: Dataset, tmp_path: Path) -> None:
    again = load_bundle(train_bundle(aisles, tmp_path / "b2", CONFIG))
    first = load_bundle(bundle_dir)
    assert again.version == first.version
    for name in SOURCES:
        a, b = first.manifest["sources"][name]["valid"], again.manifest["sources"][name]["valid"]
        assert a["ndcg@10"] == pytest.approx(b["ndcg@10"], abs=1e-9), name
    hist = first.sequences.select(np.arange(20))
    np.testing.assert_array_equal(
        first.retriever.retrieve(hist)[0].ids, again.retriever.retrieve(hist)[0].ids
    )


def test_corrupt_or_missing_files_are_refused(bundle_dir: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(bundle_dir, broken)
    (broken / "models" / "covisit.pkl").write_bytes(b"garbage")
    with pytest.raises(BundleError, match=r"covisit.pkl: checksum differs"):
        load_bundle(broken)
    (broken / "models" / "covisit.pkl").unlink()
    with pytest.raises(BundleError, match=r"covisit.pkl: listed in the manifest but missing"):
        load_bundle(broken)
    with pytest.raises(BundleError, match=r"manifest\.json: missing"):
        load_bundle(tmp_path)


def test_evaluate_bundle_reports_sources_and_merge(bundle_dir: Path, aisles: Dataset) -> None:
    result = evaluate_bundle(aisles, load_bundle(bundle_dir), ns=(10, 50))
    assert set(result["sources"]) == set(SOURCES)
    merged = result["merged"]
    assert {"ndcg@10", "candidate_recall@10", "candidate_recall@50"} <= set(merged)
    best_single = max(s["candidate_recall@50"] for s in result["sources"].values())
    assert merged["candidate_recall@50"] >= 0.9 * best_single
    assert merged["ndcg@10"] > result["sources"]["popular"]["ndcg@10"]


def test_bundle_refuses_another_dataset(bundle_dir: Path, aisles: Dataset) -> None:
    other = Dataset(aisles.interactions.iloc[:-10], aisles.items, {"name": "other"}).validate()
    with pytest.raises(BundleError, match="was trained on dataset 'aisles'"):
        evaluate_bundle(other, load_bundle(bundle_dir))


def test_cli_train_then_evaluate(aisles_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli-bundle"
    args = ["train", "--data", str(aisles_dir), "--out", str(out), "--candidates", "40"]
    trained = runner.invoke(app, [*args, "--source", "popular", "--source", "covisit"])
    assert trained.exit_code == 0, trained.output
    evaluated = runner.invoke(
        app, ["evaluate", "--data", str(aisles_dir), "--artifacts", str(out), "--json"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    doc = json.loads(evaluated.stdout)
    assert set(doc["sources"]) == {"popular", "covisit"} and doc["candidates"] == 40
    bad = runner.invoke(app, [*args, "--source", "nope"])
    assert bad.exit_code == 2 and "unknown source(s) ['nope']" in bad.output
    cold = runner.invoke(app, [*args, "--source", "covisit"])
    assert cold.exit_code == 2 and "cold-start source" in cold.output


def test_text_source_is_skipped_without_item_text(aisles: Dataset, tmp_path: Path) -> None:
    config = TrainConfig(sources=("popular", "text"), retrieval=RetrievalConfig(total=20))
    manifest = load_bundle(train_bundle(aisles, tmp_path / "b", config)).manifest
    assert set(manifest["sources"]) == {"popular"}
    assert "no item text" in manifest["skipped_sources"]["text"]


def test_source_overrides_reach_the_model_and_bad_ones_are_named(
    aisles_dir: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    args = ["train", "--data", str(aisles_dir), "--out", str(tmp_path / "b"), "--source",
            "popular", "--source", "covisit"]  # fmt: skip
    ok = runner.invoke(app, [*args, "--set", "covisit.window=2"])
    assert ok.exit_code == 0, ok.output
    manifest = load_bundle(tmp_path / "b").manifest
    assert manifest["sources"]["covisit"]["config"]["window"] == 2
    assert manifest["config"]["overrides"] == [["covisit", [["window", 2]]]]
    unknown = runner.invoke(app, [*args, "--set", "covisit.windw=2"])
    assert unknown.exit_code == 2 and "no config field(s) ['windw']" in unknown.output
    assert "window" in unknown.output
    shape = runner.invoke(app, [*args, "--set", "window=2"])
    assert shape.exit_code == 2 and "SOURCE.FIELD=VALUE" in shape.output


def test_attributes_source_is_skipped_without_catalog_fields(
    aisles: Dataset, tmp_path: Path
) -> None:
    config = TrainConfig(sources=("popular", "attributes"), retrieval=RetrievalConfig(total=20))
    manifest = load_bundle(train_bundle(aisles, tmp_path / "b", config)).manifest
    assert set(manifest["sources"]) == {"popular"}
    assert "no brand, category or attributes" in manifest["skipped_sources"]["attributes"]
