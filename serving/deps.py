"""FastAPI dependencies: the served-bundle snapshot and the app's metrics.

They are ``async`` because they only read app state: FastAPI runs a plain ``def`` dependency in
its thread pool, a hop per dependency per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from agents.layer import LLMLayer
from recsys.decision.log import DecisionLog
from serving.lists.service import ListDeps
from serving.metrics import ServingMetrics
from serving.state import AppState, Served


async def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.serving
    return state


async def served(request: Request) -> Served:
    """The bundle this request uses, start to end; 503 (error shape) when none is loaded."""
    state: AppState = request.app.state.serving
    return state.require()


async def metrics(request: Request) -> ServingMetrics:
    m: ServingMetrics = request.app.state.metrics
    return m


async def decision_log(request: Request) -> DecisionLog | None:
    log: DecisionLog | None = request.app.state.decision_log
    return log


async def llm_layer(request: Request) -> LLMLayer | None:
    layer: LLMLayer | None = request.app.state.llm
    return layer


async def list_deps(request: Request) -> ListDeps:
    """Metrics, decision log and LLM layer: what every list endpoint is served with."""
    deps: ListDeps = request.app.state.list_deps
    return deps


StateDep = Annotated[AppState, Depends(app_state)]
ServedDep = Annotated[Served, Depends(served)]
MetricsDep = Annotated[ServingMetrics, Depends(metrics)]
DecisionLogDep = Annotated[DecisionLog | None, Depends(decision_log)]
LLMDep = Annotated[LLMLayer | None, Depends(llm_layer)]
ListDepsDep = Annotated[ListDeps, Depends(list_deps)]
