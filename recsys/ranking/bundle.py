"""The ranking half of an artifact bundle: features, rankers, ONNX files, parity checks.

Training (``train_ranking``) builds the feature tables from the training split, applies the
Feast repository under ``<bundle>/feature_repo`` and materializes them into its online store,
fits each ranker on the retriever's candidates for the validation targets, exports it to ONNX
and checks the exported scores against the native ones. Loading (``load_ranking``) opens the
ONNX files with the preferred execution providers and the online store behind its cache.

The feature repository is a live store (events and re-materialization write to it), so its
files are not checksummed with the immutable artifacts.
"""

from __future__ import annotations

import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.data.contract import Dataset
from recsys.data.sequences import EncodedDataset
from recsys.data.split import LeaveOneOut
from recsys.ranking.features import FeatureSource, FrameSpec, TableFeatures
from recsys.ranking.frame import group_ndcg, select_groups
from recsys.ranking.ranker import Ranker
from recsys.ranking.train import RankerTrainConfig, fit_rankers, training_frame
from recsys.retrieval.retriever import Retriever

if TYPE_CHECKING:
    from features.store import FeatureStoreConfig

FEATURE_REPO = "feature_repo"
PARITY_GROUPS = 50  # selection groups (~5k rows) scored both ways at export


@dataclass
class Ranking:
    rankers: dict[str, Ranker]
    features: FeatureSource
    default: str  # the ranker with the best selection NDCG@10 at training


def train_ranking(
    ds: Dataset,
    enc: EncodedDataset,
    split: LeaveOneOut,
    retriever: Retriever,
    root: Path,
    config: RankerTrainConfig,
    progress: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit, export and verify the rankers into ``root``; (manifest section, checksummed files)."""
    from features.store import FeatureRepo
    from features.tables import build_feature_tables
    from models.onnx_runtime import OnnxSession

    tables = build_feature_tables(ds, enc, split.train)
    repo = FeatureRepo(root / FEATURE_REPO)
    repo.apply()
    feature_version = repo.materialize(tables)
    features = TableFeatures(tables, enc)  # the offline values; serving reads the same online
    spec = FrameSpec.fit(retriever.names, enc.n_items, features.item_matrix)
    frame = training_frame(retriever, split.valid, enc, features, spec, config, progress)
    if not len(frame.group):
        raise ValueError(
            "no validation target is among the merged candidates: nothing to train a ranker on"
        )
    # A seeded tenth of the groups selects the serving ranker; the rest train (each ranker
    # also holds out its own share for early stopping).
    order = np.random.default_rng(config.seed).permutation(len(frame.group))
    n_select = max(1, len(order) // 10)
    selection = select_groups(frame, np.sort(order[:n_select]))
    train = select_groups(frame, np.sort(order[n_select:]))
    models, report = fit_rankers(train, config, progress)
    (root / "rankers").mkdir(exist_ok=True)
    files: dict[str, Any] = {}
    sample = select_groups(selection, np.arange(min(len(selection.group), PARITY_GROUPS)))
    for name, model in models.items():
        native_file, onnx_file = f"rankers/{name}.pkl", f"rankers/{name}.onnx"
        with (root / native_file).open("wb") as fh:
            pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
        model.export_onnx(root / onnx_file)
        session = OnnxSession(root / onnx_file)
        diff = float(np.abs(session.run(model.onnx_feeds(sample)) - model.predict(sample)).max())
        if diff > model.onnx_tolerance:
            raise ValueError(
                f"{name}: ONNX scores differ from native by {diff:.2e} "
                f"(> {model.onnx_tolerance:.0e}); refusing to write a bundle that would "
                "serve other scores than were evaluated"
            )
        report[name].update(
            {
                "native": native_file,
                "onnx": onnx_file,
                "onnx_max_abs_diff": diff,
                "selection_ndcg@10": round(group_ndcg(model.predict(selection), selection), 5),
            }
        )
        files[name] = {"native": native_file, "onnx": onnx_file}
    default = max(models, key=lambda n: report[n]["selection_ndcg@10"])
    section = {
        "rankers": {name: report[name] for name in models},
        "default": default,
        "spec": {"sources": list(spec.sources), "cardinality": list(spec.cardinality)},
        "rows": report["rows"],
        "config": report["config"],
        "features": {
            "repo": FEATURE_REPO,
            "version": feature_version,
            "service": _service_name(),
        },
    }
    return section, files


def _service_name() -> str:
    from features.definitions import RANKER_VERSION

    return RANKER_VERSION


def load_ranking(
    root: Path,
    section: dict[str, Any],
    item_ids: np.ndarray,
    features: FeatureStoreConfig | None = None,
) -> Ranking:
    """The bundle's rankers behind ONNX sessions. One whose pickle needs a module this machine
    lacks (a DLRM written before its pickles left TorchRec out) is skipped with a warning and
    the others serve; the default falls to the best of them if it was the one skipped."""
    from features.store import FeatureRepo
    from models.onnx_runtime import OnnxSession
    from models.ranker_registry import RANKERS, missing

    spec = FrameSpec(tuple(section["spec"]["sources"]), tuple(section["spec"]["cardinality"]))
    rankers: dict[str, Ranker] = {}
    skipped: dict[str, str] = {}
    for name, entry in section["rankers"].items():
        try:
            with (root / entry["native"]).open("rb") as fh:
                model = pickle.load(fh)  # bundles are built by `recsys train`; see artifacts doc
        except ImportError as e:
            # the registry's install hint where it has one, else the import error itself
            skipped[name] = (missing(name) if name in RANKERS else None) or str(e)
            warnings.warn(f"ranker {name!r} not loaded: {skipped[name]}", stacklevel=2)
            continue
        rankers[name] = Ranker(name, spec, model, OnnxSession(root / entry["onnx"]))
    if not rankers:
        raise ImportError(f"no ranker of this bundle loads here: {skipped}")
    default = section["default"]
    if default not in rankers:
        default = max(rankers, key=lambda n: section["rankers"][n].get("selection_ndcg@10", 0.0))
    online = FeatureRepo(root / section["features"]["repo"], features).online()
    online.align(item_ids)
    return Ranking(rankers=rankers, features=online, default=default)
