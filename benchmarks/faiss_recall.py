"""FAISS recall and speed on real model vectors: exact vs HNSW vs IVF, one JSON document.

    python benchmarks/faiss_recall.py [--users 50000 --items 100000 --queries 1000 --k 100]

Builds the synthetic shop at 100k items, trains ALS on its leave-one-out training split and
indexes ``item_vectors()``; the queries are ``query_vectors()`` of random test users (their
full history folded in), exactly what serving sends. For each kind, with the IndexConfig
defaults: build time, the time of one batch of all queries and of the same queries one at a
time (a request), recall@k against exact search, and the speed ratio exact / approximate
(> 1 = faster than exact). ``ivf_tuned`` is IVF as training builds it: ``nprobe`` chosen on
the query vectors of 1000 other (training) users to reach recall@100 >= 0.95, measured on the
test users' queries. A small sweep of the search effort shows where the defaults sit.
The done criterion: recall@100 >= 0.95 of exact search and faster than exact.
Everything runs on ``--threads`` OpenMP/BLAS threads (1 by default: the machine is shared).
Written to benchmarks/results/faiss_recall.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from models.als import ALSConfig, ALSModel  # noqa: E402
from models.base import TrainingData  # noqa: E402
from models.index import IndexConfig, Kind, VectorIndex  # noqa: E402
from recsys.data.sequences import encode  # noqa: E402
from recsys.data.split import leave_one_out  # noqa: E402
from recsys.data.synth import generate  # noqa: E402

EF_SWEEP = (64, 96, 128, 192, 256)
NPROBE_SWEEP = (16, 32, 48, 64, 96)
TARGET_RECALL = 0.95


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[Any, float]:
    """Result of ``fn`` and its median wall time over ``repeat`` runs (the box is shared)."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return result, float(np.median(times))


def search_timings(
    index: VectorIndex, queries: np.ndarray, k: int, repeat: int
) -> dict[str, float]:
    _, batch = timed(partial(index.search, queries, k), repeat)
    _, single = timed(lambda: [index.search(queries[i : i + 1], k) for i in range(len(queries))])
    return {
        "batch_seconds": round(batch, 4),
        "batch_ms_per_query": round(1000 * batch / len(queries), 4),
        "single_ms_per_query": round(1000 * single / len(queries), 4),
    }


def id_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Plain recall by ids (ties broken differently count as misses), for comparison."""
    return float(np.mean([len(set(x) & set(y)) / len(y) for x, y in zip(a, b, strict=True)]))


def vectors(
    args: argparse.Namespace,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """(I, F) ALS item vectors, (Q, F) query vectors of random test users, and the training
    histories' query vectors of 1000 other users (what training tunes an IVF index on)."""
    started = time.perf_counter()
    ds = generate(users=args.users, items=args.items, seed=args.seed)
    generated = time.perf_counter()
    split = leave_one_out(encode(ds))
    als = ALSModel(ALSConfig(threads=args.threads, seed=args.seed))
    als.fit(TrainingData(split.train, ds.items))
    fitted = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    users = np.sort(rng.choice(len(split.test), size=args.queries, replace=False))
    queries = als.query_vectors(split.test.history.select(users))  # (Q, F)
    others = np.setdiff1d(np.arange(len(split.test)), users)
    tuning_users = np.sort(rng.choice(others, size=min(1000, len(others)), replace=False))
    tuning = als.query_vectors(split.train.select(split.test.users[tuning_users]))  # (T, F)
    items = als.item_vectors()  # (I, F)
    norms = np.linalg.norm(items, axis=1)
    info = {
        "dataset": "synthetic shop",
        "users": args.users,
        "items": args.items,
        "interactions": len(ds.interactions),
        "generate_seconds": round(generated - started, 1),
        "als_fit_seconds": round(fitted - generated, 1),
        "als": dataclasses.asdict(als.config),
        # Never-interacted items get zero ALS vectors: they tie at score 0 for every query.
        "zero_vector_items": int((norms == 0).sum()),
    }
    return items, queries, tuning, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="batch timings: median of runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    # BLAS pools (numpy's, faiss's own) and faiss's OpenMP both obey these.
    with threadpool_limits(args.threads):
        run(args)


