"""The agents' engine port over the served bundle: the same services as the HTTP routes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from agents.port import CatalogPort, EnginePort
from agents.tools import ToolContext
from recsys.artifacts import Bundle
from recsys.decision import Filters
from recsys.decision.log import DecisionLog
from serving.engine_port import ServedEngine
from serving.lists.service import ListDeps
from serving.metrics import ServingMetrics
from serving.state import Served


def _engine(bundle: Bundle, tmp_path: Path) -> tuple[ServedEngine, ServingMetrics, DecisionLog]:
    metrics, log = ServingMetrics(), DecisionLog(tmp_path / "decisions.jsonl")
    return ServedEngine(Served.build(bundle), ListDeps(metrics, log), "chat"), metrics, log


def test_the_served_engine_is_the_agents_port(bundle: Bundle, tmp_path: Path) -> None:
    engine, _, log = _engine(bundle, tmp_path)
    assert isinstance(engine, EnginePort) and isinstance(engine.served, CatalogPort)
    assert engine.version == bundle.version and len(engine.catalog) == len(bundle.item_ids)
    title = str(bundle.items.title[0]).lower().split()[0]
    assert engine.in_vocabulary(title) and not engine.in_vocabulary("zzqxv-not-a-word")
    log.close()


def test_searches_through_the_port_are_counted_logged_and_filtered(
    bundle: Bundle, tmp_path: Path
) -> None:
    engine, metrics, log = _engine(bundle, tmp_path)
    prices = np.asarray(bundle.items.price, dtype=float)
    cap = float(np.nanmedian(prices))
    stock = np.asarray(bundle.items.in_stock, dtype=bool)
    cheap = int(np.flatnonzero(stock & (prices <= cap))[0])
    query = str(bundle.items.title[cheap])  # that item at least matches, in stock, under cap
    found = engine.search(query, Filters(price_max=cap), 5, None)
    assert 0 < len(found) <= 5 and all(prices[i] <= cap for i in found)
    user = str(bundle.user_ids[0])
    recommended = engine.recommend(user, 4, Filters())
    cold = engine.recommend(None, 4, Filters())
    assert len(recommended) == 4 and len(cold) == 4
    assert all(0 <= i < len(bundle.item_ids) for i in [*recommended, *cold])
    log.close()
    records = [json.loads(line) for line in (tmp_path / "decisions.jsonl").read_text().splitlines()]
    assert [r["endpoint"] for r in records] == ["chat_search", "chat_recommend", "chat_recommend"]
    scrape = metrics.render().decode()
    assert 'endpoint="chat_search"' in scrape and 'endpoint="chat_recommend"' in scrape
    assert 'reason="cold_start"' in scrape  # the anonymous shopper took the cold-start path


def test_tools_act_for_the_sessions_shopper(bundle: Bundle, tmp_path: Path) -> None:
    engine, _, log = _engine(bundle, tmp_path)
    user = str(bundle.user_ids[0])
    ctx = ToolContext.over(engine, user)
    assert ctx.recommend(3) == engine.recommend(user, 3, Filters())
    log.close()
