"""Hot reload: load a bundle off the request path, swap it in atomically, or keep the old one.

A reload builds everything (bundle load with checksums, pipelines, decision rules checked
against the new catalog, the event session replayed) before :meth:`AppState.swap` switches the
reference; requests in flight keep the ``Served`` they took. Any failure leaves the old bundle
serving and is reported in the status. One reload runs at a time.

:class:`BundleWatcher` polls the configured bundle's manifest so that a new bundle written in
place (``recsys train --out`` onto the served path) is picked up by every worker process, not
only the one that received ``/admin/reload``.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from recsys.artifacts import load_bundle
from serving.admin.protocol import ReloadStatus
from serving.errors import ServingError
from serving.state import AppState

log = logging.getLogger(__name__)


class ReloadBusyError(ServingError):
    status, type = 409, "conflict"


class ReloadRefusedError(ServingError):
    status, type = 422, "bundle_refused"


class Reloader:
    def __init__(self, state: AppState, default_path: Path, ranker: str | None) -> None:
        self.state = state
        self.default_path = default_path
        self.ranker = ranker
        self._lock = threading.Lock()
        self._status = ReloadStatus(state="idle")

    def status(self) -> ReloadStatus:
        served = self.state.current
        return self._status.model_copy(
            update={"serving_version": served.version if served else None}
        )

    def start(self, path: str | None, ranker: str | None, wait: bool) -> ReloadStatus:
        """Begin a reload (in a thread unless ``wait``); 409 while another is running."""
        if not self._lock.acquire(blocking=False):
            raise ReloadBusyError(f"a reload of {self._status.bundle_path} is already running")
        target = Path(path) if path else self.default_path
        self._status = ReloadStatus(
            state="loading", bundle_path=str(target), started_at=time.time()
        )
        if not wait:
            threading.Thread(target=self._run, args=(target, ranker), daemon=True).start()
            return self.status()
        self._run(target, ranker)
        status = self.status()
        if status.state == "failed":
            raise ReloadRefusedError(f"bundle refused, the old one serves on: {status.error}")
        return status

    def _run(self, target: Path, ranker: str | None) -> None:
        try:
            bundle = load_bundle(target, self.state.features)
            old = self.state.swap(bundle, ranker or self.ranker)
            self._status = self._status.model_copy(
                update={
                    "state": "loaded",
                    "previous_version": old.version if old else None,
                    "finished_at": time.time(),
                }
            )
            log.info("reloaded %s -> %s", old.version if old else None, bundle.version)
        except Exception as exc:  # whatever a bundle breaks, the reload ends, as failed
            self._status = self._status.model_copy(
                update={
                    "state": "failed",
                    "error": f"{type(exc).__name__}: {exc}",
                    "finished_at": time.time(),
                }
            )
            log.error("reload of %s refused: %s", target, exc)
        finally:
            self._lock.release()


class BundleWatcher:
    """Reloads when the manifest at ``path`` changes (checked every ``interval`` seconds)."""

    def __init__(self, reloader: Reloader, path: Path, interval: float) -> None:
        self.reloader = reloader
        self.manifest = path / "manifest.json"
        self.interval = interval
        self._seen = self._stamp()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bundle-watcher", daemon=True)

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.manifest.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def start(self) -> BundleWatcher:
        self._thread.start()
        return self

    def check(self) -> bool:
        """Reload if the manifest changed since the last check; True when one was started."""
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return False
        self._seen = stamp  # a broken bundle is tried once per change, not in a loop
        try:
            self.reloader.start(None, None, wait=True)
        except ServingError as exc:
            log.error("watched bundle not loaded: %s", exc.message)
        return True

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # a dead watcher would silently never load another bundle
                log.exception("bundle watcher: check of %s failed; still watching", self.manifest)

    def stop(self) -> None:
        self._stop.set()
