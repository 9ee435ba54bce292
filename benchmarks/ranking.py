"""Full-pipeline quality over seeds: every source, the merged list, each ranker, the chosen order.

    python benchmarks/ranking.py [--datasets amazon-industrial ml-100k synthetic-shop]
                                 [--seeds 0 1 2] [--diagnose]

For each dataset and seed: a retrieval-only bundle (trained with that seed where
``<bundles>/<dataset>-s<seed>`` has none), rankers attached (`recsys train --rank-only`: the
merge's fill and quota share chosen by candidate recall on part of the validation users
(``--no-tune-fill``: not), rankers trained on those users and ``--folds`` earlier time folds,
the served order chosen on the other validation users against the merged fusion), the served
sources then refitted with the validation items (``--no-refit``: not), and everything
evaluated on the test targets.
Reports mean ± std over the seeds and the validation figures the order was chosen on; nothing
here is chosen on test. ``--diagnose`` adds, per seed, the held-out validation users seen with
their validation and their test target by the training-split fit (recsys.ranking.diagnose).
Writes benchmarks/results/ranking.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.baselines import REAL  # noqa: E402
from benchmarks.retrieval import TUNED, load  # noqa: E402
from recsys.artifacts import Bundle, TrainConfig, attach_ranking, load_bundle, train_bundle  # noqa: E402
from recsys.data.contract import Dataset  # noqa: E402
from recsys.evaluation.retrieval import evaluate_bundle  # noqa: E402
from recsys.ranking.features import CONTEXT_FEATURES, DEFAULT_CONTEXT  # noqa: E402
from recsys.ranking.train import RankerTrainConfig  # noqa: E402

KEYS = ("ndcg@10", "recall@10", "ndcg@20", "recall@20", "candidate_recall@500")
NAMES = ("amazon-beauty", "amazon-industrial", "synthetic-shop", "ml-100k")


def lists_of(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    out = {name: m for name, m in result["sources"].items()}
    out["merged (RRF)"] = result["merged"]
    for name, m in result.get("pipeline", {}).items():
        out["chosen default" if name == "default" else f"pipeline: {name}"] = m
    return out


def aggregate(per_seed: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, list[float]]]:
    """list -> metric -> [mean, std] over seeds (a list missing in a seed is left out)."""
    names = [n for n in per_seed[0] if all(n in s for s in per_seed)]
    return {
        n: {
            k: [float(np.mean(v)), float(np.std(v))]
            for k in KEYS
            if all(k in s[n] for s in per_seed)
            for v in [[s[n][k] for s in per_seed]]
        }
        for n in names
    }


def markdown(table: dict[str, dict[str, dict[str, list[float]]]], seeds: list[int]) -> str:
    head = f"| dataset | list (test, mean ± std of seeds {seeds}) | " + " | ".join(KEYS) + " |"
    lines = [head, "|---" * (len(KEYS) + 2) + "|"]
    for ds, rows in table.items():
        for name, m in rows.items():
            vals = " | ".join(f"{m[k][0]:.4f} ± {m[k][1]:.4f}" if k in m else "" for k in KEYS)
            lines.append(f"| {ds} | {name} | {vals} |")
    return "\n".join(lines) + "\n"


def bundle_for(name: str, ds: Dataset, seed: int, root: Path) -> Path:
    path = root / f"{name}-s{seed}"
    if not (path / "manifest.json").is_file():
        # refitted (or not) when the rankers are attached
        config = TrainConfig(
            seed=seed, overrides=TUNED.get(name, ()), ranking=None, refit_with_valid=False
        )
        train_bundle(ds, path, config, progress=True)
    return path


def diagnose(ds: Dataset, bundle: Bundle, config: RankerTrainConfig) -> dict[str, Any]:
    from recsys.data.sequences import encode
    from recsys.data.split import leave_one_out
    from recsys.ranking.diagnose import valid_vs_test
    from recsys.ranking.folds import validation_view
    from recsys.ranking.train import split_users

    # the training-split fit: refitted sources know the validation targets
    bundle = validation_view(ds, bundle)
    assert bundle.ranking is not None
    split = leave_one_out(encode(ds))
    _, held_out = split_users(split.valid, config.select_share, config.seed)
    ranking = bundle.ranking
    spec = next(iter(ranking.rankers.values())).spec
    scorers = {n: r.score for n, r in ranking.rankers.items()}
    return valid_vs_test(bundle.retriever, split, held_out, ranking.features, spec, scorers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(NAMES[1:]), choices=NAMES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--synth-users", type=int, default=10_000)
    parser.add_argument("--synth-items", type=int, default=2_000)
    parser.add_argument("--rankers", nargs="+", default=["lightgbm"])
    parser.add_argument(
        "--folds",
        type=int,
        default=RankerTrainConfig().folds,
        help="earlier time folds of ranker training groups (recsys.ranking.folds)",
    )
    parser.add_argument(
        "--refit",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="refit the served sources with the validation items once the order is chosen "
        "(TrainConfig.refit_with_valid); a bundle refitted once stays so",
    )
    parser.add_argument(
        "--tune-fill",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="choose the merge's fill and quota share on the rankers' validation users "
        "(recsys.retrieval.tune); --no-tune-fill keeps the hand-set quotas and the RRF fill",
    )
    parser.add_argument(
        "--all-features",
        action="store_true",
        help="rankers also read the opt-in request-time columns (category/brand recency, "
        "co-visitation links from the three latest items): CONTEXT_FEATURES, not the default",
    )
    parser.add_argument("--bundles", type=Path, default=ROOT / "var" / "bench" / "ranking")
    parser.add_argument("--diagnose", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    table: dict[str, dict[str, dict[str, list[float]]]] = {}
    detail: dict[str, Any] = {}
    for name in args.datasets:
        if name in REAL and not REAL[name][1].exists():
            print(f"skip {name}: {REAL[name][1]} not found", file=sys.stderr)
            continue
        ds = load(name, args)
        per_seed, seeds_detail = [], []
        for seed in args.seeds:
            path = bundle_for(name, ds, seed, args.bundles)
            config = RankerTrainConfig(
                rankers=tuple(args.rankers),
                seed=seed,
                folds=args.folds,
                tune_fill=args.tune_fill,
                context=CONTEXT_FEATURES if args.all_features else DEFAULT_CONTEXT,
            )
            started = time.perf_counter()
            attach_ranking(ds, path, config, progress=True, refit=args.refit)
            attach_seconds = round(time.perf_counter() - started, 1)
            bundle = load_bundle(path)
            result = evaluate_bundle(ds, bundle, progress=True)
            per_seed.append(lists_of(result))
            section = bundle.manifest["ranking"]
            entry = {
                "seed": seed,
                "chosen": section["order"]["chosen"],
                "validation": section["order"]["validation_ndcg@10"],
                "validation_users": section["order"]["validation_users"],
                "training_rows": section["rows"],
                "merge_fill": section.get("fill_tuning"),
                "attach_seconds": attach_seconds,
                "test_ndcg@10": {n: m["ndcg@10"] for n, m in per_seed[-1].items()},
            }
            if args.diagnose:
                entry["diagnosis"] = diagnose(ds, bundle, config)
            seeds_detail.append(entry)
            print(f"{name} seed {seed}: {json.dumps(entry)}", file=sys.stderr, flush=True)
        table[name] = aggregate(per_seed)
        detail[name] = seeds_detail
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {"seeds": args.seeds, "test": table, "per_seed": detail}
    (args.out / "ranking.json").write_text(json.dumps(doc, indent=2))
    (args.out / "ranking.md").write_text(markdown(table, args.seeds))
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
