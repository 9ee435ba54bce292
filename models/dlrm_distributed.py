"""DLRM training on TorchRec's ``DistributedModelParallel`` under ``torchrun``.

    torchrun --standalone --nproc_per_node 2 -m models.dlrm_distributed \\
        --train train.npz --valid valid.npz --out weights.pkl [--epochs 12]

writes the gathered (state dict, facts) to ``--out``.

Every worker builds the same DLRM on the meta device; TorchRec's planner shards the embedding
tables across the workers (table-wise or row-wise, its choice, with fused Adagrad updates: the
CPU kernels offer no fused Adam), and the dense arches are data-parallel (DDP, Adam). Each batch
of candidate groups is split across the workers, so the effective batch is the single-process
one. Backends: gloo on CPU, NCCL when CUDA is there, the same code path. Early stopping uses the
validation NDCG@10 summed over workers; at the end the best weights are gathered on rank 0
into the state dict of the plain (unsharded) model. :func:`train_with_torchrun` runs all of it
from a normal process; ``DLRMRanker.fit`` with ``DLRMConfig(workers=N)`` calls it and takes the
weights over, so the ranker it yields exports to ONNX like a single-process one.
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from models.dlrm_net import (
    DLRMConfig,
    build_dlrm,
    dense_moments,
    float_labels,
    listwise_softmax_loss,
    pointwise_bce_loss,
    standardize,
    to_kjt,
)
from recsys.ranking.frame import RankingFrame, group_ndcg, group_rows


@dataclass(frozen=True)
class ShardingConfig:
    sparse_lr: float = 0.05  # fused Adagrad on the sharded tables
    # the sharding types the planner may choose from ("data_parallel" would not shard at all)
    sharding_types: tuple[str, ...] = ("table_wise", "row_wise")


def save_frame(frame: RankingFrame, path: Path) -> None:
    np.savez(path, dense=frame.dense, sparse=frame.sparse, group=frame.group, item=frame.item,
             label=frame.label if frame.label is not None else np.zeros(0, np.float32),
             dense_names=np.array(frame.dense_names), sparse_names=np.array(frame.sparse_names),
             cardinality=np.array(frame.cardinality))  # fmt: skip


def load_frame(path: Path) -> RankingFrame:
    z = np.load(path)
    label = z["label"]
    return RankingFrame(
        dense=z["dense"], dense_names=tuple(str(n) for n in z["dense_names"]),
        sparse=z["sparse"], sparse_names=tuple(str(n) for n in z["sparse_names"]),
        cardinality=tuple(int(c) for c in z["cardinality"]), group=z["group"], item=z["item"],
        label=label if len(label) else None,
    )  # fmt: skip


def _plain_key(key: str) -> str:
    parts = [p for p in key.split(".") if p not in ("module", "_dmp_wrapped_module")]
    return ".".join(parts)


def _local_state(model: torch.nn.Module) -> dict[str, Any]:
    """This worker's pieces of the weights: (offsets, tensor) shards, or whole dense tensors."""
    out: dict[str, Any] = {}
    for key, value in model.state_dict().items():
        if hasattr(value, "local_shards"):
            out[_plain_key(key)] = [
                (tuple(s.metadata.shard_offsets), s.tensor.detach().cpu().clone())
                for s in value.local_shards()
            ]
        elif isinstance(value, torch.Tensor):
            out[_plain_key(key)] = value.detach().cpu().clone()
    return out


