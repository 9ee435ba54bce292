"""Ranking latency: native LightGBM, ONNX Runtime and compiled trees (lleaves) on the same 500
rows, and one request end to end (history, retrieval, features, ranking), on the synthetic shop.

Where ``tl2cgen`` is installed (``pip install tl2cgen``: not in the lock, it is not served), its
compiled C of the same trees is timed beside them; otherwise the output says it was skipped.

    python benchmarks/ranking_latency.py [--users 20000 --items 4000 --requests 300]
    python benchmarks/ranking_latency.py --bundle var/bench/load/bundle  # any trained bundle

Trains a bundle (every source, both rankers) into var/bench/latency unless one is there. Each
timing is the median and p99 of repeated single calls on one thread, the way a request runs;
ratios compare runs made side by side in this process. Prints one JSON document and writes
benchmarks/results/ranking_latency.json.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.threads import pin_compute_threads  # noqa: E402
from recsys.artifacts import TrainConfig, load_bundle, train_bundle  # noqa: E402
from recsys.data.synth import generate  # noqa: E402
from recsys.pipelines import ranker_name, recommend_pipeline  # noqa: E402
from recsys.ranking.features import build_frame  # noqa: E402
from recsys.retrieval.retriever import history_of  # noqa: E402


def timed(fn: Callable[[Any], object], inputs: list[Any], reps: int) -> dict[str, float]:
    """Median and p99 of single calls, cycling through ``inputs``: one request's rows repeated
    would train the branch predictor on its exact tree paths and flatter every tree runtime."""
    for item in inputs:
        fn(item)  # warm
    samples = []
    for i in range(reps):
        item = inputs[i % len(inputs)]
        started = time.perf_counter()
        fn(item)
        samples.append((time.perf_counter() - started) * 1000.0)
    arr = np.asarray(samples)
    return {"median_ms": round(float(np.median(arr)), 4),
            "p99_ms": round(float(np.percentile(arr, 99)), 4)}  # fmt: skip


def tree_runtimes(bundle_path: Path, name: str, entry: dict[str, Any], model: Any) -> dict:
    """ONNX Runtime and compiled trees for one tree ranker, opened side by side whatever
    RECSYS_RANKER_RUNTIME says; a bundle written before compiled trees gets its model text
    exported into var/ here."""
    from models.compiled_trees import CompiledTrees
    from models.onnx_runtime import OnnxSession

    runtimes: dict[str, Any] = {"onnx": OnnxSession(bundle_path / entry["onnx"])}
    trees = bundle_path / entry["trees"] if "trees" in entry else None
    if trees is None:
        trees = model.export_trees(ROOT / "var" / "bench" / "compiled" / f"{name}.txt")
    runtimes["lleaves"] = CompiledTrees(trees, trees.parent / "compiled")
    with contextlib.suppress(ImportError):  # optional: reported as skipped
        runtimes["tl2cgen"] = Tl2cgenTrees(trees, ROOT / "var" / "bench" / "compiled" / name)
    return runtimes


class Tl2cgenTrees:
    """The LightGBM text model compiled to C by tl2cgen (gcc), scored on one thread as a
    session: ``run({"input": x})`` gives (N,) float32. Compiled afresh each run (about a
    second for a few hundred trees)."""

    def __init__(self, model_file: Path, lib_stem: Path) -> None:
        import tl2cgen  # optional: ImportError where absent
        import treelite

        lib_stem.parent.mkdir(parents=True, exist_ok=True)
        library = lib_stem.with_name(f"{lib_stem.name}-tl2cgen.so")
        model = treelite.frontend.load_lightgbm_model(str(model_file))
        tl2cgen.export_lib(model, toolchain="gcc", libpath=str(library), nthread=1)
        self._tl2cgen = tl2cgen
        self._predictor = tl2cgen.Predictor(str(library), nthread=1)
        self.providers = ["tl2cgen"]

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        matrix = self._tl2cgen.DMatrix(np.ascontiguousarray(feeds["input"], np.float32))
        return np.asarray(self._predictor.predict(matrix), dtype=np.float32).reshape(-1)


def runtime_only(model: Any, runtimes: dict[str, Any], frames: list[Any], reps: int) -> dict:
    """The tree runtimes alone, on the same prepared (N, D) float32 matrices: the column
    preparation every path shares is left out, so the ratios are the runtimes' own."""
    from models.lgbm_ranker import _columns

    matrices = [_columns(f)[0] for f in frames]
    booster = model.booster_
    native_scores = [booster.predict(x, num_threads=1) for x in matrices]
    out: dict[str, Any] = {"trees": booster.num_trees(), "rows": int(matrices[0].shape[0])}
    native = timed(lambda x: booster.predict(x, num_threads=1), matrices, reps)
    out["native_median_ms"] = native["median_ms"]
    for label, session in runtimes.items():
        got = timed(partial(lambda s, x: s.run({"input": x}), session), matrices, reps)
        diff = max(
            float(np.abs(session.run({"input": x}) - ref).max())
            for x, ref in zip(matrices, native_scores, strict=True)
        )
        out[f"{label}_median_ms"] = got["median_ms"]
        out[f"{label}_p99_ms"] = got["p99_ms"]
        out[f"{label}_speedup_vs_native"] = round(native["median_ms"] / got["median_ms"], 2)
        out[f"{label}_max_abs_diff"] = diff
    if "lleaves" in runtimes and "onnx" in runtimes:
        out["lleaves_speedup_vs_onnx"] = round(
            out["onnx_median_ms"] / out["lleaves_median_ms"], 2
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=4_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--bundle", type=Path, default=ROOT / "var" / "bench" / "latency")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    pin_compute_threads(1)  # as a serving worker runs: one request, one thread
    if not (args.bundle / "manifest.json").is_file():
        ds = generate(users=args.users, items=args.items, seed=0)
        sources = ("popular", "covisit", "als", "attributes")  # the fast sources
        train_bundle(ds, args.bundle, TrainConfig(sources=sources), progress=True)
    bundle = load_bundle(args.bundle)
    pin_compute_threads(1)  # the bundle loaded faiss's and scipy's pools
    assert bundle.ranking is not None
    rng = np.random.default_rng(0)
    users = rng.choice(bundle.user_ids, args.requests)
    out: dict[str, Any] = {"bundle": bundle.version, "candidates": bundle.retriever.config.total}
    if any(importlib.util.find_spec(m) is None for m in ("tl2cgen", "treelite")):
        out["tl2cgen"] = "skipped: not installed (pip install tl2cgen)"

    # distinct requests' 500 candidate rows, scored both ways
    features = bundle.ranking.features
    spec = next(iter(bundle.ranking.rankers.values())).spec
    requests = []  # (merged, history, user_id)
    for user in users[:40]:
        row = bundle.user_index()[str(user)]
        history = history_of(bundle.sequences.user(row), len(bundle.item_ids))
        merged, _ = bundle.retriever.retrieve(history)
        requests.append((merged, history, str(user)))
    frames = [build_frame(spec, m, h, [u], features) for m, h, u in requests]
    out["rows"] = int(np.median([f.n_rows for f in frames]))
    section = bundle.manifest["ranking"]["rankers"]
    for name, ranker in bundle.ranking.rankers.items():
        # the whole scoring call a request makes (column preparation + runtime), per runtime
        runtimes = {"served": ranker.session}
        if hasattr(ranker.model, "export_trees"):
            runtimes.update(tree_runtimes(bundle.path, name, section[name], ranker.model))
        native = timed(ranker.model.predict, frames, args.requests)
        out[f"{name}_native"] = native
        for label, session in runtimes.items():
            ranker.session = session
            got = timed(ranker.score, frames, args.requests)
            diff = max(float(np.abs(ranker.score(f) - ranker.model.predict(f)).max())
                       for f in frames)  # fmt: skip
            out[f"{name}_{label}"] = {**got, "providers": session.providers,
                                      "speedup_vs_native": round(native["median_ms"]
                                                                 / got["median_ms"], 2),
                                      "max_abs_diff": diff}  # fmt: skip
        ranker.session = runtimes["served"]
        if hasattr(ranker.model, "export_trees"):
            tree_sessions = {k: v for k, v in runtimes.items() if k != "served"}
            out[f"{name}_runtime_only"] = runtime_only(
                ranker.model, tree_sessions, frames, args.requests
            )

    # features for one request: the stored item and user rows plus the request-time ones
    out["build_frame"] = timed(
        lambda r: build_frame(spec, r[0], r[1], [r[2]], features), requests, args.requests
    )

    # end to end, per stage
    for name in bundle.ranking.rankers:
        pipe = recommend_pipeline(bundle, ranker_name(bundle, name))
        totals: list[float] = []
        stages: dict[str, list[float]] = {}
        for user in users:
            result = pipe.run({"user_id": str(user)})
            totals.append(sum(ms for _, ms in result.trace))
            for stage, ms in result.trace:
                stages.setdefault(stage, []).append(ms)
        out[f"request_{name}"] = {
            "median_ms": round(float(np.median(totals)), 3),
            "p99_ms": round(float(np.percentile(totals, 99)), 3),
            "stages_median_ms": {s: round(float(np.median(v)), 3) for s, v in stages.items()},
        }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ranking_latency.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
