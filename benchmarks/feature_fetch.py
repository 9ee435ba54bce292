"""Online feature fetch: the in-process cache vs Feast's own ``get_online_features``.

    python benchmarks/feature_fetch.py [--users 20000] [--items 4000] [--candidates 500]
        [--online-store sqlite|redis] [--redis-url localhost:6379]

Builds the synthetic shop, computes the feature tables from the training split, applies and
materializes the Feast repository into var/bench/features, then for random (user, 500
candidates) requests times (a) the cache (`OnlineFeatures.users` + `items_at`) and (b) one
`FeatureStore.get_online_features` call with the `ranker_v1` FeatureService for the same rows,
interleaved in the same run, and checks that both return identical values. Prints one JSON
document and writes benchmarks/results/feature_fetch.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features import (  # noqa: E402
    RANKER_VERSION,
    FeatureRepo,
    FeatureStoreConfig,
    build_feature_tables,
    feast_reference,
)
from recsys.data.sequences import encode  # noqa: E402
from recsys.data.split import leave_one_out  # noqa: E402
from recsys.data.synth import generate  # noqa: E402


def summary(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {
        "median_ms": round(float(np.median(a)), 4),
        "p99_ms": round(float(np.quantile(a, 0.99)), 4),
        "mean_ms": round(float(a.mean()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=4_000)
    parser.add_argument("--candidates", type=int, default=500)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--online-store", choices=["sqlite", "redis"], default="sqlite")
    parser.add_argument("--redis-url", default="localhost:6379")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "bench" / "features")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    started = time.perf_counter()
    ds = generate(users=args.users, items=args.items, seed=0)
    enc = encode(ds)
    tables = build_feature_tables(ds, enc, leave_one_out(enc).train)
    build_s = time.perf_counter() - started
    shutil.rmtree(args.work, ignore_errors=True)
    config = FeatureStoreConfig(online_store=args.online_store, redis_url=args.redis_url)
    repo = FeatureRepo(args.work, config)
    started = time.perf_counter()
    repo.apply()
    repo.materialize(tables)
    materialize_s = time.perf_counter() - started
    started = time.perf_counter()
    online = repo.online()
    online.align(enc.item_ids)
    load_s = time.perf_counter() - started

    rng = np.random.default_rng(0)
    cache_ms: list[float] = []
    cold_user_ms: list[float] = []
    feast_ms: list[float] = []
    mismatches = 0
    for r in range(args.requests + 10):
        user = str(enc.user_ids[rng.integers(len(enc.user_ids))])
        idx = rng.choice(enc.n_items, size=args.candidates, replace=False)
        ids = [str(x) for x in enc.item_ids[idx]]
        t0 = time.perf_counter()
        cold_user = online.users([user])
        t1 = time.perf_counter()
        user_f = online.users([user])  # warm: the cache path a repeat request takes
        item_f = online.items_at(idx)
        t2 = time.perf_counter()
        ref_user, ref_items = feast_reference(repo.store, user, ids)
        t3 = time.perf_counter()
        same = (np.array_equal(user_f, ref_user, equal_nan=True)
                and np.array_equal(cold_user, ref_user, equal_nan=True)
                and np.array_equal(item_f, ref_items, equal_nan=True))  # fmt: skip
        mismatches += not same
        if r >= 10:  # warm-up requests are not timed
            cold_user_ms.append((t1 - t0) * 1e3)
            cache_ms.append((t2 - t1) * 1e3)
            feast_ms.append((t3 - t2) * 1e3)

    cache, feast = summary(cache_ms), summary(feast_ms)
    result: dict[str, Any] = {
        "benchmark": "feature_fetch",
        "dataset": {"name": "synthetic-shop", "users": args.users, "items": args.items, "seed": 0},
        "online_store": args.online_store,
        "feature_service": RANKER_VERSION,
        "candidates": args.candidates,
        "requests": args.requests,
        "cache": cache,
        "cache_user_miss_read": summary(cold_user_ms),
        "feast_get_online_features": feast,
        "speedup_median": round(feast["median_ms"] / cache["median_ms"], 1),
        "speedup_p99": round(feast["p99_ms"] / cache["p99_ms"], 1),
        "values_identical": mismatches == 0,
        "mismatched_requests": mismatches,
        "setup_seconds": {
            "build_tables": round(build_s, 2),
            "apply_materialize": round(materialize_s, 2),
            "cache_load": round(load_s, 3),
        },
        "target": "cache >= 20x faster than get_online_features; <= 2 ms for 500 candidates",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "feature_fetch.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
