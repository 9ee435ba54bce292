"""POST /admin/reload and GET /admin/reload, behind the admin API key.

The routes exist only when ``RECSYS_ADMIN_API_KEY`` is set (there is no default key); the key
goes in the ``X-API-Key`` header.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from serving.admin.protocol import ReloadRequest, ReloadStatus
from serving.admin.service import Reloader
from serving.errors import ServingError, error_responses


class UnauthorizedError(ServingError):
    status, type = 401, "unauthorized"


def require_key(
    request: Request,
    x_api_key: Annotated[str | None, Header(description="The admin API key.")] = None,
) -> None:
    expected = request.app.state.settings.admin_api_key
    given = (x_api_key or "").encode()
    secret = expected.get_secret_value().encode() if expected is not None else b""
    if not secret or not hmac.compare_digest(given, secret):  # an empty key opens nothing
        raise UnauthorizedError("missing or wrong X-API-Key for the admin routes", "X-API-Key")


def reloader(request: Request) -> Reloader:
    r: Reloader = request.app.state.reloader
    return r


router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_key)])
ReloaderDep = Annotated[Reloader, Depends(reloader)]


@router.post(
    "/reload",
    response_model=ReloadStatus,
    status_code=202,
    responses={200: {"model": ReloadStatus}, **error_responses(401, 409, 422)},
    summary="Load a bundle and swap it in",
)
def reload(body: ReloadRequest, reloader: ReloaderDep) -> JSONResponse:
    """Loads the bundle off the request path and swaps it in atomically; a bundle that fails to
    load or build is refused and the old one keeps serving."""
    status = reloader.start(body.bundle_path, body.ranker, body.wait)
    return JSONResponse(status.model_dump(), status_code=200 if body.wait else 202)


@router.get(
    "/reload",
    response_model=ReloadStatus,
    responses=error_responses(401),
    summary="The latest reload's status",
)
def reload_status(reloader: ReloaderDep) -> ReloadStatus:
    return reloader.status()
