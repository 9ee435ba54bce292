"""The versioned artifact bundle: train every source, index it, write it with a manifest.

A bundle directory holds ``manifest.json`` (version, dataset fingerprint, config, package
versions, metrics, and a sha256 per file), ``models/<source>.pkl``, ``indexes/<source>.faiss``
for vector sources, ``items.parquet`` / ``users.parquet`` (the id maps) and ``sequences.npz``
(every user's history, for serving). Loading checks every file against the manifest, so a
truncated or swapped file is refused by name instead of serving garbage.

Model files are pickles: load bundles you built or trust, as with any pickle.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import platform
import time
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from models.attributes import coverage as attribute_coverage
from models.base import TrainingData
from models.registry import make_model
from recsys.bundle_files import BUNDLE_FORMAT, check_manifest, checksums, sha256
from recsys.catalog import Catalog, catalog_frame
from recsys.data.contract import Dataset, dataset_fingerprint
from recsys.data.sequences import EncodedDataset, Sequences, encode
from recsys.data.split import leave_one_out
from recsys.errors import BundleError
from recsys.evaluation.protocol import evaluate_fitted
from recsys.overrides import Overrides, check_overrides, configured
from recsys.ranking.bundle import Ranking, load_ranking, train_ranking
from recsys.ranking.folds import refit_sources
from recsys.ranking.train import RankerTrainConfig
from recsys.retrieval.retriever import RetrievalConfig, Retriever
from recsys.retrieval.sources import CandidateSource, index_for

if TYPE_CHECKING:
    from features.store import FeatureStoreConfig

__all__ = ["Bundle", "BundleError", "TrainConfig", "dataset_fingerprint"]

HISTORY_FREE = {"popular"}  # sources that answer without a history: the cold-start path
MIN_TEXT_COVERAGE = 0.05  # below this share of items with real text, a text source is noise


@dataclass(frozen=True)
class TrainConfig:
    sources: tuple[str, ...] = ("popular", "covisit", "als", "sasrec", "text", "attributes")
    seed: int = 0
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    # Per-source config fields, e.g. (("sasrec", (("max_len", 20),)),): hyper-parameters chosen
    # on a dataset's validation targets (`recsys train --set sasrec.max_len=20`).
    overrides: Overrides = ()
    # The rankers over the merged candidates (with their Feast features); None = retrieval only.
    ranking: RankerTrainConfig | None = field(default_factory=RankerTrainConfig)
    # Each source's validation metrics (its fusion weight) come from a seeded sample of this
    # many users. Full ranking costs users x items: with every user, 1M users x 100k items took
    # 2,382 s to train instead of 676 s (benchmarks/scaling.py). At 50k users the estimate's
    # standard error is about 1% of NDCG@10. None = every user.
    valid_users: int | None = 50_000
    # After the rankers and the served order are chosen (on sources fitted to the training
    # split), the served sources and feature tables are refitted on training + validation
    # items: they then know each user's items up to the one before the test target, as the
    # fit the rankers learned from knew them up to the one before the validation target.
    # Without it every served model misses each user's latest item. False keeps the
    # training-split fit (the one `recsys evaluate --split valid` can judge honestly).
    refit_with_valid: bool = True

    def overrides_for(self, source: str) -> dict[str, Any]:
        return {k: v for name, pairs in self.overrides if name == source for k, v in pairs}


def _configure(model: Any, name: str, config: TrainConfig) -> None:
    """Apply the seed and any overrides to a model's frozen config; bad fields are named."""
    current = getattr(model, "config", None)
    if current is None:
        return
    changes = config.overrides_for(name)
    if "seed" in {f.name for f in fields(current)}:
        changes = {"seed": config.seed, **changes}
    model.config = configured(name, current, changes)


