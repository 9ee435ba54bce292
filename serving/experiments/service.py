"""Serving experiment arms: which bundle answers each list request, per-arm health and the
automatic rollback, and the admin operations (create, ramp, promote, roll back).

:class:`ArmRouter` sits in the list path (``serving.lists.service.run_list``): it assigns the
shopper (sticky, :func:`recsys.experiments.arms.assign`), swaps in the arm's bundle and the
same-named pipeline, times the run into the arm's window, computes shadow arms' lists off the
request path for the decision log only, and rolls a candidate back when the guardrail fires.

Arm bundles are loaded off the request path. Until a worker has an arm's bundle loaded it
serves that arm's shoppers the control and logs them as control: the log names what was shown.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from recsys.artifacts import load_bundle
from recsys.experiments.arms import Arm, Experiment, ExperimentStore, assign, rollback
from recsys.experiments.attribution import CLICK_EVENTS, CONVERSION_EVENTS
from recsys.experiments.guardrail import Guardrail, GuardrailRule
from serving.experiments.attribution import AttributedEvent, listen
from serving.experiments.metrics import ArmMetrics
from serving.state import AppState, Served

if TYPE_CHECKING:
    from recsys.decision.log import DecisionLog
    from serving.lists.service import ListCall

log = logging.getLogger(__name__)
PIPELINES = ("recommend", "rank", "search")


class ExperimentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECSYS_EXPERIMENTS_", extra="ignore")

    path: Path | None = Field(
        default=None,
        description="SQLite file of the experiments, shared by every "
        "worker; None = experiments.sqlite beside the event log; "
        "RECSYS_EXPERIMENTS_PATH.",
    )
    refresh_seconds: float = Field(
        default=1.0,
        ge=0.0,
        description="How stale a worker's view of the experiments "
        "may be (a ramp reaches every worker within it).",
    )
    auto_rollback: bool = Field(
        default=True, description="Roll a candidate back when the guardrail fires."
    )
    check_seconds: float = Field(
        default=1.0, ge=0.0, description="How often a worker checks the guardrail (at most)."
    )
    window_seconds: float = Field(default=300.0, gt=0, description="Guardrail window.")
    min_requests: int = Field(
        default=200, ge=1, description="Requests per arm in the window before it may fire."
    )
    max_error_rate_increase: float = Field(
        default=0.02, ge=0, description="Allowed error rate above the control (absolute)."
    )
    max_p99_ratio: float = Field(
        default=1.5, ge=1, description="Allowed candidate p99 / control p99."
    )

    def rule(self) -> GuardrailRule:
        return GuardrailRule(
            self.window_seconds, self.min_requests, self.max_error_rate_increase, self.max_p99_ratio
        )


@dataclass(frozen=True)
class Routed:
    """One list request's arm: the bundle and call that answer it, and its shadows."""

    experiment: Experiment
    arm: Arm
    served: Served
    call: ListCall
    shadows: tuple[Arm, ...]


