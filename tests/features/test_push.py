"""Pushing live events into Feast's online store, read back with Feast's get_online_features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features import USER_FEATURES, FeatureRepo, FeatureStoreConfig, build_feature_tables
from features.push import KEPT, EventPusher, snapshot_history
from recsys.data.contract import EVENTS, Dataset
from recsys.data.sequences import encode
from recsys.data.split import leave_one_out
from recsys.data.synth import generate
from recsys.events import Event

DAY = 86_400
T0 = 1_700_000_000
# leaf codes (sorted paths): Books > Novels 1, Home > Garden 2, Home > Kitchen 3,
# Toys > Blocks 4, Toys > Dolls 5; top codes: Books 1, Home 2, Toys 3.
# Catalog price quintile edges of 10..70: 22, 34, 46, 58 (bands 1..5).
CATALOG = {
    "a": ("Home > Kitchen", 10.0),
    "b": ("Home > Kitchen", 20.0),
    "c": ("Home > Garden", 30.0),
    "d": ("Toys > Blocks", 40.0),
    "e": ("Toys > Blocks", 50.0),
    "f": ("Toys > Dolls", 60.0),
    "g": ("Books > Novels", 70.0),
}


def _tiny_shop() -> Dataset:
    rows = [  # u1 trains on a (view), b (cart), c (purchase); d, e are held out
        ("u1", "a", 0, "view"), ("u1", "b", 1, "cart"), ("u1", "c", 2, "purchase"),
        ("u1", "d", 3, "view"), ("u1", "e", 4, "view"),
        ("u2", "f", 0, "view"), ("u2", "g", 1, "view"), ("u2", "a", 2, "view"),
    ]  # fmt: skip
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "ts", "event"])
    inter["ts"] = T0 + inter["ts"] * DAY
    items = pd.DataFrame(
        [(i, f"item {i}", cat, price) for i, (cat, price) in CATALOG.items()],
        columns=["item_id", "title", "category", "price"],
    )
    return Dataset(inter, items, {"name": "tiny"}).validate()


def _materialized(ds: Dataset, root: Path) -> tuple[FeatureRepo, EventPusher]:
    enc = encode(ds)
    train = leave_one_out(enc).train
    repo = FeatureRepo(root, FeatureStoreConfig())
    repo.materialize(build_feature_tables(ds, enc, train))
    return repo, EventPusher(FeatureRepo(root), snapshot_history(enc.user_ids, enc.item_ids, train))


def _feast_rows(repo: FeatureRepo, users: list[str]) -> list[dict[str, float | None]]:
    """Feast's own read: get_online_features on the user_activity view."""
    out = repo.store.get_online_features(
        features=[f"user_activity:{f}" for f in USER_FEATURES],
        entity_rows=[{"user_id": u} for u in users],
    ).to_dict()
    return [{f: out[f][i] for f in USER_FEATURES} for i in range(len(users))]


def _event(n: int, user: str, item: str, event: str) -> Event:
    return Event(f"e{n}", user, item, event, T0 + 10 * DAY + n)


