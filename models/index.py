"""FAISS inner-product indexes over any model's item vectors (ALS, SASRec, text).

Every vector model scores ``query_vectors(h) @ item_vectors().T``, so one maximum-inner-product
index serves them all: build it on ``item_vectors()``, search it with ``query_vectors(h)``. Row
``i`` of the index is item index ``i``.

Kinds: ``exact`` (IndexFlatIP, what full-ranking evaluation sees), ``hnsw`` (IndexHNSWFlat) and
``ivf`` (IndexIVFFlat). ``auto`` stays exact up to ``exact_max_items`` items, where a flat scan
is fast enough and nothing is lost, and uses ``auto_kind`` above it. The approximate defaults
come from ``benchmarks/faiss_recall.py`` (ALS vectors of a 100k-item synthetic catalog): both
reach recall@100 >= 0.95 of exact search there and answer faster than it.

faiss-gpu is the same code path: when the installed faiss sees a GPU and ``use_gpu`` allows
it, the built (or loaded) CPU index is cloned onto all GPUs; ``save`` clones it back first.
FAISS has no GPU HNSW, so HNSW always stays on the CPU.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np

from models import flat_scan
from recsys.data.sequences import Sequences

Kind = Literal["auto", "exact", "hnsw", "ivf"]
GPU_MAX_K = 2048  # faiss GPU k-selection limit


@dataclass(frozen=True)
class IndexConfig:
    kind: Kind = "auto"
    exact_max_items: int = 50_000  # "auto" is exact up to this many items
    auto_kind: Literal["hnsw", "ivf"] = "ivf"  # what "auto" builds above exact_max_items
    # HNSW: M = graph degree; a search explores max(ef_search, k) candidates.
    hnsw_m: int = 48
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 128
    # IVF: lists to cluster into and lists visited per query. nlist is capped at n / 39 (faiss
    # wants ~39 training points per centroid); for catalogs far beyond 100k items grow it
    # like sqrt(n). nprobe is this fixed value unless build() is given queries to tune it on:
    # then the fewest lists reaching target_recall@tune_k of exact search on them.
    ivf_nlist: int = 256
    ivf_nprobe: int = 48
    target_recall: float = 0.95
    tune_k: int = 100
    use_gpu: bool | Literal["auto"] = "auto"
    threads: int | None = None  # OpenMP threads for build/search; None = faiss's default
    seed: int = 0  # IVF k-means

    def __post_init__(self) -> None:
        if self.kind not in ("auto", "exact", "hnsw", "ivf"):
            raise ValueError(f"kind must be auto, exact, hnsw or ivf, got {self.kind!r}")
        if self.auto_kind not in ("hnsw", "ivf"):
            raise ValueError(f"auto_kind must be hnsw or ivf, got {self.auto_kind!r}")
        if self.use_gpu not in (True, False, "auto"):
            raise ValueError(f"use_gpu must be True, False or 'auto', got {self.use_gpu!r}")
        for name in ("hnsw_m", "hnsw_ef_construction", "hnsw_ef_search", "ivf_nlist", "ivf_nprobe",
                     "tune_k"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 < self.target_recall <= 1.0:
            raise ValueError(f"target_recall must be in (0, 1], got {self.target_recall}")

    def kind_for(self, n: int) -> str:
        """The kind :meth:`VectorIndex.build` makes for ``n`` vectors ("auto" resolved)."""
        if self.kind != "auto":
            return self.kind
        return "exact" if n <= self.exact_max_items else self.auto_kind


class VectorIndex:
    """Maximum-inner-product search over (N, D) float32 vectors; ids are row numbers."""

    def __init__(self, config: IndexConfig | None = None) -> None:
        self.config = config or IndexConfig()
        self.kind_: str | None = None  # the kind built: exact, hnsw or ivf
        self.dim_: int | None = None
        self.on_gpu_: bool = False
        self._index: Any = None  # a faiss index (GPU clone when on_gpu_)
        self._norms: flat_scan.NormOrder | None = None  # an exact CPU index's early-stop order
        self.tuning_: dict[str, Any] | None = None  # the IVF nprobe choice, when tuned

    # ---------------------------------------------------------------- build / io

    def build(self, vectors: np.ndarray, queries: np.ndarray | None = None) -> Self:
        """Index ``vectors`` (N, D); an IVF index built with ``queries`` (B, D), real query
        vectors, visits the fewest lists that reach ``config.target_recall`` on them
        (:mod:`models.index_tuning`; what was chosen is in ``tuning_``)."""
        vectors = _as_matrix(vectors, "vectors")  # (N, D)
        n, dim = vectors.shape
        if n == 0:
            raise ValueError(
                f"vectors has shape {vectors.shape}: need at least one vector to index"
            )
        cfg = self.config
        kind = cfg.kind_for(n)
        with _omp_threads(cfg.threads):
            index = _new_index(kind, vectors, cfg)
            index.add(vectors)
            if kind == "ivf" and queries is not None and len(queries):
                from models.index_tuning import tune_nprobe

                queries = _as_matrix(queries, "queries", dim)
                self.tuning_ = tune_nprobe(index, vectors, queries, cfg.target_recall, cfg.tune_k)
                self.config = replace(cfg, ivf_nprobe=self.tuning_["nprobe"])
        self._set(index, kind, dim)
        return self

    def save(self, path: str | Path) -> Path:
        """Write the index with ``faiss.write_index``; its search parameters travel with it."""
        import faiss

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # a new file renamed over the old: a server that maps the old one (see load) keeps
        # reading its own pages; writing in place would truncate them under it
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        faiss.write_index(self._cpu_index(), str(tmp))
        os.replace(tmp, path)
        return path

    @classmethod
    def load(
        cls, path: str | Path, config: IndexConfig | None = None, mmap: bool = True
    ) -> VectorIndex:
        """Read an index written by :meth:`save`; kind and search parameters come from the file.

        ``config`` only decides ``use_gpu`` and ``threads`` (its kind and sizes are ignored).
        An exact index's vectors are memory-mapped from the file (``mmap``, the default), not
        copied: every worker process serving the bundle reads the same pages, so the CPU cache
        holds one copy of the catalog that each request scans instead of one per worker.
        """
        import faiss

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such index file")
        # faiss releases before the flag existed read a copy
        flags = getattr(faiss, "IO_FLAG_MMAP_IFC", 0) if mmap else 0
        index = faiss.read_index(str(path), flags)
        base = config or IndexConfig()
        cfg: IndexConfig
        if isinstance(index, faiss.IndexHNSWFlat):
            graph: Any = index.hnsw
            cfg = replace(
                base,
                kind="hnsw",
                hnsw_m=int(graph.nb_neighbors(1)),  # level 0 has 2 * M; upper levels M
                hnsw_ef_construction=int(graph.efConstruction),
                hnsw_ef_search=int(graph.efSearch),
            )
        elif isinstance(index, faiss.IndexIVFFlat):
            cfg = replace(
                base, kind="ivf", ivf_nlist=int(index.nlist), ivf_nprobe=int(index.nprobe)
            )
        elif isinstance(index, faiss.IndexFlatIP):
            cfg = replace(base, kind="exact")
        else:
            raise ValueError(f"{path}: unsupported index type {type(index).__name__}")
        if index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise ValueError(f"{path}: index metric is not inner product")
        out = cls(cfg)
        out._set(index, cfg.kind, int(index.d))
        return out

    def tune(self, ef_search: int | None = None, nprobe: int | None = None) -> Self:
        """Change the search-time effort of a built HNSW (``ef_search``) or IVF (``nprobe``)."""
        index = self._built()
        if ef_search is not None:
            if self.kind_ != "hnsw" or ef_search < 1:
                raise ValueError(f"ef_search={ef_search!r} needs a built hnsw index, value >= 1")
            index.hnsw.efSearch = ef_search
            self.config = replace(self.config, hnsw_ef_search=ef_search)
        if nprobe is not None:
            if self.kind_ != "ivf" or nprobe < 1:
                raise ValueError(f"nprobe={nprobe!r} needs a built ivf index, value >= 1")
            index.nprobe = min(nprobe, int(index.nlist))
            self.config = replace(self.config, ivf_nprobe=int(index.nprobe))
        return self

    def _set(self, index: Any, kind: str, dim: int) -> None:
        self.kind_, self.dim_ = kind, dim
        self._index, self.on_gpu_ = _maybe_to_gpu(index, kind, self.config.use_gpu)
        scanned = not self.on_gpu_ and flat_scan.can_scan(self._index, 1)
        self._norms = flat_scan.NormOrder.of(self._index) if scanned else None

    def _cpu_index(self) -> Any:
        import faiss

        index = self._built()
        return faiss.index_gpu_to_cpu(index) if self.on_gpu_ else index

    # ---------------------------------------------------------------- search

    @property
    def ntotal(self) -> int:
        return int(self._built().ntotal)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` per query: ids (B, k) int64 and scores (B, k) float32, best first.

        Where fewer than ``k`` items are found (small catalog; an approximate index that visits
        too few), the row is padded with id -1 and score -inf, as ``CandidateModel.recommend``.
        """
        return self._search(_as_matrix(queries, "queries", self.dim_), _positive_k(k))

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`search` of checked (B, D) float32 ``queries`` and a checked ``k``."""
        index = self._built()
        fetch = min(k, self.ntotal, GPU_MAX_K if self.on_gpu_ else k)
        if fetch and not self.on_gpu_ and flat_scan.can_scan(index, len(queries)):
            scores, ids = flat_scan.scan(index, queries, fetch, self._norms)  # (B, fetch) each
        else:
            threads = self.config.threads
            if threads is None and len(queries) <= SINGLE_THREAD_BATCH:
                # one request's query has nothing to split across threads, and waking an
                # OpenMP team on a busy machine costs ~15 ms against ~0.2 ms for the search
                threads = 1
            with _omp_threads(threads):
                scores, ids = index.search(queries, fetch)  # (B, fetch) each
        ids = ids.astype(np.int64, copy=False)
        scores = scores.astype(np.float32, copy=False)
        scores[ids < 0] = -np.inf  # faiss pads with -FLT_MAX
        if fetch < k:
            ids = np.pad(ids, ((0, 0), (0, k - fetch)), constant_values=-1)
            scores = np.pad(scores, ((0, 0), (0, k - fetch)), constant_values=-np.inf)
        return ids, scores

    def search_excluding(
        self, queries: np.ndarray, k: int, exclude: Sequences | Sequence[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`search`, never returning row ``b``'s ids in ``exclude[b]`` (its history).

        Over-fetches ``k + longest exclusion list`` and filters, so an exact index returns
        exactly what full ranking with history exclusion would; rows padded with -1 / -inf
        only when the catalog runs out.
        """
        queries = _as_matrix(queries, "queries", self.dim_)  # (B, D)
        k = _positive_k(k)
        indptr, excluded = _exclusion_csr(exclude, len(queries))
        longest = int(np.diff(indptr).max()) if len(queries) else 0
        ids, scores = self._search(queries, k + longest)  # (B, k + longest)
        if len(queries) == 1:  # a request: one mask over the index, no per-row bookkeeping
            size = self.ntotal
            # one slot past the index, banned, which padding ids (-1) read
            banned = np.zeros(size + 1, dtype=bool)
            banned[excluded[(excluded >= 0) & (excluded < size)]] = True
            banned[size] = True
            row = ids[0]
            keep = np.flatnonzero(~banned[row])[:k]
            out_ids = np.full((1, k), -1, dtype=np.int64)
            out_scores = np.full((1, k), -np.inf, dtype=np.float32)
            out_ids[0, : len(keep)], out_scores[0, : len(keep)] = ids[0, keep], scores[0, keep]
            return out_ids, out_scores
        rows = np.repeat(np.arange(len(queries), dtype=np.int64), np.diff(indptr))
        width = max(self.ntotal, 1)
        inside = (excluded >= 0) & (excluded < width)  # others cannot be returned anyway
        rows, excluded = rows[inside], excluded[inside]
        # One int64 key per (row, id) pair makes the per-row membership test a single isin.
        banned = np.isin(
            np.arange(len(queries), dtype=np.int64)[:, None] * width + ids,
            rows * width + excluded,
        )
        drop = banned | (ids < 0)  # (B, k + longest)
        order = np.argsort(drop, axis=1, kind="stable")[:, :k]  # kept ones first, in order
        ids = np.take_along_axis(ids, order, axis=1)
        scores = np.take_along_axis(scores, order, axis=1)
        gone = np.take_along_axis(drop, order, axis=1)
        ids[gone], scores[gone] = -1, -np.inf
        return ids, scores

    def recall_against_exact(self, queries: np.ndarray, k: int) -> float:
        """Mean recall@k of this index against exact inner-product search on the same vectors
        (a returned item counts when its true score reaches the k-th exact one: ties count)."""
        from models.index_tuning import exact_kth, recall_of

        queries = _as_matrix(queries, "queries", self.dim_)  # (B, D)
        k = _positive_k(k)
        vectors = self.vectors()  # (N, D)
        k = min(k, len(vectors))
        with _omp_threads(self.config.threads):
            kth = exact_kth(vectors, queries, k)  # (B, 1)
        ids, _ = self.search(queries, k)  # (B, k)
        return recall_of(ids, vectors, queries, kth)

    def vectors(self) -> np.ndarray:
        """(N, D) float32: the indexed vectors, read back from the index."""
        index = self._cpu_index()
        if self.kind_ == "ivf":
            index.make_direct_map()  # IVF stores vectors by list; reconstruct needs the map
        return np.asarray(index.reconstruct_n(0, index.ntotal), dtype=np.float32)

    def _built(self) -> Any:
        if self._index is None:
            raise RuntimeError("index is not built; call build(vectors) or VectorIndex.load()")
        return self._index

    def __repr__(self) -> str:
        if self._index is None:
            return f"VectorIndex({self.config.kind}, not built)"
        where = "gpu" if self.on_gpu_ else "cpu"
        return f"VectorIndex({self.kind_}, n={self.ntotal}, dim={self.dim_}, {where})"


