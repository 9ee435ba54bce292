"""One error shape for every response, and the one table that maps errors to HTTP codes.

Every error body is ``{"error": {"code": int, "type": str, "message": str, "param": str|None}}``.
The handlers below are registered on the app by :func:`serving.app.create_app`; routes and
services raise domain errors and never build error responses themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from agents.owners import SessionForbiddenError
from recsys.artifacts import BundleError
from recsys.catalog import CatalogError
from recsys.events import (
    EventConflictError,
    EventStoreError,
    InvalidEventError,
    UnknownEventItemError,
)
from recsys.search.stage import SearchUnavailableError

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    code: int = Field(description="The HTTP status code, repeated in the body.")
    type: str = Field(description="Machine-readable error kind, e.g. invalid_request, not_found.")
    message: str = Field(description="What went wrong, for a human.")
    param: str | None = Field(
        default=None, description="The request field at fault (dotted path), when there is one."
    )


class ErrorResponse(BaseModel):
    error: ErrorDetail = Field(description="The error; the same shape on every endpoint.")


class ServingError(Exception):
    """A domain error that the API answers with its own status, type and message."""

    status: int = 500
    type: str = "internal_error"
    retry_after_s: int | None = None  # sent as Retry-After (a 503 the caller should retry)

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class UnknownItemError(ServingError):
    status, type = 404, "not_found"

    def __init__(self, item_id: str, param: str = "item_id") -> None:
        super().__init__(f"unknown item id {item_id!r}: not in the served bundle's catalog", param)


class NoBundleError(ServingError):
    status, type = 503, "unavailable"


class NoEventLogError(ServingError):
    status, type = 503, "unavailable"


class NotReadyError(ServingError):
    """/readyz: a dependency the API cannot answer without is down (the event log's disk)."""

    status, type, retry_after_s = 503, "unavailable", 5


# Domain errors from recsys/ and their HTTP statuses: the one place they are mapped.
# Events: an unknown item_id is 422 (the body refers to nothing; /v1/events itself exists, so
# 404 would read as a wrong route), a reused event_id with another body 409.
DOMAIN_STATUS: dict[type[Exception], tuple[int, str]] = {
    SessionForbiddenError: (403, "forbidden"),
    BundleError: (503, "bundle_error"),
    UnknownEventItemError: (422, "unknown_item"),
    EventConflictError: (409, "conflict"),
    InvalidEventError: (422, "invalid_request"),
    CatalogError: (422, "invalid_request"),  # a filter naming a brand/category/column not there
    SearchUnavailableError: (503, "unavailable"),
    EventStoreError: (503, "unavailable"),  # disk full or read-only: retry, with Retry-After
}
HTTP_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    414: "uri_too_long",
    422: "invalid_request",
    503: "unavailable",
}


def error_json(
    status: int,
    type_: str,
    message: str,
    param: str | None = None,
    retry_after_s: int | None = None,
) -> JSONResponse:
    body = ErrorResponse(error=ErrorDetail(code=status, type=type_, message=message, param=param))
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting the error shape for ``codes``."""
    return {code: {"model": ErrorResponse, "description": HTTP_TYPES.get(code, "error")}
            for code in codes}  # fmt: skip


def _param(loc: Sequence[int | str]) -> str | None:
    """("body", "item_ids", 3) -> "item_ids[3]"; the request part (body, query...) dropped."""
    parts = list(loc[1:]) if loc and loc[0] in {"body", "query", "path", "header"} else list(loc)
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "":  # a key that is the empty string still names the field at fault
            out += '[""]'
        else:
            out += f".{part}" if out else str(part)
    return out or None


def _messages(errors: Iterable[dict[str, Any]]) -> tuple[str, str | None]:
    items = list(errors)
    first = _param(items[0].get("loc", ())) if items else None
    text = "; ".join(f"{_param(e.get('loc', ())) or 'body'}: {e.get('msg', 'invalid')}"
                     for e in items)  # fmt: skip
    return text or "invalid request", first


async def validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in problems):  # loc is a character offset
        detail = "; ".join(str(e.get("ctx", {}).get("error", "")) for e in problems)
        return error_json(422, "invalid_request", f"the body is not valid JSON ({detail})")
    message, param = _messages(problems)
    return error_json(422, "invalid_request", message, param)


async def http_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    return error_json(status, HTTP_TYPES.get(status, "http_error"), str(exc.detail))


async def serving_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServingError)
    return error_json(exc.status, exc.type, exc.message, exc.param, exc.retry_after_s)


async def domain_handler(request: Request, exc: Exception) -> JSONResponse:
    for kind, (status, type_) in DOMAIN_STATUS.items():
        if isinstance(exc, kind):
            param, retry = getattr(exc, "param", None), getattr(exc, "retry_after_s", None)
            return error_json(status, type_, str(exc), param, retry)
    return await internal_handler(request, exc)


async def internal_handler(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_json(500, "internal_error", "internal error; the server log has the details")
