"""LLM reranking: NDCG of the ranker's top N with and without the blended LLM order.

    python benchmarks/rerank_llm.py [--datasets synthetic-shop amazon-industrial --users 30]

For users whose held-out target is in the ranker's top ``--top-n`` (the only users a reorder
of the top can change), the LLM reranks those candidates. The blend weight ``w`` of
``final = z(ranker) + w * llm`` is chosen on validation targets (w = 0, the ranker alone, is a
candidate) and NDCG@top-n is reported on test targets for the ranker alone and the blend, with
the LLM's latency and tokens. Uses the bundles benchmarks/ranking.py left in
var/bench/bundles/. Prints JSON and writes benchmarks/results/rerank_llm.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.llm import LLMClient, LLMError, LLMSettings  # noqa: E402
from agents.rerank import LLMReranker, RerankConfig, blend, choose_weight  # noqa: E402
from benchmarks.retrieval import load  # noqa: E402
from recsys.artifacts import load_bundle  # noqa: E402
from recsys.catalog import Catalog, catalog_frame  # noqa: E402
from recsys.data.sequences import encode  # noqa: E402
from recsys.data.split import EvalSet, leave_one_out  # noqa: E402


def ndcg(order: np.ndarray, labels: np.ndarray) -> float:
    hit = np.flatnonzero(labels[order] > 0)
    return float(1.0 / np.log2(hit[0] + 2)) if len(hit) else 0.0


def groups(bundle: Any, ev: EvalSet, reranker: LLMReranker, n: int, top: int, seed: int,
           name: str) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:  # fmt: skip
    """(ranker scores, LLM positions, labels) of the top ``top`` for up to ``n`` users whose
    target the ranker put there."""
    ranking = bundle.ranking
    ranker = ranking.rankers[ranking.default]
    out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    rng = np.random.default_rng(seed)
    bar = tqdm(total=n, desc=name)
    for row in rng.permutation(len(ev)):
        if len(out) >= n:
            break
        hist = ev.history.select(np.array([row]))
        batch, _ = bundle.retriever.retrieve(hist)
        user = str(bundle.user_ids[ev.users[row]])
        ranked = ranker.rank(batch, hist, [user], ranking.features)
        ids, scores = ranked.ids[0][:top], ranked.scores[0][:top]
        labels = (ids == ev.targets[row]).astype(np.float64)
        if labels.sum() == 0 or (ids < 0).any():
            continue
        titles = [str(bundle.items.row(int(i)).get("title") or "") for i in hist.items[-5:]]
        try:
            res = reranker.rerank(ids, scores, "recently looked at: " + "; ".join(titles))
        except LLMError:
            continue  # counted by the client's usage (timeouts, errors)
        out.append((np.asarray(scores, np.float64), res.llm_positions, labels))
        bar.update(1)
    bar.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["synthetic-shop", "amazon-industrial"])
    parser.add_argument("--users", type=int, default=30, help="per split and dataset")
    parser.add_argument("--top-n", type=int, default=8)
    parser.add_argument("--synth-users", type=int, default=10_000)
    parser.add_argument("--synth-items", type=int, default=2_000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    llm = LLMClient.from_settings(LLMSettings(timeout_s=30.0))
    report: dict[str, Any] = {"model": "SmolLM2-135M-Instruct Q4_1, in-process llama.cpp",
                              "top_n": args.top_n}  # fmt: skip
    for name in args.datasets:
        ds = load(name, args)
        bundle = load_bundle(ROOT / "var" / "bench" / "bundles" / name)
        bundle.catalog = Catalog.from_frame(catalog_frame(ds.items))  # older bundles: ids only
        split = leave_one_out(encode(ds))
        reranker = LLMReranker(llm, bundle.items, RerankConfig(top_n=args.top_n, timeout_s=30))
        started = time.perf_counter()
        valid = groups(bundle, split.valid, reranker, args.users, args.top_n, 0, f"{name} valid")
        test = groups(bundle, split.test, reranker, args.users, args.top_n, 1, f"{name} test")
        weight, table = choose_weight(valid, ndcg)
        report[name] = {
            "chosen_weight": weight,
            "valid_ndcg_by_weight": {str(w): round(v, 4) for w, v in table.items()},
            "test_users": len(test),
            "test_ndcg_ranker": round(
                float(np.mean([ndcg(np.argsort(-s, kind="stable"), y) for s, _, y in test])), 4
            ),
            "test_ndcg_blend": round(
                float(
                    np.mean(
                        [
                            ndcg(np.argsort(-blend(s, p, weight), kind="stable"), y)
                            for s, p, y in test
                        ]
                    )
                ),
                4,
            ),
            "test_ndcg_llm_alone": round(
                float(np.mean([ndcg(np.argsort(p, kind="stable"), y) for _, p, y in test])), 4
            ),
            "seconds": round(time.perf_counter() - started, 1),
        }
    usage = llm.report().get("rerank", {})
    if usage:
        usage["mean_s_per_call"] = round(usage["seconds"] / max(usage["calls"], 1), 3)
    report["llm"] = usage
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rerank_llm.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
