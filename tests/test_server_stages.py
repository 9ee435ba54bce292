"""benchmarks/server_stages.py reads the per-stage times and the candidate cache's hit rate from
what a worker's /metrics really renders."""

from __future__ import annotations

from benchmarks.server_stages import breakdown, parse
from recsys.retrieval.cache import CacheStats
from serving.metrics import ServingMetrics


def test_stage_means_and_cache_hit_rate_between_two_scrapes() -> None:
    metrics = ServingMetrics()
    metrics.observe_pipeline("recommend", [("retrieval", 2.0)], {"als": 1.0}, 500)
    metrics.caches({"candidates": CacheStats(hits=10, misses=30, entries=30, size=64),
                    "ranked": CacheStats(hits=5, misses=35, entries=35, size=64)})  # fmt: skip
    before = parse(metrics.render().decode())
    metrics.observe_pipeline("recommend", [("retrieval", 4.0), ("ranking", 3.0)], {"als": 3.0})
    metrics.observe_pipeline("recommend", [("retrieval", 0.1), ("ranking", 1.0)], {})
    metrics.caches({"candidates": CacheStats(hits=13, misses=31, entries=31, size=64),
                    "ranked": CacheStats(hits=6, misses=38, entries=38, size=64)})  # fmt: skip
    got = breakdown(before, parse(metrics.render().decode()), ("recommend",))
    assert got["stages_ms"] == {"retrieval": 2.05, "ranking": 2.0}
    assert got["sources_ms"] == {"als": 3.0}  # sources ran on the one miss only
    assert got["candidates_cache_hit_rate"] == 0.75  # 3 hits, 1 miss
    assert got["ranked_cache_hit_rate"] == 0.25  # 1 hit, 3 misses


def test_no_cache_reports_no_hit_rate() -> None:
    metrics = ServingMetrics()
    metrics.caches({})
    text = metrics.render().decode()
    assert "recsys_request_cache{" not in text
    got = breakdown(parse(text), parse(text), ("recommend",))
    assert got["candidates_cache_hit_rate"] is None and got["ranked_cache_hit_rate"] is None
