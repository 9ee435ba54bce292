"""Concurrent chats against a real server: turn times against the deadline, health meanwhile.

    python benchmarks/chat_concurrency.py [--chats 20 --turns 3 --llm on]

Starts ``uvicorn --factory serving.app:create_app`` (one worker) on a small synthetic-shop
bundle (built under var/bench/chat/ the first time), warms the LLM with one turn, then runs
``--chats`` conversations at once (each ``--turns`` turns: a find with a budget, a refinement by
colour, "anything cheaper?"), while a poller asks ``GET /healthz`` every 20 ms. Reports each
turn's wall time against the router's deadline (``RouterConfig.deadline_s``) + 0.5 s, the
degraded flags, and /healthz p50/p99/max. Prints one JSON document and writes
benchmarks/results/chat_concurrency_{on,off}.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.router import RouterConfig  # noqa: E402
from benchmarks.loadgen import Server  # noqa: E402
from recsys.artifacts import TrainConfig, load_bundle, train_bundle  # noqa: E402
from recsys.data.synth import generate  # noqa: E402
from recsys.retrieval.retriever import RetrievalConfig  # noqa: E402

SOURCES = ("popular", "covisit", "als", "attributes")


def bundle_path(users: int, items: int) -> Path:
    path = ROOT / "var" / "bench" / "chat" / f"shop-{users}x{items}"
    if not (path / "manifest.json").is_file():
        ds = generate(users=users, items=items, seed=0)
        config = TrainConfig(sources=SOURCES, retrieval=RetrievalConfig(total=200, depth=200),
                             ranking=None)  # fmt: skip
        train_bundle(ds, path, config, progress=True)
    return path


def dialogue(bundle: Any, rng: np.random.Generator) -> list[str]:
    leaves = np.asarray(bundle.items.category, dtype=object)
    leaf = str(rng.choice(leaves))
    prices = np.asarray(bundle.items.price, dtype=float)[leaves == leaf]
    budget = round(float(np.percentile(prices, 70)))
    colours = [json.loads(a).get("colour") for a in np.asarray(bundle.items.attributes)[
        leaves == leaf]]  # fmt: skip
    colour = next((c for c in colours if c), "black")
    noun = leaf.split(" > ")[-1].lower()
    return [f"I'm looking for {noun} under {budget}", f"any in {colour}?", "anything cheaper?"]


async def one_chat(client: httpx.AsyncClient, sid: str, turns: list[str]) -> list[dict[str, Any]]:
    out = []
    token = None
    for message in turns:
        body: dict[str, Any] = {"session_id": sid, "message": message}
        if token:
            body["session_token"] = token
        started = time.monotonic()
        done: dict[str, Any] = {}
        async with client.stream("POST", "/v1/chat", json=body, timeout=60) as reply:
            token = reply.headers.get("X-Session-Token", token)
            event = ""
            async for line in reply.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "done":
                    done = json.loads(line[6:])
        out.append({"seconds": time.monotonic() - started, "status": reply.status_code,
                    "path": done.get("path"), "degraded": done.get("degraded", [])})  # fmt: skip
    return out


async def poll_health(client: httpx.AsyncClient, stop: asyncio.Event) -> list[float]:
    times = []
    while not stop.is_set():
        started = time.monotonic()
        reply = await client.get("/healthz", timeout=10)
        if reply.status_code == 200:
            times.append((time.monotonic() - started) * 1000)
        await asyncio.sleep(0.02)
    return times


async def run(url: str, bundle: Any, chats: int, turns: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    limits = httpx.Limits(max_connections=chats + 4)
    async with httpx.AsyncClient(base_url=url, limits=limits) as client:
        await one_chat(client, "warm-up", dialogue(bundle, rng)[:1])  # loads the model
        stop = asyncio.Event()
        health = asyncio.create_task(poll_health(client, stop))
        started = time.monotonic()
        results = await asyncio.gather(*[
            one_chat(client, f"c{n}", dialogue(bundle, rng)[:turns]) for n in range(chats)
        ])  # fmt: skip
        elapsed = time.monotonic() - started
        stop.set()
        health_ms = await health
    flat = [t for chat in results for t in chat]
    seconds = np.array([t["seconds"] for t in flat])
    limit = RouterConfig().deadline_s + 0.5
    degraded: dict[str, int] = {}
    for t in flat:
        for flag in t["degraded"]:
            degraded[flag] = degraded.get(flag, 0) + 1
    hm = np.array(health_ms) if health_ms else np.array([np.nan])
    return {
        "chats": chats, "turns": len(flat), "elapsed_s": round(elapsed, 2),
        "turn_p50_s": round(float(np.percentile(seconds, 50)), 3),
        "turn_p95_s": round(float(np.percentile(seconds, 95)), 3),
        "turn_max_s": round(float(seconds.max()), 3),
        "deadline_plus_0.5_s": limit,
        "turns_over_limit": int((seconds > limit).sum()),
        "non_200": sum(t["status"] != 200 for t in flat),
        "paths": {p: sum(t["path"] == p for t in flat) for p in {t["path"] for t in flat}},
        "degraded": degraded,
        "healthz": {
            "polls": len(health_ms),
            "p50_ms": round(float(np.nanpercentile(hm, 50)), 2),
            "p99_ms": round(float(np.nanpercentile(hm, 99)), 2),
            "max_ms": round(float(np.nanmax(hm)), 2),
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chats", type=int, default=20)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--items", type=int, default=1500)
    parser.add_argument("--llm", choices=["on", "off"], default="on")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = bundle_path(args.users, args.items)
    bundle = load_bundle(path)
    with tempfile.TemporaryDirectory() as tmp:
        env = {"RECSYS_CHAT_MEMORY": str(Path(tmp) / "chat.sqlite"),
               "RECSYS_DECISION_LOG_PATH": str(Path(tmp) / "decisions.jsonl"),
               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}  # fmt: skip
        if args.llm == "off":
            env["RECSYS_LLM_MODEL_PATH"] = str(Path(tmp) / "no-model.gguf")
        server = Server(path, 1, Path(tmp), env)
        try:
            asyncio.run(server.wait_ready(300))
            result = asyncio.run(run(f"http://127.0.0.1:{server.port}", bundle, args.chats,
                                     args.turns, args.seed))  # fmt: skip
        finally:
            server.stop()
    result = {"llm": args.llm, **result}
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"chat_concurrency_{args.llm}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
