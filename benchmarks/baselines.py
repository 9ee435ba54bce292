"""Baseline quality on every real dataset present and on the synthetic shop.

    python benchmarks/baselines.py [--synth-users 100000 --synth-items 20000] [--ties expected]

Imports each dataset into var/bench/, evaluates `popular` and `covisit` with the full-ranking
leave-one-out protocol, prints one JSON document and writes benchmarks/results/baselines.json
and .md, next to the reference numbers on Beauty (docs/datasets.md). The real datasets are read
from `recsys.data.locations.datasets_dir()` (docs/datasets.md: data/raw/ or
RECSYS_DATASETS_DIR); a dataset that is not there is skipped.
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

from models.registry import make_model  # noqa: E402
from recsys.data.contract import Dataset, load_dataset  # noqa: E402
from recsys.data.importers import import_dataset  # noqa: E402
from recsys.data.locations import datasets_dir  # noqa: E402
from recsys.data.synth import generate  # noqa: E402
from recsys.evaluation.protocol import evaluate_model  # noqa: E402

# The development copy of the real datasets, beside the repository (layout: docs/datasets.md).
SHARED = datasets_dir()
REAL = {
    "amazon-beauty": ("s3rec", SHARED / "amazon-beauty" / "Beauty.txt"),
    "ml-100k": ("ml100k", SHARED / "ml-100k"),
    "amazon-industrial": ("minionerec", SHARED / "amazon-industrial"),
}
REFERENCE = {
    ("amazon-beauty", "popular"): {"ndcg@10": 0.00546, "recall@10": 0.01154},
    ("amazon-beauty", "SASRec (published)"): {"ndcg@10": 0.0432, "recall@10": 0.0848},
    ("amazon-beauty", "EASE (reference)"): {"ndcg@10": 0.0356, "recall@10": 0.0670},
    ("amazon-beauty", "LlamaRec (published)"): {"ndcg@10": 0.0554, "recall@10": 0.0971},
}
MODELS = ("popular", "covisit", "als")


def datasets(args: argparse.Namespace, work: Path) -> dict[str, Dataset]:
    out: dict[str, Dataset] = {}
    for name, (fmt, src) in REAL.items():
        if not src.exists():
            print(f"skip {name}: {src} not found", file=sys.stderr)
            continue
        out[name] = import_dataset(fmt, src).dataset
    started = time.perf_counter()
    synth = generate(users=args.synth_users, items=args.synth_items, seed=0, progress=True)
    print(f"synthetic shop generated in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    synth.save(work / "synthetic-shop")
    out["synthetic-shop"] = load_dataset(work / "synthetic-shop")
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    keys = ["recall@10", "ndcg@10", "mrr@10", "recall@20", "ndcg@20", "mrr@20"]
    lines = [
        "| dataset | users | items | interactions | model | " + " | ".join(keys) + " | seconds |",
        "|---" * (len(keys) + 6) + "|",
    ]
    for r in rows:
        c = r["counts"]
        vals = " | ".join(f"{r[k]:.5f}" if k in r else "" for k in keys)
        lines.append(
            f"| {r['dataset']} | {c.get('users', '')} | {c.get('items', '')} | "
            f"{c.get('interactions', '')} | {r['model']} | {vals} | {r.get('seconds', '')} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synth-users", type=int, default=100_000)
    parser.add_argument("--synth-items", type=int, default=20_000)
    parser.add_argument("--ties", default="expected", choices=["expected", "index"])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    work = ROOT / "var" / "bench"
    rows: list[dict[str, Any]] = []
    for name, ds in datasets(args, work).items():
        counts = ds.counts()
        for model in MODELS:
            result = evaluate_model(ds, make_model(model), ties=args.ties, progress=True)
            rows.append({**result, "dataset": name, "counts": counts})
            print(f"{name:18s} {model:8s} ndcg@10={result['ndcg@10']:.5f}", file=sys.stderr)
    for (name, model), ref in REFERENCE.items():
        rows.append({"dataset": name, "model": model, "counts": {}, **ref})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "baselines.json").write_text(json.dumps(rows, indent=2))
    (args.out / "baselines.md").write_text(markdown(rows))
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