@dataclass
class Bundle:
    path: Path
    manifest: dict[str, Any]
    retriever: Retriever
    item_ids: np.ndarray  # (I,) str
    user_ids: np.ndarray  # (U,) str
    sequences: Sequences  # every user's full history at training time
    ranking: Ranking | None = None  # rankers, their features and the default one
    catalog: Catalog | None = None  # what filters and search read; item_id only in old bundles

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    def __post_init__(self) -> None:
        if self.catalog is None:
            self.catalog = Catalog(item_ids=self.item_ids)

    @property
    def items(self) -> Catalog:
        """The catalog (item ids alone when the bundle kept no catalog columns)."""
        assert self.catalog is not None  # set in __post_init__
        return self.catalog

    def user_index(self) -> dict[str, int]:
        return {str(u): i for i, u in enumerate(self.user_ids)}

    @property
    def refitted(self) -> bool:
        """Whether the served sources were refitted with the validation items (bundles
        written before the refit existed serve the training-split fit)."""
        return bool(self.manifest["config"].get("refit_with_valid", False))

    def fitted_on(self) -> Sequences:
        """What the served sources and online features were fitted on: each user's items
        without the test target (refit_with_valid), or the training split of older bundles."""
        split = leave_one_out(EncodedDataset(self.user_ids, self.item_ids, self.sequences))
        return split.train_and_valid if self.refitted else split.train


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("recsys-engine", "numpy", "pandas", "torch", "implicit", "faiss-cpu", "scipy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def fit_sources(
    ds: Dataset, enc: EncodedDataset, config: TrainConfig, progress: bool = False
) -> tuple[list[CandidateSource], dict[str, Any]]:
    """Fit every configured source on the training split; early stopping uses validation."""
    split = leave_one_out(enc)
    data = TrainingData(split.train, ds.items)
    sources: list[CandidateSource] = []
    skipped: dict[str, str] = {}
    report: dict[str, Any] = {"skipped": skipped}
    for name in tqdm(config.sources, desc="train sources", disable=not progress, unit="src"):
        if name == "text" and _text_coverage(ds) < MIN_TEXT_COVERAGE:
            skipped["text"] = "the catalog has no item text (placeholder titles only)"
            continue
        if name == "attributes" and attribute_coverage(data.items) < MIN_TEXT_COVERAGE:
            skipped["attributes"] = "the catalog has no brand, category or attributes"
            continue
        model = make_model(name)
        _configure(model, name, config)
        started = time.perf_counter()
        model.fit(data, valid=split.valid)
        fit_seconds = time.perf_counter() - started
        index = index_for(model, split.train, seed=config.seed)
        source = CandidateSource(name, model, index, needs_history=name not in HISTORY_FREE)
        valid = evaluate_fitted(
            model, split, "valid", max_users=config.valid_users, seed=config.seed
        )
        report[name] = {
            "fit_seconds": round(fit_seconds, 3),
            "config": model.config_dict(),
            "valid": {k: v for k, v in valid.items() if k not in ("users", "sampled_from")},
            "valid_users": valid["users"],
        }
        sources.append(source)
    return sources, report


def _text_coverage(ds: Dataset) -> float:
    from models.text import item_texts

    _, real = item_texts(ds.items, max_chars=64)
    return float(real.mean()) if len(real) else 0.0


def train_bundle(
    ds: Dataset, out: str | Path, config: TrainConfig | None = None, progress: bool = False
) -> Path:
    config = config or TrainConfig()
    unknown = [s for s in config.sources if s not in _known_sources()]
    if unknown:
        raise ValueError(f"unknown source(s) {unknown}; valid sources are {_known_sources()}")
    if not any(s in HISTORY_FREE for s in config.sources):
        raise ValueError(f"sources {list(config.sources)} need a cold-start source: add 'popular'")
    check_overrides(config.overrides)  # a bad value fails now, not after the first fits
    np.random.seed(config.seed)
    started = time.perf_counter()
    enc = encode(ds)
    sources, report = fit_sources(ds, enc, config, progress)
    if not config.retrieval.fusion_weights:
        fusion = tuple((s.name, float(report[s.name]["valid"]["ndcg@10"])) for s in sources)
        config = replace(config, retrieval=replace(config.retrieval, fusion_weights=fusion))
    path = Path(out)
    (path / "indexes").mkdir(parents=True, exist_ok=True)
    (path / "models").mkdir(exist_ok=True)
    split = leave_one_out(enc)
    served = split.train_and_valid if config.refit_with_valid else split.train
    ranking_section = None
    if config.ranking is not None:
        retriever = Retriever(sources, config.retrieval)
        ranking_section, _ = train_ranking(
            ds, enc, split, retriever, path, config.ranking, progress, served=served
        )
        tuned = RetrievalConfig(**_retrieval_args(ranking_section["retrieval"]))
        config = replace(config, retrieval=tuned)  # the merge the rankers learned from serves
    refit_seconds = None
    if config.refit_with_valid:
        refit_started = time.perf_counter()
        sources = refit_sources(sources, ds, served, progress)
        refit_seconds = round(time.perf_counter() - refit_started, 3)
    files = _write_sources(path, sources)
    # item_id plus the catalog columns the dataset has, in item-index order (serving filters on
    # them and search matches them)
    catalog_frame(ds.items).to_parquet(path / "items.parquet", index=False)
    pd.DataFrame({"user_id": enc.user_ids}).to_parquet(path / "users.parquet", index=False)
    seqs = enc.sequences
    np.savez(
        path / "sequences.npz",
        indptr=seqs.indptr,
        items=seqs.items,
        ts=seqs.ts,
        strength=seqs.strength,
        n_items=np.array(seqs.n_items),
    )
    fingerprint = dataset_fingerprint(ds)
    config_doc = asdict(config)
    config_hash = hashlib.sha256(json.dumps(config_doc, sort_keys=True).encode()).hexdigest()
    files_sums = checksums(path)
    manifest = {
        "format": BUNDLE_FORMAT,
        "version": f"{ds.name}-{fingerprint[:8]}-{config_hash[:8]}-seed{config.seed}",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": {"name": ds.name, "fingerprint": fingerprint, "counts": ds.counts()},
        "config": config_doc,
        "sources": {name: {**files[name], **report[name]} for name in files},
        "skipped_sources": report.get("skipped", {}),
        "ranking": ranking_section,
        "refit_seconds": refit_seconds,
        "train_seconds": round(time.perf_counter() - started, 3),
        "versions": package_versions(),
        "checksums": files_sums,
    }
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return path


