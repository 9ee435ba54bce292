"""Retrieval quality on every real dataset present and the synthetic shop, through bundles.

    python benchmarks/retrieval.py [--datasets amazon-beauty ml-100k ...] [--synth-users 10000]

For each dataset: `recsys train` (every candidate source, early stopping on validation), then
`recsys evaluate --artifacts` on the test targets. Prints one JSON document and writes
benchmarks/results/retrieval.json and .md, next to the published numbers on Beauty
(docs/datasets.md). Real datasets come from benchmarks.baselines.REAL (docs/datasets.md:
data/raw/ or RECSYS_DATASETS_DIR); a missing one is skipped.
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

from benchmarks.baselines import REAL, REFERENCE  # noqa: E402
from recsys.artifacts import TrainConfig, load_bundle, train_bundle  # noqa: E402
from recsys.data.contract import Dataset  # noqa: E402
from recsys.data.importers import import_dataset  # noqa: E402
from recsys.data.synth import generate  # noqa: E402
from recsys.evaluation.retrieval import evaluate_bundle  # noqa: E402

# Per-dataset overrides chosen on validation targets (benchmarks/sasrec_beauty.py --dataset
# ml100k): ML-100k's long histories want a short recent window and the seen-item mask.
TUNED = {"ml-100k": (("sasrec", (("dropout", 0.2), ("mask_seen", True), ("max_len", 20))),)}
KEYS = ("recall@10", "ndcg@10", "recall@20", "ndcg@20", "candidate_recall@100",
        "candidate_recall@500")  # fmt: skip


def load(name: str, args: argparse.Namespace) -> Dataset:
    if name == "synthetic-shop":
        return generate(users=args.synth_users, items=args.synth_items, seed=0)
    fmt, src = REAL[name]
    return import_dataset(fmt, src).dataset


def markdown(rows: list[dict[str, Any]]) -> str:
    head = "| dataset | source | " + " | ".join(KEYS) + " | fit s |"
    lines = [head, "|---" * (len(KEYS) + 3) + "|"]
    for r in rows:
        vals = " | ".join(f"{r[k]:.4f}" if isinstance(r.get(k), float) else "" for k in KEYS)
        fit = r.get("fit_seconds", "")
        lines.append(f"| {r['dataset']} | {r['source']} | {vals} | {fit} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [*REAL, "synthetic-shop"]
    parser.add_argument("--datasets", nargs="+", default=names, choices=names)
    parser.add_argument("--sources", nargs="+", default=list(TrainConfig().sources))
    parser.add_argument("--synth-users", type=int, default=10_000)
    parser.add_argument("--synth-items", type=int, default=2_000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for name in args.datasets:
        if name in REAL and not REAL[name][1].exists():
            print(f"skip {name}: {REAL[name][1]} not found", file=sys.stderr)
            continue
        ds = load(name, args)
        started = time.perf_counter()
        path = train_bundle(
            ds, ROOT / "var" / "bench" / "bundles" / name,
            TrainConfig(sources=tuple(args.sources), overrides=TUNED.get(name, ()), ranking=None),
            progress=True,
        )  # fmt: skip
        train_seconds = time.perf_counter() - started
        bundle = load_bundle(path)
        result = evaluate_bundle(ds, bundle, progress=True)
        fits = {n: s["fit_seconds"] for n, s in bundle.manifest["sources"].items()}
        for source, metrics in result["sources"].items():
            rows.append({"dataset": name, "source": source, "fit_seconds": fits[source],
                         **metrics})  # fmt: skip
        rows.append({"dataset": name, "source": "merged", "fit_seconds": round(train_seconds, 1),
                     "users": result["users"], **result["merged"]})  # fmt: skip
        print(f"{name}: merged {json.dumps(result['merged'])}", file=sys.stderr)
    for (name, model), ref in REFERENCE.items():
        rows.append({"dataset": name, "source": model, **ref})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "retrieval.json").write_text(json.dumps(rows, indent=2))
    (args.out / "retrieval.md").write_text(markdown(rows))
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
