"""A trained ranker as the pipeline uses it: score candidate rows, reorder the merged list.

Serving scores through the session ``models.ranker_runtime`` opens: compiled trees (lleaves) for
LightGBM, ONNX Runtime otherwise (execution providers picked from a preference list: TensorRT,
CUDA, CPU, the first available wins); the native model stays for evaluation and parity checks.
The same :meth:`Ranker.rank` orders one request (the ranking stage) and a thousand (evaluation),
so what is evaluated is what is served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.base import stable_order_desc
from models.ranker_base import RankerModel
from recsys.data.sequences import Sequences
from recsys.native import topk as native_topk
from recsys.ranking.features import FeatureSource, FrameSpec, build_frame
from recsys.ranking.frame import RankingFrame
from recsys.retrieval.cache import KeptRows, frozen
from recsys.retrieval.merge import CandidateBatch
from recsys.retrieval.retriever import histories_of, history_of

BLEND_K = 60.0  # the merge's RRF damping, so a blend reads like one more fused list


@dataclass(frozen=True)
class Ranked:
    """Reordered candidates for B requests: ids (B, N) with -1 padding, scores (B, N)."""

    ids: np.ndarray
    scores: np.ndarray
    order: np.ndarray  # (B, N) slot of the merged list each ranked position came from


@dataclass
class Ranker:
    name: str
    spec: FrameSpec
    model: RankerModel
    session: Any = None  # OnnxSession or CompiledTrees (run(feeds)); None scores natively

    def score(self, frame: RankingFrame, native: bool = False) -> np.ndarray:
        """(N,) float32 scores, through the session unless ``native`` or no session."""
        if native or self.session is None:
            return np.asarray(self.model.predict(frame), dtype=np.float32)
        return np.asarray(self.session.run(self.model.onnx_feeds(frame)), dtype=np.float32)

    def rank(
        self,
        batch: CandidateBatch,
        histories: Sequences,
        user_ids: Sequence[str],
        features: FeatureSource,
        native: bool = False,
        blend: float = 0.0,
    ) -> Ranked:
        """The candidates in this ranker's order, or with ``blend`` > 0 in the rank blend of
        its order with the merged one (``recsys.ranking.choose``)."""
        frame = build_frame(self.spec, batch, histories, user_ids, features)
        return reorder(batch, self.score(frame, native), blend)


def reorder(batch: CandidateBatch, row_scores: np.ndarray, blend: float = 0.0) -> Ranked:
    """Sort each request's filled slots by score (stable: ties keep the merged order); with
    ``blend`` > 0, by the rank blend of that order with the merged one (:func:`blend_scores`).
    One request goes through the C kernel (``recsys/native/topk.c``) where built: the same
    order, ids and scores."""
    if len(batch.ids) == 1:
        compiled = native_topk.blend_order(batch.ids[0], row_scores, blend, BLEND_K)
        if compiled is not None:
            order, ids, scores = compiled
            return Ranked(ids=ids[None, :], scores=scores[None, :], order=order[None, :])
    if blend > 0:
        row_scores = blend_scores(batch, row_scores, blend)
    grid, order = _sorted_slots(batch, row_scores)
    rows = np.arange(len(order))[:, None]  # (B, 1): plain indexing, cheaper per request
    return Ranked(ids=batch.ids[rows, order], scores=grid[rows, order], order=order)


def _sorted_slots(batch: CandidateBatch, row_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, N) the scores by slot (-inf where empty) and the slots best first, ties in order."""
    filled = batch.ids >= 0  # (B, N)
    grid = np.full(batch.ids.shape, -np.inf, dtype=np.float32)
    grid[filled] = row_scores  # rows were built row-major over the filled slots
    if len(grid) == 1:  # a request: the same order at about half the cost
        return grid, stable_order_desc(grid[0])[None, :]  # (1, N)
    return grid, np.argsort(-grid, axis=1, kind="stable")  # (B, N)


def blend_scores(batch: CandidateBatch, row_scores: np.ndarray, weight: float) -> np.ndarray:
    """Row scores of the rank blend of ``row_scores`` with the merged order (filled slots,
    row-major, as :func:`recsys.ranking.ranker.reorder` takes them)."""
    if weight <= 0.0:
        return np.asarray(row_scores, np.float32)
    filled = batch.ids >= 0  # (B, N)
    _, order = _sorted_slots(batch, row_scores)  # order[b, r] = merged slot at ranker rank r
    by_ranker = np.empty(batch.ids.shape, np.float64)
    by_ranker[np.arange(len(by_ranker))[:, None], order] = np.arange(batch.ids.shape[1])
    slot = np.arange(batch.ids.shape[1], dtype=np.float64)[None, :]
    grid = (1.0 - weight) / (BLEND_K + 1.0 + by_ranker) + weight / (BLEND_K + 1.0 + slot)
    return grid[filled].astype(np.float32)


