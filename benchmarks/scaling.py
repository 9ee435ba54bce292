"""How cost grows with the catalog and the audience: training time, index build, memory and
request latency from 10k to 1M users and 1k to 100k items, on the synthetic shop.

    python benchmarks/scaling.py [--sizes 10000x1000,30000x3000,100000x10000]
                                 [--sources popular,covisit,als,attributes] [--ranker lightgbm]
                                 [--merge]

Each size runs in its own process (so its peak memory is its own): generate the shop, train a
bundle (every source, the ranker), then time single requests through the served pipeline.
Results go to benchmarks/results/scaling.json and scaling.png (log-log, one line per measure)
so that a user can read off the cost of their own catalog. The full default grid up to
1,000,000 x 100,000 takes about 40 minutes on a 2-core machine (the 1M point alone ~23,
with a ~18 GB peak); pass smaller ``--sizes`` to sample it.
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WARMUP = 20  # requests before the timed ones, on other users
DEFAULT_SIZES = "10000x1000,30000x3000,100000x10000,300000x30000,1000000x100000"


def measure(
    users: int, items: int, sources: list[str], ranker: str, requests: int
) -> dict[str, Any]:
    """One size, in this process: generate, train, serve; seconds, bytes, milliseconds."""
    from models.threads import pin_compute_threads
    from recsys.artifacts import TrainConfig, load_bundle, train_bundle
    from recsys.data.synth import generate
    from recsys.decision import DecisionRequest
    from recsys.ranking.train import RankerTrainConfig
    from serving.state import Served

    out: dict[str, Any] = {"users": users, "items": items}
    started = time.perf_counter()
    ds = generate(users=users, items=items, seed=0)
    out["generate_s"] = round(time.perf_counter() - started, 2)
    out["interactions"] = len(ds.interactions)
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(
            sources=tuple(sources),
            ranking=RankerTrainConfig(rankers=(ranker,)) if ranker else None,
        )
        started = time.perf_counter()
        path = train_bundle(ds, Path(tmp) / "bundle", config)
        out["train_s"] = round(time.perf_counter() - started, 2)
        manifest = json.loads((path / "manifest.json").read_text())
        out["fit_s"] = {n: s["fit_seconds"] for n, s in manifest["sources"].items()}
        ranking = manifest.get("ranking") or {}
        out["ranker_fit_s"] = {
            n: r.get("fit_seconds") for n, r in ranking.get("rankers", {}).items()
        }
        out["bundle_mb"] = round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
                                 / 2**20, 1)  # fmt: skip
        started = time.perf_counter()
        bundle = load_bundle(path)
        served = Served.build(bundle)
        out["load_s"] = round(time.perf_counter() - started, 2)
        out["index_build_s"] = {}
        for source in bundle.retriever.sources:
            if source.index is not None:
                from models.index import VectorIndex

                started = time.perf_counter()
                VectorIndex(source.index.config).build(source.index.vectors())
                out["index_build_s"][source.name] = round(time.perf_counter() - started, 3)
        pin_compute_threads(1)  # as a serving worker runs
        # distinct users, and none of the warm-up ones timed: a repeat could be answered from
        # what the first request left behind, and a single request's cost is the cold one
        rng = np.random.default_rng(0)
        n_picks = min(WARMUP + requests, len(bundle.user_ids))
        picks = [str(u) for u in rng.choice(bundle.user_ids, n_picks, replace=False)]
        for user in picks[:WARMUP]:
            served.recommend.run({"user_id": user, "request": DecisionRequest()})
        times = []
        for user in picks[WARMUP:]:
            started = time.perf_counter()
            served.recommend.run({"user_id": user, "request": DecisionRequest()})
            times.append((time.perf_counter() - started) * 1000.0)
        out["request_ms"] = {"p50": round(float(np.median(times)), 3),
                             "p99": round(float(np.percentile(times, 99)), 3)}  # fmt: skip
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    users = [r["users"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    axes[0].loglog(users, [r["train_s"] for r in rows], "o-", label="train (all)")
    for name in rows[0]["fit_s"]:
        axes[0].loglog(users, [r["fit_s"][name] or 1e-3 for r in rows], ".--", label=name)
    axes[0].set(title="training seconds", xlabel="users (items = users / 10)")
    axes[1].loglog(users, [r["peak_rss_mb"] for r in rows], "o-", label="peak RSS MB")
    axes[1].loglog(users, [r["bundle_mb"] for r in rows], "s-", label="bundle MB")
    axes[1].set(title="memory and disk", xlabel="users")
    axes[2].loglog(users, [r["request_ms"]["p50"] for r in rows], "o-", label="p50")
    axes[2].loglog(users, [r["request_ms"]["p99"] for r in rows], "s-", label="p99")
    axes[2].set(title="request ms (500 candidates ranked)", xlabel="users")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="USERSxITEMS,...")
    parser.add_argument("--sources", default="popular,covisit,als,attributes")
    parser.add_argument("--ranker", default="lightgbm", help="'' for none")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # USERSxITEMS: measure in-process
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument(
        "--merge", action="store_true",
        help="keep the rows of other sizes already in scaling.json (replace same sizes)",
    )  # fmt: skip
    args = parser.parse_args()
    sources = args.sources.split(",")
    if args.one:
        users, items = (int(x) for x in args.one.split("x"))
        print(json.dumps(measure(users, items, sources, args.ranker, args.requests)))
        return
    rows = []
    for size in args.sizes.split(","):
        print(f"[scaling] {size}", file=sys.stderr, flush=True)
        # the size's own progress goes to this stderr, and so would a Python traceback of
        # every thread if it dies (faulthandler): a crash 30 minutes into the 1M point says where
        done = subprocess.run(
            [sys.executable, "-X", "faulthandler", __file__, "--one", size,
             "--sources", args.sources, "--ranker", args.ranker, "--requests", str(args.requests)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            code = done.returncode
            why = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
            raise SystemExit(f"[scaling] {size} failed ({why}); its output is above")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"[scaling] {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.merge and (args.out / "scaling.json").exists():
        fresh = {(r["users"], r["items"]) for r in rows}
        kept = json.loads((args.out / "scaling.json").read_text())
        rows = [r for r in kept if (r["users"], r["items"]) not in fresh] + rows
        rows.sort(key=lambda r: (r["users"], r["items"]))
    (args.out / "scaling.json").write_text(json.dumps(rows, indent=2) + "\n")
    if len(rows) > 1:
        plot(rows, args.out / "scaling.png")
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
