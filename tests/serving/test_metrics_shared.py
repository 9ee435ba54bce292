"""/metrics across workers: one scrape sums what every live worker counted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from serving.metrics import ServingMetrics


def _requests_total(text: str, endpoint: str) -> float:
    for family in text_string_to_metric_families(text):
        if family.name == "recsys_requests":
            return sum(s.value for s in family.samples if s.name.endswith("_total")
                       and s.labels["endpoint"] == endpoint)  # fmt: skip
    return 0.0


def test_one_scrape_sums_every_live_worker(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    # another worker: a real process that counts 7 requests, publishes, and stays alive
    worker = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from pathlib import Path
            from serving.metrics import ServingMetrics
            m = ServingMetrics()
            m.share(Path({str(folder)!r}), interval=0.05)
            for _ in range(7):
                m.observe_request("/v1/recommend", "POST", 200, 0.01)
            m.render()
            print("ready", flush=True)
            sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    try:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        here = ServingMetrics()
        here.share(folder, interval=0.05)
        for _ in range(3):
            here.observe_request("/v1/recommend", "POST", 200, 0.02)
        here.bundle_loaded("v1")
        text = here.render().decode()
        assert _requests_total(text, "/v1/recommend") == 10  # 7 there + 3 here
        assert 'recsys_bundle_info{version="v1"} 1.0' in text
        assert "process_cpu_seconds_total" in text  # this process's collectors still there
    finally:
        worker.stdin.close()  # type: ignore[union-attr]
        worker.wait(timeout=30)
    # the worker is gone: its counts leave the sum, its file is cleaned up
    text = here.render().decode()
    assert _requests_total(text, "/v1/recommend") == 3
    assert sorted(p.name for p in folder.glob("*.json")) == [f"{os.getpid()}.json"]
    snapshot = json.loads((folder / f"{os.getpid()}.json").read_text())
    assert "recsys_requests" in snapshot
    here.close()
    assert not (folder / f"{os.getpid()}.json").exists()


def test_observing_many_at_once_counts_as_observing_each() -> None:
    from serving.metric_values import _Family

    buckets = (0.001, 0.01, 0.1, 1.0)
    pairs = [(("a",), 0.0005), (("b",), 0.01), (("a",), 0.5), (("a",), 7.0), (("b",), 0.01)]
    one_by_one = _Family("x", "doc", ["l"], "histogram", buckets)
    for labels, value in pairs:
        one_by_one.observe(labels, value)
    at_once = _Family("x", "doc", ["l"], "histogram", buckets)
    at_once.observe_many(pairs)
    assert at_once.counts == one_by_one.counts == {("a",): [1, 0, 0, 1, 1], ("b",): [0, 2, 0, 0, 0]}
    assert at_once.values == one_by_one.values == {("a",): 7.5005, ("b",): 0.02}