class RankedCache(KeptRows[Ranked]):
    """One request's ranked candidates by everything the ranking reads: the history, the
    candidates' ids, the user's stored feature row and the item features' materialization
    version (so a pushed user row or a new materialization misses). The candidates' other
    columns must follow from the history and their ids, as the retrieval stage's do."""

    @staticmethod
    def key(history: np.ndarray, ids: np.ndarray, user_row: np.ndarray, version: str) -> bytes:
        parts = (np.asarray(history, np.int32), np.asarray(ids, np.int64), user_row)
        sizes = np.array([p.nbytes for p in parts], np.int64)  # lengths first: unambiguous
        return b"".join([sizes.tobytes(), *(p.tobytes() for p in parts), version.encode()])

    def freeze(self, value: Ranked) -> Ranked:
        if len(value.ids) != 1:
            raise ValueError(f"a cache entry is one request's ranking, got {len(value.ids)}")
        return Ranked(frozen(value.ids), frozen(value.scores), frozen(value.order))


@dataclass(frozen=True)
class _UsersRead:
    """``features`` with some users' rows already read, so a cache miss reads them once."""

    features: FeatureSource
    rows: Mapping[str, np.ndarray]

    def items_at(self, idx: np.ndarray) -> np.ndarray:
        return self.features.items_at(idx)

    def users(self, user_ids: Sequence[str]) -> np.ndarray:
        if all(u in self.rows for u in user_ids):
            return np.stack([self.rows[u] for u in user_ids])
        return self.features.users(user_ids)


@dataclass
class RankingStage:
    """Reads the merged candidates and the history, writes them reordered by the ranker.

    With a ``cache`` (:class:`RankedCache`, the recommend pipeline's), a request whose history,
    candidates, user features and feature version were all ranked before gets that ranking."""

    ranker: Ranker
    features: FeatureSource
    n_items: int
    blend: float = 0.0  # weight of the merged order blended in (the bundle's chosen order)
    cache: RankedCache | None = None
    name: str = "ranking"
    reads: tuple[str, ...] = ("user_id", "history", "candidates")
    writes: tuple[str, ...] = ("ranked",)

    def run(self, state: Mapping[str, Any]) -> dict[str, Any]:
        if self.cache is not None:
            return self.run_batch([state])[0]
        history = history_of(state["history"], self.n_items)
        ranked = self.ranker.rank(
            state["candidates"], history, [str(state["user_id"])], self.features, blend=self.blend
        )
        return {"ranked": ranked}

    def run_batch(self, states: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """One frame, one store read of the users' features and one ranker call for all the
        requests (those the cache lacks); each gets its own row of the order. Candidate lists
        of different widths (the rank endpoint's given lists) are ranked request by request."""
        users = [str(s["user_id"]) for s in states]
        out: list[Ranked | None] = [None] * len(states)
        keys: list[bytes] = []
        features = self.features
        if self.cache is not None:
            rows = self.features.users(users)  # (B, F_user): the store is read once here
            version = str(getattr(self.features, "version", ""))
            keys = [
                self.cache.key(s["history"], s["candidates"].ids, row, version)
                for s, row in zip(states, rows, strict=True)
            ]
            out = [self.cache.get(k) for k in keys]
            features = _UsersRead(self.features, dict(zip(users, rows, strict=True)))
        todo = [i for i, kept in enumerate(out) if kept is None]
        fresh = self._rank([states[i] for i in todo], features) if todo else []
        for i, ranked in zip(todo, fresh, strict=True):
            out[i] = ranked if self.cache is None else self.cache.put(keys[i], ranked)
        return [{"ranked": ranked} for ranked in out]

    def _rank(self, states: Sequence[Mapping[str, Any]], features: FeatureSource) -> list[Ranked]:
        users = [str(s["user_id"]) for s in states]
        if len(states) == 1:
            history = history_of(states[0]["history"], self.n_items)
            return [self.ranker.rank(states[0]["candidates"], history, users, features,
                                     blend=self.blend)]  # fmt: skip
        try:
            candidates = CandidateBatch.stack([s["candidates"] for s in states])
        except ValueError:
            return [self._rank([s], features)[0] for s in states]
        histories = histories_of([s["history"] for s in states], self.n_items)
        ranked = self.ranker.rank(candidates, histories, users, features, blend=self.blend)
        rows = [slice(i, i + 1) for i in range(len(states))]
        return [Ranked(ranked.ids[r], ranked.scores[r], ranked.order[r]) for r in rows]
