"""Micro-batching: list requests that a worker has in hand at the same moment share one run.

A worker runs pipelines inline on its event loop, one at a time. Under load, requests arrive
while one runs and wait in the socket buffers; when it ends, the loop reads them together. The
batcher lets those requests reach the pipeline as one batch (:meth:`recsys.pipeline.Pipeline
.run_batch`): one ranker call, one store read of the users' features, one frame, one merge call,
instead of one each. Each request still gets the answer it would get alone (the batch stages
are row-independent, and tests check it against :meth:`Pipeline.run`).

Nothing waits on a timer. The first request schedules the run on the loop's next pass; while
new requests keep joining (and the batch has room) the run moves one pass later, up to
``max_hops`` passes, which cost microseconds. A lone request therefore runs at once, and a
batch forms only where requests were already queued: latency at low load is unchanged.

A batch answers all its requests when the last is done, and below saturation it saves little
(the 100k x 20k shop: about 3.0 ms for two requests against 1.5 for one, cache hits included),
so a short queue is better served one request at a time, each answered before the next starts.
With fewer than ``min_batch`` requests in hand the oldest runs alone and the rest wait for the
next pass; from ``min_batch`` on (a backlog: the worker is falling behind) they run as one
batch. Measured on two workers with `benchmarks/load.py` (random dispatch over 64 connections):
at 200 requests/s, batching every queue gave p99 9.1-11.5 ms against 7.8-8.5 with no batching
(four rounds each, alternating); at 900 offered with the request caches off, no batching
answered 858 requests/s with p99 482 ms, batching every queue 899 with p99 35 ms, and
``min_batch`` 4 899 with p99 29 ms.

A batch that raises is retried request by request, so one bad request fails alone.

Requests are only batched with others of the same event loop: a future belongs to its loop, and
one set from another loop's thread never wakes its waiter. A server has one loop per worker;
Starlette's TestClient, used without ``with``, runs each request on a loop of its own.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from features.guarded import feature_reads
from recsys.pipeline import Pipeline, Result

Done = tuple[Result, list[str]]  # the result and what degraded (e.g. features_unavailable)


@dataclass
class _Pending:
    pipeline: Pipeline
    lock: AbstractContextManager[Any]
    inputs: dict[str, Any]
    future: asyncio.Future[Done]

    def alone(self) -> Done:
        return run_alone(self.pipeline, self.lock, self.inputs)


@dataclass
class _Queue:
    """The runs waiting on one event loop."""

    pending: list[_Pending] = field(default_factory=list)
    scheduled: bool = False


@dataclass
class PipelineBatcher:
    """Collects concurrent pipeline runs of each event loop into batches (see the module doc).

    ``max_batch`` 1 runs every request alone, inline; fewer than ``min_batch`` requests in hand
    run one at a time. ``observe`` hears each batch's size.
    """

    max_batch: int = 16
    max_hops: int = 4
    min_batch: int = 4
    observe: Callable[[int], None] | None = None
    _queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {self.max_batch}")
        if self.max_hops < 0:
            raise ValueError(f"max_hops must be 0 or more, got {self.max_hops}")
        if self.min_batch < 1:
            raise ValueError(f"min_batch must be at least 1, got {self.min_batch}")

    async def run(
        self, pipeline: Pipeline, lock: AbstractContextManager[Any], inputs: dict[str, Any]
    ) -> Done:
        """``pipeline.run(inputs)`` under ``lock``, batched with whatever else is in hand."""
        if self.max_batch == 1:
            return run_alone(pipeline, lock, inputs)
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _Queue()
        future: asyncio.Future[Done] = loop.create_future()
        queue.pending.append(_Pending(pipeline, lock, inputs, future))
        if not queue.scheduled:
            queue.scheduled = True
            loop.call_soon(self._flush, queue, 0, len(queue.pending))
        return await future

    def _flush(self, queue: _Queue, hops: int, seen: int) -> None:
        waiting = len(queue.pending)
        if waiting > seen and waiting < self.max_batch and hops < self.max_hops:
            # more joined since the last pass: give the rest in hand one more pass
            asyncio.get_running_loop().call_soon(self._flush, queue, hops + 1, waiting)
            return
        # a cancelled request (client gone) is dropped
        pending = [entry for entry in queue.pending if not entry.future.done()]
        if 1 < len(pending) < self.min_batch:
            # the oldest alone; the rest run on a later pass, after its answer is written (its
            # task's wake-up is already queued on the loop, ahead of that pass)
            queue.pending = pending[1:]
            self._run(pending[:1])
            asyncio.get_running_loop().call_soon(self._flush, queue, 0, len(queue.pending))
            return
        queue.pending, queue.scheduled = [], False
        groups: dict[int, list[_Pending]] = {}
        for entry in pending:
            groups.setdefault(id(entry.pipeline), []).append(entry)
        for group in groups.values():
            for start in range(0, len(group), self.max_batch):
                self._run(group[start : start + self.max_batch])

    def _run(self, batch: list[_Pending]) -> None:
        if self.observe is not None:
            self.observe(len(batch))
        first = batch[0]
        if len(batch) == 1:
            _settle(first.future, first.alone)
            return
        try:
            with first.lock, feature_reads() as degraded:
                results = first.pipeline.run_batch([entry.inputs for entry in batch])
        except Exception:
            for entry in batch:  # each alone: the failing request gets its own error
                _settle(entry.future, entry.alone)
            return
        shared = sorted(degraded)  # a store failure during the batch degraded all of it
        for entry, result in zip(batch, results, strict=True):
            if not entry.future.done():
                entry.future.set_result((result, list(shared)))


def run_alone(
    pipeline: Pipeline, lock: AbstractContextManager[Any], inputs: dict[str, Any]
) -> Done:
    """``pipeline.run(inputs)`` under ``lock``; a failing feature store degrades the answer
    (the reasons come back sorted) rather than failing it."""
    with lock, feature_reads() as degraded:
        result = pipeline.run(inputs)
    return result, sorted(degraded)


def _settle(future: asyncio.Future[Done], work: Callable[[], Done]) -> None:
    try:
        done = work()
    except Exception as exc:  # handed to the request, whose handler maps it to its answer
        if not future.done():
            future.set_exception(exc)
        return
    if not future.done():
        future.set_result(done)
