"""Where a served recommend's CPU goes outside the pipeline: the same load against five servers
that each do a little more of the real work, side by side.

    python benchmarks/server_floor.py [--rate 200 --duration 20 --rounds 2 --bundle DIR]

Each layer is ``benchmarks/load.py`` at one offered rate (2 workers, 64 connections, Poisson)
against ``uvicorn`` running one of this module's app factories:

- ``bare``: a plain ASGI app answering every POST with a fixed recommend-sized JSON body: the
  floor of uvicorn (httptools, uvloop), the sockets and the kernel.
- ``fastapi``: a one-route FastAPI app that reads and parses the body and answers the same bytes.
- ``stack``: this project's app (``serving.app:create_app``) whose recommend service answers
  every request with the first response it computed: middleware, routing, request validation,
  the response's serialization.
- ``service``: this project's app with every pipeline run memoized per (pipeline, user): the
  service around the pipeline as well (batching, metrics, the decision log, the response's
  items).
- ``full``: the app as served.

Layers run in turn, ``--rounds`` times, each on a fresh server. The JSON gives each layer's
server CPU per request (median over rounds) and each step's share: ``fastapi - bare`` is
FastAPI's own cost, ``stack - fastapi`` this app's HTTP layer, ``service - stack`` the
service around the pipeline, and ``full - service`` the pipeline. ``--pool`` bodies are drawn
(default 250: the warm-up's draws memoize nearly all of them before the measured window).

These machines are shared and noisy: only figures from the same run compare, and a difference
below ~10% is within the noise between rounds.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response  # at module level: the route's annotations

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {
    "bare": "benchmarks.server_floor:bare_app",
    "fastapi": "benchmarks.server_floor:fastapi_app",
    "stack": "benchmarks.server_floor:fixed_answer_app",
    "service": "benchmarks.server_floor:memoized_pipeline_app",
    "full": "serving.app:create_app",
}
# a recommend answer's size: ten items with scores and positions, the trace, the version
BODY = json.dumps(
    {
        "model_version": "synthetic-shop-0123456789abcdef-0123abcd-seed0",
        "request_id": "0" * 32,
        "user_id": "u000005",
        "cold_start": False,
        "ranker": "lightgbm",
        "items": [{"item_id": f"i{n:06d}", "position": n, "score": 0.123456789} for n in range(10)],
        "degraded": [],
    }
).encode()

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def bare_app() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """A plain ASGI app: every request's body read, ``BODY`` answered (``/metrics`` empty)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        body = b"" if scope["path"] == "/metrics" else BODY
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def fastapi_app() -> FastAPI:
    """One FastAPI route that parses the request body and answers ``BODY``."""
    app = FastAPI()

    @app.post("/v1/recommend")
    async def recommend(request: Request) -> Response:
        json.loads(await request.body())
        return Response(BODY, media_type="application/json")

    @app.get("/readyz")
    async def ready() -> Response:
        return Response(b"{}", media_type="application/json")

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(b"", media_type="text/plain")

    return app


def fixed_answer_app() -> Any:
    """The served app, its recommend service answering every request with its first answer."""
    import serving.recommend.service as service
    from serving.app import create_app

    real, first = service.recommend, {}

    async def recommend(served: Any, body: Any, deps: Any) -> Any:
        if "answer" not in first:
            first["answer"] = await real(served, body, deps)
        return first["answer"]

    service.recommend = recommend  # type: ignore[assignment]  # instrumentation
    return create_app()


def memoized_pipeline_app() -> Any:
    """The served app, every pipeline run memoized per (pipeline, user, query)."""
    import recsys.pipeline as pipeline
    from serving.app import create_app

    run, memo = pipeline.Pipeline.run, {}

    def memoized(self: Any, inputs: Any) -> Any:
        key = (id(self), inputs.get("user_id"), inputs.get("query"))
        if key not in memo:
            memo[key] = run(self, inputs)
        return memo[key]

    def memoized_batch(self: Any, inputs: Any) -> list[Any]:
        return [memoized(self, one) for one in inputs]

    pipeline.Pipeline.run = memoized  # type: ignore[method-assign]  # instrumentation
    pipeline.Pipeline.run_batch = memoized_batch  # type: ignore[method-assign]
    return create_app()


def run_layer(layer: str, args: argparse.Namespace, name: str) -> dict[str, Any]:
    cmd = [
        sys.executable, str(ROOT / "benchmarks" / "load.py"), "--endpoints", "recommend",
        "--rates", str(args.rate), "--duration", str(args.duration), "--warmup",
        str(args.warmup), "--pool", str(args.pool), "--app", LAYERS[layer], "--out",
        str(args.out), "--name", name,
    ]  # fmt: skip
    if args.bundle is not None:
        cmd += ["--bundle", str(args.bundle)]
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    doc = json.loads((args.out / f"{name}.json").read_text())
    run = doc["endpoints"]["recommend"]["runs"][0]
    return {k: run.get(k) for k in ("server_cpu_ms_per_request", "p50_ms", "p99_ms", "ok")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="offered requests/s")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per layer")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds before each")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pool", type=int, default=250, help="distinct request bodies")
    parser.add_argument("--layers", default=",".join(LAYERS))
    parser.add_argument("--bundle", type=Path, help="as load.py's --bundle (built if missing)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "floor")
    args = parser.parse_args()
    layers = [x.strip() for x in args.layers.split(",") if x.strip()]
    unknown = sorted(set(layers) - set(LAYERS))
    if unknown:
        raise SystemExit(f"unknown layers {unknown}; valid layers are {list(LAYERS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    rounds: dict[str, list[dict[str, Any]]] = {layer: [] for layer in layers}
    for r in range(args.rounds):
        for layer in layers:
            got = run_layer(layer, args, f"{layer}-r{r + 1}")
            rounds[layer].append(got)
            print(f"[floor] round {r + 1} {layer}: {got}", file=sys.stderr, flush=True)
    failed = [layer for layer, runs in rounds.items() if any(not x["ok"] for x in runs)]
    if failed:
        raise SystemExit(f"layers {failed} answered no request with 2xx; see {args.out}")
    cpu = {
        layer: statistics.median(x["server_cpu_ms_per_request"] for x in runs)
        for layer, runs in rounds.items()
    }
    steps = {f"{b} - {a}": round(cpu[b] - cpu[a], 3) for a, b in itertools.pairwise(layers)}
    doc = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "server_cpu_ms_per_request": cpu,
        "steps_ms": steps,
        "rounds": rounds,
    }
    print(json.dumps(doc, indent=2))
    (args.out / "server_floor.json").write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
