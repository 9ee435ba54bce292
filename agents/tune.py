"""The LLM rerank's blend weight, earned on validation users and stored in the bundle.

``recsys tune-llm --bundle B --data D`` (or ``recsys train ... --tune-llm``): for validation
users (the target is each user's second-to-last item, never the test one) whose target the
bundle puts in its top ``n``, the configured LLM scores those ``n`` candidates in the bundle's
order; the weight with the best NDCG@10 of ``order + w * z(llm)`` over the grid is chosen
(``w = 0`` is on the grid, so on validation the blend is never below the bundle's order) and
written to the manifest's ``llm.rerank`` section with its validation figures. The server reads
it on load; an untuned bundle serves with weight 0: the decided order, unchanged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from agents.llm import LLMClient, LLMError
from agents.rerank import LLMReranker, RerankConfig, blend, choose_weight
from recsys.artifacts import Bundle, load_bundle, record_section
from recsys.data.contract import Dataset, dataset_fingerprint
from recsys.data.sequences import encode
from recsys.data.split import EvalSet, leave_one_out
from recsys.errors import BundleError
from recsys.ranking.folds import validation_view


@dataclass(frozen=True)
class TuneConfig:
    users: int = 200  # validation users whose target is in the top n
    top_n: int = 20
    scan: int = 5000  # users looked at, at most, to find them
    seed: int = 0


def ndcg_at(order: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    hit = np.flatnonzero(labels[order][:k] > 0)
    return float(1.0 / np.log2(hit[0] + 2)) if len(hit) else 0.0


def context_of(bundle: Bundle, history: np.ndarray, last: int = 5) -> str:
    if not len(history):
        return "a new shopper with no history"
    titles = [bundle.items.row(int(i)).get("title") or bundle.item_ids[int(i)]
              for i in history[-last:]]  # fmt: skip
    return "recently looked at: " + "; ".join(str(t) for t in titles)


def scored_groups(
    bundle: Bundle, ev: EvalSet, reranker: LLMReranker, config: TuneConfig, desc: str
) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
    """(LLM scores in the bundle's order, labels) for up to ``config.users`` users of ``ev``
    whose target is in the bundle's top ``top_n``, and counts of what was looked at."""
    ranking = bundle.ranking
    ranker = ranking.rankers[ranking.default] if ranking is not None else None
    groups: list[tuple[np.ndarray, np.ndarray]] = []
    seen = failed = 0
    seconds: list[float] = []
    rng = np.random.default_rng(config.seed)
    bar = tqdm(total=config.users, desc=desc)
    for row in rng.permutation(len(ev))[: config.scan]:
        if len(groups) >= config.users:
            break
        seen += 1
        hist = ev.history.select(np.array([row]))
        batch, _ = bundle.retriever.retrieve(hist)
        if ranker is not None:
            ranked = ranker.rank(batch, hist, [str(bundle.user_ids[ev.users[row]])],
                                 ranking.features)  # type: ignore[union-attr]  # fmt: skip
            ids = ranked.ids[0][: config.top_n]
        else:
            ids = batch.ids[0][: config.top_n]
        labels = (ids == ev.targets[row]).astype(np.float64)
        if labels.sum() == 0 or (ids < 0).any():
            continue
        called = time.perf_counter()
        try:
            scores = reranker.scores([int(i) for i in ids], context_of(bundle, hist.items))
            seconds.append(time.perf_counter() - called)
        except LLMError:
            failed += 1  # a late or failed answer is the order unchanged: no evidence either way
            continue
        groups.append((scores, labels))
        bar.update(1)
    bar.close()
    p50, p95 = np.percentile(seconds, [50, 95]) if seconds else (np.nan, np.nan)
    counts = {"users_scanned": seen, "users_scored": len(groups), "llm_failures": failed,
              "call_p50_s": round(float(p50), 3), "call_p95_s": round(float(p95), 3)}  # fmt: skip
    return groups, counts


def evaluate_weight(groups: list[tuple[np.ndarray, np.ndarray]], weight: float) -> float:
    return float(np.mean([ndcg_at(np.argsort(-blend(s, weight), kind="stable"), y)
                          for s, y in groups])) if groups else 0.0  # fmt: skip


def tune_rerank(
    ds: Dataset, path: str | Path, llm: LLMClient, config: TuneConfig | None = None
) -> dict[str, Any]:
    """Choose the weight on ``ds``'s validation users and record it in the bundle at
    ``path``; returns the section written."""
    config = config or TuneConfig()
    bundle = load_bundle(path)
    if dataset_fingerprint(ds) != bundle.manifest["dataset"]["fingerprint"]:
        raise BundleError(f"bundle {bundle.version} was not trained on dataset {ds.name!r}")
    started = time.perf_counter()
    split = leave_one_out(encode(ds))
    reranker = LLMReranker(llm, bundle.items, RerankConfig(top_n=config.top_n, timeout_s=30.0))
    view = validation_view(ds, bundle)  # sources that never saw the validation targets
    groups, counts = scored_groups(view, split.valid, reranker, config, "tune-llm (valid)")
    weight, table = choose_weight(groups, ndcg_at)
    section = {
        "weight": weight,
        "top_n": config.top_n,
        "backend": llm.name,
        "validation_ndcg10_by_weight": {str(w): round(v, 5) for w, v in table.items()},
        **counts,
        "seconds": round(time.perf_counter() - started, 1),
    }
    record_section(path, "llm", {**bundle.manifest.get("llm", {}), "rerank": section})
    return section
