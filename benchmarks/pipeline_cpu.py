"""CPU per recommend request in-process (no HTTP), per stage, for this tree and, side by side,
another source tree on the same bundle.

    python benchmarks/pipeline_cpu.py --bundle var/bench/load/bundle
    python benchmarks/pipeline_cpu.py --bundle var/bench/load/bundle --baseline-root /tmp/old

Runs ``--requests`` recommend pipelines (history, retrieval, ranking, decision) for random known
users, one at a time on one compute thread, as a serving worker does, in a fresh process per
round. With ``--baseline-root`` (a ``git archive`` of an earlier commit, say) the rounds
alternate between the two trees, so both see the same machine load, and the ratio of their
median CPU per request is reported, with each tree's wall p50 and p99 of single requests.
``--warm-users`` first reads each user once, so the user features come from the in-process
cache as they do for returning shoppers (the load benchmark's case). ``--batch B`` runs the
requests B at a time through ``Pipeline.run_batch``, as a serving worker does with the requests
it has in hand under load (serving/batching.py): CPU per request and stage times are then each
request's share of its batch, and the wall figures are per batch. Prints one JSON document and
writes benchmarks/results/pipeline_cpu.json.

``--gap-ms G`` idles G ms before each run, as a worker between requests at a low rate does
(10 ms: 100 requests/s a worker, the load benchmark's 200 on two workers); CPU counts the runs
only. Back to back, a request finds the caches, TLB and branch predictors warm from the one
before; after an idle gap it does not, and on these virtual machines it then costs about twice
the CPU (1.65-2.8 ms against 3.5-3.9 on the 100k x 20k bundle). Busy-waiting before the run did
not help, so it is not the clock ramping up: the cold run is what a served request at 200
requests/s pays, and what a change to the request path has to cut.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def measure(
    bundle: Path, requests: int, seed: int, warm_users: bool, batch: int = 1, gap_ms: float = 0.0
) -> dict[str, Any]:
    """One round in this process, with whichever tree is first on ``sys.path``."""
    from models.threads import pin_compute_threads

    pin_compute_threads(1)
    from recsys.artifacts import load_bundle
    from recsys.decision import DecisionRequest
    from serving.state import Served

    loaded = load_bundle(bundle)
    pin_compute_threads(1)
    served = Served.build(loaded)
    users = [str(u) for u in np.random.default_rng(seed).choice(loaded.user_ids, requests)]

    def run(group: list[str]) -> list[Any]:
        inputs = [{"user_id": user, "request": DecisionRequest(k=10)} for user in group]
        if len(inputs) == 1:
            return [served.recommend.run(inputs[0])]
        return list(served.recommend.run_batch(inputs))

    for user in users if warm_users else users[:50]:
        run([user])
    groups = [users[i : i + batch] for i in range(0, len(users), batch)]
    stages: dict[str, list[float]] = {}
    walls = []
    cpu = 0.0
    for group in groups:
        if gap_ms:
            time.sleep(gap_ms / 1000)
        started, started_cpu = time.perf_counter(), time.process_time()
        results = run(group)
        cpu += time.process_time() - started_cpu
        walls.append(1000 * (time.perf_counter() - started))
        result = results[0]  # a batch's requests carry the same shares
        for stage, ms in result.trace:
            stages.setdefault(stage, []).append(ms)
        for source, ms in result.state["source_timings"].items():
            stages.setdefault(f"source:{source}", []).append(ms)
    return {
        "batch": batch,
        "cpu_ms_per_request": 1000 * cpu / len(users),
        "wall_ms_per_request": sum(walls) / len(users),
        "wall_ms_p50": float(np.median(walls)),
        "wall_ms_p99": float(np.percentile(walls, 99)),
        "stage_median_ms": {k: float(np.median(v)) for k, v in stages.items()},
    }


def round_in(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One round in a fresh process running ``root``'s packages."""
    path = [str(root), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one"]
    cmd += ["--bundle", str(args.bundle.resolve()), "--requests", str(args.requests)]
    cmd += ["--seed", str(args.seed), "--batch", str(args.batch), "--gap-ms", str(args.gap_ms)]
    if args.warm_users:
        cmd.append("--warm-users")
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"round in {root} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    cpu = [r["cpu_ms_per_request"] for r in rounds]
    names = rounds[0]["stage_median_ms"]
    return {
        "cpu_ms_per_request": round(float(np.median(cpu)), 3),
        "cpu_ms_rounds": [round(c, 3) for c in cpu],
        "wall_ms_p50": round(float(np.median([r["wall_ms_p50"] for r in rounds])), 3),
        "wall_ms_p99": round(float(np.median([r["wall_ms_p99"] for r in rounds])), 3),
        "stage_median_ms": {
            k: round(float(np.median([r["stage_median_ms"].get(k, np.nan) for r in rounds])), 3)
            for k in names
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=ROOT / "var" / "bench" / "load" / "bundle")
    parser.add_argument("--baseline-root", type=Path, help="another source tree to compare")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per tree, alternating")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warm-users", action="store_true")
    parser.add_argument(
        "--batch", type=int, default=1, help="requests per pipeline run (run_batch above 1)"
    )
    parser.add_argument(
        "--gap-ms", type=float, default=0.0,
        help="idle milliseconds before each pipeline run, as a worker at a low rate has",
    )  # fmt: skip
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    if args.batch < 1:
        parser.error(f"--batch must be at least 1, got {args.batch}")
    if not 0 <= args.gap_ms <= 1000:
        parser.error(f"--gap-ms must be within [0, 1000], got {args.gap_ms}")
    if not (args.bundle / "manifest.json").is_file():
        parser.error(f"--bundle {args.bundle}: no manifest.json (train one, or run load.py)")
    if args.one:
        one = measure(
            args.bundle, args.requests, args.seed, args.warm_users, args.batch, args.gap_ms
        )
        print(json.dumps(one))
        return
    trees = {"this": ROOT}
    if args.baseline_root is not None:
        trees["baseline"] = args.baseline_root.resolve()
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    for i in range(args.rounds):
        for name, root in trees.items():
            rounds[name].append(round_in(root, args))
            cpu = rounds[name][-1]["cpu_ms_per_request"]
            print(f"round {i + 1}/{args.rounds} {name}: {cpu:.3f} ms", file=sys.stderr)
    doc: dict[str, Any] = {
        "bundle": str(args.bundle),
        "requests": args.requests,
        "warm_users": args.warm_users,
        "batch": args.batch,
        "gap_ms": args.gap_ms,
        "trees": {name: {"root": str(trees[name]), **summary(r)} for name, r in rounds.items()},
    }
    if "baseline" in rounds:
        this, base = (doc["trees"][n]["cpu_ms_per_request"] for n in ("this", "baseline"))
        doc["cpu_ratio_this_to_baseline"] = round(this / base, 3)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pipeline_cpu.json").write_text(json.dumps(doc, indent=2))
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
