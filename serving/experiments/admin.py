"""The admin operations on experiments, mapped to the one error shape (no FastAPI types)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from recsys.artifacts import BundleError
from recsys.experiments import arms as core
from serving.errors import ServingError
from serving.experiments.protocol import (
    ArmSpec,
    ArmState,
    CreateExperiment,
    ExperimentList,
    ExperimentState,
    PromoteRequest,
    RampRequest,
    RollbackRequest,
)
from serving.experiments.service import ArmRouter


class ExperimentNotFoundError(ServingError):
    status, type = 404, "not_found"


class ExperimentConflictError(ServingError):
    status, type = 409, "conflict"


class ExperimentInvalidError(ServingError):
    status, type = 422, "invalid_request"


@contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except core.UnknownExperimentError as exc:
        raise ExperimentNotFoundError(str(exc), exc.param) from exc
    except core.ExperimentConflictError as exc:
        raise ExperimentConflictError(str(exc), exc.param) from exc
    except core.ExperimentError as exc:
        raise ExperimentInvalidError(str(exc), exc.param) from exc


def _arm(spec: ArmSpec) -> core.Arm:
    return core.Arm(spec.name, spec.bundle_path, spec.ranker, spec.share, spec.shadow)


def state_of(arms: ArmRouter, e: core.Experiment) -> ExperimentState:
    def one(a: core.Arm) -> ArmState:
        served = arms.load(a) if a.bundle_path is not None else arms.state.current
        version = served.version if served is not None else None
        return ArmState(
            name=a.name,
            bundle_path=a.bundle_path,
            ranker=a.ranker,
            share=a.share,
            shadow=a.shadow,
            model_version=version,
        )

    return ExperimentState(
        name=e.name,
        status=e.status,
        salt=e.salt,
        control=one(e.control),
        candidates=[one(a) for a in e.candidates],
        winner=e.winner,
        revision=e.revision,
        history=list(e.history),
    )


def create(arms: ArmRouter, body: CreateExperiment) -> ExperimentState:
    with _mapped():
        experiment = core.Experiment(
            name=body.name,
            salt=body.salt or body.name,
            control=_arm(body.control),
            candidates=tuple(_arm(a) for a in body.candidates),
        )
        for n, arm in enumerate(experiment.arms):
            try:
                arms.load(arm)  # refuse an arm whose bundle cannot serve, before storing
            except (BundleError, ValueError, OSError) as exc:
                param = "control.bundle_path" if n == 0 else f"candidates.{n - 1}.bundle_path"
                raise ExperimentInvalidError(f"arm {arm.name!r}: {exc}", param) from exc
        stored = arms.store.create(experiment)
    arms.guardrail.reset()  # a new experiment starts with fresh windows
    return state_of(arms, stored)


def list_all(arms: ArmRouter) -> ExperimentList:
    found = sorted(arms.store.all().values(), key=lambda e: -e.history[0]["ts"])
    return ExperimentList(experiments=[state_of(arms, e) for e in found])


def get(arms: ArmRouter, name: str) -> ExperimentState:
    with _mapped():
        return state_of(arms, arms.store.get(name))


def _update(
    arms: ArmRouter, name: str, change: Callable[[core.Experiment], core.Experiment]
) -> ExperimentState:
    with _mapped():
        return state_of(arms, arms.store.update(name, change))


def ramp(arms: ArmRouter, name: str, body: RampRequest) -> ExperimentState:
    return _update(arms, name, lambda e: core.ramp(e, body.arm, body.share, body.reason))


def promote(arms: ArmRouter, name: str, body: PromoteRequest) -> ExperimentState:
    return _update(arms, name, lambda e: core.promote(e, body.arm, body.reason))


def rollback(arms: ArmRouter, name: str, body: RollbackRequest) -> ExperimentState:
    return _update(arms, name, lambda e: core.rollback(e, body.reason))
