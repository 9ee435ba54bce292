"""Evaluate a trained bundle: every source alone, and the merged candidate list.

Each source gets the full-ranking metrics of the protocol (its dense scores over the whole
catalog) plus candidate recall@N of its own top list as served (through its vector index where
it has one). The merged list gets the same metrics read off its RRF order (a target outside the
list counts as a miss) and its candidate recall@N, which bounds what any ranker on top can do.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from recsys.data.contract import Dataset, dataset_fingerprint
from recsys.data.sequences import encode
from recsys.data.split import SplitName, leave_one_out
from recsys.errors import BundleError
from recsys.evaluation.metrics import candidate_recall, list_metrics
from recsys.evaluation.protocol import DEFAULT_KS, evaluate_fitted
from recsys.evaluation.ranked import ranked_metrics
from recsys.ranking.choose import order_label

if TYPE_CHECKING:
    from recsys.artifacts import Bundle

DEFAULT_NS = (100, 500)


def evaluate_bundle(
    ds: Dataset,
    bundle: Bundle,
    which: SplitName = "test",
    ks: Sequence[int] = DEFAULT_KS,
    ns: Sequence[int] = DEFAULT_NS,
    batch: int = 1024,
    progress: bool = False,
) -> dict[str, Any]:
    fingerprint = dataset_fingerprint(ds)
    trained_on = bundle.manifest["dataset"]["fingerprint"]
    if fingerprint != trained_on:
        raise BundleError(
            f"bundle {bundle.version} was trained on dataset "
            f"{bundle.manifest['dataset']['name']!r} (fingerprint {trained_on[:12]}), "
            f"not on {ds.name!r} (fingerprint {fingerprint[:12]})"
        )
    if which == "valid" and bundle.refitted:
        raise BundleError(
            f"bundle {bundle.version}: its sources were refitted with the validation targets "
            "(refit_with_valid), so only 'test' judges them; valid splits for it: ['test']"
        )
    started = time.perf_counter()
    split = leave_one_out(encode(ds))
    eval_set = split.eval_set(which)
    retriever = bundle.retriever
    depth = max(*ns, retriever.config.depth)  # one scoring per batch serves both uses
    results: dict[str, Any] = {"sources": {}, "merged": {}}
    for source in retriever.sources:
        full = evaluate_fitted(source.model, split, which, ks)
        results["sources"][source.name] = {k: v for k, v in full.items() if k != "users"}

    ranking = bundle.ranking
    pipelines = [f"pipeline:{n}" for n in [*ranking.rankers, "default"]] if ranking else []
    sums: dict[str, dict[str, float]] = {
        name: {} for name in [*retriever.names, "merged", *pipelines]
    }
    n_users = len(eval_set)
    for start in tqdm(range(0, n_users, batch), desc="retrieve", disable=not progress):
        rows = np.arange(start, min(start + batch, n_users))
        history = eval_set.history.select(rows)
        targets = eval_set.targets[rows]
        lists, _ = retriever.source_lists(history, depth)
        for name, lst in lists.items():
            _accumulate(sums[name], candidate_recall(lst.ids, targets, ns))
        merged = retriever.merge(lists, history)
        _accumulate(sums["merged"], list_metrics(merged.ids, targets, ks, ns))
        if ranking is not None:
            user_ids = [str(u) for u in bundle.user_ids[eval_set.users[rows]]]
            ranked = ranked_metrics(ranking, merged, history, user_ids, targets, ks, ns)
            for name, values in ranked.items():
                _accumulate(sums[name], values)
    for name, total in sums.items():
        if name in pipelines:
            results.setdefault("pipeline", {})[name.split(":", 1)[1]] = {
                k: v / n_users for k, v in total.items()
            }
            continue
        target = results["merged"] if name == "merged" else results["sources"][name]
        target.update({k: v / n_users for k, v in total.items()})
    if ranking is not None:
        # the served order ("merged", a ranker, or "blend:<ranker>"); its figures are
        # results["pipeline"]["default"]
        results["pipeline_default"] = order_label(ranking.serve, ranking.blend)
    results.update(
        {
            "dataset": ds.name,
            "bundle": bundle.version,
            "split": which,
            "users": n_users,
            "candidates": retriever.config.total,
            "seconds": round(time.perf_counter() - started, 3),
        }
    )
    return results


def _accumulate(into: dict[str, float], values: dict[str, np.ndarray]) -> None:
    for key, arr in values.items():
        into[key] = into.get(key, 0.0) + float(arr.sum())
