"""Full-pipeline quality: every source, the merged list, and each ranker over it, per dataset.

    python benchmarks/ranking.py [--datasets amazon-beauty amazon-industrial synthetic-shop]

Starts from the retrieval bundles that benchmarks/retrieval.py left in var/bench/bundles/
(trains a retrieval-only bundle where one is missing), attaches the rankers (`recsys train
--rank-only`: Feast features materialized, LightGBM and DLRM trained on the validation targets'
candidates, exported to ONNX), then evaluates on the test targets. Prints one JSON document and
writes benchmarks/results/ranking.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.baselines import REAL  # noqa: E402
from benchmarks.retrieval import TUNED, load  # noqa: E402
from recsys.artifacts import (  # noqa: E402
    TrainConfig,
    attach_ranking,
    load_bundle,
    train_bundle,
)
from recsys.evaluation.retrieval import evaluate_bundle  # noqa: E402
from recsys.ranking.train import RankerTrainConfig  # noqa: E402

KEYS = ("recall@10", "ndcg@10", "mrr@10", "recall@20", "ndcg@20")
NAMES = ("amazon-beauty", "amazon-industrial", "synthetic-shop", "ml-100k")


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| dataset | list | " + " | ".join(KEYS) + " |", "|---" * (len(KEYS) + 2) + "|"]
    for r in rows:
        vals = " | ".join(f"{r[k]:.4f}" for k in KEYS)
        lines.append(f"| {r['dataset']} | {r['list']} | {vals} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(NAMES[:3]), choices=NAMES)
    parser.add_argument("--synth-users", type=int, default=10_000)
    parser.add_argument("--synth-items", type=int, default=2_000)
    parser.add_argument("--rankers", nargs="+", default=["lightgbm", "dlrm"])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for name in args.datasets:
        if name in REAL and not REAL[name][1].exists():
            print(f"skip {name}: {REAL[name][1]} not found", file=sys.stderr)
            continue
        ds = load(name, args)
        path = ROOT / "var" / "bench" / "bundles" / name
        if not (path / "manifest.json").is_file():
            config = TrainConfig(overrides=TUNED.get(name, ()), ranking=None)
            train_bundle(ds, path, config, progress=True)
        started = time.perf_counter()
        attach_ranking(ds, path, RankerTrainConfig(rankers=tuple(args.rankers)), progress=True)
        attach_seconds = time.perf_counter() - started
        bundle = load_bundle(path)
        result = evaluate_bundle(ds, bundle, progress=True)
        for source, metrics in result["sources"].items():
            rows.append({"dataset": name, "list": source, **metrics})
        rows.append({"dataset": name, "list": "merged (RRF)", **result["merged"]})
        for ranker, metrics in result["pipeline"].items():
            rows.append({"dataset": name, "list": f"pipeline: {ranker}", **metrics})
        best_source = max(result["sources"].items(), key=lambda kv: kv[1]["ndcg@10"])
        ranking = bundle.manifest["ranking"]
        summary[name] = {
            "best_source": best_source[0],
            "best_source_ndcg@10": best_source[1]["ndcg@10"],
            "pipeline_ndcg@10": {r: m["ndcg@10"] for r, m in result["pipeline"].items()},
            "default_ranker": ranking["default"],
            "onnx_max_abs_diff": {r: v["onnx_max_abs_diff"] for r, v in ranking["rankers"].items()},
            "ranker_fit_seconds": {r: v["fit_seconds"] for r, v in ranking["rankers"].items()},
            "training_rows": ranking["rows"],
            "attach_seconds": round(attach_seconds, 1),
        }
        print(f"{name}: {json.dumps(summary[name])}", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {"summary": summary, "rows": rows}
    (args.out / "ranking.json").write_text(json.dumps(doc, indent=2))
    (args.out / "ranking.md").write_text(markdown(rows))
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