def test_push_updates_known_and_new_users(tmp_path: Path) -> None:
    repo, pusher = _materialized(_tiny_shop(), tmp_path / "features")
    (before,) = _feast_rows(repo, ["u1"])
    assert before == pytest.approx({
        "n_items": 3.0, "n_categories": 2.0, "cart_share": 2 / 3, "purchase_share": 1 / 3,
        "recency": 0.0, "active_span": 2.0, "pref_category_code": 3.0, "pref_top_code": 2.0,
        "price_median": 20.0, "price_band": 1.0,
    })  # fmt: skip
    assert _feast_rows(repo, ["new"])[0]["n_items"] is None

    events = [
        _event(1, "u1", "d", "purchase"),  # new item, new leaf (Toys > Blocks)
        _event(2, "u1", "a", "purchase"),  # known item: view -> purchase, not a new item
        _event(3, "u1", "e", "view"),
        _event(4, "u1", "f", "click"),
        _event(5, "u1", "f", "view"),  # weaker than the click: f stays clicked
        _event(6, "new", "g", "view"),
        _event(7, "new", "d", "cart"),
        _event(8, "new", "e", "purchase"),
        _event(9, "new", "d", "view"),
    ]
    written = pusher.push(events)
    assert written["user_id"].tolist() == ["u1", "new"]

    u1, new = _feast_rows(repo, ["u1", "new"])
    # u1: a (purchase), b (cart), c (purchase), d (purchase), e (view), f (click)
    assert u1 == pytest.approx({
        "n_items": 6.0,
        "n_categories": 4.0,  # Kitchen, Garden, Blocks, Dolls
        "cart_share": 4 / 6,
        "purchase_share": 3 / 6,
        "recency": 0.0,  # kept: the snapshot's clock (module doc)
        "active_span": 2.0,  # kept
        "pref_category_code": 3.0,  # Kitchen 2 = Blocks 2: the lowest code wins
        "pref_top_code": 2.0,  # Home 3 = Toys 3: the lowest code wins
        "price_median": 35.0,  # median of 10, 20, 30, 40, 50, 60
        "price_band": 3.0,  # 34 <= 35 < 46
    })  # fmt: skip
    # new: built from its events alone: g (view), d (cart), e (purchase)
    assert {k: v for k, v in new.items() if k not in KEPT} == pytest.approx({
        "n_items": 3.0, "n_categories": 2.0, "cart_share": 2 / 3, "purchase_share": 1 / 3,
        "pref_category_code": 4.0, "pref_top_code": 3.0, "price_median": 50.0, "price_band": 4.0,
    })  # fmt: skip
    assert all(pd.isna(new[f]) for f in KEPT)

    # the cached online reader sees the same rows after the push
    users = repo.online().users(["u1", "new"])
    np.testing.assert_array_equal(users, written[list(USER_FEATURES)].to_numpy(np.float32))

    # idempotent: the same events again change nothing; later pushes build on earlier ones
    pusher.push(events[:2])
    assert _feast_rows(repo, ["u1"])[0] == u1
    pusher.push([_event(10, "u1", "g", "purchase")])
    assert _feast_rows(repo, ["u1"])[0]["n_items"] == 7.0
    assert _feast_rows(repo, ["u1"])[0]["purchase_share"] == pytest.approx(4 / 7)

    # another pusher (a restart) that replays the whole log writes the same row
    enc = encode(_tiny_shop())
    history = snapshot_history(enc.user_ids, enc.item_ids, leave_one_out(enc).train)
    expected = _feast_rows(repo, ["u1", "new"])
    EventPusher(FeatureRepo(repo.root), history).push([*events, _event(10, "u1", "g", "purchase")])
    assert _feast_rows(repo, ["u1", "new"]) == [pytest.approx(r, nan_ok=True) for r in expected]


def test_unknown_item_is_refused_and_nothing_written(tmp_path: Path) -> None:
    repo, pusher = _materialized(_tiny_shop(), tmp_path / "features")
    before = _feast_rows(repo, ["u1", "new"])
    batch = [_event(1, "u1", "d", "purchase"), _event(2, "new", "no-such-item", "view")]
    with pytest.raises(ValueError, match="'no-such-item'"):
        pusher.push(batch)
    assert _feast_rows(repo, ["u1", "new"]) == [pytest.approx(r, nan_ok=True) for r in before]
    assert pusher.push([]).empty
    empty = FeatureRepo(tmp_path / "empty", FeatureStoreConfig())
    with pytest.raises(RuntimeError, match="not been materialized"):
        EventPusher(empty, lambda user: []).push([_event(3, "u1", "a", "view")])


def test_push_matches_tables_rebuilt_with_the_events(tmp_path: Path) -> None:
    """Pushing every user's held-out items gives the rows that the tables built from the full
    sequences hold (the kept time features aside)."""
    ds = generate(users=120, items=80, seed=3)
    repo, pusher = _materialized(ds, tmp_path / "features")
    enc = encode(ds)
    full, train = enc.sequences, leave_one_out(enc).train
    events, n = [], 0
    for u, user in enumerate(enc.user_ids):
        held = slice(full.indptr[u] + train.lengths[u], full.indptr[u + 1])
        for item, strength in zip(full.items[held], full.strength[held], strict=True):
            n += 1
            events.append(Event(f"e{n}", str(user), str(enc.item_ids[item]), EVENTS[strength]))
    assert n > 100
    written = pusher.push(events).set_index("user_id")
    expected = build_feature_tables(ds, enc, full).users.set_index("user_id")
    touched = list(dict.fromkeys(e.user_id for e in events))
    rows = _feast_rows(repo, touched)
    updated = [f for f in USER_FEATURES if f not in KEPT]
    got = pd.DataFrame(rows, index=touched)[updated].astype(np.float64)
    want = expected.loc[touched, updated]
    pd.testing.assert_frame_equal(got, want, check_dtype=False, rtol=1e-6, check_names=False)
    np.testing.assert_array_equal(written.loc[touched, updated].to_numpy(np.float64), got)


