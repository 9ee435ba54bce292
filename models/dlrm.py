"""DLRM ranker on TorchRec: sparse embeddings, a bottom MLP, pairwise dot interaction, top MLP.

Reads a :class:`~recsys.ranking.frame.RankingFrame`. Every sparse column gets its own table in
one ``EmbeddingBagCollection`` (single-id bags through a ``KeyedJaggedTensor``); the dense
columns are standardized with the training mean and standard deviation, unknown (NaN) values
set to the mean, and go through the bottom MLP; TorchRec's ``DLRM`` interaction takes the dot
product of every pair of the bottom output and the embeddings, and the top MLP makes a logit.

Training is listwise by default: a softmax cross-entropy over each group's candidates, the
held-out item the target, against which a pointwise BCE ranks worse on validation (see
``DLRMConfig.loss``). Batches are whole groups so either loss sees complete lists. Early
stopping keeps the epoch with the best validation ``group_ndcg@10``.

Serving goes through ONNX: :meth:`DLRMRanker.export_onnx` writes a plain-torch twin
(:class:`~models.dlrm_net.OnnxTwin`) with the standardization baked in, so
``OnnxSession(path).run(ranker.onnx_feeds(frame))`` scores raw frame columns.

The config, the module (:func:`~models.dlrm_net.build_dlrm`, the one place it is built) and the
losses live in :mod:`models.dlrm_net`, shared with the sharded trainer: with
``DLRMConfig.workers > 1`` the same :meth:`DLRMRanker.fit` trains under ``torchrun`` on
TorchRec's ``DistributedModelParallel`` (:mod:`models.dlrm_distributed`) and takes over the
gathered weights, so the fitted ranker is the same kind of object.

TorchRec is optional (the ``torchrec`` extra, installed by ``python -m recsys.bootstrap``): it
is imported to train and to score natively, not to unpickle a ranker or serve it through ONNX.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import torch

from models.dlrm_net import (
    DLRMConfig,
    OnnxTwin,
    build_dlrm,
    dense_moments,
    float_labels,
    listwise_softmax_loss,
    pointwise_bce_loss,
    standardize,
    to_kjt,
)
from models.threads import torch_threads
from models.training import fit_epochs
from recsys.ranking.frame import RankingFrame, group_ndcg, group_rows, hold_out_groups

if TYPE_CHECKING:
    from torchrec.models.dlrm import DLRM

ONNX_INPUTS = ("dense", "sparse")


class DLRMRanker:
    name = "dlrm"
    onnx_tolerance = 1e-4  # float32 sums in another order than torch's

    def __init__(self, config: DLRMConfig | None = None, progress: bool = False) -> None:
        self.config = config or DLRMConfig()
        self.progress = progress
        self.net_: DLRM | None = None
        # the net's weights while ``net_`` is not built: pickles hold these, not TorchRec modules
        self.weights_: dict[str, torch.Tensor] | None = None
        self.plan_: str | None = None  # TorchRec's sharding plan when trained on workers > 1
        self.dense_names_: tuple[str, ...] = ()
        self.sparse_names_: tuple[str, ...] = ()
        self.cardinality_: tuple[int, ...] = ()
        self.mean_ = np.zeros(0, np.float32)  # (D,) training mean of each dense column
        self.std_ = np.ones(0, np.float32)  # (D,) its standard deviation (1 if constant)
        self.history_: list[dict[str, float]] = []  # one row per epoch run
        self.best_epoch_: int | None = None  # 1-based; its weights are the ones kept
        self.train_seconds_: float | None = None

    # ---------------------------------------------------------------- training

    def fit(self, train: RankingFrame, valid: RankingFrame | None = None) -> Self:
        """Train on ``train``; stop early on ``valid`` (or on held-out ``train`` groups)."""
        cfg = self.config
        if train.label is None or not train.n_rows:
            raise ValueError("fit needs a non-empty frame with labels")
        started = time.perf_counter()
        rng = np.random.default_rng(cfg.seed)
        if valid is None:
            train, valid = hold_out_groups(train, cfg.holdout_groups, rng)
        if cfg.workers > 1:
            return self._fit_distributed(train, valid, started)
        self.dense_names_, self.sparse_names_ = train.dense_names, train.sparse_names
        self.cardinality_ = tuple(int(c) for c in train.cardinality)
        self.mean_, self.std_ = dense_moments(train.dense)
        d = len(train.dense_names)
        if valid is not None:
            self._check(valid)
        self.history_, self.best_epoch_ = [], None
        with torch_threads(cfg.threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)  # fork_rng keeps the seed out of the caller's RNG
            net = build_dlrm(cfg, d, self.cardinality_)
            self.net_, self.weights_ = net, None
            optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            dense = torch.from_numpy(standardize(train.dense, self.mean_, self.std_))  # (N, D)
            sparse = torch.from_numpy(np.ascontiguousarray(train.sparse, dtype=np.int64))
            labels = torch.from_numpy(float_labels(train))  # (N,)
            self.history_, self.best_epoch_ = fit_epochs(
                net,
                lambda: self._train_epoch(optimizer, train, dense, sparse, labels, rng),
                None if valid is None else lambda: group_ndcg(self.predict(valid), valid, 10),
                cfg.epochs,
                cfg.patience,
                "dlrm",
                self.progress,
            )
        self.train_seconds_ = time.perf_counter() - started
        return self

    def _fit_distributed(
        self, train: RankingFrame, valid: RankingFrame | None, started: float
    ) -> Self:
        """Train under torchrun on ``workers`` processes and take over the gathered weights."""
        from models.dlrm_distributed import train_with_torchrun

        if valid is None:
            raise ValueError("distributed DLRM training needs enough groups to hold out")
        state, facts = train_with_torchrun(train, valid, self.config, self.config.workers)
        self.dense_names_, self.sparse_names_ = train.dense_names, train.sparse_names
        self.cardinality_ = tuple(int(c) for c in train.cardinality)
        self.mean_, self.std_ = facts["mean"], facts["std"]
        self.net_, self.weights_ = None, state  # built from the weights on first native use
        self.history_, self.plan_ = facts["history"], facts["plan"]
        ndcg = [row["valid_ndcg@10"] for row in self.history_]
        self.best_epoch_ = 1 + int(np.argmax(ndcg)) if ndcg else None
        self.train_seconds_ = time.perf_counter() - started
        return self

    def _train_epoch(
        self,
        optimizer: torch.optim.Optimizer,
        frame: RankingFrame,
        dense: torch.Tensor,  # (N, D) standardized
        sparse: torch.Tensor,  # (N, S) int64
        labels: torch.Tensor,  # (N,)
        rng: np.random.Generator,
    ) -> float:
        """One pass over shuffled batches of whole groups; the mean loss per batch."""
        net = self._net()
        net.train()
        offsets = frame.offsets()
        order = rng.permutation(len(frame.group))
        total, steps = 0.0, 0
        for lo in range(0, len(order), self.config.batch_size):
            batch = order[lo : lo + self.config.batch_size]  # (G,) group ids
            starts, lengths = offsets[batch], frame.group[batch]
            rows = torch.from_numpy(np.repeat(starts, lengths) + group_rows(lengths))  # (n,)
            logits = net(dense[rows], to_kjt(sparse[rows])).reshape(-1)  # (n,)
            if self.config.loss == "listwise":
                groups = torch.from_numpy(np.repeat(np.arange(len(batch)), lengths))
                loss = listwise_softmax_loss(logits, labels[rows], groups, len(batch))
            else:
                loss = pointwise_bce_loss(logits, labels[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            steps += 1
        return total / max(steps, 1)

    def summary(self) -> dict[str, Any]:
        """Training facts for a benchmark report."""
        return {
            "loss": self.config.loss,
            "epochs_run": len(self.history_),
            "best_epoch": self.best_epoch_,
            "best_valid_ndcg@10": max(
                (row["valid_ndcg@10"] for row in self.history_), default=None
            ),
            "train_seconds": self.train_seconds_,
        }

    # ---------------------------------------------------------------- inference

    def predict(self, frame: RankingFrame) -> np.ndarray:
        """(N,) float32 logits from the native TorchRec forward, in eval mode."""
        net = self._net()
        self._check(frame)
        dense = standardize(frame.dense, self.mean_, self.std_)  # (N, D)
        sparse = self._known_codes(frame.sparse)  # (N, S)
        out = np.empty(frame.n_rows, dtype=np.float32)
        was_training = net.training
        net.eval()
        try:
            with torch_threads(self.config.threads), torch.inference_mode():
                for lo in range(0, frame.n_rows, self.config.infer_batch):
                    hi = min(lo + self.config.infer_batch, frame.n_rows)
                    kjt = to_kjt(torch.from_numpy(sparse[lo:hi]))
                    out[lo:hi] = net(torch.from_numpy(dense[lo:hi]), kjt).reshape(-1).numpy()
        finally:
            net.train(was_training)
        return out

    def export_onnx(self, path: str | Path, opset: int = 17) -> Path:
        """Write the model as ONNX: inputs ``dense`` (N, D) float32 raw, ``sparse`` (N, S)
        int64; output ``score`` (N,) float32. Standardization and NaN handling are inside."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        twin = OnnxTwin(self._net(), self.mean_, self.std_).eval()
        example = (
            torch.zeros(2, len(self.dense_names_), dtype=torch.float32),
            torch.zeros(2, len(self.sparse_names_), dtype=torch.int64),
        )
        batch = {0: "rows"}
        with warnings.catch_warnings(), torch.no_grad():
            # onnxscript (the dynamo exporter's dependency) is not installed: the TorchScript
            # exporter is used, and its deprecation notices say nothing about this model.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            torch.onnx.export(
                twin,
                example,
                str(path),
                input_names=list(ONNX_INPUTS),
                output_names=["score"],
                dynamic_axes={"dense": batch, "sparse": batch, "score": batch},
                opset_version=opset,
                dynamo=False,
            )
        return path

    def onnx_feeds(self, frame: RankingFrame) -> dict[str, np.ndarray]:
        """The inputs of the exported model for ``frame``, for :class:`OnnxSession.run`."""
        self._check(frame)
        return {
            "dense": np.ascontiguousarray(frame.dense, dtype=np.float32),
            "sparse": np.ascontiguousarray(frame.sparse, dtype=np.int64),
        }

    # ---------------------------------------------------------------- helpers

    def _check(self, frame: RankingFrame) -> None:
        """Refuse a frame whose columns differ from the ones the model was fitted on."""
        for kind, expected, got in (
            ("dense", self.dense_names_, frame.dense_names),
            ("sparse", self.sparse_names_, frame.sparse_names),
        ):
            if len(got) != len(expected):
                raise ValueError(
                    f"{kind} columns: expected {len(expected)} {list(expected)}, "
                    f"got {len(got)} {list(got)}"
                )
            if tuple(got) != tuple(expected):
                raise ValueError(f"{kind} columns: expected {list(expected)}, got {list(got)}")

    def _known_codes(self, sparse: np.ndarray) -> np.ndarray:
        """(N, S) int64 codes; any outside the fitted table (a newer catalog) become 0."""
        codes = np.ascontiguousarray(sparse, dtype=np.int64)
        size = np.asarray(self.cardinality_, dtype=np.int64)
        unknown = (codes < 0) | (codes >= size)
        return np.where(unknown, 0, codes) if unknown.any() else codes

    def _net(self) -> DLRM:
        if self.net_ is None and self.weights_ is not None:
            # unpickled: rebuild the TorchRec module from its weights on first native use
            with torch.random.fork_rng(devices=[]):
                net = build_dlrm(self.config, len(self.dense_names_), self.cardinality_)
            net.load_state_dict(self.weights_)
            self.net_, self.weights_ = net, None
        if self.net_ is None:
            raise RuntimeError("dlrm is not fitted; call fit() first")
        return self.net_

    def __getstate__(self) -> dict[str, Any]:
        # Plain tensors instead of the TorchRec module, so a bundle loads (and serves through
        # ONNX) where TorchRec is not installed.
        state = dict(vars(self))
        net = state.pop("net_")
        if net is not None:
            state["weights_"] = {k: v.detach().clone() for k, v in net.state_dict().items()}
        return {**state, "net_": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # pickles from before ``weights_`` hold the module itself (and need TorchRec to load)
        vars(self).update({"weights_": None, "plan_": None, **state})
