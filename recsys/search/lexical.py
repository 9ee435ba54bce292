"""BM25 over the catalog's words: the search source every bundle with titles has.

Built from the served catalog when a bundle loads (20k items take well under a second), so it
needs no training and always matches the catalog being served. Each item's document is its
title, brand, category path, attribute values and description. Scores are precomputed per
(item, term) with BM25 saturation and length normalisation, so a query is a sum of a few sparse
columns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsys.catalog import Catalog

TOKEN = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class BM25Config:
    k1: float = 1.2
    b: float = 0.75
    # score += prior_weight * log1p(popularity): orders the many items that match equally well
    prior_weight: float = 0.05


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def _attribute_words(raw: str) -> Iterator[str]:
    if not raw:
        return
    try:
        attrs = json.loads(raw)
    except json.JSONDecodeError:
        return
    if isinstance(attrs, dict):
        for value in attrs.values():
            for v in value if isinstance(value, list) else [value]:
                yield str(v)


def item_document(catalog: Catalog, i: int) -> str:
    parts = []
    for column in ("title", "brand", "category", "description"):
        values = getattr(catalog, column)
        if values is not None:
            parts.append(str(values[i]))
    if catalog.attributes is not None:
        parts.extend(_attribute_words(str(catalog.attributes[i])))
    return " ".join(parts)


class LexicalIndex:
    def __init__(self, config: BM25Config | None = None) -> None:
        self.config = config or BM25Config()
        self.vocab: dict[str, int] = {}
        self.weights: sp.csc_matrix | None = None  # (I, V) BM25 weight of term in item
        self.prior: np.ndarray | None = None  # (I,)

    @property
    def usable(self) -> bool:
        return self.weights is not None and self.weights.nnz > 0

    def build(self, catalog: Catalog, popularity: np.ndarray | None = None) -> LexicalIndex:
        cfg = self.config
        rows: list[int] = []
        cols: list[int] = []
        for i in range(len(catalog)):
            for word in tokens(item_document(catalog, i)):
                rows.append(i)
                cols.append(self.vocab.setdefault(word, len(self.vocab)))
        n = len(catalog)
        tf = sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)), shape=(n, max(len(self.vocab), 1))
        )
        tf.sum_duplicates()
        length = np.asarray(tf.sum(axis=1)).ravel()  # (I,)
        avg = float(length.mean()) if n else 1.0
        df = np.bincount(tf.indices, minlength=tf.shape[1])  # (V,) items per term
        idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)  # (V,)
        norm = cfg.k1 * (1.0 - cfg.b + cfg.b * length / max(avg, 1e-9))  # (I,)
        row_of = np.repeat(np.arange(n), np.diff(tf.indptr))
        tf.data = idf[tf.indices] * tf.data * (cfg.k1 + 1.0) / (tf.data + norm[row_of])
        self.weights = tf.tocsc()
        pop = np.zeros(n) if popularity is None else np.asarray(popularity, dtype=np.float64)
        self.prior = (cfg.prior_weight * np.log1p(pop)).astype(np.float32)
        return self

    def query_terms(self, query: str) -> list[int]:
        return sorted({self.vocab[w] for w in tokens(query) if w in self.vocab})

    def score(self, query: str) -> np.ndarray:
        """(I,) BM25 score of every item (0 for no matching word) plus the popularity prior on
        the matching ones."""
        if self.weights is None or self.prior is None:
            raise RuntimeError("lexical index is not built; call build() first")
        terms = self.query_terms(query)
        scores = np.zeros(self.weights.shape[0], dtype=np.float32)
        if not terms:
            return scores
        scores += np.asarray(self.weights[:, terms].sum(axis=1), dtype=np.float32).ravel()
        hit = scores > 0
        scores[hit] += self.prior[hit]
        return scores

    def top(self, query: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(n,) best matching item indexes (-1 padded) and their scores, best first."""
        scores = self.score(query)
        hits = np.flatnonzero(scores > 0)
        ids = np.full(n, -1, dtype=np.int64)
        out = np.full(n, -np.inf, dtype=np.float32)
        if len(hits):
            top = hits[np.argsort(-scores[hits], kind="stable")[:n]]
            ids[: len(top)], out[: len(top)] = top, scores[top]
        return ids, out
