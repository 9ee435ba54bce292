"""Ranking rows for merged candidates: stored features plus what only the request knows.

Stored features (item and user statistics) come from a :class:`FeatureSource`: the feature
tables at training time, the Feast online store behind its in-process cache when serving; both
give the same values in the same order, so the ranker sees at serving what it learned from.
Request-time features are computed here from the candidate batch and the request's history:
each source's reciprocal rank and score, the fused score and position, and how the candidate
matches the history (share of the user's items in its category and brand, whether it matches
the latest item, its price against the user's price band).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np

from features.tables import ITEM_FEATURES, USER_FEATURES, FeatureTables
from recsys.data.sequences import EncodedDataset, Sequences
from recsys.native import context as native_context
from recsys.ranking.frame import RankingFrame
from recsys.retrieval.merge import CandidateBatch

CONTEXT_FEATURES: tuple[str, ...] = (
    "fused",  # the merge's RRF score
    "position",  # slot in the merged list / list length
    "n_sources",  # how many sources found the candidate
    "hist_len",  # items in the request's history (includes events newer than the tables)
    "cat_share",  # share of the history in the candidate's leaf category (0 when unknown)
    "top_share",  # the same for the top-level category
    "brand_share",  # the same for the brand
    "last_cat",  # 1 if the latest history item shares the leaf category
    "last_brand",  # 1 if it shares the brand
    "price_ratio",  # candidate price / median price of the history; NaN when unknown
    # 1 / (1 + items since the history's latest item in the candidate's leaf category), 0 when
    # none is: how recently the user was in that part of the catalog, not only how often
    "cat_recency",
    "brand_recency",  # the same for the brand
    # co-visitation weight from the latest, second and third latest history item to the
    # candidate (CandidateBatch.links; 0 without a co-visitation source): which recent item a
    # candidate follows, which the co-visitation score's fixed recency weights blur
    "link_1",
    "link_2",
    "link_3",
)
# What rankers train on unless told otherwise (RankerTrainConfig.context), and what a bundle
# whose spec names no context (one written before the choice existed) was trained on. The
# recency and link columns are opt-in: LightGBM selection NDCG@10 on held-out validation users
# gained less than one standard error with them (Industrial +0.0011, per-seed sd 0.0036;
# ML-100k +0.0024, sd 0.020; mean of 3 seeds), and links cost 0.085 ms a request.
DEFAULT_CONTEXT: tuple[str, ...] = CONTEXT_FEATURES[:10]
LINK_FEATURES: tuple[str, ...] = ("link_1", "link_2", "link_3")
# Sparse columns: the item index + 1 (0 = padding), then one per stored code feature.
SPARSE_NAMES: tuple[str, ...] = ("item", "category", "category_top", "brand")
CODE_COLUMNS: tuple[str, ...] = ("category_code", "category_top_code", "brand_code")
_COL = {name: i for i, name in enumerate(ITEM_FEATURES)}
_CODE_COLS = [_COL[col] for col in CODE_COLUMNS]  # category, top category, brand
_CODE_TRIPLE = (_CODE_COLS[0], _CODE_COLS[1], _CODE_COLS[2])  # the same, for the kernel


class FeatureSource(Protocol):
    """Stored features by item index and by user id, in ITEM_FEATURES / USER_FEATURES order."""

    def items_at(self, idx: np.ndarray) -> np.ndarray: ...  # (N,) -> (N, F_item) float32

    def users(self, user_ids: Sequence[str]) -> np.ndarray: ...  # (B,) -> (B, F_user) float32


class TableFeatures:
    """The feature tables as matrices: the offline side, for building training rows."""

    def __init__(self, tables: FeatureTables, enc: EncodedDataset) -> None:
        items = tables.items.set_index("item_id").reindex(list(enc.item_ids))
        self.item_matrix = items[list(ITEM_FEATURES)].to_numpy(np.float32)  # (I, F_item)
        users = tables.users.set_index("user_id")
        self.user_matrix = users[list(USER_FEATURES)].to_numpy(np.float32)  # (U, F_user)
        self.user_row = {str(u): i for i, u in enumerate(users.index)}

    def items_at(self, idx: np.ndarray) -> np.ndarray:
        return self.item_matrix[idx]

    def users(self, user_ids: Sequence[str]) -> np.ndarray:
        out = np.full((len(user_ids), len(USER_FEATURES)), np.nan, dtype=np.float32)
        for i, u in enumerate(user_ids):
            row = self.user_row.get(str(u))
            if row is not None:
                out[i] = self.user_matrix[row]
        return out


@dataclass(frozen=True)
class FrameSpec:
    """The column layout a ranker was trained on; serving must build exactly this."""

    sources: tuple[str, ...]
    cardinality: tuple[int, ...]  # per SPARSE column, fixed at training
    context: tuple[str, ...] = DEFAULT_CONTEXT  # the request-time columns it was trained on

    def __post_init__(self) -> None:
        check_context(self.context)

    @property
    def links(self) -> int:
        """How many of the latest history items' co-visitation links the rows read."""
        read = [LINK_FEATURES.index(c) + 1 for c in self.context if c in LINK_FEATURES]
        return max(read, default=0)

    @cached_property  # read by every request's frame
    def dense_names(self) -> tuple[str, ...]:
        per_source = tuple(f"{kind}_{s}" for s in self.sources for kind in ("rr", "score"))
        user = tuple(f"user_{n}" for n in USER_FEATURES)
        return (*per_source, *self.context, *ITEM_FEATURES, *user)

    @property
    def sparse_names(self) -> tuple[str, ...]:
        return SPARSE_NAMES

    @classmethod
    def fit(
        cls,
        sources: Sequence[str],
        n_items: int,
        item_matrix: np.ndarray,
        context: Sequence[str] = DEFAULT_CONTEXT,
    ) -> FrameSpec:
        card = [n_items + 1]
        for col in CODE_COLUMNS:
            codes = np.nan_to_num(item_matrix[:, _COL[col]], nan=0.0)
            card.append(int(codes.max(initial=0.0)) + 1)
        return cls(tuple(sources), tuple(card), tuple(context))


