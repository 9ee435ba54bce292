"""The decision layer on a hand-made catalog where every answer is known."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys.catalog import Catalog, CatalogError
from recsys.data.sequences import Sequences
from recsys.decision import (
    DecisionConfig,
    DecisionConfigError,
    DecisionRequest,
    DecisionStage,
    Filters,
    Removed,
    load_decision_config,
)
from recsys.decision.config import Exploration, decision_config
from recsys.decision.log import DecisionLog, decision_record, deferred_record
from recsys.decision.policy import explore
from recsys.decision.stage import DecisionEntry, PurchaseLookup
from recsys.retrieval.merge import CandidateBatch

# 12 items: 0-5 jackets (Urbanwear / Peak), 6-9 boots, 10-11 mugs; 3 and 9 out of stock
CATALOG = pd.DataFrame(
    {
        "item_id": [f"i{i}" for i in range(12)],
        "title": [f"item {i}" for i in range(12)],
        "brand": ["Urbanwear", "Peak"] * 3 + ["Peak"] * 4 + ["Homey", ""],
        "category": ["Fashion > Outerwear > Jackets"] * 6
        + ["Fashion > Shoes > Boots"] * 4
        + ["Home > Kitchen > Mugs"] * 2,
        "price": [50.0, 60, 70, 80, 90, 100, 40, 45, 120, 130, 10, np.nan],
        "in_stock": [True, True, True, False] + [True] * 5 + [False, True, True],
    }
)
# user "u0" bought item 4 at training time (strength 3 = purchase), viewed item 1
SEQ = Sequences(
    indptr=np.array([0, 2]),
    items=np.array([4, 1], np.int32),
    ts=np.array([1, 2]),
    strength=np.array([3, 0], np.int8),
    n_items=12,
)


def stage(config: DecisionConfig | None = None) -> DecisionStage:
    catalog = Catalog.from_frame(CATALOG)
    return DecisionStage(
        catalog, config or DecisionConfig(), PurchaseLookup({"u0": 0}, SEQ), ranked=False
    )


def run(st: DecisionStage, request: DecisionRequest, user: str = "nobody") -> Any:
    ids = np.arange(12)[None, :]  # candidates in index order, scores decreasing
    fused = np.linspace(1.0, 0.0, 12, dtype=np.float32)[None, :]
    batch = CandidateBatch(("a",), ids, fused, fused[..., None], np.ones((1, 12, 1), np.int32))
    return st.run({"user_id": user, "request": request, "candidates": batch})["decision"]


def shown(decision: Any) -> list[int]:
    return [int(i) for i in decision.ids]


def removed(decision: Any) -> dict[int, str]:
    return {e.item: e.reason for e in decision.entries if e.action == "removed"}


def test_default_rules_hide_out_of_stock_and_purchased() -> None:
    d = run(stage(), DecisionRequest(k=12), user="u0")
    assert shown(d) == [0, 1, 2, 5, 6, 7, 8, 10, 11]  # 3, 9 out of stock; 4 bought
    assert removed(d) == {3: "out of stock", 4: "already purchased", 9: "out of stock"}
    assert all(e.propensity == 1.0 for e in d.entries if e.action == "shown")
    lifted = Filters(in_stock=False, exclude_purchased=False)
    assert shown(run(stage(), DecisionRequest(k=12, filters=lifted), user="u0")) == list(range(12))


def test_caller_filters() -> None:
    f = Filters(price_min=45, price_max=100, categories=("fashion > outerwear",), brands=("peak",))
    d = run(stage(), DecisionRequest(k=10, filters=f))
    assert shown(d) == [1, 5]  # Peak jackets in 45..100 and in stock (3 is not)
    assert removed(d)[11].startswith("price unknown") and "brand" in removed(d)[0]
    assert "category" in removed(d)[7] and "price outside" in removed(d)[10]
    excluded = run(stage(), DecisionRequest(k=3, filters=Filters(exclude_item_ids=("i0", "x"))))
    assert shown(excluded) == [1, 2, 4]


@pytest.mark.parametrize(
    ("filters", "param", "needle"),
    [
        (Filters(brands=("Acme",)), "filters.brands", "'Acme'"),
        (Filters(categories=("Garden",)), "filters.categories", "['Fashion', 'Home']"),
    ],
)
def test_unknown_filter_values_are_named(filters: Filters, param: str, needle: str) -> None:
    with pytest.raises(CatalogError) as err:
        run(stage(), DecisionRequest(filters=filters))
    assert err.value.param == param and needle in str(err.value)


def test_bad_price_range_and_missing_column() -> None:
    with pytest.raises(CatalogError, match=r"price_min 50 is above filters\.price_max 10"):
        Filters(price_min=50, price_max=10)
    bare = Catalog.from_frame(CATALOG[["item_id", "title"]])
    st = DecisionStage(bare, DecisionConfig(), PurchaseLookup({}, SEQ), ranked=False)
    with pytest.raises(CatalogError, match="no 'price' column") as err:
        run(st, DecisionRequest(filters=Filters(price_max=5)))
    assert err.value.param == "filters.price_max"  # the filter asked for, not its sibling


def attribute_stage() -> DecisionStage:
    colours = ["Blue", "navy", "red", None, "blue", "", "red", "blue", "navy", "red", "x", "x"]
    attributes = [
        json.dumps({"colour": c, "tags": ["Warm", "light"] if i % 2 else ["light"]})
        if c is not None
        else "not json"
        for i, c in enumerate(colours)
    ]
    catalog = Catalog.from_frame(CATALOG.assign(attributes=attributes))
    return DecisionStage(catalog, DecisionConfig(), PurchaseLookup({}, SEQ), ranked=False)


def test_attribute_filters_match_any_case_and_name_what_failed() -> None:
    lifted = {"in_stock": False, "exclude_purchased": False}
    blue = Filters(attributes={"Colour": ["BLUE", "navy"]}, **lifted)  # type: ignore[arg-type]
    assert blue.attributes == (("Colour", ("BLUE", "navy")),)  # a dict is kept hashable
    d = run(attribute_stage(), DecisionRequest(k=12, filters=blue))
    assert shown(d) == [0, 1, 4, 7, 8]
    assert removed(d)[2] == "attribute Colour is red, not one of ['BLUE', 'navy']"
    assert removed(d)[3].startswith("no Colour attribute")  # malformed JSON: no attributes
    assert removed(d)[5].startswith("no Colour attribute")
    # a list value matches when any of its values is asked for
    warm = Filters(attributes=(("tags", ("warm",)), ("colour", ("red",))), **lifted)  # type: ignore[arg-type]
    assert shown(run(attribute_stage(), DecisionRequest(k=12, filters=warm))) == [9]


@pytest.mark.parametrize(
    ("attributes", "needle"),
    [
        ({"color": ["blue"]}, "['colour', 'tags']"),
        ({"colour": ["green"]}, "['blue', 'red', 'navy', 'x']"),  # most common first
    ],
)
def test_unknown_attributes_list_the_valid_ones(
    attributes: dict[str, list[str]], needle: str
) -> None:
    key = next(iter(attributes))
    with pytest.raises(CatalogError) as err:
        run(attribute_stage(), DecisionRequest(filters=Filters(attributes=attributes)))  # type: ignore[arg-type]
    assert err.value.param == f"filters.attributes.{key}" and needle in str(err.value)
    with pytest.raises(CatalogError, match="no 'attributes' column"):
        run(stage(), DecisionRequest(filters=Filters(attributes=(("colour", ("red",)),))))
    with pytest.raises(CatalogError, match="at least one value"):
        Filters(attributes=(("colour", ()),))


def test_boost_bury_and_category_caps() -> None:
    config = decision_config(
        {
            "boosts": [{"match": {"categories": ["Home"]}, "weight": 10}],
            "bury": [{"brands": ["Urbanwear"]}],
            "category_caps": {"Fashion > Shoes": 1},
        }
    )
    d = run(stage(config), DecisionRequest(k=6))
    assert shown(d) == [10, 11, 1, 5, 6, 0]  # mugs up, one boot, Urbanwear (0, 2) last
    assert "category cap" in removed(d)[7]
    reasons = {e.item: e.reason for e in d.entries if e.action == "shown"}
    assert "boosts[0]" in reasons[10] and "bury[0]" in reasons[0]


def test_mmr_and_per_leaf_caps_diversify() -> None:
    greedy = shown(run(stage(), DecisionRequest(k=4)))
    assert greedy == [0, 1, 2, 4]  # all jackets
    mmr = decision_config({"diversity": {"method": "mmr", "lambda": 0.3}})
    assert len({CATALOG.category[i] for i in shown(run(stage(mmr), DecisionRequest(k=3)))}) == 3
    capped = decision_config({"diversity": {"max_per_leaf": 2}})
    assert shown(run(stage(capped), DecisionRequest(k=4))) == [0, 1, 6, 7]


def test_exploration_propensities_match_frequencies() -> None:
    settings = Exploration(epsilon=0.3, pool=4)
    greedy = np.arange(3)
    counts = np.zeros((3, 7))
    logged = np.zeros((3, 7))
    runs = 4000
    rng = np.random.default_rng(0)
    for _ in range(runs):
        out = explore(greedy, 7, settings, lambda: rng)
        for slot, (pos, p) in enumerate(zip(out.positions, out.propensity, strict=True)):
            counts[slot, pos] += 1
            logged[slot, pos] = p if slot == 0 else logged[slot, pos]
    # slot 0 is drawn before any other: its logged propensities are exact marginals
    assert logged[0, 0] == pytest.approx(0.7) and logged[0, 3] == pytest.approx(0.3 / 4)
    assert counts[0, 0] / runs == pytest.approx(0.7, abs=0.03)
    assert counts[0, 3:] / runs == pytest.approx([0.075] * 4, abs=0.015)
    assert counts[:, :3].sum() / (3 * runs) == pytest.approx(0.7, abs=0.02)


def test_exploration_in_the_stage_is_seeded_by_request() -> None:
    config = decision_config({"exploration": {"epsilon": 0.5, "pool": 5}})
    st = stage(config)
    a = run(st, DecisionRequest(k=4, request_id="r1"))
    assert shown(a) == shown(run(st, DecisionRequest(k=4, request_id="r1")))
    drawn = [e for e in a.entries if e.action == "shown" and e.reason.startswith("exploration")]
    assert all(e.propensity < 0.5 for e in drawn)
    off = run(st, DecisionRequest(k=4, request_id="r1", explore=False))
    assert shown(off) == [0, 1, 2, 4] and set(off.propensity) == {1.0}


def test_config_file_is_checked(tmp_path: Path) -> None:
    good = tmp_path / "rules.yaml"
    good.write_text("exploration: {epsilon: 0.1}\ncategory_caps: {Fashion: 3}\n")
    config = load_decision_config(good)
    assert config.exploration.epsilon == 0.1 and config.category_caps == (("Fashion", 3),)
    bad = tmp_path / "bad.yaml"
    bad.write_text("explore: {epsilon: 0.1}\n")
    with pytest.raises(DecisionConfigError, match=r"unknown key\(s\) \['explore'\]; valid"):
        load_decision_config(bad)
    with pytest.raises(DecisionConfigError, match="epsilon must be in"):
        decision_config({"exploration": {"epsilon": 2}})
    with pytest.raises(CatalogError, match="unknown brand 'Nobody'"):
        stage(decision_config({"bury": [{"brands": ["Nobody"]}]}))  # refused at build


def test_decision_log_writes_shown_and_outranking_removed(tmp_path: Path) -> None:
    d = run(stage(), DecisionRequest(k=3, request_id="abc"), user="u0")
    log = DecisionLog(tmp_path / "d.jsonl")
    ids = CATALOG.item_id.to_numpy(dtype=object)
    log.append(decision_record(d, ids, request_id="abc", user_id="u0", endpoint="t",
                               model_version="v"))  # fmt: skip
    log.close()
    (record,) = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert [s["item_id"] for s in record["shown"]] == ["i0", "i1", "i2"]
    assert [s["propensity"] for s in record["shown"]] == [1.0, 1.0, 1.0]
    # item 3 (out of stock) and 4 (bought) outranked nothing shown: not "would have been shown"
    assert record["removed"] == [] and record["request_id"] == "abc"


def test_removed_entries_are_made_on_use_best_first_and_cut_at_a_score() -> None:
    capped = (DecisionEntry(7, "removed", "category cap", 0.5),)
    removed = Removed(np.array([3, 4, 5]), np.array([0.2, 0.9, 0.5]),
                      np.array(["out of stock", "purchased", "filter"], dtype=object),
                      capped)  # fmt: skip
    every = removed.entries()
    assert [(e.item, e.reason) for e in every] == [
        (4, "purchased"), (5, "filter"), (7, "category cap"), (3, "out of stock")
    ]  # equal scores: the filters' removal before the cap's
    assert all(e.action == "removed" and type(e.score) is float for e in every)
    for floor in (-np.inf, 0.2, 0.5, 0.51, 1.0):
        assert removed.entries(at_least=floor) == [e for e in every if e.score >= floor]
    d = run(stage(), DecisionRequest(k=3, request_id="abc"), user="u0")
    assert d.entries == [*d.shown, *d.removed.entries()] and d.entries[0].action == "shown"


def test_a_deferred_record_is_the_same_line_and_a_failing_one_is_lost_alone(
    tmp_path: Path,
) -> None:
    d = run(stage(), DecisionRequest(k=3, request_id="abc"), user="u0")
    ids = CATALOG.item_id.to_numpy(dtype=object)
    fields = {"request_id": "abc", "user_id": "u0", "endpoint": "t", "model_version": "v"}
    log = DecisionLog(tmp_path / "d.jsonl")
    before = time.time()
    deferred = deferred_record(d, ids, **fields)
    log.append(lambda: {"n": 1 / 0})  # raises in the writer
    log.append(deferred)
    log.close()
    lines = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert log.failed == 1 and len(lines) == 1
    (record,) = lines
    assert before - 0.001 <= record["ts"] <= time.time()  # when it was queued
    assert record == decision_record(d, ids, ts=record["ts"], **fields)


def test_decision_log_rotates_by_size_and_loses_no_record(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    first = DecisionLog(path, interval=0.01, max_bytes=2_000, backups=3)
    second = DecisionLog(path, interval=0.01, max_bytes=2_000, backups=3)  # another worker
    for n in range(60):
        (first if n % 2 else second).append({"n": n, "pad": "x" * 100})
        if n % 10 == 9:  # let the writers drain, so the file grows in steps
            time.sleep(0.1)
    first.close()
    second.close()
    files = sorted(tmp_path.glob("d.jsonl*"))
    assert len(files) <= 4 and (first.rotations + second.rotations) >= 1
    kept = [json.loads(line)["n"] for f in files for line in f.read_text().splitlines()]
    assert len(kept) == len(set(kept))  # nothing written twice
    total = sum(f.stat().st_size for f in files)
    # at most `backups` old files are kept: what fell off the end is the oldest only
    assert total <= 2_000 * 5 and max(kept) == 59
    with pytest.raises(ValueError, match="backups=0"):
        DecisionLog(tmp_path / "x.jsonl", backups=0)