def _new_index(kind: str, vectors: np.ndarray, cfg: IndexConfig) -> Any:
    """An empty (trained, for IVF) faiss inner-product index of ``kind`` for ``vectors``."""
    import faiss

    n, dim = vectors.shape
    index: Any
    if kind == "exact":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = cfg.hnsw_ef_construction
        index.hnsw.efSearch = cfg.hnsw_ef_search
    else:
        nlist = ivf_lists(n, cfg)
        quantizer: Any = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = cfg.seed
        index.train(vectors)
        index.nprobe = min(cfg.ivf_nprobe, nlist)
        # faiss keeps only a raw pointer to the quantizer: hand its ownership to the index.
        index.own_fields = True
        quantizer.this.disown()
    return index


def ivf_lists(n: int, config: IndexConfig) -> int:
    """How many IVF lists :meth:`VectorIndex.build` makes for ``n`` vectors."""
    return max(1, min(config.ivf_nlist, n // 39))


def _as_matrix(x: np.ndarray, name: str, dim: int | None = None) -> np.ndarray:
    """A C-contiguous (N, D) float32 copy-if-needed of ``x``; ValueError naming what is wrong."""
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N, D) array, got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name} has shape {arr.shape}; the index holds {dim}-dim vectors")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must be real numbers (float32), got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr).all(axis=1)).sum())
        raise ValueError(f"{name} of shape {arr.shape} has {bad} rows with NaN or inf")
    return arr


