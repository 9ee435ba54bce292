"""Catalog-attribute retrieval: items that share brand, category levels and attributes.

Each item becomes a sparse TF-IDF vector over tokens such as ``brand=Acme``, ``cat2=Beauty >
Hair``, ``colour=red`` or ``attribute_ids=173`` (whatever its catalog row holds), L2-normalised.
A history's query is the recency-weighted sum of its items' vectors, so ``score = query @
items.T`` favours what looks like the latest items, and a popularity prior orders the many items
that share the same attributes.

It reaches items that co-occurrence and collaborative filtering rank low (rare items sharing a
brand or line with what was just bought): on Amazon Beauty's validation targets, giving it 100 of
500 merged slots raised candidate recall@500 from 0.429 to 0.453. It needs no text, which is
what separates it from the text encoder on catalogs like Beauty's (attribute ids only).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models.base import CandidateModel, TrainingData, mask_history, top_n
from models.sparse_topn import MAX_SPARSE_BATCH, sparse_top_n, worth_sparse
from recsys.data.sequences import Sequences
from recsys.data.split import EvalSet

SCORE_BLOCK = 256  # histories scored per dense block (bounds the (b, tokens) profile)


@dataclass(frozen=True)
class AttributesConfig:
    half_life: float = 2.0  # the k-th latest history item weighs 0.5 ** (k / half_life)
    recent: int = 20  # only the latest items form a query
    # score *= (1 + log1p(training popularity)) ** popularity_power; 0 ranks by similarity alone
    popularity_power: float = 0.3
    min_token_items: int = 2  # a token on fewer items links nothing

    def __post_init__(self) -> None:
        if self.half_life <= 0 or self.recent < 1:
            raise ValueError(
                f"half_life must be > 0 and recent >= 1, got {self.half_life}, {self.recent}"
            )


def item_tokens(row: pd.Series) -> Iterator[str]:
    """The catalog tokens of one item row: brand, each category level, each attribute value."""
    brand = row.get("brand")
    if isinstance(brand, str) and brand.strip():
        yield f"brand={brand.strip().lower()}"
    category = row.get("category")
    if isinstance(category, str) and category.strip():
        parts = [p.strip() for p in category.split(">") if p.strip()]
        for level in range(1, len(parts) + 1):
            yield f"cat{level}=" + " > ".join(parts[:level]).lower()
    raw = row.get("attributes")
    if isinstance(raw, str) and raw.strip():
        try:
            attrs = json.loads(raw)
        except json.JSONDecodeError:
            return  # the dataset contract already reported it; an item without tokens scores 0
        if isinstance(attrs, dict):
            for key, value in attrs.items():
                for v in value if isinstance(value, list) else [value]:
                    if isinstance(v, str | int | float | bool):
                        yield f"{key}={str(v).lower()}"


def coverage(items: pd.DataFrame | None) -> float:
    """Share of catalog rows with at least one token."""
    if items is None or not len(items):
        return 0.0
    return float(np.mean([next(item_tokens(row), None) is not None for _, row in items.iterrows()]))


class AttributesModel(CandidateModel):
    name = "attributes"
    uses_text = True  # learns from the catalog rows, not from the order of sequences

    def __init__(self, config: AttributesConfig | None = None) -> None:
        self.config = config or AttributesConfig()
        self.items_: sp.csr_matrix | None = None  # (I, T) TF-IDF rows, unit length
        self.prior_: np.ndarray | None = None  # (I,) float32 popularity multiplier
        self.tokens_: list[str] = []
        self.n_items_: int | None = None
        self.postings_: sp.csr_matrix | None = None  # (T, I), built on first recommend
        self.prior_order_: np.ndarray | None = None  # (I,) items by prior, best first

    def fit(self, data: TrainingData, valid: EvalSet | None = None) -> Self:
        if data.items is None:
            raise ValueError("attributes needs the catalog: TrainingData(items=...) is None")
        if len(data.items) != data.n_items:
            raise ValueError(
                f"catalog has {len(data.items)} rows but the sequences know {data.n_items} items"
            )
        vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        for i, (_, row) in enumerate(data.items.iterrows()):
            for token in set(item_tokens(row)):
                rows.append(i)
                cols.append(vocab.setdefault(token, len(vocab)))
        n_items = data.n_items
        counts = sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)), shape=(n_items, len(vocab))
        )
        df = np.asarray(counts.sum(axis=0)).ravel()  # (T,) items per token
        keep = np.flatnonzero(df >= self.config.min_token_items)
        counts = counts[:, keep]
        idf = np.log((1.0 + n_items) / (1.0 + df[keep])).astype(np.float32)  # (T',)
        weighted = counts @ sp.diags(idf)
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        self.items_ = sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ weighted)
        names = list(vocab)
        self.tokens_ = [names[t] for t in keep]
        pop = np.bincount(data.sequences.items, minlength=n_items).astype(np.float32)
        # 1 + log1p: an item nobody touched in training keeps its similarity
        self.prior_ = ((1.0 + np.log1p(pop)) ** self.config.popularity_power).astype(np.float32)
        self.n_items_ = n_items
        return self

    def query_matrix(self, histories: Sequences) -> sp.csr_matrix:
        """(B, I) recency weights of each history's latest ``recent`` items."""
        cfg = self.config
        lengths = np.diff(histories.indptr)  # (B,)
        rows = histories.user_index()  # (L,) row of each history entry
        from_end = histories.indptr[1:][rows] - 1 - np.arange(len(rows))  # 0 = latest
        keep = from_end < cfg.recent
        weights = (0.5 ** (from_end[keep] / cfg.half_life)).astype(np.float32)
        return sp.csr_matrix(
            (weights, (rows[keep], histories.items[keep])),
            shape=(len(lengths), self._n_items()),
        )

    def score(self, histories: Sequences) -> np.ndarray:
        if self.items_ is None or self.prior_ is None:
            raise RuntimeError("attributes is not fitted; call fit() first")
        return self._dense(self.query_matrix(histories) @ self.items_)

    def _dense(self, profile: sp.csr_matrix) -> np.ndarray:
        """(B, I) scores of (B, T) token profiles."""
        assert self.items_ is not None and self.prior_ is not None
        scores = np.empty((profile.shape[0], self.items_.shape[0]), dtype=np.float32)
        for lo in range(0, profile.shape[0], SCORE_BLOCK):
            block = profile[lo : lo + SCORE_BLOCK].toarray()  # (b, T) dense
            # sparse (I, T) times dense (T, b): one pass over the catalog's nonzeros, where a
            # sparse-sparse product would build, sort and densify a (b, I) sparse result
            scores[lo : lo + SCORE_BLOCK] = (self.items_ @ block.T).T
        return scores * self.prior_[None, :]

    def recommend(
        self, histories: Sequences, n: int, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`CandidateModel.recommend`, through the token postings: only the items
        sharing a token with the history are scored, the rest (score 0) fill by popularity
        (same list up to ties). Broad tokens (a top-level category), or a large batch, take
        the dense scan: cheaper there."""
        if self.items_ is None or self.prior_ is None:
            raise RuntimeError("attributes is not fitted; call fit() first")
        if histories.n_users > MAX_SPARSE_BATCH:
            return super().recommend(histories, n, exclude_seen)
        postings = getattr(self, "postings_", None)
        order = getattr(self, "prior_order_", None)
        if postings is None or order is None:  # derived: not pickled (see __getstate__)
            postings = self.postings_ = sp.csr_matrix(self.items_.T)  # (T, I) token -> items
            order = self.prior_order_ = np.argsort(-self.prior_, kind="stable")
        profile = self.query_matrix(histories) @ self.items_  # (B, T) sparse
        # items the shared tokens reach, an upper bound known before the product
        reach = int(np.diff(postings.indptr)[profile.indices].sum())
        if not worth_sparse(reach, histories.n_users, postings.shape[1]):
            if n <= 0:
                raise ValueError(f"n must be positive, got {n}")
            scores = self._dense(profile)  # the profile computed once, either way
            if exclude_seen:
                mask_history(scores, histories)
            return top_n(scores, n)
        hits = sp.csr_matrix(profile @ postings)  # (B, I): only items sharing a token
        hits.data *= self.prior_[hits.indices]
        zeros = np.zeros(len(self.prior_), dtype=np.float32)  # no shared token scores 0
        return sparse_top_n(hits, order, zeros, histories, n, exclude_seen)

    def __getstate__(self) -> dict[str, Any]:
        # postings are the transpose of items_: rebuilt on first use rather than pickled twice
        state = dict(self.__dict__)
        state.pop("postings_", None)
        state.pop("prior_order_", None)
        return state

    def config_dict(self) -> dict[str, Any]:
        return {**vars(self.config), "tokens": len(self.tokens_)}
