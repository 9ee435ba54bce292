"""LightGBM LambdaRank over ranking rows, exported to ONNX for serving.

Trained on each user's merged retrieval candidates for the validation target (the held-out
item labels the one positive; the other candidates are hard negatives, since every one of them
was some source's top pick). Groups whose target the candidates missed carry no ranking signal
and are dropped. The tree model reads the dense columns and the sparse codes except the item index
(an id is a lookup key for the DLRM's embedding, not an ordered quantity for a split).

Serving scores through compiled trees (``export_trees`` + ``models.compiled_trees``, lleaves)
or ONNX Runtime (``export_onnx`` + ``models.onnx_runtime.OnnxSession``), as
``models.ranker_runtime`` picks; the native booster stays for training, evaluation and the
parity checks.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

import lightgbm as lgb
import numpy as np

from recsys.native import columns as native_columns
from recsys.ranking.frame import RankingFrame, select_groups

ONNX_OPSET = 15  # the newest onnxmltools' LightGBM converter supports
# Unknown values become this finite sentinel for training and for every runtime. LightGBM reads a
# NaN as 0 in a feature that had no NaN in training, while the ONNX converter sends it the
# node's default way: on Industrial that moved 97 of 50,000 scores by up to 0.06. A sentinel
# is an ordinary (lowest) value to both, so the exported scores equal the native ones.
MISSING = -1e9
# Inputs keep a 16-bit mantissa. LightGBM splits at the double midpoint of two adjacent values;
# the ONNX tree stores it as float32, which can round onto the upper value and send it the other
# way (563 of 1.5M Industrial rows). With values 2^-16 apart (relative), no midpoint rounds onto
# a value, so both runtimes take the same branch everywhere.
MANTISSA_BITS = 16


@dataclass(frozen=True)
class LGBMRankerConfig:
    n_estimators: int = 300
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 50
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    lambda_l2: float = 1.0
    truncation_level: int = 20  # pairs below this rank barely move NDCG@10
    early_stopping_rounds: int = 30
    holdout_groups: float = 0.1  # of the training groups, for early stopping on NDCG@10
    seed: int = 0
    threads: int = 2

    def __post_init__(self) -> None:
        if not 0.0 < self.holdout_groups < 1.0:
            raise ValueError(f"holdout_groups must be in (0, 1), got {self.holdout_groups}")


def _columns(frame: RankingFrame) -> tuple[np.ndarray, tuple[str, ...]]:
    """(N, D + S - 1) float32 and names: dense, then sparse codes except the item index."""
    keep = [i for i, n in enumerate(frame.sparse_names) if n != "item"]
    names = (*frame.dense_names, *(frame.sparse_names[i] for i in keep))
    compiled = native_columns.ranker_columns(
        frame.dense, frame.sparse, tuple(keep), MISSING, MANTISSA_BITS
    )  # the C twin of what follows (recsys/native/columns.c)
    if compiled is not None:
        return compiled, names
    n_dense = frame.dense.shape[1]
    x = np.empty((len(frame.dense), n_dense + len(keep)), np.float32)  # (N, D + S - 1)
    x[:, :n_dense] = frame.dense
    x[:, n_dense:] = frame.sparse[:, keep]
    np.nan_to_num(x, copy=False, nan=MISSING, posinf=-MISSING, neginf=MISSING)
    return _round_mantissa(x), names


def _round_mantissa(x: np.ndarray) -> np.ndarray:
    """float32 ``x`` rounded (half to even) to MANTISSA_BITS significant bits, in place on
    its bits: equal to ``ldexp(round(frexp(x)[0] * 2**16) / 2**16, frexp(x)[1])`` for every
    finite float32 (checked on a million values), at an eighth of the per-request cost."""
    drop = 24 - MANTISSA_BITS  # float32 carries 24 significant bits
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    # round half to even: add just under half, plus the lowest kept bit; a carry into the
    # exponent is the correct rounding up to the next power of two
    u += np.uint32((1 << (drop - 1)) - 1) + ((u >> np.uint32(drop)) & np.uint32(1))
    u &= np.uint32(0xFFFFFFFF ^ ((1 << drop) - 1))
    return u.view(np.float32)


def _with_positive(frame: RankingFrame) -> np.ndarray:
    """Indexes of the groups that hold a positive."""
    if frame.label is None:
        raise ValueError("training frames need labels")
    return np.flatnonzero(frame.positives() > 0)


class LGBMRanker:
    name = "lightgbm"
    onnx_tolerance = 1e-5  # equal thresholds (see MANTISSA_BITS); float32 sums of leaf values

    def __init__(self, config: LGBMRankerConfig | None = None) -> None:
        self.config = config or LGBMRankerConfig()
        self.booster_: lgb.Booster | None = None
        self.feature_names_: tuple[str, ...] = ()
        self.best_iteration_: int | None = None
        self.train_seconds_: float | None = None

    def fit(self, train: RankingFrame, valid: RankingFrame | None = None) -> Self:
        cfg = self.config
        train = select_groups(train, _with_positive(train))
        if valid is None:
            rng = np.random.default_rng(cfg.seed)
            order = rng.permutation(len(train.group))
            n_valid = max(1, round(cfg.holdout_groups * len(order)))
            valid = select_groups(train, np.sort(order[:n_valid]))
            train = select_groups(train, np.sort(order[n_valid:]))
        else:
            valid = select_groups(valid, _with_positive(valid))
        if not len(train.group) or not len(valid.group):
            raise ValueError("no training group holds a positive: candidates missed every target")
        x, names = _columns(train)
        xv, _ = _columns(valid)
        params = {
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": [10],
            "learning_rate": cfg.learning_rate,
            "num_leaves": cfg.num_leaves,
            "min_child_samples": cfg.min_child_samples,
            "feature_fraction": cfg.feature_fraction,
            "bagging_fraction": cfg.bagging_fraction,
            "bagging_freq": 1,
            "lambda_l2": cfg.lambda_l2,
            "use_missing": False,  # see MISSING
            "lambdarank_truncation_level": cfg.truncation_level,
            "seed": cfg.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": cfg.threads,
            "verbosity": -1,
        }
        started = time.perf_counter()
        dtrain = lgb.Dataset(x, train.label, group=train.group, feature_name=list(names))
        dvalid = lgb.Dataset(xv, valid.label, group=valid.group, reference=dtrain)
        self.booster_ = lgb.train(
            params,
            dtrain,
            num_boost_round=cfg.n_estimators,
            valid_sets=[dvalid],
            callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)],
        )
        self.best_iteration_ = int(self.booster_.best_iteration or cfg.n_estimators)
        # keep only the trees early stopping chose: serving and ONNX export read the same model
        self.booster_ = lgb.Booster(
            model_str=self.booster_.model_to_string(num_iteration=self.best_iteration_)
        )
        self.feature_names_ = names
        self.train_seconds_ = time.perf_counter() - started
        return self

    def _check(self, frame: RankingFrame) -> np.ndarray:
        if self.booster_ is None:
            raise RuntimeError("lightgbm ranker is not fitted; call fit() first")
        x, names = _columns(frame)
        if names != self.feature_names_:
            raise ValueError(
                f"frame columns {list(names)} differ from the trained ones "
                f"{list(self.feature_names_)}"
            )
        return x

    def predict(self, frame: RankingFrame, threads: int = 1) -> np.ndarray:
        """(N,) float32 native booster scores."""
        x = self._check(frame)
        assert self.booster_ is not None
        return np.asarray(self.booster_.predict(x, num_threads=threads), dtype=np.float32)

    def contributions(
        self, frame: RankingFrame, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
        """TreeSHAP shares (R, F) of ``rows``' scores, their feature values (R, F) and the F
        names; each row's shares plus the model's bias add up to its native score."""
        x = self._check(frame)[rows]  # (R, F)
        assert self.booster_ is not None
        shap = np.asarray(self.booster_.predict(x, pred_contrib=True, num_threads=1))
        return shap[:, :-1], x, self.feature_names_  # the last column is the bias

    def onnx_feeds(self, frame: RankingFrame) -> dict[str, np.ndarray]:
        return {"input": self._check(frame)}

    def export_onnx(self, path: str | Path) -> Path:
        from onnxmltools import convert_lightgbm
        from onnxmltools.convert.common.data_types import FloatTensorType

        if self.booster_ is None:
            raise RuntimeError("lightgbm ranker is not fitted; call fit() first")
        initial = [("input", FloatTensorType([None, len(self.feature_names_)]))]
        onx = convert_lightgbm(
            self.booster_, initial_types=initial, target_opset=ONNX_OPSET, zipmap=False
        )
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(onx.SerializeToString())
        return out

    def export_trees(self, path: str | Path) -> Path:
        """Write the booster as LightGBM model text, the input of compiled trees (lleaves)."""
        if self.booster_ is None:
            raise RuntimeError("lightgbm ranker is not fitted; call fit() first")
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(self.booster_.model_to_string())
        return out

    def summary(self) -> dict[str, Any]:
        importance: dict[str, float] = {}
        if self.booster_ is not None:
            gains = self.booster_.feature_importance("gain")
            total = float(gains.sum()) or 1.0
            ranked = sorted(zip(self.feature_names_, gains, strict=True), key=lambda p: -p[1])
            importance = {n: round(float(g) / total, 4) for n, g in ranked[:10]}
        return {
            "config": asdict(self.config),
            "best_iteration": self.best_iteration_,
            "train_seconds": round(self.train_seconds_ or 0.0, 3),
            "top_gain": importance,
        }
