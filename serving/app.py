"""The app factory: routers, the one set of error handlers, metrics, and the served bundle.

Run it with ``uvicorn --factory serving.app:create_app``; nothing is built at import. Tests pass
a loaded bundle; otherwise the bundle at ``settings.bundle_path`` is loaded at start-up, and a
bundle that fails to load leaves the app up but not ready (/readyz 503 says why).
"""

from __future__ import annotations

import gc
import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from agents.layer import LLMLayer
from agents.memory import open_memory
from agents.router import RouterConfig
from models.threads import pin_compute_threads
from recsys.artifacts import Bundle, load_bundle
from recsys.decision import load_decision_config
from recsys.decision.log import DecisionLog
from recsys.events import EventLog
from serving import errors
from serving.admin.router import router as admin_router
from serving.admin.service import BundleWatcher, Reloader
from serving.batching import PipelineBatcher
from serving.chat.router import router as chat_router
from serving.chat.service import ChatService
from serving.chat_page.router import router as chat_page_router
from serving.compare.router import router as compare_router
from serving.events.router import router as events_router
from serving.experiments.router import router as experiments_router
from serving.experiments.service import ArmRouter, ExperimentSettings
from serving.health.router import router as health_router
from serving.items.router import router as items_router
from serving.limits import RequestLimits
from serving.list_route import ListLaneApp
from serving.lists.service import ListDeps
from serving.llm_metrics import LLMMetrics
from serving.llm_pool import LLMPool
from serving.metrics import MetricsMiddleware, ServingMetrics
from serving.openapi_docs import install_docs
from serving.rank.router import router as rank_router
from serving.recommend.router import router as recommend_router
from serving.search.router import router as search_router
from serving.settings import ServingSettings, get_settings
from serving.state import AppState, Served

log = logging.getLogger(__name__)


def load_into(state: AppState, settings: ServingSettings) -> None:
    """Load ``settings.bundle_path`` and serve it; a failure is recorded, not raised."""
    try:
        state.swap(load_bundle(settings.bundle_path, settings.features), settings.ranker)
    except Exception as exc:  # any failure leaves the app up, not ready, saying why
        state.failed(f"{settings.bundle_path}: {type(exc).__name__}: {exc}")
        log.error("no bundle served: %s", state.error)


def limit_compute_threads(threads: int) -> None:
    """Cap BLAS and OpenMP pools in this process: numpy's and scipy's OpenBLAS would otherwise
    keep a busy-waiting thread per core (measured: 80-200 ms of CPU per request instead of 8).
    Called again after every bundle swap, which may load new pools (models.threads)."""
    pin_compute_threads(threads)


def _telemetry(on: bool) -> dict[str, Any]:
    """FastAPI's native OpenTelemetry switched off unless ``on``. It looks up the global
    providers on every request even where none is configured; releases before it existed
    (pyproject allows them) take no such argument."""
    if on or "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def create_app(
    settings: ServingSettings | None = None,
    bundle: Bundle | None = None,
    llm: LLMLayer | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    limit_compute_threads(settings.compute_threads)
    metrics = ServingMetrics()
    if settings.metrics_dir is not None:
        metrics.share(settings.metrics_dir)
    events = EventLog(settings.events_path)

    def swapped(served: Served) -> None:
        limit_compute_threads(settings.compute_threads)  # the bundle may have loaded new pools
        # A bundle is millions of long-lived objects (id maps, caches): leave them out of the
        # collector's full passes, which otherwise stall a request for tens of milliseconds.
        # Unfrozen first: frozen objects are never collected, so the bundles swapped out before
        # (cycles and all, once unreferenced) would stay in memory for good, reload after reload.
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        metrics.bundle_loaded(served.version)

    state = AppState(
        on_swap=swapped,
        events=events,
        decision=load_decision_config(settings.decision_config),  # a bad file fails here
        push_features=settings.push_events_to_feast,
        features=settings.features,
        candidate_cache=settings.candidate_cache,
    )
    if bundle is not None:
        state.swap(bundle, settings.ranker)
    decisions = (
        DecisionLog(
            settings.decision_log_path,
            max_bytes=int(settings.decision_log_max_mb * (1 << 20)),
            backups=settings.decision_log_backups,
        )
        if settings.decision_log_path
        else None
    )
    reloader = Reloader(state, settings.bundle_path, settings.ranker)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if state.current is None and settings.load_on_start:
            await anyio.to_thread.run_sync(load_into, state, settings)
        watcher = None
        if settings.reload_poll_seconds > 0:
            watcher = BundleWatcher(reloader, settings.bundle_path, settings.reload_poll_seconds)
            watcher.start()
        yield
        if watcher is not None:
            watcher.stop()
        state.close()
        events.close()
        if decisions is not None:
            decisions.close()
        app.state.list_deps.llm_pool.close()
        metrics.close()
        app.state.arms.close()

    app = ListLaneApp(
        title="recsys-engine serving API",
        version="1",
        summary="Recommendations, ranking, similar items and events over an artifact bundle.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load from a CDN: install_docs serves local copies
        redoc_url=None,
        **_telemetry(settings.otel),
    )
    app.state.settings = settings
    app.state.list_lane = not settings.otel  # serving.list_route: the lists' fast lane
    app.state.serving = state
    app.state.metrics = metrics
    app.state.decision_log = decisions
    app.state.reloader = reloader
    app.state.llm = llm or LLMLayer(settings.llm)  # no model loads until a feature asks
    app.state.arms = ArmRouter(state, ExperimentSettings(), metrics)  # experiment arms
    llm_metrics = LLMMetrics(metrics)
    app.state.llm.observe(llm_metrics.observe)
    app.state.list_deps = ListDeps(
        metrics, decisions, app.state.llm, LLMPool(settings.llm_workers), llm_metrics,
        arms=app.state.arms, batcher=PipelineBatcher(
            settings.max_batch, min_batch=settings.min_batch, observe=metrics.batch
        ),
    )
    # a capable backend (vLLM) plans every chat turn with the master agent; with the packaged
    # 135M model the router and tools do the work and the model only words replies
    app.state.chat = ChatService(
        open_memory(str(settings.chat_memory)), router=RouterConfig(planner=settings.planner())
    )
    # Every error becomes {"error": {code, type, message, param}}: mapped here, in one place.
    app.add_exception_handler(RequestValidationError, errors.validation_handler)
    app.add_exception_handler(StarletteHTTPException, errors.http_handler)
    app.add_exception_handler(errors.ServingError, errors.serving_handler)
    for domain_error in errors.DOMAIN_STATUS:
        app.add_exception_handler(domain_error, errors.domain_handler)
    app.add_exception_handler(Exception, errors.internal_handler)
    # inside the metrics middleware, so that the 413s and 414s it answers are counted too
    app.add_middleware(
        RequestLimits, max_body_bytes=settings.max_body_bytes, max_url_bytes=settings.max_url_bytes
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    routers = [recommend_router, search_router, rank_router, items_router, events_router]
    routers += [compare_router, chat_router]
    for router in (*routers, health_router):
        app.include_router(router)
    app.include_router(chat_page_router)  # GET /chat, the page for people (not in the schema)
    if settings.admin_api_key is not None:  # no key, no admin routes
        app.include_router(admin_router)
        app.include_router(experiments_router)
    install_docs(app, state)  # /docs and /redoc offline; examples from the served bundle
    return app
