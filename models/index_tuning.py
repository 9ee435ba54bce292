"""Search effort chosen on the data: the fewest IVF lists a query visits that still find
``target`` of the exact top ``k`` for real queries (the model's own user vectors).

IVF recall depends on how the catalog's vectors cluster, so one fixed ``nprobe`` either wastes
work on well-clustered catalogs or misses on others. ``tune_nprobe`` walks a ladder of
``nprobe`` values up from the cheapest and stops at the first that reaches the target recall
against exact search on the given queries. It counts nothing but recall, so the choice is the
same on any machine; the cost follows the number of lists visited.
"""

from __future__ import annotations

from typing import Any

import numpy as np

LADDER = (1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)


def exact_kth(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """(B, 1) each query's k-th best exact inner product over ``vectors`` (N, D)."""
    import faiss

    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    scores, _ = exact.search(queries, min(k, len(vectors)))  # (B, k)
    return np.asarray(scores[:, -1:])


def recall_of(ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, kth: np.ndarray) -> float:
    """Share of returned ``ids`` (B, k) whose true score reaches the exact k-th score.

    Item ids among tied scores (ALS gives every never-seen item the same zero vector) are
    interchangeable, so id overlap alone would punish a correct answer.
    """
    true = np.einsum("bd,bkd->bk", queries, vectors[np.maximum(ids, 0)])  # (B, k)
    tol = 1e-5 * (1.0 + np.abs(kth))  # flat (BLAS) and list distances round differently
    hits = (true >= kth - tol) & (ids >= 0)
    return float(hits.sum() / ids.size)


def tune_nprobe(
    index: Any, vectors: np.ndarray, queries: np.ndarray, target: float, k: int
) -> dict[str, Any]:
    """Set a built faiss IVF ``index``'s ``nprobe`` to the smallest on :data:`LADDER` (or all
    its lists) whose recall@k against exact search on ``queries`` reaches ``target``; returns
    what was chosen and the recall at each step tried."""
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target recall must be in (0, 1], got {target}")
    k = min(k, len(vectors))
    kth = exact_kth(vectors, queries, k)
    nlist = int(index.nlist)
    steps = [p for p in LADDER if p < nlist] + [nlist]
    tried: dict[int, float] = {}
    for nprobe in steps:
        index.nprobe = nprobe
        _, ids = index.search(queries, k)  # (B, k)
        tried[nprobe] = round(recall_of(ids, vectors, queries, kth), 4)
        if tried[nprobe] >= target:
            break
    return {"nprobe": int(index.nprobe), "nlist": nlist, f"recall@{k}": tried[index.nprobe],
            "target": target, "queries": len(queries), "tried": tried}  # fmt: skip
