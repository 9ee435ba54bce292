"""Compute-thread control: torch's for the torch-backed models, and one pin for a whole process.

A recommendation request is a few small matrix products and one tree walk over ~500 rows: too
small to split across threads, while idle BLAS/OpenMP threads spin on the cores other requests
(or the other worker) need. Notebook 02 measured ALS at 160 ms a request unpinned and 0.52 ms
pinned to one thread. Every path that serves or times requests (API, CLI, notebooks, benchmarks)
calls :func:`pin_compute_threads` first.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def pin_compute_threads(n: int = 1) -> None:
    """Cap this process's BLAS and OpenMP pools (and faiss's and torch's, where loaded) at ``n``.

    Libraries loaded later read the environment variables set here (existing values win, so a
    caller's explicit choice stays); those already loaded are capped through threadpoolctl.
    Stays in force for the process; call again after loading something that brings its own pool.
    """
    if n < 1:
        raise ValueError(f"compute threads must be >= 1, got {n}")
    from threadpoolctl import threadpool_limits

    for name in THREAD_ENV:
        os.environ.setdefault(name, str(n))
    threadpool_limits(n)  # not a context manager: the limit outlives this call
    if "faiss" in sys.modules:
        sys.modules["faiss"].omp_set_num_threads(n)
    if "torch" in sys.modules:  # never import torch here: it costs seconds
        torch = sys.modules["torch"]
        torch.set_num_threads(n)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch intra-op threads and give the process its previous setting back.

    Models take a ``threads`` setting so that tests and benchmarks on shared cores stay
    predictable; ``None`` leaves torch's own choice alone.
    """
    if n is None:
        yield
        return
    import torch  # lazy: importing this module must not load torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
