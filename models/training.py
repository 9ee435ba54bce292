"""The epoch loop with early stopping that the torch models (SASRec, DLRM) share.

Each epoch trains once, scores the validation set, and keeps a copy of the weights whenever the
score improves; after ``patience`` epochs without improvement it stops and puts the best weights
back. Without a validation set every epoch counts as the best, so the last one is kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from tqdm.auto import tqdm


def snapshot(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in net.state_dict().items()}


def fit_epochs(
    net: torch.nn.Module,
    train_epoch: Callable[[], float],  # one pass over the data; returns the mean loss
    validate: Callable[[], float] | None,  # validation NDCG@10; None = no validation set
    epochs: int,
    patience: int,
    desc: str,
    progress: bool = False,
) -> tuple[list[dict[str, float]], int | None]:
    """Run the epochs; (one history row per epoch, the 1-based epoch whose weights are kept)."""
    history: list[dict[str, float]] = []
    best, best_state, since_best, best_epoch = -1.0, snapshot(net), 0, None
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress)
    for epoch in bar:
        tick = time.perf_counter()
        loss = train_epoch()
        ndcg = float("nan") if validate is None else float(validate())
        history.append(
            {
                "epoch": epoch,
                "loss": loss,
                "valid_ndcg@10": ndcg,
                "seconds": time.perf_counter() - tick,
            }
        )
        if validate is None or ndcg > best:
            best, best_state, since_best, best_epoch = ndcg, snapshot(net), 0, epoch
        else:
            since_best += 1
        bar.set_postfix(loss=f"{loss:.4f}", ndcg=f"{ndcg:.4f}", best=f"{best:.4f}")
        if since_best >= patience:
            break
    bar.close()
    net.load_state_dict(best_state)
    net.eval()
    return history, best_epoch
