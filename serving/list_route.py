"""A fast lane for the list endpoints' usual request, at the app's front door.

``POST /v1/recommend``, ``/v1/search`` and ``/v1/rank`` each take a JSON body model, the served
bundle and the list dependencies. Through FastAPI, such a request passes Starlette's error and
body-limit layers, this app's metrics and limits middleware, the exception layer, the router's
match over every route, the content-type parse and dependency solving before the endpoint
runs: about 0.17 ms of a worker's CPU in-process, against 0.003 ms for a bare ASGI answer, and
several times that under load, when every layer's code and data are cold.

:class:`ListLaneApp` (the app's class, :func:`serving.app.create_app`) answers a POST to a
:class:`ListRoute` straight from ASGI when its body is ``application/json``, within the app's
limits, and validates against the body model: the same checks as the middleware
(:mod:`serving.limits`), the same parse (``json.loads``), the same validation (the model's, in
Python mode, as FastAPI runs it), the same dependencies (:mod:`serving.deps`), the same endpoint,
its errors mapped by the app's own exception handlers and its request counted and timed as
:class:`serving.metrics.MetricsMiddleware` does. Every other request (another path, method or
content type, a URL or body over the limits, JSON that does not parse or does not validate, no
bundle loaded) goes down FastAPI's own path with its body replayed, which answers it exactly as
before, errors included: nothing the lane did shows.

The lane is open where the app says so (``app.state.list_lane``; :func:`serving.app.create_app`
opens it unless FastAPI's OpenTelemetry is on, whose request data only FastAPI's path records).
A :class:`ListRoute`'s endpoint signature is checked when the route is built: one body model,
then the served bundle and the list dependencies.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable
from typing import Any, get_origin

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.types import Message, Receive, Scope, Send

from serving import deps
from serving.limits import content_length, lone_surrogate, replay, url_bytes

_DEPENDENCIES = (deps.served, deps.list_deps)
_JSON = b"application/json"


class ListRoute(APIRoute):
    """An APIRoute for ``async def endpoint(body, served, deps)``, served by the lane above."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        self.body_model = _body_model(endpoint)  # checked before FastAPI builds anything
        super().__init__(path, endpoint, **kwargs)


class ListLaneApp(FastAPI):
    """FastAPI with the list endpoints' lane (module doc) in front of its middleware.

    A router's :class:`ListRoute` POSTs get the lane when it is included as it is (no prefix,
    no dependencies: those would need FastAPI's path), at the path FastAPI serves them at.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lanes: dict[str, ListRoute] = {}

    def include_router(self, router: Any, *args: Any, **kwargs: Any) -> None:
        super().include_router(router, *args, **kwargs)
        if args or kwargs.get("prefix") or kwargs.get("dependencies"):
            return
        for route in router.routes:
            if isinstance(route, ListRoute) and "POST" in (route.methods or ()):
                self._lanes.setdefault(route.path, route)  # the first route to match answers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not self.root_path:
            route = self._lanes.get(scope["path"])
            if route is not None and getattr(self.state, "list_lane", False):
                await self._lane(route, scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _lane(self, route: ListRoute, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        scope["app"] = self
        settings = self.state.settings
        read: list[Message] = []
        body = await _read_json(scope, receive, read, settings.max_body_bytes,
                                settings.max_url_bytes)  # fmt: skip
        parsed = None if body is None else _validated(route.body_model, body)
        if parsed is None:
            await super().__call__(scope, replay(read, receive), send)
            return
        request = Request(scope, receive)  # the body is read: handlers get the model
        try:
            served = await deps.served(request)
        except Exception:  # no bundle: FastAPI's path answers its 503, as without the lane
            await super().__call__(scope, replay(read, receive), send)
            return
        status = 500  # an exception that escapes every handler ends as a 500
        try:
            try:
                response: Response = await route.endpoint(
                    parsed, served, await deps.list_deps(request)
                )
            except Exception as exc:
                response = await _handler(self, exc)(request, exc)
            status = response.status_code
            await response(scope, receive, send)
        finally:
            elapsed = time.perf_counter() - started
            self.state.metrics.observe_request(route.path, "POST", status, elapsed)


async def _read_json(
    scope: Scope, receive: Receive, read: list[Message], max_body: int, max_url: int
) -> bytes | None:
    """The whole body when the request is JSON within the limits, else None; every message
    received is kept in ``read`` for a replay."""
    if url_bytes(scope) > max_url:
        return None
    content_type = next((v for k, v in scope["headers"] if k == b"content-type"), None)
    declared = content_length(scope)
    if content_type != _JSON or (declared is not None and declared > max_body):
        return None
    chunks: list[bytes] = []
    size, more = 0, True
    while more:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":  # the client went away
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > max_body:
            return None
        more = message.get("more_body", False)
    body = b"".join(chunks)
    return None if lone_surrogate(body) is not None else body


def _validated(model: type[BaseModel], body: bytes) -> BaseModel | None:
    try:
        return model.model_validate(json.loads(body))
    except (ValueError, ValidationError, RecursionError):  # answered by FastAPI's path
        return None


def _handler(app: FastAPI, exc: Exception) -> Any:
    """The app's handler for ``exc``: the nearest of its classes with one, as Starlette's
    exception layers pick it (``Exception``'s is the 500 one)."""
    for kind in type(exc).__mro__:
        if kind in app.exception_handlers:
            return app.exception_handlers[kind]
    raise exc


def _body_model(endpoint: Callable[..., Any]) -> type[BaseModel]:
    """The endpoint's body model; a signature other than (body, served, deps) is refused."""
    params = list(inspect.signature(endpoint, eval_str=True).parameters.values())
    body = params[0].annotation if params else None
    found = [_dependency(p.annotation) for p in params[1:]]
    if (
        not inspect.iscoroutinefunction(endpoint)
        or not (isinstance(body, type) and issubclass(body, BaseModel))
        or tuple(found) != _DEPENDENCIES
    ):
        raise TypeError(
            f"ListRoute serves async def {endpoint.__name__}(body: <a pydantic model>, served: "
            f"ServedDep, deps: ListDepsDep); got {endpoint.__name__}"
            f"{inspect.signature(endpoint)}"
        )
    return body


def _dependency(annotation: Any) -> Any:
    """The callable of an ``Annotated[T, Depends(f)]`` annotation, else None."""
    if get_origin(annotation) is None or not hasattr(annotation, "__metadata__"):
        return None
    marks = [getattr(m, "dependency", None) for m in annotation.__metadata__]
    return next((m for m in marks if m is not None), None)
