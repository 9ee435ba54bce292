"""Latency of the LLM rerank's scoring pass: 20 candidates of a bundle, one forward pass each.

    python benchmarks/rerank_latency.py --bundle var/demo/bundle [--shoppers 15 --top-n 20]

Random candidate lists and random five-item histories from the bundle's catalog (the prompt's
length is what costs, not which items), scored by the configured LLM (``RECSYS_LLM_*``: the
packaged model in process by default) exactly as the served rerank scores them
(``agents.rerank.LLMReranker.scores``, calibration included). The first call also computes the
letters' prior and is reported apart. Prints one JSON document: p50/p95 seconds after the first
call, prompt tokens, threads and weights.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.layer import LLMLayer  # noqa: E402
from agents.llm_settings import LLMSettings  # noqa: E402
from agents.rerank import LLMReranker, RerankConfig  # noqa: E402
from agents.tune import context_of  # noqa: E402
from recsys.artifacts import load_bundle  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True, help="A `recsys train` bundle.")
    parser.add_argument("--shoppers", type=int, default=15)
    parser.add_argument("--top-n", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    bundle = load_bundle(args.bundle)
    settings = LLMSettings()
    client = LLMLayer(settings).client("rerank")
    reranker = LLMReranker(client, bundle.items, RerankConfig(top_n=args.top_n, weight=1.0))
    rng = np.random.default_rng(args.seed)
    n_items = len(bundle.item_ids)
    seconds, tokens = [], []
    for _ in range(args.shoppers + 1):
        items = [int(i) for i in rng.choice(n_items, args.top_n, replace=False)]
        context = context_of(bundle, rng.choice(n_items, 5, replace=False))
        tokens.append(client.backend.count([{"role": "user", "content": reranker.prompt(
            reranker.brief(items), context)}]))  # fmt: skip
        started = time.perf_counter()
        reranker.scores(items, context)
        seconds.append(time.perf_counter() - started)
    rest = np.asarray(seconds[1:])
    print(json.dumps({
        "backend": client.name, "weights": settings.weights, "threads": settings.threads,
        "threads_batch": settings.threads_batch, "top_n": args.top_n,
        "shoppers": args.shoppers, "first_call_s": round(seconds[0], 3),
        "p50_s": round(float(np.median(rest)), 3),
        "p95_s": round(float(np.percentile(rest, 95)), 3),
        "prompt_tokens_mean": round(float(np.mean(tokens)), 1),
        "load_average": list(os.getloadavg()), "cpu_count": os.cpu_count(),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
