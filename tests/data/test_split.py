"""Sequences and the leave-one-out split on a hand-made log."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.contract import Dataset
from recsys.data.sequences import encode
from recsys.data.split import leave_one_out


def tiny() -> Dataset:
    rows = [
        # user a: x, y (viewed twice, then bought), z, w -> distinct order x y z w
        ("a", "x", 1, "view"),
        ("a", "y", 2, "view"),
        ("a", "y", 3, "purchase"),
        ("a", "z", 4, "click"),
        ("a", "w", 5, "view"),
        ("a", "x", 6, "purchase"),  # a repeat: x stays at its first position
        # user b: two items -> test target only
        ("b", "z", 10, "view"),
        ("b", "x", 11, "view"),
        # user c: one item -> training only
        ("c", "y", 7, "view"),
        # user d: equal timestamps keep file order
        ("d", "w", 3, "view"),
        ("d", "z", 3, "view"),
        ("d", "y", 3, "view"),
    ]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "ts", "event"])
    items = pd.DataFrame({"item_id": ["x", "y", "z", "w", "unused"]})
    items["title"] = items["item_id"]
    return Dataset(inter.sample(frac=1.0, random_state=3), items).validate()


def decoded(enc, seqs) -> list[list[str]]:
    return [[str(enc.item_ids[i]) for i in seqs.user(u)] for u in range(seqs.n_users)]


def test_encode_orders_distinct_items_by_first_touch() -> None:
    enc = encode(tiny())
    assert list(enc.user_ids) == ["a", "b", "c", "d"]
    assert enc.n_items == 5  # catalog items without interactions keep an index
    seqs = decoded(enc, enc.sequences)
    assert seqs[0] == ["x", "y", "z", "w"]
    assert seqs[1] == ["z", "x"]
    assert seqs[2] == ["y"]
    # strongest event per user-item: y was purchased, x too (the later repeat)
    strength = dict(zip(seqs[0], enc.sequences.strength[:4].tolist(), strict=True))
    assert strength["y"] == strength["x"] == 3 and strength["z"] == 1


def test_equal_timestamps_keep_file_order() -> None:
    rows = [("d", "w", 3, "view"), ("d", "z", 3, "view"), ("d", "y", 3, "view")]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "ts", "event"])
    items = pd.DataFrame({"item_id": ["y", "z", "w"], "title": ["y", "z", "w"]})
    enc = encode(Dataset(inter, items).validate())
    assert decoded(enc, enc.sequences) == [["w", "z", "y"]]


def test_leave_one_out_targets_and_histories() -> None:
    rows = [
        ("a", "x", 1), ("a", "y", 2), ("a", "z", 3), ("a", "w", 4),
        ("b", "z", 10), ("b", "x", 11),
        ("c", "y", 7),
    ]  # fmt: skip
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "ts"]).assign(event="view")
    items = pd.DataFrame({"item_id": list("xyzw"), "title": list("xyzw")})
    enc = encode(Dataset(inter, items).validate())
    split = leave_one_out(enc)
    assert decoded(enc, split.train) == [["x", "y"], ["z"], ["y"]]
    name = {i: str(enc.item_ids[i]) for i in range(enc.n_items)}
    assert [str(enc.user_ids[u]) for u in split.test.users] == ["a", "b"]
    assert [name[i] for i in split.test.targets] == ["w", "x"]
    assert decoded(enc, split.test.history) == [["x", "y", "z"], ["z"]]
    assert [str(enc.user_ids[u]) for u in split.valid.users] == ["a"]
    assert [name[i] for i in split.valid.targets] == ["z"]
    assert decoded(enc, split.valid.history) == [["x", "y"]]
    # no target ever appears in its own history
    for es in (split.valid, split.test):
        for row, target in enumerate(es.targets):
            assert target not in es.history.user(row)
    with pytest.raises(ValueError, match="valid splits"):
        split.eval_set("train")  # type: ignore[arg-type]


def test_sequence_helpers() -> None:
    enc = encode(tiny())
    seqs = enc.sequences
    last2 = seqs.last(2)
    assert last2.lengths.tolist() == [2, 2, 1, 2]
    picked = seqs.select(np.array([3, 0]))
    assert picked.lengths.tolist() == [3, 4]
    assert decoded(enc, picked)[1] == ["x", "y", "z", "w"]
    assert seqs.drop_last(np.array([1, 0, 5, 2])).lengths.tolist() == [3, 2, 0, 1]
