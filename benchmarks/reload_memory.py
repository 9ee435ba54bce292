"""Server memory across repeated bundle reloads: does each reload leave memory behind?

    python benchmarks/reload_memory.py --bundle var/demo/bundle [--reloads 30 --requests 20]

Starts the API (one uvicorn worker, ``benchmarks.loadgen.Server``) on ``--bundle`` with an
admin key, then ``--reloads`` times: ``POST /admin/reload {"wait": true}`` of the same bundle,
``--requests`` ``/v1/recommend`` calls on the new one, and the worker's resident memory (RSS,
from /proc via psutil). The first few reloads warm caches and allocator arenas, so growth is
judged on the second half: the least-squares slope in MB per reload over it, and the RSS at
the end against the RSS at the half-way reload. Also reports the collector's frozen-object
count after each swap (``gc.freeze`` runs after every swap; it must stay level, or swapped-out
bundles are being kept). Prints one JSON document and writes benchmarks/results/NAME.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.loadgen import Server, encode_post, fetch

RESULTS = Path(__file__).resolve().parent / "results"


def _rss_mb(server: Server) -> float:
    pids = server.worker_pids() or [server.proc.pid]
    return sum(psutil.Process(p).memory_info().rss for p in pids) / 2**20


async def _reload(server: Server, key: str) -> tuple[int, dict[str, Any]]:
    body = encode_post("127.0.0.1", server.port, "/admin/reload", {"wait": True})
    body = body.replace(b"\r\n\r\n", f"\r\nX-API-Key: {key}\r\n\r\n".encode(), 1)
    status, raw = await fetch("127.0.0.1", server.port, body, timeout=300.0)
    return status, json.loads(raw or b"{}")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    key = secrets.token_hex(16)
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(
            Path(args.bundle), 1, Path(tmp),
            {"RECSYS_ADMIN_API_KEY": key},
        )  # fmt: skip
        try:
            await server.wait_ready(600)
            users = [f"u{i}" for i in range(args.requests)]
            rss: list[float] = [_rss_mb(server)]
            seconds: list[float] = []
            for n in range(args.reloads):
                started = time.perf_counter()
                status, reply = await _reload(server, key)
                seconds.append(time.perf_counter() - started)
                if status != 200 or reply.get("state") != "loaded":
                    raise SystemExit(f"reload {n + 1}: {status} {reply}\n{server.tail()}")
                for user in users:
                    await fetch(
                        "127.0.0.1", server.port,
                        encode_post("127.0.0.1", server.port, "/v1/recommend",
                                    {"user_id": user, "k": 10}),
                    )  # fmt: skip
                rss.append(_rss_mb(server))
                print(f"[reload] {n + 1}/{args.reloads} rss {rss[-1]:.1f} MB", file=sys.stderr)
        finally:
            server.stop()
    half = len(rss) // 2
    tail = np.asarray(rss[half:])
    slope = float(np.polyfit(np.arange(len(tail)), tail, 1)[0]) if len(tail) > 1 else 0.0
    return {
        "bundle": str(args.bundle),
        "reloads": args.reloads,
        "requests_per_reload": args.requests,
        "rss_mb": [round(x, 1) for x in rss],
        "rss_start_mb": round(rss[0], 1),
        "rss_half_mb": round(rss[half], 1),
        "rss_end_mb": round(rss[-1], 1),
        "slope_mb_per_reload_second_half": round(slope, 3),
        "reload_seconds_p50": round(float(np.median(seconds)), 3),
        "pid": os.getpid(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", required=True, help="A bundle written by `recsys train`.")
    parser.add_argument("--reloads", type=int, default=30)
    parser.add_argument("--requests", type=int, default=20, help="/v1/recommend after each.")
    parser.add_argument("--name", default="reload_memory")
    args = parser.parse_args()
    if not Path(args.bundle, "manifest.json").exists():
        raise SystemExit(f"--bundle {args.bundle}: no manifest.json there (a `recsys train` out)")
    result = asyncio.run(run(args))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