def run(args: argparse.Namespace) -> None:
    import faiss

    faiss.omp_set_num_threads(args.threads)
    items, queries, tuning, data = vectors(args)
    print(f"vectors ready: {data}", file=sys.stderr)
    k = args.k
    defaults = IndexConfig(threads=args.threads)
    results: dict[str, dict[str, Any]] = {}
    indexes: dict[str, VectorIndex] = {}
    exact_ids = np.zeros((0, k), np.int64)
    # ivf_tuned: built as training builds it, nprobe chosen on other (training) users' queries
    built: tuple[tuple[str, Kind], ...] = (
        ("exact", "exact"), ("hnsw", "hnsw"), ("ivf", "ivf"), ("ivf_tuned", "ivf"),
    )  # fmt: skip
    for kind, index_kind in built:
        started = time.perf_counter()
        index = VectorIndex(dataclasses.replace(defaults, kind=index_kind))
        index.build(items, tuning if kind == "ivf_tuned" else None)
        build = time.perf_counter() - started
        indexes[kind] = index
        row: dict[str, Any] = {"build_seconds": round(build, 2)}
        row.update(search_timings(index, queries, k, args.repeat))
        ids, _ = index.search(queries, k)
        if kind == "exact":
            exact_ids = ids
        row[f"recall@{k}"] = round(index.recall_against_exact(queries, k), 4)
        row[f"id_overlap@{k}"] = round(id_overlap(ids, exact_ids), 4)
        results[kind] = row
        print(f"{kind}: {row}", file=sys.stderr)

    exact = results["exact"]
    results["ivf_tuned"]["tuning"] = indexes["ivf_tuned"].tuning_
    for kind in ("hnsw", "ivf", "ivf_tuned"):
        row = results[kind]
        row["speedup_batch"] = round(exact["batch_seconds"] / row["batch_seconds"], 2)
        row["speedup_single"] = round(exact["single_ms_per_query"] / row["single_ms_per_query"], 2)
        row["meets_done_criterion"] = bool(
            row[f"recall@{k}"] >= TARGET_RECALL
            and min(row["speedup_batch"], row["speedup_single"]) > 1
        )
    results["hnsw"]["params"] = {
        "M": defaults.hnsw_m,
        "efConstruction": defaults.hnsw_ef_construction,
        "efSearch": defaults.hnsw_ef_search,
    }
    ivf = indexes["ivf"]
    results["ivf"]["params"] = {"nlist": ivf.config.ivf_nlist, "nprobe": ivf.config.ivf_nprobe}

    sweep: list[dict[str, Any]] = []
    for kind, values in (("hnsw", EF_SWEEP), ("ivf", NPROBE_SWEEP)):
        index = indexes[kind]
        for value in values:
            index.tune(**({"ef_search": value} if kind == "hnsw" else {"nprobe": value}))
            _, batch = timed(partial(index.search, queries, k), args.repeat)
            point = {
                "kind": kind,
                "efSearch" if kind == "hnsw" else "nprobe": value,
                f"recall@{k}": round(index.recall_against_exact(queries, k), 4),
                "speedup_batch": round(exact["batch_seconds"] / batch, 2),
            }
            sweep.append(point)
            print(f"sweep {point}", file=sys.stderr)

    doc = {
        "benchmark": "faiss_recall",
        "data": data,
        "queries": args.queries,
        "k": k,
        "dim": int(items.shape[1]),
        "threads": args.threads,
        "index_defaults": dataclasses.asdict(defaults),
        "results": results,
        "sweep": sweep,
        "done_criterion": f"recall@{k} >= {TARGET_RECALL} of exact and faster than exact",
        "auto_kind_above_exact_max_items": defaults.auto_kind,
        "versions": {"faiss": faiss.__version__, "numpy": np.__version__},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "faiss_recall.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
