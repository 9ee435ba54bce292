"""Micro-batching: requests run together get the answers they get alone, on the real bundle and
through the API; the batcher's own logic (grouping, sizes, a failing request) on a fake pipeline.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

import httpx
import numpy as np
import pytest

from recsys.artifacts import Bundle
from recsys.decision import DecisionRequest
from recsys.pipeline import Pipeline, Result
from serving.app import create_app
from serving.batching import PipelineBatcher
from serving.settings import ServingSettings
from serving.state import Served


def _same(alone: Result, together: Result) -> None:
    a, b = alone.state, together.state
    for name in ("ids", "fused", "source_scores", "source_ranks"):
        np.testing.assert_array_equal(
            getattr(a["candidates"], name), getattr(b["candidates"], name)
        )
    np.testing.assert_array_equal(a["ranked"].ids, b["ranked"].ids)
    np.testing.assert_array_equal(a["ranked"].scores, b["ranked"].scores)
    np.testing.assert_array_equal(a["ranked"].order, b["ranked"].order)
    assert repr(a["decision"]) == repr(b["decision"])
    assert a["cold_start"] == b["cold_start"]


@pytest.mark.parametrize("size", [2, 7, 16])
def test_a_batch_answers_each_request_as_it_is_answered_alone(bundle: Bundle, size: int) -> None:
    served = Served.build(bundle)
    users = [str(u) for u in bundle.user_ids[:60]] + ["never-seen-1", "never-seen-2"]
    users = [users[i] for i in np.random.default_rng(size).permutation(len(users))]
    inputs = [
        {"user_id": u, "request": DecisionRequest(k=10, explore=True, request_id=f"r{i}")}
        for i, u in enumerate(users)
    ]
    alone = [served.recommend.run(one) for one in inputs]
    together: list[Result] = []
    for start in range(0, len(inputs), size):
        together += served.recommend.run_batch(inputs[start : start + size])
    assert len(together) == len(alone)
    for a, b in zip(alone, together, strict=True):
        _same(a, b)
    assert any(r.state["cold_start"] for r in together)  # cold users batched with known ones
    stages = [name for name, _ in together[0].trace]
    assert stages == [name for name, _ in alone[0].trace]


# ---------------------------------------------------------------- the batcher, on a fake


class Doubler:
    """A batch stage that doubles ``x``; ``x == 13`` raises. Records each call's size."""

    name = "double"
    reads = ("x",)
    writes = ("y",)

    def __init__(self) -> None:
        self.calls: list[int] = []

    def run(self, state: Mapping[str, Any]) -> dict[str, Any]:
        return self.run_batch([state])[0]

    def run_batch(self, states: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        self.calls.append(len(states))
        if any(s["x"] == 13 for s in states):
            raise ValueError("x == 13 is unlucky")
        return [{"y": 2 * s["x"]} for s in states]


async def _many(batcher: PipelineBatcher, pipeline: Pipeline, xs: list[int]) -> list[Any]:
    lock = threading.Lock()
    calls = [batcher.run(pipeline, lock, {"x": x}) for x in xs]
    return await asyncio.gather(*calls, return_exceptions=True)


def test_requests_in_hand_together_run_as_batches_of_at_most_max_batch() -> None:
    stage = Doubler()
    sizes: list[int] = []
    batcher = PipelineBatcher(max_batch=4, observe=sizes.append)
    got = asyncio.run(_many(batcher, Pipeline([stage], inputs=["x"]), list(range(10))))
    assert [r.state["y"] for r, _ in got] == [2 * x for x in range(10)]
    assert sizes == [4, 4, 2]
    assert stage.calls == [4, 4, 2]
    assert all(degraded == [] for _, degraded in got)


def test_a_lone_request_runs_at_once_alone_and_max_batch_1_never_batches() -> None:
    stage = Doubler()
    sizes: list[int] = []
    pipeline = Pipeline([stage], inputs=["x"])
    got = asyncio.run(_many(PipelineBatcher(max_batch=8, observe=sizes.append), pipeline, [5]))
    assert got[0][0].state["y"] == 10 and sizes == [1]
    stage.calls.clear()
    asyncio.run(_many(PipelineBatcher(max_batch=1), pipeline, [1, 2, 3]))
    assert stage.calls == [1, 1, 1]


def test_fewer_than_min_batch_in_hand_run_one_at_a_time_each_answered_before_the_next() -> None:
    events: list[str] = []

    class Logged(Doubler):
        def run_batch(self, states: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
            events.append(f"run {[s['x'] for s in states]}")
            return super().run_batch(states)

    pipeline, lock = Pipeline([Logged()], inputs=["x"]), threading.Lock()
    batcher = PipelineBatcher(max_batch=8, min_batch=3)

    async def one(x: int) -> Any:
        got = await batcher.run(pipeline, lock, {"x": x})
        events.append(f"answered {x}")
        return got

    async def together(xs: list[int]) -> list[Any]:
        return await asyncio.gather(*(one(x) for x in xs))

    got = asyncio.run(together([1, 2]))
    assert [r.state["y"] for r, _ in got] == [2, 4]
    assert events == ["run [1]", "answered 1", "run [2]", "answered 2"]
    events.clear()
    asyncio.run(together([1, 2, 3]))  # a backlog of min_batch: one batch
    assert events == ["run [1, 2, 3]", "answered 1", "answered 2", "answered 3"]
    with pytest.raises(ValueError, match="min_batch must be at least 1, got 0"):
        PipelineBatcher(min_batch=0)


def test_a_failing_request_fails_alone_and_its_batch_mates_are_answered() -> None:
    stage = Doubler()
    got = asyncio.run(_many(PipelineBatcher(max_batch=8, min_batch=1),
                            Pipeline([stage], inputs=["x"]), [1, 13, 3]))  # fmt: skip
    assert got[0][0].state["y"] == 2 and got[2][0].state["y"] == 6
    assert isinstance(got[1], ValueError) and "13" in str(got[1])
    assert stage.calls[0] == 3  # tried together first, then each alone
    with pytest.raises(ValueError, match="max_batch must be at least 1, got 0"):
        PipelineBatcher(max_batch=0)


def test_different_pipelines_are_never_mixed_in_one_batch() -> None:
    first, second = Doubler(), Doubler()
    one, two = Pipeline([first], inputs=["x"]), Pipeline([second], inputs=["x"])
    batcher = PipelineBatcher(max_batch=8)
    lock = threading.Lock()

    async def both() -> list[Any]:
        calls = [batcher.run(one if i % 2 else two, lock, {"x": i}) for i in range(6)]
        return await asyncio.gather(*calls)

    got = asyncio.run(both())
    assert [r.state["y"] for r, _ in got] == [0, 2, 4, 6, 8, 10]
    assert first.calls == [3] and second.calls == [3]


def test_requests_on_another_event_loop_are_run_by_that_loop() -> None:
    """A TestClient used without ``with`` runs each request on a loop (and thread) of its own:
    a batch must never take another loop's request, whose waiter that loop would not wake."""
    threads: dict[int, int] = {}

    class Recorder(Doubler):
        def run_batch(self, states: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
            threads.update({s["x"]: threading.get_ident() for s in states})
            return super().run_batch(states)

    batcher = PipelineBatcher(max_batch=8)
    pipeline, lock = Pipeline([Recorder()], inputs=["x"]), threading.Lock()
    queued, other = threading.Event(), {}

    def on_other_loop() -> None:
        async def one() -> Any:
            task = asyncio.ensure_future(batcher.run(pipeline, lock, {"x": 2}))
            await asyncio.sleep(0)  # queued while the first loop's run is still pending
            queued.set()
            return await asyncio.wait_for(task, timeout=60)  # a hang guard, not a timing

        other["got"], other["thread"] = asyncio.run(one()), threading.get_ident()

    async def first() -> Any:
        task = asyncio.ensure_future(batcher.run(pipeline, lock, {"x": 1}))
        await asyncio.sleep(0)  # queued, its run scheduled on this loop's next pass
        thread = threading.Thread(target=on_other_loop)
        thread.start()
        queued.wait(timeout=60)  # block this loop until the other request is queued too
        got = await task
        thread.join(timeout=60)
        return got

    got = asyncio.run(first())
    assert got[0].state["y"] == 2 and other["got"][0].state["y"] == 4
    assert threads[1] == threading.get_ident() and threads[2] == other["thread"]


# ---------------------------------------------------------------- through the API


def test_concurrent_api_requests_are_batched_and_answered_as_alone(
    bundle: Bundle, settings: ServingSettings
) -> None:
    app = create_app(settings, bundle)
    users = [str(u) for u in bundle.user_ids[:24]] + ["never-seen"]
    bodies = [{"user_id": u, "k": 5, "request_id": f"q{i}", "explain": True}
              for i, u in enumerate(users)]  # fmt: skip

    async def main() -> tuple[list[dict], list[dict], list[int]]:
        sizes: list[int] = []
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app):
            batcher = app.state.list_deps.batcher
            seen = batcher.observe
            batcher.observe = lambda n: (sizes.append(n), seen and seen(n))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                alone = [(await client.post("/v1/recommend", json=b)).json() for b in bodies]
                sizes.clear()
                together = await asyncio.gather(
                    *(client.post("/v1/recommend", json=b) for b in bodies)
                )
                metrics = (await client.get("/metrics")).text
        assert "recsys_batch_size_bucket" in metrics
        return alone, [r.json() for r in together], sizes

    alone, together, sizes = asyncio.run(main())
    assert max(sizes) > 1, sizes  # they were in hand together, so they ran together
    assert sum(sizes) == len(bodies)
    for a, b in zip(alone, together, strict=True):
        assert [(i["item_id"], i["score"]) for i in a["items"]] == [
            (i["item_id"], i["score"]) for i in b["items"]
        ]
        assert a["cold_start"] == b["cold_start"] and a["degraded"] == b["degraded"]