def check_context(context: Sequence[str]) -> None:
    unknown = [c for c in context if c not in CONTEXT_FEATURES]
    if unknown:
        raise ValueError(f"unknown context feature(s) {unknown}; valid: {CONTEXT_FEATURES}")


def _share(hist: np.ndarray, cand: np.ndarray, card: int) -> np.ndarray:
    """(N,) share of ``hist`` codes equal to each candidate code; code 0 (unknown) -> 0."""
    if not len(hist):
        return np.zeros(len(cand), np.float32)
    counts = np.bincount(hist, minlength=card).astype(np.float32)
    counts[0] = 0.0
    return counts[np.minimum(cand, card - 1)] / len(hist)


def _codes(values: np.ndarray) -> np.ndarray:
    """Stored float codes as int64, unknown (NaN) -> 0."""
    return np.where(np.isnan(values), 0.0, values).astype(np.int64)


def _median(values: np.ndarray) -> np.floating:
    """``np.median`` of a non-empty 1-d array, without its general-case overhead."""
    ordered = np.sort(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def build_frame(
    spec: FrameSpec,
    batch: CandidateBatch,
    histories: Sequences,
    user_ids: Sequence[str],
    features: FeatureSource,
    targets: np.ndarray | None = None,
    keep: np.ndarray | None = None,
) -> RankingFrame:
    """One row per non-empty candidate slot of each request, grouped by request.

    ``targets`` (B,) labels the rows (1 where the candidate is the target); ``keep`` (B, N)
    bool selects slots (training samples negatives), default every filled slot.
    """
    if tuple(batch.sources) != spec.sources:
        raise ValueError(
            f"candidates come from sources {list(batch.sources)}, the ranker was trained on "
            f"{list(spec.sources)}"
        )
    n_requests = len(histories.indptr) - 1
    if batch.ids.shape[0] != n_requests or len(user_ids) != n_requests:
        raise ValueError(
            f"{batch.ids.shape[0]} candidate rows, {n_requests} histories and {len(user_ids)} "
            "user ids: one of each per request"
        )
    mask = batch.ids >= 0 if keep is None else keep & (batch.ids >= 0)  # (B, N)
    b_idx, slot = np.nonzero(mask)  # (R,) row-major: grouped by request
    items = batch.ids[b_idx, slot]  # (R,)
    item_feats = features.items_at(items)  # (R, F_item)
    user_feats = features.users(list(user_ids))  # (B, F_user)
    n_src, n_ctx = 2 * len(spec.sources), len(spec.context)
    if spec.links and (batch.links is None or batch.links.shape[2] < spec.links):
        got = 0 if batch.links is None else batch.links.shape[2]
        raise ValueError(
            f"the ranker reads co-visitation links from {spec.links} latest items, the "
            f"candidates carry {got}: retrieve them with RetrievalConfig(links={spec.links})"
        )
    # one (R, D) block, written in place: per-source | context | item | user columns
    dense = np.empty((len(items), len(spec.dense_names)), np.float32)
    # Context columns are written in CONTEXT_FEATURES order. A spec reading a prefix of them
    # (the default) is written in place; any other selection goes through a scratch and a copy.
    full = spec.context == CONTEXT_FEATURES[:n_ctx]
    context = (
        dense[:, n_src : n_src + n_ctx]
        if full
        else np.empty((len(items), len(CONTEXT_FEATURES)), np.float32)
    )
    sparse = np.empty((len(items), len(SPARSE_NAMES)), np.int64)
    cand_codes = np.empty((len(items), 3), np.int64)  # category, top category, brand
    starts, ends = np.empty(n_requests, np.int64), np.empty(n_requests, np.int64)
    out = native_context.FrameColumns(
        dense, n_src + n_ctx, context, sparse, cand_codes, starts, ends
    )
    if not native_context.frame_rows(
        b_idx, slot, items, batch.source_ranks, batch.source_scores, batch.fused, item_feats,
        user_feats, _CODE_TRIPLE, spec.cardinality, out,
    ):  # fmt: skip
        _candidate_columns(spec, batch, b_idx, slot, items, item_feats, user_feats, out)
    if spec.links and batch.links is not None:  # checked above: it carries them
        context[:, 12 : 12 + spec.links] = batch.links[b_idx, slot, : spec.links]
    recency = "cat_recency" in spec.context or "brand_recency" in spec.context
    price = item_feats[:, _COL["price"]]
    _history_columns(spec, histories, features, starts, ends, cand_codes, price, recency, context)
    if not full:
        picked = [CONTEXT_FEATURES.index(c) for c in spec.context]
        dense[:, n_src : n_src + n_ctx] = context[:, picked]
    label = None
    if targets is not None:
        label = (items == np.asarray(targets)[b_idx]).astype(np.float32)
    return RankingFrame(
        dense=dense,
        dense_names=spec.dense_names,
        sparse=sparse,
        sparse_names=spec.sparse_names,
        cardinality=spec.cardinality,
        group=ends - starts,  # rows per request
        item=items.astype(np.int64),
        label=label,
    )


def _candidate_columns(
    spec: FrameSpec,
    batch: CandidateBatch,
    b_idx: np.ndarray,
    slot: np.ndarray,
    items: np.ndarray,
    item_feats: np.ndarray,
    user_feats: np.ndarray,
    out: native_context.FrameColumns,
) -> None:
    """The columns of rows (``b_idx``, ``slot``) that come from the candidates and the stored
    features (``recsys/native/context.c``'s ``recsys_frame_rows`` is the twin), into ``out``:
    each source's reciprocal rank and score, context columns 0..2 (columns 3.. zeroed), the item
    and user features from column ``item_at``, the candidates' codes, the sparse columns, and
    each request's rows ``starts[b]:ends[b]``."""
    dense, item_at, context, sparse, cand_codes, starts, ends = out
    ranks = batch.source_ranks[b_idx, slot].astype(np.float32)  # (R, S)
    n_src = 2 * len(spec.sources)
    dense[:, 0:n_src:2] = np.where(ranks > 0, 1.0 / np.maximum(ranks, 1.0), 0.0)
    dense[:, 1:n_src:2] = batch.source_scores[b_idx, slot]
    context[:, 3:] = 0.0
    context[:, 0] = batch.fused[b_idx, slot]
    context[:, 1] = slot / max(batch.ids.shape[1], 1)
    context[:, 2] = (ranks > 0).sum(axis=1)
    dense[:, item_at : item_at + item_feats.shape[1]] = item_feats
    dense[:, item_at + item_feats.shape[1] :] = user_feats[b_idx]
    cand_codes[:] = _codes(item_feats[:, _CODE_COLS])
    sparse[:, 0] = np.minimum(items + 1, spec.cardinality[0] - 1)
    # unseen codes -> the table's edge
    # (np.clip's general dtype handling costs more than the two ufuncs at a request's 500 rows)
    sparse[:, 1:] = np.minimum(np.maximum(cand_codes, 0), np.asarray(spec.cardinality[1:]) - 1)
    starts[:] = np.searchsorted(b_idx, np.arange(len(starts)))
    ends[:] = np.searchsorted(b_idx, np.arange(len(starts)), side="right")


def _history_columns(
    spec: FrameSpec,
    histories: Sequences,
    features: FeatureSource,
    starts: np.ndarray,
    ends: np.ndarray,
    cand_codes: np.ndarray,
    price: np.ndarray,
    recency: bool,
    context: np.ndarray,
) -> None:
    """Columns 3.. of ``context`` (R, C): each request's rows ``starts[b]:ends[b]`` against its
    history. The C kernel (``recsys/native/context.c``) where built, else this numpy loop; both
    give the same bits."""
    if native_context.available():
        every = features.items_at(histories.items)  # (H, F_item) every request's history
        cards = (spec.cardinality[1], spec.cardinality[2], spec.cardinality[3])
        if native_context.history_columns(
            histories.indptr, _codes(every[:, _CODE_COLS]), every[:, _COL["price"]],
            starts, ends, cand_codes, price, cards, recency, context,
        ):  # fmt: skip
            return
    for b, (lo, hi) in enumerate(zip(starts, ends, strict=True)):
        if lo == hi:
            continue
        hist = histories.items[histories.indptr[b] : histories.indptr[b + 1]]
        context[lo:hi, 3] = len(hist)
        if not len(hist):
            context[lo:hi, 9] = np.nan
            continue
        hist_feats = features.items_at(hist)  # (L, F_item)
        hist_codes = _codes(hist_feats[:, _CODE_COLS])  # (L, 3)
        for j, out in enumerate((4, 5, 6)):
            card = spec.cardinality[j + 1]
            own = cand_codes[lo:hi, j]
            context[lo:hi, out] = _share(np.minimum(hist_codes[:, j], card - 1), own, card)
            if out in (4, 6):  # leaf category, brand: the latest item's, and how long ago
                last = hist_codes[-1, j]
                context[lo:hi, 7 if out == 4 else 8] = (own == last) & (last > 0)
                if not recency:
                    continue
                codes = np.minimum(hist_codes[:, j], card - 1)
                latest = np.full(card, -1, dtype=np.int64)
                np.maximum.at(latest, codes, np.arange(len(hist)))
                pos = latest[np.minimum(own, card - 1)]
                seen = (pos >= 0) & (own > 0)
                since = np.where(seen, 1.0 / (len(hist) - pos), 0.0)
                context[lo:hi, 10 if out == 4 else 11] = since
        hist_price = hist_feats[:, _COL["price"]]
        known = hist_price[np.isfinite(hist_price)]
        band = float(_median(known)) if len(known) else 0.0
        context[lo:hi, 9] = price[lo:hi] / band if band > 0 else np.nan