def _write_sources(path: Path, sources: list[CandidateSource]) -> dict[str, dict[str, Any]]:
    """Pickle each source's model (and save its index) under ``path``; their manifest files."""
    files: dict[str, dict[str, Any]] = {}
    for source in sources:
        model_file = f"models/{source.name}.pkl"
        with (path / model_file).open("wb") as fh:
            pickle.dump(source.model, fh, protocol=pickle.HIGHEST_PROTOCOL)
        entry: dict[str, Any] = {"model": model_file, "needs_history": source.needs_history}
        if source.index is not None:
            entry["index"] = f"indexes/{source.name}.faiss"
            source.index.save(path / entry["index"])
            entry["index_kind"] = source.index.kind_
            if source.index.tuning_:  # an IVF index's lists per search, chosen on recall
                entry["index_tuning"] = source.index.tuning_
        files[source.name] = entry
    return files


def attach_ranking(
    ds: Dataset,
    path: str | Path,
    config: RankerTrainConfig | None = None,
    progress: bool = False,
    refit: bool = False,
) -> Path:
    """Train (or retrain) the rankers of an existing bundle on its own candidates.

    The candidate sources stay as they are, except that ``refit=True`` on a bundle that serves
    the training-split fit refits them with the validation items afterwards, as ``train_bundle``
    does (a refitted bundle stays refitted). The manifest gains the ranking section and new
    checksums, and its version a ranking suffix, so a served version names what ranks.
    """
    config = config or RankerTrainConfig()
    bundle = load_bundle(path)
    fingerprint = dataset_fingerprint(ds)
    if fingerprint != bundle.manifest["dataset"]["fingerprint"]:
        raise BundleError(f"bundle {bundle.version} was not trained on dataset {ds.name!r}")
    root = Path(path)
    enc = encode(ds)
    started = time.perf_counter()
    split = leave_one_out(enc)
    manifest = bundle.manifest
    retriever, served = bundle.retriever, None
    was_refit = bundle.refitted
    if was_refit:
        # the served sources know the validation targets: the rankers need ones that do not
        fold0 = refit_sources(retriever.sources, ds, split.train, progress)
        retriever, served = Retriever(fold0, retriever.config), split.train_and_valid
    elif refit:
        served = split.train_and_valid
    section, _ = train_ranking(ds, enc, split, retriever, root, config, progress, served=served)
    manifest["config"]["retrieval"] = section["retrieval"]
    if refit and not was_refit:
        refit_started = time.perf_counter()
        sources = refit_sources(retriever.sources, ds, split.train_and_valid, progress)
        for name, entry in _write_sources(root, sources).items():
            manifest["sources"][name].update(entry)
        manifest["config"]["refit_with_valid"] = True
        manifest["refit_seconds"] = round(time.perf_counter() - refit_started, 3)
    manifest["config"]["ranking"] = asdict(config)
    manifest["ranking"] = {**section, "attached_seconds": round(time.perf_counter() - started, 3)}
    ranking_hash = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode())
    base = str(manifest["version"]).split("+rank-")[0]
    manifest["version"] = f"{base}+rank-{ranking_hash.hexdigest()[:8]}"
    manifest["checksums"] = checksums(root)
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return root