def _assemble(pieces: list[dict[str, Any]], template: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The full state dict of the plain model from every worker's pieces."""
    full: dict[str, torch.Tensor] = {}
    for key, like in template.items():
        out = torch.zeros_like(like)
        found = False
        for worker in pieces:
            got = worker.get(key)
            if isinstance(got, list):
                for offsets, shard in got:
                    index = tuple(
                        slice(o, o + n) for o, n in zip(offsets, shard.shape, strict=True)
                    )
                    out[index] = shard
                    found = True
            elif isinstance(got, torch.Tensor) and not found:
                out, found = got.clone(), True
        if not found:
            raise RuntimeError(f"no worker holds {key!r}; keys seen: {sorted(pieces[0])[:8]}")
        full[key] = out
    return full


class ShardedTrainer:
    """The per-worker training loop (run inside an initialised process group)."""

    def __init__(self, config: DLRMConfig, sharding: ShardingConfig | None = None) -> None:
        self.config = config
        self.sharding = sharding or ShardingConfig()
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.device = torch.device(f"cuda:{self.rank}" if torch.cuda.is_available() else "cpu")

    def build(self, dense_dim: int, cardinality: tuple[int, ...]) -> Any:
        from torchrec.distributed.embeddingbag import EmbeddingBagCollectionSharder
        from torchrec.distributed.model_parallel import DistributedModelParallel
        from torchrec.distributed.planner import EmbeddingShardingPlanner, Topology
        from torchrec.distributed.planner.types import ParameterConstraints
        from torchrec.optim.apply_optimizer_in_backward import apply_optimizer_in_backward
        from torchrec.optim.keyed import CombinedOptimizer, KeyedOptimizerWrapper

        cfg = self.config
        torch.manual_seed(cfg.seed)  # every worker: the same dense initialisation
        net = build_dlrm(cfg, dense_dim, cardinality, device=torch.device("meta"))
        apply_optimizer_in_backward(
            torch.optim.Adagrad, net.sparse_arch.parameters(), {"lr": self.sharding.sparse_lr}
        )
        tables = [t.name for t in net.sparse_arch.embedding_bag_collection.embedding_bag_configs()]
        constraints = {t: ParameterConstraints(sharding_types=list(self.sharding.sharding_types))
                       for t in tables}  # fmt: skip
        topology = Topology(world_size=self.world, compute_device=self.device.type)
        sharders = [EmbeddingBagCollectionSharder()]
        planner = EmbeddingShardingPlanner(topology=topology, constraints=constraints)
        self.plan = planner.collective_plan(net, sharders, dist.GroupMember.WORLD)
        model = DistributedModelParallel(net, device=self.device, plan=self.plan, sharders=sharders)
        fused = set(model.fused_optimizer.params)
        dense = {k: v for k, v in model.named_parameters() if k not in fused}
        adam = KeyedOptimizerWrapper(dense, lambda ps: torch.optim.Adam(ps, lr=cfg.lr))
        self.optimizer = CombinedOptimizer([model.fused_optimizer, adam])
        return model

    def _mine(self, groups: np.ndarray) -> np.ndarray:
        return np.array_split(groups, self.world)[self.rank]

    def _rows(self, frame: RankingFrame, groups: np.ndarray) -> torch.Tensor:
        starts, lengths = frame.offsets()[groups], frame.group[groups]
        return torch.from_numpy(np.repeat(starts, lengths) + group_rows(lengths))

    def epoch(self, model: Any, frame: RankingFrame, dense: torch.Tensor, sparse: torch.Tensor,
              labels: torch.Tensor, rng: np.random.Generator) -> float:  # fmt: skip
        model.train()
        order = rng.permutation(len(frame.group))  # the same on every worker (same seed)
        size = max(self.config.batch_size, self.world)
        total, steps = 0.0, 0
        for lo in range(0, len(order) - self.world + 1, size):
            mine = self._mine(order[lo : lo + size])  # every worker gets at least one group
            rows = self._rows(frame, mine)
            logits = model(dense[rows].to(self.device), to_kjt(sparse[rows]).to(self.device))
            logits = logits.reshape(-1)
            if self.config.loss == "listwise":
                groups = torch.from_numpy(np.repeat(np.arange(len(mine)), frame.group[mine]))
                loss = listwise_softmax_loss(logits, labels[rows].to(self.device),
                                             groups.to(self.device), len(mine))  # fmt: skip
            else:
                loss = pointwise_bce_loss(logits, labels[rows].to(self.device))
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach())
            steps += 1
        return total / max(steps, 1)

    def validate(self, model: Any, frame: RankingFrame, dense: torch.Tensor,
                 sparse: torch.Tensor) -> float:  # fmt: skip
        """NDCG@10 over every worker's share of the validation groups."""
        model.eval()
        mine = self._mine(np.arange(len(frame.group)))
        rows = self._rows(frame, mine)
        with torch.no_grad():
            scores = model(dense[rows].to(self.device), to_kjt(sparse[rows]).to(self.device))
        from recsys.ranking.frame import select_groups

        part = select_groups(frame, mine)
        local = group_ndcg(scores.reshape(-1).cpu().numpy(), part, 10) * len(mine)
        sums = torch.tensor([local, float(len(mine))], dtype=torch.float64)
        dist.all_reduce(sums)
        return float(sums[0] / sums[1])

    def fit(self, train: RankingFrame, valid: RankingFrame) -> tuple[dict[str, Any] | None, dict]:
        """(the full state dict on rank 0, else None; training facts)."""
        cfg = self.config
        mean, std = dense_moments(train.dense)
        model = self.build(len(train.dense_names), tuple(int(c) for c in train.cardinality))
        dense = torch.from_numpy(standardize(train.dense, mean, std))
        sparse = torch.from_numpy(np.ascontiguousarray(train.sparse, dtype=np.int64))
        labels = torch.from_numpy(float_labels(train))
        v_dense = torch.from_numpy(standardize(valid.dense, mean, std))
        v_sparse = torch.from_numpy(np.ascontiguousarray(valid.sparse, dtype=np.int64))
        rng = np.random.default_rng(cfg.seed)
        best, best_state, since, history = -1.0, _local_state(model), 0, []
        for epoch in range(1, cfg.epochs + 1):
            loss = self.epoch(model, train, dense, sparse, labels, rng)
            ndcg = self.validate(model, valid, v_dense, v_sparse)
            history.append({"epoch": epoch, "loss": loss, "valid_ndcg@10": ndcg})
            if ndcg > best:
                best, best_state, since = ndcg, _local_state(model), 0
            else:
                since += 1
                if since >= cfg.patience:
                    break
        pieces: list[Any] = [None] * self.world
        dist.all_gather_object(pieces, best_state)
        facts = {"history": history, "mean": mean, "std": std, "plan": str(self.plan)}
        if self.rank != 0:
            return None, facts
        template = build_dlrm(cfg, len(train.dense_names), train.cardinality).state_dict()
        return _assemble(pieces, template), facts