def test_a_reader_serves_materialized_rows_until_a_push_in_any_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    import features.online as online_module

    repo, _ = _materialized(_tiny_shop(), tmp_path / "features")
    reads: list[list[str]] = []
    real_read = online_module.read_online

    def counted(store, view, key, ids, feats):  # type: ignore[no-untyped-def]
        if key == "user_id":  # (a new version reads every item row too)
            reads.append(list(ids))
        return real_read(store, view, key, ids, feats)

    monkeypatch.setattr(online_module, "read_online", counted)
    online = repo.online()
    before = _feast_rows(repo, ["u1", "u2"])
    expected = np.array([[np.nan if r[f] is None else r[f] for f in USER_FEATURES]
                         for r in before], dtype=np.float32)  # fmt: skip
    reads.clear()
    np.testing.assert_array_equal(online.users(["u1", "u2"]), expected)
    assert reads == []  # the materialized rows, loaded with the version: no store read
    online.users(["nobody"])
    assert reads == [["nobody"]]  # a user the materialization lacks is read from the store

    # another process pushes u1's events: this reader reads u1's new row from the store
    script = (
        "import sys; from pathlib import Path; "
        "from tests.features.test_push import _event, _materialized_pusher; "
        "_materialized_pusher(Path(sys.argv[1])).push([_event(1, 'u1', 'd', 'purchase')])"
    )
    subprocess.run([sys.executable, "-c", script, str(repo.root)], check=True, cwd=Path.cwd())
    (after,) = _feast_rows(repo, ["u1"])
    assert after["n_items"] == 4.0
    reads.clear()
    users = online.users(["u1", "u2"])
    assert reads == [["u1"]]
    assert users[0, 0] == 4.0 and users[1, 0] == expected[1, 0]
    # a reader started after the push reads the journal when it loads the version
    fresh = repo.online()
    assert fresh.users(["u1"])[0, 0] == 4.0

    # the next materialization is newer than the push: its rows serve u1 again
    repo.materialize(build_feature_tables(_tiny_shop(), encode(_tiny_shop()),
                                          leave_one_out(encode(_tiny_shop())).train))  # fmt: skip
    reads.clear()
    np.testing.assert_array_equal(online.users(["u1", "u2"]), expected)
    assert reads == []


def test_no_materialized_rows_without_room_for_them_or_with_a_rewritten_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import features.online as online_module
    from features.definitions import source_path

    repo, _ = _materialized(_tiny_shop(), tmp_path / "features")
    reads: list[list[str]] = []
    real_read = online_module.read_online
    monkeypatch.setattr(online_module, "read_online",
                        lambda *a: reads.append(list(a[3])) or real_read(*a))  # fmt: skip
    small = FeatureRepo(repo.root, FeatureStoreConfig(user_cache_size=1)).online()
    reads.clear()
    small.users(["u1"])
    assert reads == [["u1"]]  # two users do not fit in a cache of one: read on use
    source = repo.root / source_path("user_activity")
    frame = pd.read_parquet(source)
    frame["event_timestamp"] = frame["event_timestamp"] + pd.Timedelta(seconds=5)
    frame.to_parquet(source, index=False)  # as a materialization in progress leaves it
    rewritten = repo.online()
    reads.clear()
    rewritten.users(["u2"])
    assert reads == [["u2"]]


def _materialized_pusher(root: Path) -> EventPusher:
    """The pusher of a repository :func:`_materialized` built (for a second process)."""
    enc = encode(_tiny_shop())
    train = leave_one_out(enc).train
    return EventPusher(FeatureRepo(root), snapshot_history(enc.user_ids, enc.item_ids, train))
