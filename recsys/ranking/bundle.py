"""The ranking half of an artifact bundle: features, rankers, ONNX files, parity checks.

Training (``train_ranking``) builds the feature tables from the training split, applies the
Feast repository under ``<bundle>/feature_repo`` and materializes them into its online store,
fits each ranker on the retriever's candidates for the validation targets, exports it to ONNX
and checks the exported scores against the native ones. Loading (``load_ranking``) opens the
rankers through the runtime ``RECSYS_RANKER_RUNTIME`` picks (``models.ranker_runtime``: compiled
trees for LightGBM, ONNX Runtime with the preferred execution providers otherwise) and the
online store behind its cache.

The feature repository is a live store (events and re-materialization write to it), so its
files are not checksummed with the immutable artifacts.
"""

from __future__ import annotations

import pickle
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.data.contract import Dataset
from recsys.data.sequences import EncodedDataset, Sequences
from recsys.data.split import LeaveOneOut
from recsys.ranking.choose import choose_order, validation_ndcg
from recsys.ranking.features import DEFAULT_CONTEXT, FeatureSource, FrameSpec, TableFeatures
from recsys.ranking.folds import earlier_frame
from recsys.ranking.frame import select_groups
from recsys.ranking.ranker import Ranker
from recsys.ranking.train import (
    RankerTrainConfig,
    concat_frames,
    fit_rankers,
    split_users,
    subset,
    training_frame,
)
from recsys.retrieval.retriever import Retriever
from recsys.retrieval.tune import FillTuneConfig, tune_fill

if TYPE_CHECKING:
    from features.store import FeatureStoreConfig

FEATURE_REPO = "feature_repo"
PARITY_GROUPS = 50  # training groups (~5k rows) scored both ways at export


@dataclass
class Ranking:
    rankers: dict[str, Ranker]
    features: FeatureSource
    default: str  # the ranker with the best selection NDCG@10 at training
    # What serves when no ranker is asked for, chosen on held-out validation users: None = the
    # merged fusion; else this ranker, rank-blended with the merged order at weight ``blend``.
    serve: str | None = None
    blend: float = 0.0


