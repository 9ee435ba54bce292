"""Torch thread control shared by the torch-backed models."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


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
