"""Leave-one-out by time (README, "Evaluation protocol").

Each user's last distinct item is the test target, the one before it the validation target,
everything earlier is training. Users with two items give a test target but no validation one;
users with a single item only train.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from recsys.data.sequences import EncodedDataset, Sequences

SplitName = Literal["valid", "test"]


@dataclass(frozen=True)
class EvalSet:
    """Users to evaluate, what each had seen before the target, and the target."""

    users: np.ndarray  # (B,) user index into EncodedDataset.user_ids
    history: Sequences  # B rows: items the user touched before the target
    targets: np.ndarray  # (B,) item index

    def __len__(self) -> int:
        return len(self.users)

    @classmethod
    def empty(cls, n_items: int) -> EvalSet:
        """No targets: ``fit(data, valid=EvalSet.empty(n))`` trains without early stopping."""
        none = np.zeros(0, np.int64)
        history = Sequences(np.zeros(1, np.int64), np.zeros(0, np.int32), none,
                            np.zeros(0, np.int8), n_items)  # fmt: skip
        return cls(none, history, none)


@dataclass(frozen=True)
class LeaveOneOut:
    data: EncodedDataset
    train: Sequences  # every user, without their held-out targets
    valid: EvalSet
    test: EvalSet

    def eval_set(self, name: SplitName) -> EvalSet:
        if name not in ("valid", "test"):
            raise ValueError(f"unknown split {name!r}; valid splits are ['valid', 'test']")
        return self.valid if name == "valid" else self.test

    def fit_sequences(self, name: SplitName) -> Sequences:
        """What a model may train on before being evaluated on ``name``.

        Models are fitted on ``train`` for both splits (the validation target is reserved for
        early stopping and tuning); at test time the validation item is still part of each
        user's history, which the model sees through :attr:`EvalSet.history`.
        """
        self.eval_set(name)
        return self.train

    @property
    def train_and_valid(self) -> Sequences:
        """Every user without the test target: what may be fitted once validation has chosen
        everything (recsys.artifacts.TrainConfig.refit_with_valid)."""
        seqs = self.data.sequences
        return seqs.drop_last(np.where(seqs.lengths >= 2, 1, 0))


def leave_one_out(data: EncodedDataset) -> LeaveOneOut:
    seqs = data.sequences
    lengths = seqs.lengths
    holdout = np.where(lengths >= 3, 2, np.where(lengths == 2, 1, 0))
    train = seqs.drop_last(holdout)

    test_users = np.flatnonzero(lengths >= 2)
    test_hist = seqs.select(test_users).drop_last(1)
    test_targets = seqs.items[seqs.indptr[test_users + 1] - 1]

    valid_users = np.flatnonzero(lengths >= 3)
    valid_hist = seqs.select(valid_users).drop_last(2)
    valid_targets = seqs.items[seqs.indptr[valid_users + 1] - 2]
    return LeaveOneOut(
        data=data,
        train=train,
        valid=EvalSet(valid_users, valid_hist, valid_targets.astype(np.int64)),
        test=EvalSet(test_users, test_hist, test_targets.astype(np.int64)),
    )
