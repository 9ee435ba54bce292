"""LLM rerank: NDCG@10 of the bundle's order, the blend with the validation-chosen weight, and the
LLM alone, on test users; scoring and reasons latency; tokens per call.

    python benchmarks/rerank_llm.py [--datasets synthetic-shop amazon-industrial --users 200]

For users whose held-out target is in the bundle's top ``--top-n`` (the only users a reorder of
the top can change), the LLM scores those candidates in one pass (agents.rerank). The weight of
``final = order + w * z(llm)`` is chosen on validation targets (w = 0, the order unchanged, is
a candidate), exactly as ``recsys tune-llm`` does, and applied to test targets. Bundles are
trained with the default config into var/bench/llm/ when missing. Prints JSON and writes
benchmarks/results/rerank_llm.json and a plot.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.llm import LLMClient, LLMError, LLMSettings  # noqa: E402
from agents.rerank import LLMReranker, RerankConfig, choose_weight  # noqa: E402
from agents.tune import (  # noqa: E402
    TuneConfig,
    context_of,
    evaluate_weight,
    ndcg_at,
    scored_groups,
)
from benchmarks.retrieval import load  # noqa: E402
from models.threads import pin_compute_threads  # noqa: E402
from recsys.artifacts import TrainConfig, load_bundle, train_bundle  # noqa: E402
from recsys.data.sequences import encode  # noqa: E402
from recsys.data.split import leave_one_out  # noqa: E402


def reasons_latency(bundle: Any, reranker: LLMReranker, ev: Any, n: int, k: int) -> dict[str, Any]:
    """Reasons for ``k`` shown items, for ``n`` test users: seconds per call and failures."""
    seconds, failed = [], 0
    for row in range(min(n, len(ev))):
        hist = ev.history.select(np.array([row]))
        batch, _ = bundle.retriever.retrieve(hist)
        shown = [int(i) for i in batch.ids[0][:k] if i >= 0]
        started = time.perf_counter()
        try:
            reranker.reasons(shown, context_of(bundle, hist.items))
            seconds.append(time.perf_counter() - started)
        except LLMError:
            failed += 1
    p50, p95 = np.percentile(seconds, [50, 95]) if seconds else (np.nan, np.nan)
    return {"calls": n, "failed": failed, "p50_s": round(float(p50), 3),
            "p95_s": round(float(p95), 3)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["synthetic-shop", "amazon-industrial"])
    parser.add_argument("--users", type=int, default=200, help="per split and dataset")
    parser.add_argument("--top-n", type=int, default=20)
    parser.add_argument("--reasons", type=int, default=20, help="users timed for reasons")
    parser.add_argument("--synth-users", type=int, default=10_000)
    parser.add_argument("--synth-items", type=int, default=2_000)
    parser.add_argument("--sources", nargs="+", default=list(TrainConfig().sources),
                        help="the bundle's candidate sources, when it is trained here")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    pin_compute_threads(1)
    llm = LLMClient.from_settings(LLMSettings(timeout_s=30.0, cache_size=0))
    report: dict[str, Any] = {"backend": llm.name, "top_n": args.top_n}
    for name in args.datasets:
        ds = load(name, args)
        path = ROOT / "var" / "bench" / "llm" / name
        if not (path / "manifest.json").exists():
            train_bundle(ds, path, TrainConfig(sources=tuple(args.sources)), progress=True)
        bundle = load_bundle(path)
        split = leave_one_out(encode(ds))
        reranker = LLMReranker(llm, bundle.items, RerankConfig(top_n=args.top_n, timeout_s=30))
        config = TuneConfig(users=args.users, top_n=args.top_n)
        valid, valid_counts = scored_groups(bundle, split.valid, reranker, config, f"{name} valid")
        test, test_counts = scored_groups(bundle, split.test, reranker,
                                          TuneConfig(users=args.users, top_n=args.top_n, seed=1),
                                          f"{name} test")  # fmt: skip
        weight, table = choose_weight(valid, ndcg_at)
        llm_alone = [ndcg_at(np.argsort(-s, kind="stable"), y) for s, y in test]
        report[name] = {
            "chosen_weight": weight,
            "valid_ndcg10_by_weight": {str(w): round(v, 4) for w, v in table.items()},
            "valid": valid_counts,
            "test": test_counts,
            "test_ndcg10_order": round(evaluate_weight(test, 0.0), 4),
            "test_ndcg10_blend": round(evaluate_weight(test, weight), 4),
            "test_ndcg10_llm_alone": round(float(np.mean(llm_alone)) if test else 0.0, 4),
            "reasons_5_items": reasons_latency(bundle, reranker, split.test, args.reasons, 5),
        }
        print(json.dumps({name: report[name]}, indent=2), flush=True)
    report["llm_usage"] = llm.report()
    for usage in report["llm_usage"].values():
        calls = max(usage["calls"], 1)
        usage["prompt_tokens_per_call"] = round(usage["prompt_tokens"] / calls, 1)
        usage["completion_tokens_per_call"] = round(usage["completion_tokens"] / calls, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rerank_llm.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, args.datasets, args.out / "rerank_llm.png")
    print(json.dumps(report, indent=2))


def plot(report: dict[str, Any], names: list[str], out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    kinds = ["order", "blend", "llm_alone"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for n, kind in enumerate(kinds):
        values = [report[name][f"test_ndcg10_{kind}"] for name in names]
        ax.bar(np.arange(len(names)) + n * 0.25, values, width=0.25, label=kind)
    ax.set_xticks(np.arange(len(names)) + 0.25, names)
    ax.set_ylabel("test NDCG@10 (target in top n)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)


if __name__ == "__main__":
    main()
