"""List responses written by pydantic's serializer in one pass.

A route that returns its response model has FastAPI dump it to a dict, validate that dict
against the model again and ``json.dumps`` the result: about 0.16-0.20 ms for a 10-item list
with item details, against 0.04 ms for ``model_dump_json`` (measured side by side, one
process). The routes keep ``response_model`` for their OpenAPI schema and return this instead.
"""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel


def model_json(body: BaseModel) -> Response:
    """``body`` as FastAPI would send it with ``response_model_exclude_unset=True``."""
    return Response(body.model_dump_json(exclude_unset=True), media_type="application/json")
