"""/admin/experiments: create, ramp, promote and roll back experiment arms (admin API key).

Mounted with the other admin routes, only when ``RECSYS_ADMIN_API_KEY`` is set.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from serving.admin.router import require_key
from serving.errors import error_responses
from serving.experiments import admin
from serving.experiments.protocol import (
    CreateExperiment,
    ExperimentList,
    ExperimentState,
    PromoteRequest,
    RampRequest,
    RollbackRequest,
)
from serving.experiments.service import ArmRouter


def arm_router(request: Request) -> ArmRouter:
    arms: ArmRouter = request.app.state.arms
    return arms


router = APIRouter(prefix="/admin/experiments", tags=["admin"], dependencies=[Depends(require_key)])
ArmsDep = Annotated[ArmRouter, Depends(arm_router)]


@router.post(
    "",
    response_model=ExperimentState,
    status_code=201,
    responses=error_responses(401, 409, 422),
    summary="Start an experiment",
)
def create(body: CreateExperiment, arms: ArmsDep) -> ExperimentState:
    """Loads every arm's bundle first (a bundle that fails to load is a 422 and nothing is
    stored), then stores the experiment; one experiment runs at a time (409 otherwise)."""
    return admin.create(arms, body)


@router.get(
    "", response_model=ExperimentList, responses=error_responses(401), summary="Every experiment"
)
def list_all(arms: ArmsDep) -> ExperimentList:
    return admin.list_all(arms)


@router.get(
    "/{name}",
    response_model=ExperimentState,
    responses=error_responses(401, 404),
    summary="One experiment",
)
def get(name: str, arms: ArmsDep) -> ExperimentState:
    return admin.get(arms, name)


@router.post(
    "/{name}/ramp",
    response_model=ExperimentState,
    responses=error_responses(401, 404, 409, 422),
    summary="Change a candidate's traffic share",
)
def ramp(name: str, body: RampRequest, arms: ArmsDep) -> ExperimentState:
    """Shoppers already on the candidate stay on it as its share grows (sticky buckets)."""
    return admin.ramp(arms, name, body)


@router.post(
    "/{name}/promote",
    response_model=ExperimentState,
    responses=error_responses(401, 404, 409, 422),
    summary="Show one arm to every shopper",
)
def promote(name: str, body: PromoteRequest, arms: ArmsDep) -> ExperimentState:
    return admin.promote(arms, name, body)


@router.post(
    "/{name}/rollback",
    response_model=ExperimentState,
    responses=error_responses(401, 404, 409),
    summary="Back to the control",
)
def rollback(name: str, body: RollbackRequest, arms: ArmsDep) -> ExperimentState:
    return admin.rollback(arms, name, body)
