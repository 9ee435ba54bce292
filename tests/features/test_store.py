"""Feast for real: apply, materialize, read back, cache vs get_online_features, invalidation."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from features import (
    ITEM_FEATURES,
    RANKER_VERSION,
    USER_FEATURES,
    FeatureRepo,
    FeatureStoreConfig,
    FeatureTables,
    build_feature_tables,
    feast_reference,
)
from recsys.data.sequences import EncodedDataset, encode
from recsys.data.split import leave_one_out
from recsys.data.synth import generate


@pytest.fixture(scope="module")
def shop() -> tuple[EncodedDataset, FeatureTables]:
    ds = generate(users=200, items=150, seed=1)
    enc = encode(ds)
    return enc, build_feature_tables(ds, enc, leave_one_out(enc).train)


def _values(frame: pd.DataFrame, feats: tuple[str, ...]) -> np.ndarray:
    return frame[list(feats)].to_numpy(np.float32)


def _check_readback(repo: FeatureRepo, enc: EncodedDataset, tables: FeatureTables) -> None:
    online = repo.online()
    online.align(enc.item_ids)
    items = online.items_at(np.arange(enc.n_items))
    np.testing.assert_array_equal(items, _values(tables.items, ITEM_FEATURES))
    users = online.users(list(enc.user_ids))
    np.testing.assert_array_equal(users, _values(tables.users, USER_FEATURES))
    # Feast's own SDK call returns the same values for the same rows
    pick = np.array([3, 0, 77, 149, 12])
    ref_user, ref_items = feast_reference(repo.store, str(enc.user_ids[5]), enc.item_ids[pick])
    np.testing.assert_array_equal(online.items_at(pick), ref_items)
    np.testing.assert_array_equal(online.users([str(enc.user_ids[5])]), ref_user)


def test_sqlite_apply_materialize_readback(
    shop: tuple[EncodedDataset, FeatureTables], tmp_path: Path
) -> None:
    enc, tables = shop
    repo = FeatureRepo(tmp_path / "features", FeatureStoreConfig())
    repo.apply()
    service = repo.store.get_feature_service(RANKER_VERSION)
    assert {p.name for p in service.feature_view_projections} == {
        "item_activity", "item_catalog", "user_activity"
    }  # fmt: skip
    repo.materialize(tables)
    _check_readback(repo, enc, tables)
    files = {p.relative_to(repo.root).as_posix() for p in repo.root.rglob("*") if p.is_file()}
    assert {"feature_store.yaml", "materialization.json", "data/registry.db",
            "data/online_store.db"} <= files  # fmt: skip

    online = repo.online()
    assert np.isnan(online.items(["no-such-item", str(enc.item_ids[0])])[0]).all()
    assert np.isnan(online.users(["no-such-user"])).all()
    with pytest.raises(RuntimeError, match="align"):
        online.items_at(np.arange(3))


def test_cache_is_invalidated_by_rematerialization(
    shop: tuple[EncodedDataset, FeatureTables], tmp_path: Path
) -> None:
    enc, tables = shop
    repo = FeatureRepo(tmp_path / "features", FeatureStoreConfig())
    repo.materialize(tables)  # applies on its own
    online = repo.online()
    online.align(enc.item_ids)
    before, user0 = online.version, str(enc.user_ids[0])
    assert online.items_at(np.array([0]))[0, 0] == tables.items["pop_all"].iloc[0]
    assert online.users([user0])[0, 0] == tables.users["n_items"].iloc[0]

    items = tables.items.assign(pop_all=tables.items["pop_all"] + 1000.0)
    users = tables.users.assign(n_items=tables.users["n_items"] + 7.0)
    # same timestamps as before: materialize still makes the new rows win
    repo.materialize(dataclasses.replace(tables, items=items, users=users))
    assert online.version != before
    assert online.items_at(np.array([0]))[0, 0] == tables.items["pop_all"].iloc[0] + 1000.0
    assert online.users([user0])[0, 0] == tables.users["n_items"].iloc[0] + 7.0
    ref_user, ref_items = feast_reference(repo.store, user0, enc.item_ids[:4])
    np.testing.assert_array_equal(online.items_at(np.arange(4)), ref_items)
    np.testing.assert_array_equal(online.users([user0]), ref_user)


def test_the_user_cache_keeps_its_size_and_size_zero_keeps_nothing(
    shop: tuple[EncodedDataset, FeatureTables], tmp_path: Path
) -> None:
    enc, tables = shop
    repo = FeatureRepo(tmp_path / "features", FeatureStoreConfig(user_cache_size=2))
    repo.materialize(tables)
    users = [str(u) for u in enc.user_ids[:4]]
    expected = _values(tables.users, USER_FEATURES)[:4]
    online = repo.online()
    np.testing.assert_array_equal(online.users(users[:2]), expected[:2])
    # a hit and three misses: the hit is answered although the misses evict it
    np.testing.assert_array_equal(online.users([users[0], *users[1:4]]), expected)
    assert len(online._users) == 2
    bare = FeatureRepo(repo.root, FeatureStoreConfig(user_cache_size=0)).online()
    np.testing.assert_array_equal(bare.users(users[:1]), expected[:1])
    assert len(bare._users) == 0  # the next request reads the store, as an outage must show


def test_config_names_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"'cassandra'.*\['sqlite', 'redis'\]"):
        FeatureStoreConfig(online_store="cassandra")  # type: ignore[arg-type]
    monkeypatch.setenv("RECSYS_FEATURES_ONLINE_STORE", "redis")
    monkeypatch.setenv("RECSYS_FEATURES_REDIS_URL", "127.0.0.1:7000")
    config = FeatureStoreConfig.from_env()
    assert config == FeatureStoreConfig(online_store="redis", redis_url="127.0.0.1:7000")
    # short timeouts and no redis-py retries: a dead store costs a request milliseconds
    assert config.repo_yaml()["online_store"] == {
        "type": "redis",
        "connection_string": "127.0.0.1:7000,socket_timeout=0.25,socket_connect_timeout=0.25,"
        "retry=null",
    }
    own = FeatureStoreConfig(online_store="redis", redis_url="h:1,socket_timeout=2")
    assert own.repo_yaml()["online_store"]["connection_string"] == (
        "h:1,socket_timeout=2,socket_connect_timeout=0.25,retry=null"
    )
    monkeypatch.setenv("RECSYS_FEATURES_ONLINE_STORE", "mongo")
    with pytest.raises(ValueError, match="RECSYS_FEATURES_ONLINE_STORE='mongo'"):
        FeatureStoreConfig.from_env()


def test_redis_apply_materialize_readback(
    shop: tuple[EncodedDataset, FeatureTables], tmp_path: Path, redis_port: int
) -> None:
    enc, tables = shop
    config = FeatureStoreConfig(online_store="redis", redis_url=f"127.0.0.1:{redis_port}")
    repo = FeatureRepo(tmp_path / "features", config)
    repo.apply()
    repo.materialize(tables)
    assert "redis" in (repo.root / "feature_store.yaml").read_text()
    assert not (repo.root / "data" / "online_store.db").exists()
    _check_readback(repo, enc, tables)
    changed = tables.items.assign(price=tables.items["price"] * 2)
    online = repo.online()
    online.align(enc.item_ids)
    repo.materialize(dataclasses.replace(tables, items=changed))
    np.testing.assert_array_equal(
        online.items_at(np.arange(enc.n_items)), _values(changed, ITEM_FEATURES)
    )


def test_reads_within_a_millisecond_share_one_look_at_the_marker(
    shop: tuple[EncodedDataset, FeatureTables], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import features.online as online_module

    enc, tables = shop
    repo = FeatureRepo(tmp_path / "features", FeatureStoreConfig())
    repo.materialize(tables)
    online = repo.online()
    online.align(enc.item_ids)
    now = [100.0]
    online._clock = lambda: now[0]  # the cache's own clock, stepped by hand
    online.refresh()
    looks: list[object] = []
    real_stat = online_module.os.stat

    def stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        looks.append(path)
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(online_module.os, "stat", stat)
    user0 = str(enc.user_ids[0])
    for _ in range(3):  # one request: its candidates, its history's items, its user
        now[0] += 0.0002
        online.items_at(np.arange(3))
        online.users([user0])
    assert looks == []  # all within a millisecond of the look refresh() took
    now[0] += 0.002
    online.items_at(np.arange(3))
    assert looks == [online._marker]
    # a new materialization is seen by the first read a millisecond after the last look
    items = tables.items.assign(pop_all=tables.items["pop_all"] + 1000.0)
    repo.materialize(dataclasses.replace(tables, items=items))
    now[0] += 0.0005
    assert online.items_at(np.array([0]))[0, 0] == tables.items["pop_all"].iloc[0]  # shared
    now[0] += 0.001
    assert online.items_at(np.array([0]))[0, 0] == tables.items["pop_all"].iloc[0] + 1000.0
