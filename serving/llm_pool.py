"""LLM and chat work on their own bounded thread pool, never on the server's shared one.

Health, readiness, metrics and events run in the shared pool (or inline); when 50 chats held
that pool, they waited 13-14 s. Here a slow model can only fill its own workers. A call that
waited in this pool past its deadline is answered as a timeout at once, without reaching the
model.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from agents.llm import LLMTimeout

T = TypeVar("T")
GRACE_S = 0.25  # past the deadline, what a step may take to notice it and return
_DONE = object()


class LLMPool:
    def __init__(self, workers: int = 4) -> None:
        self.workers = workers
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="llm")

    async def run(self, fn: Callable[[], T], timeout_s: float | None = None) -> T:
        """``fn()`` on a pool worker; :class:`LLMTimeout` once ``timeout_s`` (+ grace) passed,
        whether it was still queued or running (a running call is left to finish alone)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s

        def task() -> T:
            if deadline is not None and time.monotonic() > deadline:
                raise LLMTimeout(f"the deadline ({timeout_s} s) passed while the call was queued")
            return fn()

        future = self._pool.submit(task)
        waiting = asyncio.wrap_future(future)
        if deadline is None:
            return await waiting
        try:
            left = max(deadline - time.monotonic(), 0.0) + GRACE_S
            return await asyncio.wait_for(asyncio.shield(waiting), left)
        except TimeoutError:
            future.cancel()  # still queued: it never runs
            raise LLMTimeout(f"no answer within {timeout_s} s") from None

    async def iterate(self, items: Iterator[T]) -> AsyncIterator[T]:
        """A blocking iterator (a chat turn's events), each step on a pool worker."""
        while True:
            item = await self.run(lambda: next(items, _DONE))
            if item is _DONE:
                return
            yield item  # type: ignore[misc]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
