"""GET /healthz, /readyz and /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from serving.deps import DecisionLogDep, MetricsDep, StateDep
from serving.errors import error_responses
from serving.health import service
from serving.health.protocol import HealthResponse, ReadyResponse

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthResponse, summary="The process is up")
def healthz() -> HealthResponse:
    return service.health()


@router.get(
    "/readyz",
    response_model=ReadyResponse,
    responses=error_responses(503),
    summary="A bundle is loaded and served",
)
def readyz(state: StateDep, request: Request) -> ReadyResponse:
    ready = service.readiness(state)
    ready.dependencies.update(_llm_breakers(request))
    return ready


def _llm_breakers(request: Request) -> dict[str, str]:
    llm = getattr(request.app.state, "llm", None)
    return llm.breakers() if llm is not None else {}


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics(m: MetricsDep, state: StateDep, log: DecisionLogDep, request: Request) -> Response:
    m.breakers({**service.breakers(state.current), **_llm_breakers(request)})
    if log is not None:
        m.decision_log(log.dropped)
    m.caches(state.current.caches() if state.current is not None else {})
    return Response(m.render(), media_type=m.content_type)