def train_ranking(
    ds: Dataset,
    enc: EncodedDataset,
    split: LeaveOneOut,
    retriever: Retriever,
    root: Path,
    config: RankerTrainConfig,
    progress: bool = False,
    served: Sequences | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit, export and verify the rankers into ``root``; (manifest section, checksummed files).

    ``retriever``'s sources are fitted on ``split.train``: rankers learn, and the order is
    chosen, on validation targets those sources never saw. ``served`` is what the served
    sources were fitted on (default ``split.train``); the online store gets features computed
    from it, as the training rows got them from ``split.train``."""
    from features.store import FeatureRepo
    from features.tables import build_feature_tables
    from models.onnx_runtime import OnnxSession
    from models.ranker_runtime import compile_and_check

    tables = build_feature_tables(ds, enc, split.train)
    repo = FeatureRepo(root / FEATURE_REPO)
    repo.apply()
    fresh = tables if served is None else build_feature_tables(ds, enc, served)
    feature_version = repo.materialize(fresh)
    features = TableFeatures(tables, enc)  # the training rows' values
    spec = FrameSpec.fit(retriever.names, enc.n_items, features.item_matrix, config.context)
    # the candidates carry the co-visitation links the rows read, when training and serving
    retriever = Retriever(retriever.sources, replace(retriever.config, links=spec.links))
    # Validation users are split: rankers learn from one part, the served order is chosen on
    # the other (by full-ranking NDCG@10, against the merged fusion), so the choice is made on
    # users no ranker has seen. Test targets are never read here.
    fit_set, select_set = split_users(split.valid, config.select_share, config.seed)
    if config.select_max_users is not None and len(select_set) > config.select_max_users:
        select_set = subset(select_set, np.arange(config.select_max_users))
    # The merge's fill and quota share, chosen on the rankers' users: the rankers then learn
    # from the candidates that will serve, and the order is chosen on others.
    tuning = None
    if config.tune_fill:
        tuned, tuning = tune_fill(retriever, fit_set, FillTuneConfig(seed=config.seed))
        retriever = Retriever(retriever.sources, tuned)
    # the folds share the user and row budgets, so a large dataset trains on as many rows as
    # without them (from more recent and older targets alike) and a small one on more
    n_folds = config.folds + 1
    per_fold = replace(
        config,
        max_users=None if config.max_users is None else -(-config.max_users // n_folds),
        max_rows=None if config.max_rows is None else -(-config.max_rows // n_folds),
    )
    frames = [training_frame(retriever, fit_set, enc, features, spec, per_fold, progress)]
    for k in range(1, config.folds + 1):
        frames.append(earlier_frame(retriever, ds, enc, k, fit_set.users, spec, per_fold, progress))
    frame = concat_frames(frames)
    if not len(frame.group):
        raise ValueError(
            "no validation target is among the merged candidates: nothing to train a ranker on"
        )
    models, report = fit_rankers(frame, config, progress)
    report["rows"]["groups_per_fold"] = [len(f.group) for f in frames]
    (root / "rankers").mkdir(exist_ok=True)
    files: dict[str, Any] = {}
    sample = select_groups(frame, np.arange(min(len(frame.group), PARITY_GROUPS)))
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
        report[name].update({"native": native_file, "onnx": onnx_file, "onnx_max_abs_diff": diff})
        files[name] = {"native": native_file, "onnx": onnx_file}
        compiled = compile_and_check(model, root, name, sample)  # {} unless trees + lleaves
        report[name].update(compiled)
        if compiled:
            files[name]["trees"] = compiled["trees"]
    select_users = [str(u) for u in enc.user_ids[select_set.users]]
    per_user = validation_ndcg(
        retriever, select_set, select_users, features, spec,
        {name: model.predict for name, model in models.items()}, config.blends,
    )  # fmt: skip
    _, order = choose_order(per_user, config.z)
    for name in models:
        report[name]["selection_ndcg@10"] = order["validation_ndcg@10"][name]
    default = max(models, key=lambda n: report[n]["selection_ndcg@10"])
    section = {
        "rankers": {name: report[name] for name in models},
        "default": default,
        "order": order,
        "spec": {
            "sources": list(spec.sources),
            "cardinality": list(spec.cardinality),
            "context": list(spec.context),
        },
        "rows": report["rows"],
        "config": report["config"],
        "retrieval": asdict(retriever.config),  # what the rankers learned from; it serves
        "fill_tuning": tuning,
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
    from models.ranker_registry import RANKERS, missing
    from models.ranker_runtime import open_scorer

    saved = section["spec"]
    spec = FrameSpec(
        tuple(saved["sources"]),
        tuple(saved["cardinality"]),
        tuple(saved.get("context", DEFAULT_CONTEXT)),  # bundles from before it was recorded
    )
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
        rankers[name] = Ranker(name, spec, model, open_scorer(root, entry, name))
    if not rankers:
        raise ImportError(f"no ranker of this bundle loads here: {skipped}")
    default = section["default"]
    if default not in rankers:
        default = max(rankers, key=lambda n: section["rankers"][n].get("selection_ndcg@10", 0.0))
    online = FeatureRepo(root / section["features"]["repo"], features).online()
    online.align(item_ids)
    # Bundles written before the order was chosen against the fusion served their default.
    order = section.get("order", {"ranker": section["default"], "blend": 0.0})
    serve, blend = order["ranker"], float(order["blend"])
    if serve is not None and serve not in rankers:
        warnings.warn(
            f"the chosen order {order.get('chosen', serve)!r} needs ranker {serve!r}, which did "
            "not load; serving the merged fusion instead",
            stacklevel=2,
        )
        serve, blend = None, 0.0
    return Ranking(rankers=rankers, features=online, default=default, serve=serve, blend=blend)
