"""Per-stage server time from the workers' own ``/metrics``, for the load benchmark.

Each uvicorn worker keeps its own metrics, and a keep-alive connection stays with the worker
that accepted it, so the benchmark holds one connection per worker and scrapes every one of
them before and after a rate; the difference of the stage histograms' sums and counts is the
mean time each pipeline stage (and candidate source) took per request at that rate. The
scrape connections are opened outside the timed window.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from benchmarks.loadgen import Connection, encode_get

# histogram -> the label that names its part of a request
STAGE_HISTOGRAMS = {
    "recsys_stage_latency_seconds": "stage",
    "recsys_source_latency_seconds": "source",
    "recsys_request_latency_seconds": "method",  # the whole request inside the app
    "recsys_batch_size": "",  # requests per pipeline batch (serving.batching), no label
}
CACHE_GAUGE = "recsys_request_cache"  # the recommend pipeline's caches, per worker
CACHES = ("candidates", "ranked")
Totals = dict[tuple[str, str, str], tuple[float, float]]  # (histogram, endpoint, part) -> sums


def parse(text: str) -> Totals:
    """(sum seconds, count) per histogram, endpoint and stage/source in one scrape."""
    out: dict[tuple[str, str, str], list[float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name == CACHE_GAUGE:  # hits and misses, as a (value, 0) pair per stat
            for sample in family.samples:
                cache, stat = sample.labels.get("cache", ""), sample.labels.get("stat", "")
                if stat in ("hits", "misses"):
                    out.setdefault((CACHE_GAUGE, cache, stat), [0.0, 0.0])[0] += sample.value
            continue
        part_label = STAGE_HISTOGRAMS.get(family.name)
        if part_label is None:
            continue
        for sample in family.samples:
            if sample.name.endswith("_sum"):
                slot = 0
            elif sample.name.endswith("_count"):
                slot = 1
            else:
                continue
            part = sample.labels[part_label] if part_label else ""
            key = (family.name, sample.labels.get("endpoint", ""), part)
            out.setdefault(key, [0.0, 0.0])[slot] += float(sample.value)
    return {k: (v[0], v[1]) for k, v in out.items()}


async def scrape(conns: Sequence[Connection], host: str, port: int) -> Totals:
    """Every worker's stage histograms, added up; closes ``conns`` (fresh ones each time: the
    server drops a connection idle past its keep-alive timeout, shorter than a rate's run)."""
    total: dict[tuple[str, str, str], list[float]] = {}
    payload = encode_get(host, port, "/metrics")
    try:
        for conn in conns:
            status, body, _ = await conn.request(payload)
            if status != 200:
                raise RuntimeError(f"/metrics answered {status}: {body[:200]!r}")
            for key, (s, c) in parse(body.decode()).items():
                slot = total.setdefault(key, [0.0, 0.0])
                slot[0] += s
                slot[1] += c
    finally:
        for conn in conns:
            conn.close()
    return {k: (v[0], v[1]) for k, v in total.items()}


def breakdown(before: Totals, after: Totals, endpoint: Collection[str]) -> dict[str, Any]:
    """Mean milliseconds per request of each stage, source and the whole app for the endpoint
    (its labels: stages carry its name, requests its path) between two scrapes:
    {"stages_ms": {...}, "sources_ms": {...}, "app_ms": x, "mean_batch": n,
    "candidates_cache_hit_rate": r, "ranked_cache_hit_rate": r}; ``mean_batch`` is over every
    batched list endpoint (the batch metric has no endpoint label). Sources run only on the
    candidate cache's misses, so ``sources_ms`` is per miss; the hit rates are the recommend
    pipeline's, None where the server reports no such cache."""
    out: dict[str, Any] = {"stages_ms": {}, "sources_ms": {}}
    for cache in CACHES:
        hits, misses = (
            after.get((CACHE_GAUGE, cache, stat), (0.0, 0.0))[0]
            - before.get((CACHE_GAUGE, cache, stat), (0.0, 0.0))[0]
            for stat in ("hits", "misses")
        )
        rate = round(hits / (hits + misses), 3) if hits + misses > 0 else None
        out[f"{cache}_cache_hit_rate"] = rate
    for key, (s1, c1) in after.items():
        if key[0] == CACHE_GAUGE:
            continue
        name, label, part = key
        s0, c0 = before.get(key, (0.0, 0.0))
        if c1 <= c0:
            continue
        mean_ms = round(1000.0 * (s1 - s0) / (c1 - c0), 3)
        if name == "recsys_batch_size":
            out["mean_batch"] = round((s1 - s0) / (c1 - c0), 2)
        elif name == "recsys_source_latency_seconds":
            out["sources_ms"][part] = mean_ms  # sources carry no endpoint label
        elif label not in endpoint:
            continue
        elif name == "recsys_stage_latency_seconds":
            out["stages_ms"][part] = mean_ms
        else:
            out["app_ms"] = mean_ms
    return out
