"""A fast lane for the list endpoints' usual request.

``POST /v1/recommend``, ``/v1/search`` and ``/v1/rank`` each take a JSON body model, the served
bundle and the list dependencies. FastAPI answers such a request by parsing the content type,
solving the endpoint's dependencies and validating the body through its own field machinery:
about 0.2 ms of a worker's CPU per request, beside a pipeline of a few. :class:`ListRoute` is
the routes' class. It answers a request whose body is ``application/json`` and validates
against the body model straight away: the same parse (``json.loads``), the same validation
(the model's, in Python mode, as FastAPI runs it), the same dependencies, the same endpoint.
Every other request (another content type, JSON that does not parse, a body that fails
validation) goes down FastAPI's own path, which answers it exactly as before, errors included.

The lane is open where the app says so (``app.state.list_lane``; :func:`serving.app.create_app`
opens it unless FastAPI's OpenTelemetry is on, whose request data only FastAPI's path records).
The endpoint's signature is checked when the route is built: one body model, then the served
bundle and the list dependencies (:mod:`serving.deps`).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Coroutine
from typing import Any, get_origin

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from serving import deps

_DEPENDENCIES = (deps.served, deps.list_deps)
_JSON = "application/json"


class ListRoute(APIRoute):
    """An APIRoute with the fast lane above, for ``async def endpoint(body, served, deps)``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        slow = super().get_route_handler()
        model = _body_model(self.endpoint)
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            lane = getattr(request.app.state, "list_lane", False)
            if not lane or request.headers.get("content-type") != _JSON:
                return await slow(request)
            try:
                body = model.model_validate(json.loads(await request.body()))
            except (ValueError, ValidationError, RecursionError):  # answered by FastAPI
                return await slow(request)
            served = await deps.served(request)
            response: Response = await endpoint(body, served, await deps.list_deps(request))
            return response

        return handler


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
