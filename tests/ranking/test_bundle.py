"""The ranking half of a bundle, for real: Feast features materialized into the SQLite online
store, LightGBM and DLRM trained on the candidates, exported to ONNX, served by the pipeline."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from models.ranker_registry import available_rankers
from recsys.artifacts import Bundle, BundleError, TrainConfig, load_bundle, train_bundle
from recsys.cli import app
from recsys.data.contract import Dataset
from recsys.data.sequences import encode
from recsys.data.split import leave_one_out
from recsys.data.synth import generate
from recsys.evaluation.retrieval import evaluate_bundle
from recsys.pipelines import ranker_name, recommend_pipeline
from recsys.ranking.bundle import load_ranking
from recsys.ranking.features import TableFeatures
from recsys.ranking.ranker import Ranked
from recsys.retrieval.retriever import RetrievalConfig, history_of

SOURCES = ("popular", "covisit", "als", "attributes")


@pytest.fixture(scope="module")
def shop() -> Dataset:
    return generate(users=1500, items=300, seed=0)


@pytest.fixture(scope="module")
def bundle(shop: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    config = TrainConfig(sources=SOURCES, retrieval=RetrievalConfig(total=100, depth=100))
    return load_bundle(train_bundle(shop, tmp_path_factory.mktemp("rank") / "b", config))


def test_manifest_records_rankers_features_and_parity(bundle: Bundle) -> None:
    section = bundle.manifest["ranking"]
    assert set(section["rankers"]) == set(available_rankers())  # dlrm where TorchRec is
    assert section["default"] in section["rankers"]
    order = section["order"]  # chosen on validation users the rankers did not train on
    rankers = section["rankers"]
    assert order["chosen"] in ("merged", *rankers, *(f"blend:{r}" for r in rankers))
    assert order["validation_users"] > 0 and "merged" in order["validation_ndcg@10"]
    assert section["features"]["service"] == "ranker_v1"
    # one group count per time fold: the validation items, then each earlier fold's
    per_fold = section["rows"]["groups_per_fold"]
    assert len(per_fold) == section["config"]["folds"] + 1 and min(per_fold) > 0
    assert bundle.manifest["config"]["refit_with_valid"] and bundle.manifest["refit_seconds"] > 0
    assert section["rankers"]["lightgbm"]["onnx_max_abs_diff"] <= 1e-5
    if "dlrm" in section["rankers"]:
        assert section["rankers"]["dlrm"]["onnx_max_abs_diff"] <= 1e-4
    assert (bundle.path / "rankers" / "lightgbm.onnx").is_file()
    assert "rankers/lightgbm.onnx" in bundle.manifest["checksums"]


def test_lightgbm_is_served_by_compiled_trees_equal_to_native(bundle: Bundle) -> None:
    pytest.importorskip("lleaves")
    from models.compiled_trees import CompiledTrees

    entry = bundle.manifest["ranking"]["rankers"]["lightgbm"]
    assert entry["trees"] == "rankers/lightgbm.txt" and entry["trees_max_abs_diff"] <= 1e-5
    assert "rankers/lightgbm.txt" in bundle.manifest["checksums"]
    assert bundle.ranking is not None
    ranker = bundle.ranking.rankers["lightgbm"]
    assert isinstance(ranker.session, CompiledTrees)  # RECSYS_RANKER_RUNTIME=auto
    assert not ranker.session.compiled  # the object compiled at training, loaded from cache
    from recsys.ranking.features import build_frame
    from recsys.retrieval.retriever import history_of

    pipe = recommend_pipeline(bundle, ranker_name(bundle, "lightgbm"))
    for user in bundle.user_ids[:5]:
        state = pipe.run({"user_id": str(user)}).state
        history = history_of(state["history"], len(bundle.item_ids))
        frame = build_frame(ranker.spec, state["candidates"], history, [str(user)],
                            bundle.ranking.features)  # fmt: skip
        served, native = ranker.score(frame), ranker.score(frame, native=True)
        assert frame.n_rows > 0 and float(np.abs(served - native).max()) <= 1e-5


def test_served_features_are_the_materialized_tables(bundle: Bundle, shop: Dataset) -> None:
    from features.tables import build_feature_tables

    enc = encode(shop)
    split = leave_one_out(enc)
    # refitted with the validation items, as the served sources are (refit_with_valid)
    tables = TableFeatures(build_feature_tables(shop, enc, split.train_and_valid), enc)
    stale = TableFeatures(build_feature_tables(shop, enc, split.train), enc)
    assert bundle.ranking is not None
    idx = np.arange(len(bundle.item_ids))
    np.testing.assert_array_equal(bundle.ranking.features.items_at(idx), tables.items_at(idx))
    assert not np.array_equal(stale.items_at(idx), tables.items_at(idx), equal_nan=True)
    users = [str(u) for u in bundle.user_ids[:20]]
    np.testing.assert_array_equal(bundle.ranking.features.users(users), tables.users(users))


def test_pipeline_beats_the_merged_list(bundle: Bundle, shop: Dataset) -> None:
    result = evaluate_bundle(shop, bundle, "test")
    merged = result["merged"]["ndcg@10"]
    best = max(s["ndcg@10"] for s in result["sources"].values())
    for name, metrics in result["pipeline"].items():
        assert metrics["ndcg@10"] > merged, (name, metrics["ndcg@10"], merged)
    # the served order was chosen on held-out validation users; here a ranker earns its place
    assert result["pipeline_default"] != "merged"
    assert result["pipeline"]["default"]["ndcg@10"] > best
    # reordering never changes which items are candidates
    assert result["pipeline"]["lightgbm"]["candidate_recall@100"] == pytest.approx(
        result["merged"]["candidate_recall@100"]
    )


def test_one_request_known_and_cold(bundle: Bundle) -> None:
    pipe = recommend_pipeline(bundle, ranker_name(bundle, None))
    known = pipe.run({"user_id": str(bundle.user_ids[0])})
    ranked: Ranked = known.state["ranked"]
    cands = known.state["candidates"].ids[0]
    assert sorted(ranked.ids[0][ranked.ids[0] >= 0]) == sorted(cands[cands >= 0])
    assert (np.diff(ranked.scores[0][ranked.ids[0] >= 0]) <= 0).all()
    assert bundle.ranking is not None and bundle.ranking.serve is not None
    assert [s for s, _ in known.trace] == ["history", "retrieval", "ranking"]
    cold = pipe.run({"user_id": "never-seen"})
    assert cold.state["cold_start"] and (cold.state["ranked"].ids[0] >= 0).sum() > 0
    with pytest.raises(ValueError, match="unknown ranker 'xgb'"):
        ranker_name(bundle, "xgb")


def test_the_served_order_is_the_chosen_one(bundle: Bundle) -> None:
    assert bundle.ranking is not None
    user = {"user_id": str(bundle.user_ids[0])}
    fusion = dataclasses.replace(bundle, ranking=dataclasses.replace(bundle.ranking, serve=None))
    assert ranker_name(fusion, None) is None  # the merged order serves, no ranking stage
    plain = recommend_pipeline(fusion, None).run(user)
    assert [s for s, _ in plain.trace] == ["history", "retrieval"]
    ranking = dataclasses.replace(bundle.ranking, serve="lightgbm", blend=0.5)
    blended = dataclasses.replace(bundle, ranking=ranking)
    served = recommend_pipeline(blended, ranker_name(blended, None)).run(user)
    cands = served.state["candidates"]
    alone = ranking.rankers["lightgbm"].rank(
        cands, history_of(served.state["history"], len(bundle.item_ids)), [user["user_id"]],
        ranking.features,
    )  # fmt: skip
    mixed = served.state["ranked"].ids[0]
    assert sorted(mixed[mixed >= 0]) == sorted(cands.ids[0][cands.ids[0] >= 0])
    # the blend sits between the ranker's order and the merged one
    assert not np.array_equal(mixed, alone.ids[0]) and not np.array_equal(mixed, cands.ids[0])


def test_a_corrupt_onnx_file_is_refused(bundle: Bundle, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(bundle.path, copy)
    (copy / "rankers" / "lightgbm.onnx").write_bytes(b"not a model")
    with pytest.raises(BundleError, match=r"lightgbm\.onnx: checksum differs"):
        load_bundle(copy)


def test_loads_and_serves_where_torchrec_is_missing(
    bundle: Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    section = bundle.manifest["ranking"]
    for module in [m for m in sys.modules if m == "torchrec" or m.startswith("torchrec.")]:
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setitem(sys.modules, "torchrec", None)
    # a DLRM pickles plain tensors, so every ranker of the bundle loads and serves (ONNX)
    ranking = load_ranking(bundle.path, section, bundle.item_ids)
    assert set(ranking.rankers) == set(section["rankers"])
    served = dataclasses.replace(bundle, ranking=ranking)
    for name in ranking.rankers:
        ranked = recommend_pipeline(served, name).run({"user_id": str(bundle.user_ids[0])})
        assert (ranked.state["ranked"].ids[0] >= 0).any()
    # a DLRM pickle that needs TorchRec itself (as older ones did) is skipped with the fix
    # named, the other rankers serve, and the default falls to one of them
    old = tmp_path / "old.pkl"
    old.write_bytes(b"ctorchrec.models.dlrm\nDLRM\n.")  # a bare global of the missing module
    dlrm = {**section["rankers"]["lightgbm"], "native": str(old)}  # absolute: outside root
    with pytest.warns(UserWarning, match=r"'dlrm' not loaded: TorchRec is not installed"):
        partial = load_ranking(
            bundle.path,
            {**section, "rankers": {**section["rankers"], "dlrm": dlrm}, "default": "dlrm"},
            bundle.item_ids,
        )
    assert set(partial.rankers) == set(section["rankers"]) - {"dlrm"}
    assert partial.default == "lightgbm"


def test_cli_rank_only_retrains_the_rankers(shop: Dataset, tmp_path: Path) -> None:
    data = shop.save(tmp_path / "ds")
    out = tmp_path / "b"
    runner = CliRunner()
    base = ["train", "--data", str(data), "--out", str(out), "--candidates", "50"]
    first = runner.invoke(app, [*base, "--source", "popular", "--source", "covisit",
                                "--no-ranking"])  # fmt: skip
    assert first.exit_code == 0, first.output
    assert load_bundle(out).ranking is None
    again = runner.invoke(app, [*base, "--rank-only", "--ranker", "lightgbm"])
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout)
    assert summary["default_ranker"] == "lightgbm" and "+rank-" in summary["version"]
    assert set(load_bundle(out).ranking.rankers) == {"lightgbm"}  # type: ignore[union-attr]
    rows = load_bundle(out).manifest["ranking"]["rows"]["train"]
    capped = runner.invoke(app, [*base, "--rank-only", "--ranker", "lightgbm",
                                 "--ranker-rows", "1"])  # fmt: skip
    assert capped.exit_code == 0, capped.output
    section = load_bundle(out).manifest["ranking"]
    assert section["config"]["max_rows"] == 1
    # one batch of users a fold: fewer rows than every fitting user's list
    assert 0 < section["rows"]["train"] < rows
    bad = runner.invoke(app, [*base, "--rank-only", "--ranker", "xgb"])
    assert bad.exit_code == 2 and "unknown ranker(s) ['xgb']" in bad.output
    zero = runner.invoke(app, [*base, "--rank-only", "--ranker-rows", "0"])
    assert zero.exit_code == 2 and "--ranker-rows" in zero.output
