"""The synthetic shop: contract, determinism, a believable catalogue and log, learnable truth."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from recsys.data.contract import EVENTS, Dataset
from recsys.data.synth import SynthConfig, generate
from recsys.data.synth.queries import HOBBIES
from recsys.data.synth.taxonomy import COMPLEMENTS, LEAF_BY_NOUN, LEAVES, TREE

USERS, ITEMS, SEED = 3000, 800, 3


@pytest.fixture(scope="module")
def shop() -> Dataset:
    return generate(users=USERS, items=ITEMS, seed=SEED)


@pytest.fixture(scope="module")
def leaf_of(shop: Dataset) -> pd.Series:
    """item_id -> leaf spec, via the category path."""
    by_path = {leaf.path: leaf.spec for leaf in LEAVES}
    return shop.items.set_index("item_id")["category"].map(by_path)


def _frames(ds: Dataset) -> dict[str, pd.DataFrame]:
    frames = {"interactions": ds.interactions, "items": ds.items}
    for name in ("users", "queries", "qrels"):
        frame = getattr(ds, name)
        assert frame is not None
        frames[name] = frame
    return frames


def test_contract_and_shape(shop: Dataset) -> None:
    shop.validate()
    inter, items = shop.interactions, shop.items
    assert set(inter["event"]) == set(EVENTS) - {"rating"}
    assert inter["user_id"].str.fullmatch(r"u\d{6}").all()
    assert items["item_id"].str.fullmatch(r"i\d{5}").all()
    assert inter["session_id"].notna().all()
    assert inter["user_id"].nunique() == USERS and len(items) == ITEMS
    # Sorted by user, then time.
    order = np.lexsort((inter["ts"].to_numpy(), inter["user_id"].to_numpy().astype(str)))
    assert (order == np.arange(len(inter))).all()
    cfg = SynthConfig()
    assert inter["ts"].min() >= cfg.end_ts - cfg.days * 86_400 and inter["ts"].max() < cfg.end_ts
    assert 25 <= len(inter) / USERS <= 45
    meta = shop.meta
    assert meta["name"] == "synthetic-shop" and meta["license"] == "CC0-1.0"
    assert meta["seed"] == SEED and meta["users"] == USERS and meta["items"] == ITEMS
    assert meta["config"] == cfg.as_dict() and meta["generator_version"]
    assert shop.users is not None and set(shop.users["user_id"]) == set(inter["user_id"])
    assert {"home_category", "price_band"} <= set(shop.users.columns)


def test_value_and_query_conventions(shop: Dataset) -> None:
    inter = shop.interactions
    buys = inter["event"] == "purchase"
    price = inter["item_id"].map(shop.items.set_index("item_id")["price"])
    assert np.allclose(inter.loc[buys, "value"], price[buys])
    assert inter.loc[~buys, "value"].isna().all()
    # The search text belongs to the session: one value (or none) per session.
    per_session = inter.groupby("session_id")["query"].nunique(dropna=False)
    assert (per_session == 1).all()
    share = inter.drop_duplicates("session_id")["query"].notna().mean()
    assert 0.15 < share < 0.5


def test_same_seed_same_frames_other_seed_differs() -> None:
    a, b = generate(400, 250, seed=11), generate(400, 250, seed=11)
    for name, frame in _frames(a).items():
        pd.testing.assert_frame_equal(frame, _frames(b)[name], check_exact=True, obj=name)
    assert a.meta == b.meta
    c = generate(400, 250, seed=12)
    assert not a.interactions.equals(c.interactions)
    assert not a.items["title"].equals(c.items["title"])


def test_tiny_sizes_work() -> None:
    for users, items in ((1, 1), (5, 30)):
        ds = generate(users, items, seed=0)
        assert ds.counts()["users"] == users and len(ds.items) == items


def test_category_tree(shop: Dataset) -> None:
    assert len(TREE) >= 8
    for subs in TREE.values():
        assert 2 <= len(subs) <= 4
        assert all(2 <= len(leaves) <= 4 for leaves in subs.values())
    assert all(noun in LEAF_BY_NOUN for pair in COMPLEMENTS.items() for noun in (pair[0], *pair[1]))
    paths = shop.items["category"].str.split(" > ")
    assert (paths.map(len) == 3).all()
    assert paths.str[0].nunique() >= 8
    assert 0.8 < shop.items["in_stock"].mean() < 0.97
    assert (shop.items["price"] > 0).all()


def test_attributes_fit_the_leaf(shop: Dataset, leaf_of: pd.Series) -> None:
    for item_id, raw in zip(shop.items["item_id"], shop.items["attributes"], strict=True):
        attrs = json.loads(raw)
        spec = leaf_of[item_id]
        assert set(attrs) == set(spec.attrs), (item_id, attrs)
        assert all(value in spec.attrs[key] for key, value in attrs.items())
    grocery = shop.items["category"].str.startswith("Grocery")
    assert not shop.items.loc[grocery, "attributes"].str.contains('"size"').any()
    assert shop.items["title"].str.len().between(8, 120).all()
    sentences = shop.items["description"].str.count(r"\.(?: |$)")
    assert sentences.between(1, 3).all()


def test_funnel_order_within_sessions(shop: Dataset) -> None:
    inter = shop.interactions
    first = inter.groupby(["session_id", "item_id", "event"])["ts"].min().unstack()
    steps = ["view", "click", "cart", "purchase"]
    for before, after in itertools.pairwise(steps):
        done = first[after].notna()
        assert first.loc[done, before].notna().all(), f"{after} without {before}"
        assert (first.loc[done, before] <= first.loc[done, after]).all()
    stock = shop.items.set_index("item_id")["in_stock"]
    bought = inter.loc[inter["event"] == "purchase", "item_id"]
    assert stock[bought].all(), "out-of-stock items are never bought"
    assert not stock[inter.loc[inter["event"] == "view", "item_id"]].all()


def test_conversion_rates_are_plausible(shop: Dataset) -> None:
    n = shop.interactions["event"].value_counts()
    assert 0.30 <= n["click"] / n["view"] <= 0.50
    assert 0.20 <= n["cart"] / n["click"] <= 0.32
    assert 0.40 <= n["purchase"] / n["cart"] <= 0.62


def test_repeat_purchases_are_consumables(shop: Dataset, leaf_of: pd.Series) -> None:
    buys = shop.interactions[shop.interactions["event"] == "purchase"]
    counts = buys.groupby(["user_id", "item_id"]).size()
    repeated = counts[counts > 1].index.get_level_values("item_id")
    assert len(repeated) > 20
    assert all(leaf_of[i].consumable for i in repeated)
    # Refills come roughly one interval later.
    again = buys.set_index(["user_id", "item_id"]).loc[counts[counts > 1].index]
    gap_days = again.groupby(level=[0, 1])["ts"].agg(lambda t: np.diff(np.sort(t)).min()) / 86_400
    interval = np.array([leaf_of[i].interval for i in gap_days.index.get_level_values(1)])
    assert np.median(gap_days.to_numpy() / interval) == pytest.approx(1.0, abs=0.35)


def test_popularity_has_a_long_tail(shop: Dataset) -> None:
    views = shop.interactions.loc[shop.interactions["event"] == "view", "item_id"]
    counts = views.value_counts()
    assert counts.iloc[: ITEMS // 10].sum() > 0.4 * counts.sum()
    sessions = shop.interactions.groupby("user_id")["session_id"].nunique()
    assert 5 <= sessions.mean() <= 8 and sessions.max() > 5 * sessions.median()


def _drift(ds: Dataset, min_sessions: int = 4) -> float:
    """Mean total-variation distance between each user's top-category mix in the first and
    the last third of their active time, one count per session."""
    inter = ds.interactions
    top = inter["item_id"].map(ds.items.set_index("item_id")["category"].str.split(" > ").str[0])
    s = inter.assign(top=top).drop_duplicates("session_id")[["user_id", "ts", "top"]]
    span = s.groupby("user_id")["ts"].agg(["min", "max"])
    s = s.join(span, on="user_id")
    frac = (s["ts"] - s["min"]) / (s["max"] - s["min"]).clip(lower=1)
    s["part"] = np.select([frac < 1 / 3, frac > 2 / 3], ["early", "late"], "mid")
    c = s[s["part"] != "mid"].groupby(["user_id", "part", "top"]).size().unstack(fill_value=0)
    enough = c.sum(axis=1).unstack().min(axis=1) >= min_sessions
    p = c.div(c.sum(axis=1), axis=0)
    early = p.xs("early", level=1).reindex(enough[enough].index)
    late = p.xs("late", level=1).reindex(enough[enough].index)
    assert len(early) > 100
    return float((early - late).abs().sum(axis=1).mean() / 2)


def test_tastes_drift(shop: Dataset) -> None:
    # Same users and session times without drift: what session-to-session noise alone gives.
    still = generate(USERS, ITEMS, seed=SEED, config=SynthConfig(drift=0.0))
    assert _drift(shop) > _drift(still) + 0.04


def test_queries_and_qrels(shop: Dataset, leaf_of: pd.Series) -> None:
    queries, qrels = shop.queries, shop.qrels
    assert queries is not None and qrels is not None
    assert set(queries["kind"]) == {"head", "attribute", "longtail"}
    assert 100 <= len(queries) <= 500 and queries["text"].is_unique
    assert qrels["item_id"].isin(shop.items["item_id"]).all()
    assert qrels["grade"].between(1, 3).all()
    assert set(qrels.groupby("query_id")["grade"].max()) <= {2, 3}
    assert set(queries["query_id"]) == set(qrels["query_id"])
    kind = queries.set_index("query_id")["kind"]
    text = queries.set_index("query_id")["text"]
    head = kind[kind == "head"].index
    assert text[head].isin(list(LEAF_BY_NOUN)).all()
    graded = qrels.assign(noun=qrels["item_id"].map(leaf_of).map(lambda s: s.noun))
    longtail = graded[graded["query_id"].map(kind) == "longtail"]
    for qid, nouns in longtail.groupby("query_id")["noun"]:
        assert not any(noun in text[qid] for noun in set(nouns)), text[qid]
    hobby_nouns = {noun for _, nouns in HOBBIES.values() for noun in nouns}
    assert hobby_nouns <= set(LEAF_BY_NOUN)
    # Attribute queries grade their best items 3.
    attribute = graded[graded["query_id"].map(kind) == "attribute"]
    assert (attribute.groupby("query_id")["grade"].max() == 3).all()


def test_co_visitation_beats_popularity(shop: Dataset) -> None:
    covisit = pytest.importorskip("models.covisit")
    popular = pytest.importorskip("models.popular")
    protocol = pytest.importorskip("recsys.evaluation.protocol")
    pop = protocol.evaluate_model(shop, popular.PopularModel())["ndcg@10"]
    co = protocol.evaluate_model(shop, covisit.CovisitModel())["ndcg@10"]
    assert pop < 0.1, "tastes are too narrow: popularity alone nearly solves it"
    assert co > 2 * pop