class ArmRouter:
    def __init__(self, state: AppState, settings: ExperimentSettings, metrics: Any) -> None:
        self.state = state
        self.settings = settings
        path = settings.path
        if path is None:
            if state.events is None:
                raise ValueError("experiments need RECSYS_EXPERIMENTS_PATH or an event log")
            path = state.events.path.parent / "experiments.sqlite"
        self.store = ExperimentStore(path, settings.refresh_seconds)
        self._unlisten = listen(state.events, self.attributed) if state.events is not None else None
        self.guardrail = Guardrail(settings.rule())
        self.metrics = ArmMetrics(metrics)
        self._served: dict[tuple[str, str | None], Served] = {}
        self._loading: set[tuple[str, str | None]] = set()
        self._lock = threading.Lock()
        self._shadow_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow-arms")
        self._shadow_backlog = 0
        self._checked = 0.0

    # -- bundles -----------------------------------------------------------------------
    def load(self, arm: Arm) -> Served | None:
        """The arm's bundle, loading it now (the admin routes check a new arm this way)."""
        if arm.bundle_path is None:
            return None
        key = (arm.bundle_path, arm.ranker)
        with self._lock:
            if key in self._served:
                return self._served[key]
        bundle = load_bundle(arm.bundle_path, self.state.features)
        state = self.state
        served = Served.build(
            bundle, arm.ranker, state.events, state.decision, candidate_cache=state.candidate_cache
        )
        with self._lock:
            self._served[key] = served
        return served

    def _served_for(self, arm: Arm, control: Served) -> Served | None:
        if arm.bundle_path is None:
            return control if arm.ranker in (None, control.ranker) else None
        key = (arm.bundle_path, arm.ranker)
        with self._lock:
            found = self._served.get(key)
            if found is not None or key in self._loading:
                return found
            self._loading.add(key)
        threading.Thread(target=self._load_quietly, args=(arm, key), daemon=True).start()
        return None

    def _load_quietly(self, arm: Arm, key: tuple[str, str | None]) -> None:
        try:
            self.load(arm)
        except Exception:
            log.exception("experiment arm %s: bundle %s failed to load", arm.name, key[0])
        finally:
            with self._lock:
                self._loading.discard(key)

    # -- the list path -----------------------------------------------------------------
    def route(self, served: Served, call: ListCall) -> Routed | None:
        experiment = self.store.active()
        if experiment is None:
            return None
        name = next((n for n in PIPELINES if getattr(served, n) is call.pipeline), None)
        if name is None:
            return None  # a pipeline the arms do not offer
        assignment = assign(experiment, str(call.inputs.get("user_id", "")))
        arm = assignment.arm
        arm_served = self._served_for(arm, served)
        if arm_served is None:  # not loaded in this worker yet
            arm, arm_served = experiment.control, served
        call = replace(call, pipeline=getattr(arm_served, name))
        return Routed(experiment, arm, arm_served, call, assignment.shadows)

    def observe(self, routed: Routed, endpoint: str, seconds: float, failed: bool) -> None:
        labels = (routed.experiment.name, routed.arm.name)
        self.metrics.requests.inc((*labels, endpoint))
        self.metrics.latency.observe(labels, seconds)
        if failed:
            self.metrics.errors.inc(labels)
        self.guardrail.observe(routed.arm.name, seconds, failed)
        self._check(routed.experiment)

    def degraded(self, routed: Routed, steps: list[str]) -> None:
        for step in steps:
            self.metrics.degraded.inc((routed.experiment.name, routed.arm.name, step))

    def _check(self, experiment: Experiment) -> None:
        """At most once a second: roll back each shown candidate the guardrail condemns."""
        now = time.monotonic()
        if not self.settings.auto_rollback or experiment.status != "running":
            return
        if now - self._checked < self.settings.check_seconds:
            return
        self._checked = now
        control = experiment.control.name
        for arm in experiment.candidates:
            why = None if arm.shadow else self.guardrail.verdict(control, arm.name, now)
            if why is not None:
                self.auto_rollback(experiment.name, arm.name, why)
                return

    def auto_rollback(self, experiment: str, arm: str, why: str) -> None:
        guard = why.split(" ", 1)[0] if not why.startswith("error") else "error_rate"
        try:
            self.store.update(experiment, lambda e: rollback(e, f"automatic: {arm}: {why}"))
        except ValueError:
            return  # another worker rolled it back first
        self.metrics.rollbacks.inc((experiment, arm, guard))
        log.warning("experiment %s rolled back automatically: %s: %s", experiment, arm, why)

    def shadows(
        self, routed: Routed, endpoint: str, inputs: dict[str, Any], decisions: DecisionLog | None
    ) -> None:
        """Compute each shadow arm's list off the request path, for the decision log only."""
        if decisions is None or not routed.shadows or self._shadow_backlog > 100:
            return
        from serving.lists.service import log_decision

        name = next(n for n in PIPELINES if getattr(routed.served, n) is routed.call.pipeline)
        for arm in routed.shadows:
            served = self._served_for(arm, self.state.require())
            labels = (routed.experiment.name, arm.name)
            if served is None:
                self.metrics.shadow.inc((*labels, "not_loaded"))
                continue
            call = replace(routed.call, pipeline=getattr(served, name))

            def run(served: Served = served, call: ListCall = call, arm: Arm = arm) -> None:
                try:
                    with served.lock:
                        result = call.pipeline.run(inputs)
                    log_decision(
                        served, call, result.state["decision"], decisions, arm=arm.name, shadow=True
                    )
                    self.metrics.shadow.inc((routed.experiment.name, arm.name, "logged"))
                except Exception:
                    self.metrics.shadow.inc((routed.experiment.name, arm.name, "error"))
                finally:
                    self._shadow_backlog -= 1

            self._shadow_backlog += 1
            self._shadow_pool.submit(run)

    # -- events ------------------------------------------------------------------------
    def attributed(self, event: AttributedEvent) -> None:
        """Count an attributed event on the arm its shopper is assigned to (sticky by user)."""
        experiment = self.store.active()
        if experiment is None or event.event not in CLICK_EVENTS:
            return
        labels = (experiment.name, assign(experiment, event.user_id).arm.name)
        self.metrics.clicks.inc(labels)
        if event.event in CONVERSION_EVENTS:
            self.metrics.conversions.inc(labels)
            self.metrics.value.inc(labels, event.value or 0.0)

    def close(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
        self._shadow_pool.shutdown(wait=True)
        self.store.close()
