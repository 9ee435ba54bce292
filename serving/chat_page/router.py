"""GET /chat: a shopping-chat page over POST /v1/chat, for people trying the agent.

Plain HTML, CSS and JavaScript from this package's ``assets/`` folder: no build step, and no
other host is named (a Content-Security-Policy of 'self' says so to the browser too). The page
reads the server-sent events of POST /v1/chat with fetch() and a stream reader (EventSource
cannot POST), shows each turn's path, steps and latency, the products as cards, and compares
ticked products by their positions ("compare items 1 and 3"). It keeps a random session id in
sessionStorage, and the ``session_token`` a turn returns, sent back with later turns.

The routes are left out of the OpenAPI schema. They are routes, not a static-files mount, so the
metrics middleware counts each under its own path (``/chat``, ``/chat/chat.js``) as it does
every route; a mount would be counted as ``unmatched`` (see serving.openapi_docs).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

ASSETS = Path(__file__).with_name("assets")
PAGE_URL = "/chat"
# The page's own files; the HTML names them relative to /chat, so a root path prefix works too.
FILES = {"chat.js": "text/javascript; charset=utf-8", "chat.css": "text/css; charset=utf-8"}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}

router = APIRouter(include_in_schema=False)


@router.get(PAGE_URL)
async def chat_page() -> FileResponse:
    return FileResponse(
        ASSETS / "index.html",
        media_type="text/html; charset=utf-8",
        headers={**HEADERS, "Content-Security-Policy": CSP},
    )


@router.get(f"{PAGE_URL}/chat.js")
async def chat_script() -> FileResponse:
    return _asset("chat.js")


@router.get(f"{PAGE_URL}/chat.css")
async def chat_style() -> FileResponse:
    return _asset("chat.css")


def _asset(name: str) -> FileResponse:
    return FileResponse(ASSETS / name, media_type=FILES[name], headers=HEADERS)