def _positive_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _exclusion_csr(
    exclude: Sequences | Sequence[np.ndarray], n_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """(indptr (B + 1,), ids (E,)) of the per-row exclusion lists."""
    if isinstance(exclude, Sequences):
        indptr, ids = exclude.indptr, exclude.items
    else:
        lists = [np.asarray(e, dtype=np.int64).ravel() for e in exclude]
        indptr = np.r_[0, np.cumsum([len(e) for e in lists])]
        ids = np.concatenate(lists) if lists else np.zeros(0, np.int64)
    if len(indptr) - 1 != n_rows:
        raise ValueError(f"exclude has {len(indptr) - 1} rows for {n_rows} queries")
    return indptr.astype(np.int64), ids.astype(np.int64)


def _maybe_to_gpu(index: Any, kind: str, use_gpu: bool | str) -> tuple[Any, bool]:
    """Clone ``index`` onto every GPU when faiss sees one and ``use_gpu`` allows it."""
    if use_gpu is False:
        return index, False
    import faiss

    n_gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if use_gpu is True and n_gpus == 0:
        raise RuntimeError(
            "use_gpu=True but faiss sees no GPU: install faiss-gpu-cu12 on a CUDA machine, "
            "or use use_gpu='auto'"
        )
    if n_gpus == 0:
        return index, False
    if kind == "hnsw":
        if use_gpu is True:
            raise ValueError("use_gpu=True: faiss has no GPU HNSW; use kind='ivf' or 'exact'")
        return index, False
    return faiss.index_cpu_to_all_gpus(index), True


SINGLE_THREAD_BATCH = 8  # queries per search up to which faiss runs on the calling thread


@contextmanager
def _omp_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` OpenMP threads, then give faiss its previous setting back."""
    if n is None:
        yield
        return
    import faiss

    before = faiss.omp_get_max_threads()
    if before == n:  # a pinned worker's every request: nothing to set or restore
        yield
        return
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