def train_with_torchrun(
    train: RankingFrame,
    valid: RankingFrame,
    config: DLRMConfig,
    nproc: int = 2,
    sharding: ShardingConfig | None = None,
    timeout_s: float = 1800,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run :func:`main` under ``torchrun`` with ``nproc`` workers: (the plain model's state
    dict, facts: ``mean`` and ``std`` of the dense columns, ``history``, sharding ``plan``)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        save_frame(train, root / "train.npz")
        save_frame(valid, root / "valid.npz")
        cfg = dict(asdict(config), bottom=list(config.bottom), top=list(config.top))
        sh = asdict(sharding or ShardingConfig())
        (root / "config.pkl").write_bytes(pickle.dumps((cfg, sh)))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", "-m", "models.dlrm_distributed",
               "--train", str(root / "train.npz"), "--valid", str(root / "valid.npz"),
               "--config", str(root / "config.pkl"), "--out", str(root / "out.pkl")]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two workers on two cores
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env,
                              cwd=Path(__file__).resolve().parents[1])  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"torchrun failed ({done.returncode}):\n{done.stderr[-4000:]}")
        state, facts = pickle.loads((root / "out.pkl").read_bytes())
        return state, facts


def main() -> None:
    parser = argparse.ArgumentParser(description="DLRM on DistributedModelParallel (torchrun)")
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--valid", type=Path, required=True)
    parser.add_argument("--config", type=Path, help="pickled (DLRMConfig, ShardingConfig) dicts")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    config, sharding = DLRMConfig(), ShardingConfig()
    if args.config:
        cfg, sh = pickle.loads(args.config.read_bytes())
        config = DLRMConfig(**{**cfg, "bottom": tuple(cfg["bottom"]), "top": tuple(cfg["top"])})
        sharding = ShardingConfig(**{**sh, "sharding_types": tuple(sh["sharding_types"])})
    if args.epochs:
        config = replace(config, epochs=args.epochs)
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    torch.set_num_threads(1)
    try:
        train, valid = load_frame(args.train), load_frame(args.valid)
        trainer = ShardedTrainer(config, sharding)
        state, facts = trainer.fit(train, valid)
        if state is not None:
            args.out.write_bytes(pickle.dumps((state, facts)))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
