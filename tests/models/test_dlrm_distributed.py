"""DLRM on DistributedModelParallel: two torchrun workers (gloo) shard the tables with the
planner and reach the single-process quality on the same data. ``DLRMConfig.workers`` picks it
inside the ranker's own fit, as the bundle's training does."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from models.dlrm import DLRMRanker
from models.onnx_runtime import OnnxSession
from recsys.ranking.frame import group_ndcg
from tests.models.test_dlrm import FAST, make_frame

pytest.importorskip(
    "torchrec", reason="TorchRec is optional; `python -m recsys.bootstrap` installs it"
)


@pytest.mark.timeout(1200)
def test_two_sharded_workers_match_the_single_process_quality(tmp_path: Path) -> None:
    train, valid, test = make_frame(0, 400), make_frame(1, 100), make_frame(2, 150)
    single = DLRMRanker(FAST).fit(train, valid)
    sharded = DLRMRanker(dataclasses.replace(FAST, workers=2)).fit(train, valid)
    plan = sharded.plan_
    assert plan is not None
    # the planner sharded the tables over both workers (not data-parallel copies)
    owners = set(re.findall(r"rank:(\d)/", plan))
    assert (owners == {"0", "1"} and "table_wise" in plan) or "row_wise" in plan, plan
    single_ndcg = group_ndcg(single.predict(test), test, 10)
    sharded_ndcg = group_ndcg(sharded.predict(test), test, 10)
    rng = np.random.default_rng(0)
    random_ndcg = np.mean([group_ndcg(rng.random(test.n_rows), test, 10) for _ in range(5)])
    assert sharded_ndcg > random_ndcg + 0.3, (sharded_ndcg, random_ndcg)
    assert abs(sharded_ndcg - single_ndcg) < 0.05, (sharded_ndcg, single_ndcg)
    # the gathered model is a plain ranker: it exports and serves like a single-process one
    session = OnnxSession(sharded.export_onnx(tmp_path / "dlrm.onnx"))
    onnx_scores = session.run(sharded.onnx_feeds(test))
    np.testing.assert_allclose(onnx_scores, sharded.predict(test), atol=1e-4)