def _known_sources() -> list[str]:
    from models.registry import MODELS

    return sorted(MODELS)


def load_bundle(path: str | Path, features: FeatureStoreConfig | None = None) -> Bundle:
    """Load and verify a bundle; ``features`` configures its rankers' online store (None: from
    the ``RECSYS_FEATURES_*`` environment)."""
    root = Path(path)
    manifest_file = root / "manifest.json"
    if not manifest_file.is_file():
        raise BundleError(f"{manifest_file}: missing; is {root} an artifact bundle (recsys train)?")
    try:
        manifest = json.loads(manifest_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest_file}: not valid JSON ({exc})") from exc
    check_manifest(manifest_file, manifest)
    for rel, expected in manifest["checksums"].items():
        file = root / rel
        if not file.is_file():
            raise BundleError(f"{file}: listed in the manifest but missing")
        if sha256(file) != expected:
            raise BundleError(f"{file}: checksum differs from the manifest (corrupt or replaced)")
    sources: list[CandidateSource] = []
    for name, entry in manifest["sources"].items():
        try:
            with (root / entry["model"]).open("rb") as fh:
                model = pickle.load(fh)  # bundles are built by `recsys train`; see module doc
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ValueError) as exc:
            raise BundleError(
                f"{root / entry['model']}: not a loadable model ({type(exc).__name__}: {exc})"
            ) from exc
        index = None
        if "index" in entry:
            from models.index import VectorIndex

            index = VectorIndex.load(root / entry["index"])
        sources.append(CandidateSource(name, model, index, needs_history=entry["needs_history"]))
    retrieval = RetrievalConfig(**_retrieval_args(manifest["config"]["retrieval"]))
    catalog = Catalog.from_frame(pd.read_parquet(root / "items.parquet"))
    item_ids = catalog.item_ids
    ranking = None
    if manifest.get("ranking"):
        ranking = load_ranking(root, manifest["ranking"], item_ids, features)
        ranking.features = _guarded(ranking.features, features)
    seq = np.load(root / "sequences.npz")
    sequences = Sequences(
        seq["indptr"], seq["items"], seq["ts"], seq["strength"], int(seq["n_items"])
    )
    return Bundle(
        path=root,
        manifest=manifest,
        retriever=Retriever(sources, retrieval),
        item_ids=item_ids,
        user_ids=pd.read_parquet(root / "users.parquet")["user_id"].to_numpy(dtype=object),
        sequences=sequences,
        ranking=ranking,
        catalog=catalog,
    )


def _guarded(online: Any, features: FeatureStoreConfig | None) -> Any:
    """Serving reads the online store through a circuit breaker (features.guarded)."""
    from features.guarded import GuardedFeatures
    from features.online import OnlineFeatures
    from features.store import FeatureStoreConfig

    if not isinstance(online, OnlineFeatures):
        return online
    config = features if features is not None else FeatureStoreConfig.from_env()
    return GuardedFeatures.of(online, config.breaker_failures, config.breaker_reset_s)


def _retrieval_args(doc: dict[str, Any]) -> dict[str, Any]:
    pairs = ("quotas", "fusion_weights", "fill_weights")
    return {**doc, **{key: tuple(tuple(q) for q in doc.get(key, ())) for key in pairs}}


def record_section(path: str | Path, name: str, doc: dict[str, Any]) -> None:
    """Set the manifest's ``name`` section (tuning done after training, such as the LLM rerank
    weight) in place; the bundle's files and version stay as they are."""
    file = Path(path) / "manifest.json"
    manifest = json.loads(file.read_text())
    if name in {"version", "dataset", "config", "sources", "ranking", "checksums"}:
        raise BundleError(f"section {name!r} belongs to training; it cannot be recorded")
    manifest[name] = doc
    staged = file.with_suffix(".json.tmp")
    staged.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    staged.replace(file)  # atomic: a server loading now reads the old manifest or the new one
