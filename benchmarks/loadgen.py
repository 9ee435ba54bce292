"""The open-loop HTTP/1.1 client behind ``benchmarks/load.py``.

Requests leave on a fixed schedule (Poisson or uniform inter-arrival) whether or not earlier
ones were answered; each one's latency runs from its *scheduled* send time, so time spent
queued in the client (every connection busy) or in the server counts, and a slow server cannot
hide its queue by slowing the client down (no coordinated omission).

The client shares the machine with the server, so it is kept cheap: one asyncio loop (uvloop
when installed), a fixed pool of persistent keep-alive connections on raw asyncio streams, the
request bytes encoded once up front, and a response parser that reads only the status line,
``Content-Length`` (or chunked framing) and the body bytes.

:class:`Server` runs the API under uvicorn for the benchmark and spreads the client's
connections evenly over its worker processes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]

HEADER_END = b"\r\n\r\n"


class ProtocolError(Exception):
    """The server's answer was not a well-framed HTTP/1.1 response."""


def encode_post(host: str, port: int, path: str, body: dict[str, Any]) -> bytes:
    """One complete keep-alive POST request with a JSON body, ready to write."""
    data = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode("latin-1") + data


def encode_get(host: str, port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode("latin-1")


class Connection:
    """One persistent HTTP/1.1 connection: write a request, read one response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        return cls(reader, writer)

    async def request(self, payload: bytes) -> tuple[int, bytes, bool]:
        """Send ``payload``; return (status, body, keep_alive)."""
        self.writer.write(payload)
        head = await self.reader.readuntil(HEADER_END)
        if not head.startswith(b"HTTP/1.") or len(head) < 12:
            raise ProtocolError(head[:40])
        status = int(head[9:12])
        lower = head.lower()
        keep = b"\r\nconnection: close" not in lower
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.index(b"\r\n", at + 2)
            size = int(lower[at + 17 : end])
            body = await self.reader.readexactly(size) if size else b""
        elif b"\r\ntransfer-encoding: chunked" in lower:
            body = await self._chunked()
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:
            raise ProtocolError(f"status {status} without Content-Length")
        return status, body, keep

    async def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            line = await self.reader.readuntil(b"\r\n")
            size = int(line.split(b";", 1)[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")  # no trailers expected
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    @property
    def local_port(self) -> int:
        return int(self.writer.get_extra_info("sockname")[1])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


async def fetch(host: str, port: int, payload: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    """One request on a fresh connection (probes, readiness); raises on connection errors."""
    async with asyncio.timeout(timeout):
        conn = await Connection.open(host, port)
        try:
            status, body, _ = await conn.request(payload)
        finally:
            conn.close()
    return status, body


async def open_connections(host: str, port: int, n: int) -> list[Connection]:
    return list(await asyncio.gather(*(Connection.open(host, port) for _ in range(n))))


@dataclass
class Run:
    """What one rate's measured window collected."""

    expected: int
    latencies: list[float] = field(default_factory=list)  # seconds, 2xx answers only
    errors: Counter[str] = field(default_factory=Counter)
    done: int = 0
    last_done: float = 0.0
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    open: bool = True

    def record(self, scheduled: float, status: int | str) -> None:
        if not self.open:
            return  # a straggler from a run already reported
        now = time.perf_counter()
        if isinstance(status, int) and 200 <= status < 300:
            self.latencies.append(now - scheduled)
        else:
            self.errors[str(status)] += 1
        self.done += 1
        self.last_done = now
        if self.done >= self.expected:
            self.finished.set()


Job = tuple[float, bytes, Run]


class LoadClient:
    """A pool of ``connections`` workers, each owning one keep-alive connection (opened up
    front by :meth:`start`, reopened after an error or a server-side idle close).

    Dispatch is random: a scheduled request goes to a connection drawn at random among the idle
    ones, and waits in one FIFO backlog when none is idle (the first connection to free up takes
    it). Handing requests to idle connections in a fixed cycle instead would send runs of
    consecutive requests down the connections of one worker (they are opened worker by worker)
    while the other idles, a dispatch no balancer does."""

    def __init__(self, host: str, port: int, timeout: float, seed: int = 0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.backlog: collections.deque[Job] = collections.deque()
        self.idle: list[int] = []  # connections waiting for a request, by index
        self.inbox: list[asyncio.Queue[Job | None]] = []
        self.rng = random.Random(seed)
        self.workers: list[asyncio.Task[None]] = []

    @classmethod
    async def start(
        cls, host: str, port: int, timeout: float, conns: Sequence[Connection]
    ) -> LoadClient:
        """Start one worker per connection in ``conns`` (see :func:`open_connections`)."""
        client = cls(host, port, timeout)
        client.inbox = [asyncio.Queue() for _ in conns]
        client.workers = [asyncio.create_task(client._worker(i, c)) for i, c in enumerate(conns)]
        return client

    def submit(self, job: Job) -> None:
        """Send ``job`` down a connection drawn at random among the idle ones, else queue it."""
        if self.idle:
            pick = self.rng.randrange(len(self.idle))
            self.idle[pick], self.idle[-1] = self.idle[-1], self.idle[pick]
            self.inbox[self.idle.pop()].put_nowait(job)
        else:
            self.backlog.append(job)

    async def _next(self, index: int) -> Job | None:
        if self.backlog:
            return self.backlog.popleft()
        self.idle.append(index)
        return await self.inbox[index].get()

    async def _worker(self, index: int, conn: Connection | None) -> None:
        while True:
            job = await self._next(index)
            if job is None:
                break
            scheduled, payload, run = job
            status: int | str
            if conn is not None and conn.reader.at_eof():  # closed by the server while idle
                conn.close()
                conn = None
            try:
                async with asyncio.timeout(self.timeout):
                    if conn is None:
                        conn = await Connection.open(self.host, self.port)
                    status, _, keep = await conn.request(payload)
                if not keep:
                    conn.close()
                    conn = None
            except TimeoutError:
                status = "timeout"
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                status = "connect_error" if conn is None else type(exc).__name__
            except (ProtocolError, ValueError):
                status = "bad_response"
            if not isinstance(status, int) and conn is not None:
                conn.close()
                conn = None
            run.record(scheduled, status)
        if conn is not None:
            conn.close()

    async def close(self) -> None:
        for inbox in self.inbox:
            inbox.put_nowait(None)
        await asyncio.gather(*self.workers, return_exceptions=True)

    async def run(
        self,
        rate: float,
        duration: float,
        payloads: Sequence[bytes],
        arrival: str = "poisson",
        seed: int = 0,
    ) -> dict[str, Any]:
        """Offer ``rate`` requests/s for ``duration`` s; payloads drawn at random. Returns the
        window's figures; requests still unanswered ``timeout`` + 1 s after the last scheduled
        send count as errors ("unfinished")."""
        rng = np.random.default_rng(seed)
        n = max(1, round(rate * duration))
        if arrival == "poisson":  # a Poisson process given n arrivals: sorted uniform times
            offsets = np.sort(rng.uniform(0.0, duration, n))
        else:
            offsets = np.arange(n) / rate
        picks = rng.integers(0, len(payloads), n)
        run = Run(expected=n)
        # The client's own collector would pause its loop mid-window (a full pass over a heap
        # with pandas and numpy in it takes tens of ms) and every request in flight would be
        # charged for it: collect now, then keep the collector off until the window ends.
        gc.collect()
        gc.freeze()
        gc.disable()
        try:
            cpu0, t0 = time.process_time(), time.perf_counter() + 0.005
            sleep, put, clock = asyncio.sleep, self.submit, time.perf_counter
            for offset, pick in zip(offsets.tolist(), picks.tolist(), strict=True):
                due = t0 + offset
                delay = due - clock()
                if delay > 0:
                    await sleep(delay)
                # a late wake-up sends a burst, each request still timed from its `due`
                put((due, payloads[pick], run))
            last_due = t0 + float(offsets[-1])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    run.finished.wait(), max(0.0, last_due + self.timeout + 1 - clock())
                )
        finally:
            run.open = False
            gc.enable()
            gc.unfreeze()
        unfinished = n - run.done
        self.backlog.clear()  # never sent: drop them so the next rate starts clean
        if unfinished:
            run.errors["unfinished"] += unfinished
        cpu = time.process_time() - cpu0
        return summarize(rate, n, run, max(duration, run.last_done - t0), cpu)


def summarize(rate: float, sent: int, run: Run, elapsed: float, cpu: float) -> dict[str, Any]:
    lat = np.asarray(run.latencies) * 1000.0
    ok = len(lat)

    def pct(q: float) -> float | None:
        return round(float(np.percentile(lat, q)), 3) if ok else None

    return {
        "offered_rps": rate,
        "achieved_rps": round(ok / elapsed, 1) if elapsed > 0 else 0.0,
        "sent": sent,
        "ok": ok,
        "errors": dict(sorted(run.errors.items())),
        "error_rate": round((sent - ok) / sent, 4),
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "max_ms": round(float(lat.max()), 3) if ok else None,
        "mean_ms": round(float(lat.mean()), 3) if ok else None,
        "elapsed_s": round(elapsed, 3),
        "client_cpu_s": round(cpu, 3),
    }


APP = "serving.app:create_app"


class Server:
    """``uvicorn --factory serving.app:create_app`` (or another ``factory``) in its own process
    group."""

    def __init__(
        self,
        bundle: Path,
        workers: int,
        tmp: Path,
        extra_env: dict[str, str] | None = None,
        root: Path = ROOT,
        factory: str = APP,
    ) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.workers = workers
        self.log_path = tmp / "server.log"
        env = {
            **os.environ,
            "RECSYS_BUNDLE_PATH": str(bundle.resolve()),
            "RECSYS_EVENTS_PATH": str(tmp / "events.sqlite"),
            **(extra_env or {}),
        }
        if root != ROOT:  # that tree's packages before the installed (editable) ones
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        cmd = [
            sys.executable, "-m", "uvicorn", "--factory", factory,
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers),
            "--no-access-log", "--http", "httptools", "--loop", "uvloop",
        ]  # fmt: skip
        self.log_file = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=self.log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.process = psutil.Process(self.proc.pid)

    def tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    async def wait_ready(self, timeout: float) -> None:
        """Every worker reported start-up (its bundle is loaded before it accepts) and
        ``/readyz`` answers 200."""
        deadline = time.monotonic() + timeout
        probe = encode_get("127.0.0.1", self.port, "/readyz")
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited ({self.proc.returncode}):\n{self.tail()}")
            started = self.log_path.read_text(errors="replace").count(
                "Application startup complete"
            )
            if started >= self.workers:
                try:
                    status, body = await fetch("127.0.0.1", self.port, probe)
                except (OSError, TimeoutError):
                    status, body = 0, b""
                if status == 200:
                    return
                if status:
                    print(f"[load] /readyz {status}: {body[:200]!r}", file=sys.stderr, flush=True)
            await asyncio.sleep(0.5)
        raise SystemExit(f"the server was not ready within {timeout:.0f} s:\n{self.tail()}")

    def worker_pids(self) -> list[int]:
        """The uvicorn worker processes (not multiprocessing's resource tracker); with one
        worker, uvicorn serves from its own process and starts none."""
        if self.workers == 1:
            return [self.process.pid]
        pids = []
        for proc in self.process.children(recursive=True):
            try:
                if "resource_tracker" not in " ".join(proc.cmdline()):
                    pids.append(proc.pid)
            except psutil.Error:
                pass
        return pids

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in [self.process, *self.process.children(recursive=True)]:
            try:
                t = proc.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def owners(self) -> dict[int, int]:
        """Client port -> the worker pid holding that connection."""
        owner: dict[int, int] = {}
        for pid in self.worker_pids():
            try:
                conns = psutil.Process(pid).net_connections(kind="tcp")
            except psutil.Error:
                continue
            for c in conns:
                if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == self.port and c.raddr:
                    owner[c.raddr.port] = pid
        return owner

    async def open_balanced(self, n: int, rounds: int = 40) -> list[Connection]:
        """``n`` keep-alive connections spread evenly over the workers. Which worker accepts a
        new connection is up to the kernel and often lopsided (57/7 was seen), and a
        connection stays with its worker, so surplus ones are closed and reopened."""
        workers = self.worker_pids()
        if not workers:
            raise SystemExit(f"no worker process of the server on port {self.port} was found")
        quota = {pid: n // len(workers) + (i < n % len(workers)) for i, pid in enumerate(workers)}
        kept: dict[int, list[Connection]] = {pid: [] for pid in workers}
        spare: list[Connection] = []
        for _ in range(rounds):
            missing = sum(quota[p] - len(kept[p]) for p in workers)
            if not missing:
                break
            fresh = await open_connections("127.0.0.1", self.port, missing)
            await asyncio.sleep(0.05)  # let the accepts land
            owner = self.owners()
            for conn in fresh:
                pid = owner.get(conn.local_port)
                if pid in kept and len(kept[pid]) < quota[pid]:
                    kept[pid].append(conn)
                elif len(spare) < n:  # kept in case a worker never accepts
                    spare.append(conn)
                else:
                    conn.close()
        conns = [c for group in kept.values() for c in group]
        take = n - len(conns)
        conns += spare[:take]
        for conn in spare[take:]:
            conn.close()
        return conns

    def connections_per_worker(self, conns: Sequence[Connection]) -> dict[str, int]:
        """How many of ``conns`` each worker process holds."""
        counts = dict.fromkeys(map(str, self.worker_pids()), 0)
        owner = self.owners()
        for conn in conns:
            pid = str(owner.get(conn.local_port, "unknown"))
            counts[pid] = counts.get(pid, 0) + 1
        return counts

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log_file.close()
