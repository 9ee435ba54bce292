"""Open-loop load benchmark of the serving API: latency versus offered rate.

    python benchmarks/load.py [--workers 2 --rates 50,100,200,400,700,1000 --duration 10]
    python benchmarks/load.py --endpoints recommend --rates 100,200 --duration 5
    python benchmarks/load.py --bundle /tmp/load/bundle --users 5000 --items 1000  # small
    python benchmarks/load.py --url http://127.0.0.1:8000  # a server that is already up
    python benchmarks/load.py --server-env OPENBLAS_NUM_THREADS=1 --name load_openblas1

Starts ``uvicorn --factory serving.app:create_app`` (``--workers`` processes, httptools,
uvloop) on the bundle at ``--bundle`` with a throw-away event log, waits for every worker's
start-up and ``GET /readyz`` == 200, runs, and stops it. A missing bundle is built first: the
synthetic shop at ``--users``/``--items`` (default 100k/20k, seed 0; saved next to the bundle
under ``data/`` for its queries) trained with the fast sources (500 merged candidates) and the
LightGBM ranker; that takes minutes and prints progress.

``--connections`` keep-alive connections are spread evenly over the workers. A request goes to
a connection drawn at random among the free ones: with 64 (the default), in effect to a worker
picked at random. (Before 2026-12-03 the free connections were taken in a fixed cycle, which
sent runs of consecutive requests to one worker's connections while the other worker idled; p99
figures at 200 requests/s from before that date are higher for it: 11.1-16.9 ms against
9.1-11.5 for the same server.)
With as many connections as workers, a worker never has two requests at once and the rest wait
in the client's queue. That is a least-outstanding-requests balancer in front of the workers;
the wait counts in the latency.

Endpoints (``--endpoints``, default both): ``POST /v1/recommend`` ``{"user_id", "k": 10}`` with
ids drawn from the bundle's users plus ~5% unknown ones (cold start), and ``POST /v1/search``
``{"query", "k": 10}`` with texts from the dataset's ``queries.parquet``. An endpoint whose first
probe answers 404 is reported "unavailable" and skipped.

For each rate (``--rates``, requests/s) the client first warms up for ``--warmup`` s, then
offers the rate for ``--duration`` s on a Poisson schedule (``--arrival uniform`` for even
spacing), never waiting for answers (see ``benchmarks/loadgen.py``); latency is measured from
each request's scheduled send time, over 2xx answers. Once a rate's p99 exceeds 2 s or more
than 20% of its requests fail, the endpoint's higher rates are recorded as skipped. Per rate:
offered_rps, achieved_rps (2xx answers/s), sent, ok, errors (status or failure -> count),
p50/p95/p99/max_ms, client_cpu_s (this process's CPU seconds in the window), stages_ms,
sources_ms and app_ms (mean milliseconds per request of each pipeline stage, candidate source
and the whole request inside the app, from every worker's /metrics), mean_batch (requests per
pipeline batch, ``RECSYS_MAX_BATCH``; see serving/batching.py), candidates_cache_hit_rate and
ranked_cache_hit_rate (the recommend pipeline's caches, ``RECSYS_CANDIDATE_CACHE``: hits over
lookups in the window; the sources run on misses only, so sources_ms is per miss) and, for a
server started here, server_cpu_s, server_cpu_ms_per_request, host_cpu_percent and other_cpu_s
(CPU that other jobs on the machine took meanwhile: the client and server share the cores with
them).
Prints one JSON document and writes benchmarks/results/NAME.json and NAME.png (``--name``,
default "load"): p50/p99 and achieved rate versus offered rate, one line per endpoint.

The server inherits this process's environment plus ``--server-env``: numpy's OpenBLAS spins
one thread per core in every worker unless ``OPENBLAS_NUM_THREADS`` is set, which on 2 shared
cores multiplies the CPU cost of a request many times over.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.loadgen import (  # noqa: E402
    APP,
    Connection,
    LoadClient,
    Server,
    encode_post,
    fetch,
    open_connections,
)
from benchmarks.server_stages import breakdown, scrape  # noqa: E402

ENDPOINTS = {"recommend": "/v1/recommend", "search": "/v1/search"}
SOURCES = ("popular", "covisit", "als", "attributes")
MAX_P99_MS = 2000.0
MAX_ERROR_RATE = 0.2


CPUS = psutil.cpu_count() or 1


def host_busy_seconds() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def log(msg: str) -> None:
    print(f"[load] {msg}", file=sys.stderr, flush=True)


def build_bundle(bundle: Path, data: Path, users: int, items: int) -> dict[str, Any]:
    """Generate the shop, save it to ``data`` and train the bundle; returns the timings."""
    from recsys.artifacts import TrainConfig, train_bundle
    from recsys.data.synth import generate
    from recsys.ranking.train import RankerTrainConfig

    log(f"building the bundle: synthetic shop {users} users x {items} items -> {bundle}")
    started = time.perf_counter()
    ds = generate(users=users, items=items, seed=0, progress=True)
    generated = time.perf_counter()
    ds.save(data)
    saved = time.perf_counter()
    config = TrainConfig(sources=SOURCES, seed=0, ranking=RankerTrainConfig(rankers=("lightgbm",)))
    train_bundle(ds, bundle, config, progress=True)
    done = time.perf_counter()
    info = {
        "users": users,
        "items": items,
        "generate_s": round(generated - started, 1),
        "save_s": round(saved - generated, 1),
        "train_s": round(done - saved, 1),
        "total_s": round(done - started, 1),
    }
    (bundle / "load_build.json").write_text(json.dumps(info, indent=2) + "\n")
    log(f"bundle built in {info['total_s']} s")
    return info


def payload_bodies(endpoint: str, bundle: Path, data: Path, n: int, seed: int) -> list[dict]:
    """``n`` request bodies for ``endpoint``; raises FileNotFoundError when data is missing."""
    rng = np.random.default_rng(seed)
    if endpoint == "recommend":
        users = pd.read_parquet(bundle / "users.parquet")["user_id"].astype(str).to_numpy()
        picks = rng.choice(users, n)
        cold = rng.random(n) < 0.05
        ids = [
            f"cold-{i}" if c else str(u) for i, (u, c) in enumerate(zip(picks, cold, strict=True))
        ]
        return [{"user_id": u, "k": 10} for u in ids]
    texts = pd.read_parquet(data / "queries.parquet")["text"].astype(str).to_numpy()
    return [{"query": str(q), "k": 10} for q in rng.choice(texts, n)]


async def bench_endpoint(
    name: str, host: str, port: int, bodies: list[dict], args: argparse.Namespace,
    server: Server | None,
) -> dict[str, Any]:  # fmt: skip
    path = ENDPOINTS[name]
    payloads = [encode_post(host, port, path, b) for b in bodies]
    try:
        status, body = await fetch(host, port, payloads[0])
    except (OSError, TimeoutError) as exc:
        return {"status": "unavailable", "reason": f"probe failed: {exc!r}", "runs": []}
    if status == 404:
        log(f"{path}: 404 on the probe, skipped")
        return {"status": "unavailable", "probe_status": 404, "runs": []}
    if not 200 <= status < 300:
        log(f"{path}: the probe answered {status}: {body[:200]!r}")
    out: dict[str, Any] = {"status": "ok", "path": path, "probe_status": status, "runs": []}
    if server is not None and args.balance:
        conns = await server.open_balanced(args.connections)
    else:
        conns = await open_connections(host, port, args.connections)
    client = await LoadClient.start(host, port, args.timeout, conns)
    if server is not None:
        out["connections_per_worker"] = server.connections_per_worker(conns)

    async def probes() -> list[Connection]:
        """One connection per worker, outside the load, to read its stage metrics."""
        if server is not None:
            return await server.open_balanced(server.workers)
        return await open_connections(host, port, 1)  # one worker's view, with --url

    stopped: str | None = None
    try:
        for i, rate in enumerate(args.rates):
            if stopped:
                out["runs"].append({"offered_rps": rate, "skipped": True, "reason": stopped})
                continue
            if args.warmup > 0:
                await client.run(rate, args.warmup, payloads, args.arrival, seed=10_000 + i)
            cpu0 = server.cpu_seconds() if server else 0.0
            busy0 = host_busy_seconds()
            stages0 = await scrape(await probes(), host, port)
            run = await client.run(rate, args.duration, payloads, args.arrival, seed=i)
            after = await scrape(await probes(), host, port)
            run.update(breakdown(stages0, after, (name, path)))
            if server is not None:
                run["server_cpu_s"] = round(server.cpu_seconds() - cpu0, 2)
                # every worker's CPU (parsing, event loop, GC included) over the 2xx answers
                run["server_cpu_ms_per_request"] = (
                    round(1000.0 * run["server_cpu_s"] / run["ok"], 3) if run["ok"] else None
                )
                busy = host_busy_seconds() - busy0  # all cores, every process
                run["host_cpu_percent"] = round(100 * busy / run["elapsed_s"] / CPUS, 1)
                other = busy - run["server_cpu_s"] - run["client_cpu_s"]
                run["other_cpu_s"] = round(max(0.0, other), 2)  # other jobs on the machine
            out["runs"].append(run)
            log(
                f"{path} {rate:>6g} rps: achieved {run['achieved_rps']}, p50 {run['p50_ms']} "
                f"p99 {run['p99_ms']} max {run['max_ms']} ms, errors {run['errors']}, "
                f"cpu s: client {run['client_cpu_s']} server {run.get('server_cpu_s')} "
                f"others {run.get('other_cpu_s')}, server cpu/request "
                f"{run.get('server_cpu_ms_per_request')} ms, mean batch {run.get('mean_batch')}, "
                f"stages {run.get('stages_ms')}"
            )
            p99 = run["p99_ms"]
            if p99 is None or p99 > MAX_P99_MS or run["error_rate"] > MAX_ERROR_RATE:
                stopped = f"stopped after {rate:g} rps: p99 {p99} ms, errors {run['error_rate']}"
    finally:
        await client.close()
    return out


async def bench(args: argparse.Namespace, server: Server | None) -> dict[str, Any]:
    if server is not None:
        host, port = "127.0.0.1", server.port
        log(f"waiting for the server on port {port} ({args.workers} workers) to load the bundle")
        started = time.perf_counter()
        await server.wait_ready(args.ready_timeout)
        log(f"ready after {time.perf_counter() - started:.1f} s")
    else:
        parts = urlsplit(args.url)
        if parts.scheme != "http" or not parts.hostname:
            raise SystemExit(f"--url: need http://HOST:PORT, got {args.url!r}")
        host, port = parts.hostname, parts.port or 80
    results: dict[str, Any] = {}
    for name in args.endpoints:
        try:
            bodies = payload_bodies(name, args.bundle, args.data, args.pool, seed=0)
        except (FileNotFoundError, KeyError) as exc:
            results[name] = {"status": "unavailable", "reason": f"no request data: {exc}"}
            log(f"{name}: no request data ({exc}), skipped")
            continue
        results[name] = await bench_endpoint(name, host, port, bodies, args, server)
    return results


def plot(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat_ax, tput_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    top = 0.0
    for i, (name, res) in enumerate(doc["endpoints"].items()):
        runs = [r for r in res.get("runs", []) if not r.get("skipped") and r["p50_ms"] is not None]
        if not runs:
            continue
        color = f"C{i}"
        rates = [r["offered_rps"] for r in runs]
        lat_ax.plot(rates, [r["p50_ms"] for r in runs], "o--", color=color, label=f"{name} p50")
        lat_ax.plot(rates, [r["p99_ms"] for r in runs], "s-", color=color, label=f"{name} p99")
        tput_ax.plot(rates, [r["achieved_rps"] for r in runs], "o-", color=color, label=name)
        top = max(top, *rates)
    if "recommend" in doc["endpoints"]:  # the performance targets for /v1/recommend
        lat_ax.plot([200, 1000], [25, 50], "kx", markersize=9, label="recommend p99 target")
    lat_ax.set_yscale("log")
    lat_ax.set_xlabel("offered rate (requests/s)")
    lat_ax.set_ylabel("latency from scheduled send (ms)")
    lat_ax.grid(True, which="both", alpha=0.3)
    lat_ax.legend()
    if top:
        tput_ax.plot([0, top], [0, top], ":", color="grey", label="offered")
    tput_ax.set_xlabel("offered rate (requests/s)")
    tput_ax.set_ylabel("achieved rate (2xx answers/s)")
    tput_ax.grid(True, alpha=0.3)
    tput_ax.legend()
    cfg = doc["config"]
    env = " ".join(f"{k}={v}" for k, v in cfg["server_env"].items())
    fig.suptitle(f"open-loop load, {cfg['workers']} workers, {cfg['cpu_count']} CPUs {env}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--endpoints", default="recommend,search")
    parser.add_argument("--rates", default="50,100,200,400,700,1000")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per rate")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each rate")
    parser.add_argument("--arrival", choices=("poisson", "uniform"), default="poisson")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    parser.add_argument(
        "--no-balance",
        dest="balance",
        action="store_false",
        help="keep the connections where the kernel put them, unbalanced across workers",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    parser.add_argument("--url", help="benchmark this running server instead of starting one")
    parser.add_argument("--bundle", type=Path, default=ROOT / "var" / "bench" / "load" / "bundle")
    parser.add_argument("--data", type=Path, help="dataset dir (default: BUNDLE/../data)")
    parser.add_argument("--users", type=int, default=100_000, help="when building the bundle")
    parser.add_argument("--items", type=int, default=20_000, help="when building the bundle")
    parser.add_argument("--pool", type=int, default=4096, help="distinct request bodies")
    parser.add_argument("--ready-timeout", type=float, default=600.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--name", default="load", help="output files: OUT/NAME.json, .png")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the server, e.g. OPENBLAS_NUM_THREADS=1 (repeatable)",
    )
    parser.add_argument(
        "--app",
        default=APP,
        help="the ASGI app factory the server runs; benchmarks/server_floor.py passes its own "
        "to measure the server's cost outside the pipeline",
    )
    parser.add_argument(
        "--server-root",
        type=Path,
        default=ROOT,
        help="source tree the server runs from, e.g. a `git archive` of the previous commit "
        "for a before/after comparison on the same bundle",
    )
    args = parser.parse_args()
    args.endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    unknown = sorted(set(args.endpoints) - set(ENDPOINTS))
    if unknown:
        parser.error(f"unknown endpoint(s) {unknown}; valid: {','.join(ENDPOINTS)}")
    try:
        args.rates = sorted(float(r) for r in args.rates.split(",") if r.strip())
    except ValueError:
        parser.error(f"--rates: need numbers separated by commas, got {args.rates!r}")
    if not args.rates or min(args.rates) <= 0:
        parser.error("--rates: need positive rates")
    args.data = args.data or args.bundle.parent / "data"
    if any("=" not in e for e in args.server_env):
        parser.error("--server-env: need KEY=VALUE")
    args.env = dict(e.split("=", 1) for e in args.server_env)
    return args


def main() -> None:
    args = parse_args()
    build: dict[str, Any] | None = None
    built_now = False
    if not (args.bundle / "manifest.json").is_file():
        if args.url:
            log(f"{args.bundle} has no bundle: request data will be missing")
        else:
            build, built_now = build_bundle(args.bundle, args.data, args.users, args.items), True
    if build is None and (args.bundle / "load_build.json").is_file():
        build = json.loads((args.bundle / "load_build.json").read_text())
    manifest: dict[str, Any] = {}
    if (args.bundle / "manifest.json").is_file():
        manifest = json.loads((args.bundle / "manifest.json").read_text())
    doc: dict[str, Any] = {
        "config": {
            "url": args.url,
            "workers": None if args.url else args.workers,
            "rates": args.rates,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "arrival": args.arrival,
            "connections": args.connections,
            "timeout_s": args.timeout,
            "server_env": {
                **{k: v for k, v in os.environ.items() if k.endswith("_NUM_THREADS")},
                **args.env,
            },
            "cpu_count": os.cpu_count(),
            "server_root": str(args.server_root),
            "app": args.app,
            "bundle": str(args.bundle),
            "bundle_version": manifest.get("version"),
            "dataset_counts": manifest.get("dataset", {}).get("counts"),
            "candidates": manifest.get("config", {}).get("retrieval", {}).get("total"),
        },
        "build": build and {**build, "built_this_run": built_now},
    }
    tmp = tempfile.TemporaryDirectory(prefix="recsys-load-")
    server = None
    if not args.url:
        server = Server(
            args.bundle, args.workers, Path(tmp.name), args.env, args.server_root, args.app
        )
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            doc["endpoints"] = runner.run(bench(args, server))
    finally:
        if server is not None:
            server.stop()
        tmp.cleanup()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(doc, indent=2) + "\n")
    plot(doc, args.out / f"{args.name}.png")
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
