"""The API's docs pages without the internet, and OpenAPI examples from the served bundle.

FastAPI's own /docs and /redoc load Swagger UI and ReDoc from a CDN: offline they are blank
pages. Here both load the copies that the ``fastapi-offline`` package ships (swagger-ui's
``swagger-ui-bundle.js`` and ``swagger-ui.css``, ReDoc's ``redoc.standalone.js``, a favicon),
served by the app itself under ``/static/docs``; the pages name no other host.

The schema's request examples name a real shopper and real items of the bundle being served (a
shopper with history, two items, a search query from an item's title), rebuilt when another
bundle version is served; with none served, illustrative ids stand in. The chat stream's events
are documented on the 200 response of POST /v1/chat.
"""

from __future__ import annotations

import copy
import math
import re
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from recsys.artifacts import Bundle
from serving.chat.protocol import CHAT_STREAM_DESCRIPTION, CHAT_STREAM_EXAMPLE
from serving.state import AppState

ASSETS_PACKAGE = "fastapi_offline"  # its static/ folder: the files below
SWAGGER_JS = "swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui.css"
REDOC_JS = "redoc.standalone.js"
FAVICON = "favicon.png"
STATIC_URL = "/static/docs"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"

EXAMPLE_PATHS = ("/v1/recommend", "/v1/search", "/v1/rank", "/v1/events", "/v1/compare",
                 "/v1/chat")  # fmt: skip
SIMILAR_PATH = "/v1/items/{item_id}/similar"
CHAT_PATH = "/v1/chat"


def assets_dir() -> Path:
    """The folder of Swagger UI's and ReDoc's files inside the installed package."""
    return Path(str(resources.files(ASSETS_PACKAGE) / "static"))


class _RouteLabelled:
    """The static files' app, naming its mount as the request's route (FastAPI's router sets
    ``scope["route"]`` for its routes, not for mounts): the metrics count asset requests under
    ``/static/docs`` instead of ``unmatched``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route: BaseRoute | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.route is not None:
            scope["route"] = self.route
        await self.app(scope, receive, send)


def install_docs(app: FastAPI, state: AppState) -> None:
    """/docs, its OAuth2 redirect and /redoc on local assets, and the bundle-aware schema.

    ``app`` is made with ``docs_url=None, redoc_url=None`` (FastAPI's CDN pages off).
    """
    assert app.openapi_url is not None
    openapi_url = app.openapi_url
    oauth2_url = app.swagger_ui_oauth2_redirect_url
    static = _RouteLabelled(StaticFiles(directory=assets_dir()))
    app.mount(STATIC_URL, static, name="docs-assets")
    static.route = app.routes[-1]

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        base = root(request)
        return get_swagger_ui_html(
            openapi_url=base + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{base}{STATIC_URL}/{SWAGGER_JS}",
            swagger_css_url=f"{base}{STATIC_URL}/{SWAGGER_CSS}",
            swagger_favicon_url=f"{base}{STATIC_URL}/{FAVICON}",
            oauth2_redirect_url=base + oauth2_url if oauth2_url else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    if oauth2_url:

        @app.get(oauth2_url, include_in_schema=False)
        async def swagger_ui_redirect() -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        base = root(request)
        return get_redoc_html(
            openapi_url=base + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{base}{STATIC_URL}/{REDOC_JS}",
            redoc_favicon_url=f"{base}{STATIC_URL}/{FAVICON}",
            with_google_fonts=False,  # fonts.googleapis.com: the system's fonts instead
        )

    app.openapi = BundleOpenAPI(app, state)  # type: ignore[method-assign]


class BundleOpenAPI:
    """``app.openapi``: FastAPI's schema plus examples from the served bundle, per version."""

    def __init__(self, app: FastAPI, state: AppState) -> None:
        self.app = app
        self.state = state
        self._lock = threading.Lock()
        self._cached: tuple[str | None, dict[str, Any]] | None = None

    def __call__(self) -> dict[str, Any]:
        served = self.state.current
        version = served.version if served is not None else None
        cached = self._cached
        if cached is not None and cached[0] == version:
            return cached[1]
        with self._lock:
            base = FastAPI.openapi(self.app)  # built once, kept in app.openapi_schema
            schema = copy.deepcopy(base)
            picks = Picks.of(served.bundle) if served is not None else STATIC_PICKS
            add_examples(schema, request_examples(picks), picks.item_a)
            document_chat_stream(schema)
            self._cached = (version, schema)
        return schema


@dataclass(frozen=True)
class Picks:
    """What the examples name: a shopper, two items, a query, a budget, a category."""

    user: str
    item_a: str
    item_b: str
    query: str
    price_max: float | None
    category: str | None
    source: str  # each example's description

    @classmethod
    def of(cls, bundle: Bundle) -> Picks:
        """A shopper with history (three items or more where one has), their latest item, and
        another item (of its category where the catalog has one)."""
        catalog = bundle.items
        n_items = len(bundle.item_ids)
        if n_items < 2 or len(bundle.user_ids) == 0:
            return STATIC_PICKS
        lengths = bundle.sequences.lengths
        with_history = np.flatnonzero(lengths >= 3)
        if not len(with_history):
            with_history = np.flatnonzero(lengths >= 1)
        u = int(with_history[0]) if len(with_history) else 0
        history = [int(i) for i in bundle.sequences.user(u)]
        a = history[-1] if history else 0
        b = _other_item(catalog.category, a, history, n_items)
        query = _title_query(catalog.title, catalog.brand, a)
        if query is None:
            query = _category_query(catalog.category, a) or STATIC_PICKS.query
        price_max = None
        if catalog.price is not None and np.isfinite(catalog.price[a]):
            price_max = float(max(10, math.ceil(float(catalog.price[a]) / 10) * 10))
        category = None
        if catalog.category is not None and catalog.category[a]:
            category = str(catalog.category[a])
        return cls(
            user=str(bundle.user_ids[u]),
            item_a=str(bundle.item_ids[a]),
            item_b=str(bundle.item_ids[b]),
            query=query,
            price_max=price_max,
            category=category,
            source=f"Ids from the served bundle {bundle.version}.",
        )


STATIC_PICKS = Picks(
    user="u00042",
    item_a="i00042",
    item_b="i00117",
    query="hiking boots",
    price_max=100.0,
    category=None,
    source="Illustrative ids: no bundle is served, so the server may not know them.",
)


def _other_item(category: np.ndarray | None, a: int, history: list[int], n_items: int) -> int:
    """An item besides ``a``: of the same category and not in the history where one is."""
    if category is not None and category[a]:
        same = [int(i) for i in np.flatnonzero(category == category[a]) if int(i) != a]
        seen = set(history)
        fresh = next((i for i in same if i not in seen), None)
        if fresh is not None or same:
            return fresh if fresh is not None else same[0]
    earlier = [i for i in reversed(history) if i != a]
    return earlier[0] if earlier else (a + 1) % n_items


WORD = re.compile(r"[^\W\d_][\w'-]*[^\W\d_]")


def _title_query(title: np.ndarray | None, brand: np.ndarray | None, item: int) -> str | None:
    """The last two words of the item's title that are not its brand: 'hiking boots'."""
    if title is None or not title[item]:
        return None
    brand_words = set(str(brand[item]).lower().split()) if brand is not None else set()
    words = [w for w in WORD.findall(str(title[item])) if w.lower() not in brand_words]
    words = [w for w in words if len(w) >= 3] or words
    return " ".join(words[-2:]).lower() if words else None


def _category_query(category: np.ndarray | None, item: int) -> str | None:
    if category is None or not category[item]:
        return None
    return str(category[item]).split(" > ")[-1].lower()


Examples = dict[str, dict[str, Any]]  # name -> {"summary", "value"}


def request_examples(p: Picks) -> dict[str, Examples]:
    """Request body examples per path; every value is a valid request of its endpoint."""

    def ex(summary: str, value: dict[str, Any]) -> dict[str, Any]:
        return {"summary": summary, "description": p.source, "value": value}

    budget = {"price_max": p.price_max} if p.price_max is not None else {}
    recommend = {
        "shopper": ex("A shopper with history", {"user_id": p.user, "k": 10}),
        "explained": ex(
            "With reasons and stage timings",
            {"user_id": p.user, "k": 5, "explain": True, "trace": True},
        ),
        "cold_start": ex("An unknown shopper: the cold-start list", {"user_id": "new-shopper"}),
    }
    if budget or p.category:
        filters: dict[str, Any] = dict(budget)
        if p.category:
            filters["categories"] = [p.category.split(" > ")[0]]
        recommend["filtered"] = ex(
            "Filtered by budget and category", {"user_id": p.user, "k": 10, "filters": filters}
        )
    search = {
        "query": ex("Words from an item's title", {"query": p.query, "k": 10}),
        "personal": ex(
            "For a shopper, under a budget",
            {
                "query": p.query,
                "user_id": p.user,
                "k": 5,
                **({"filters": budget} if budget else {}),
            },
        ),
    }
    rank = {
        "shopper": ex(
            "Two items, for a shopper", {"user_id": p.user, "item_ids": [p.item_a, p.item_b]}
        ),
        "unknown_item": ex(
            "With an id the catalog lacks (reported, not ranked)",
            {"user_id": p.user, "item_ids": [p.item_a, p.item_b, "no-such-item"]},
        ),
    }
    events = {
        "view": ex(
            "A shopper viewed an item",
            {"event_id": "docs-example-1", "user_id": p.user, "item_id": p.item_a, "event": "view"},
        ),
        "purchase": ex(
            "A purchase, with its time",
            {
                "event_id": "docs-example-2",
                "user_id": p.user,
                "item_id": p.item_b,
                "event": "purchase",
                "ts": 1717243200,
            },
        ),
    }
    compare = {
        "items": ex(
            "Compare two items",
            {"item_ids": [p.item_a, p.item_b], "question": "Which suits everyday use?"},
        ),
    }
    if p.category:
        compare["guidance"] = ex(
            "Buying guidance for a category",
            {"category": p.category, "question": "What should I look for?"},
        )
    ask = f"I'm looking for {p.query}" + (f" under {p.price_max:g}" if p.price_max else "")
    chat = {
        "shopper": ex(
            "A shopper asks", {"session_id": "docs-example", "message": ask, "user_id": p.user}
        ),
    }
    return dict(zip(EXAMPLE_PATHS, (recommend, search, rank, events, compare, chat), strict=True))


def add_examples(schema: dict[str, Any], examples: dict[str, Examples], item_id: str) -> None:
    """Set the examples on each operation's JSON body, and an item on /similar's path."""
    paths = schema.get("paths", {})
    for path, named in examples.items():
        body = paths.get(path, {}).get("post", {}).get("requestBody", {})
        media = body.get("content", {}).get("application/json")
        if media is not None:
            media["examples"] = named
    for parameter in paths.get(SIMILAR_PATH, {}).get("get", {}).get("parameters", []):
        if parameter.get("in") == "path" and parameter.get("name") == "item_id":
            parameter["example"] = item_id


def document_chat_stream(schema: dict[str, Any]) -> None:
    """The chat stream's events, on POST /v1/chat's 200 response."""
    ok = schema.get("paths", {}).get(CHAT_PATH, {}).get("post", {}).get("responses", {}).get("200")
    if ok is None:
        return
    ok["description"] = CHAT_STREAM_DESCRIPTION
    ok["content"] = {
        "text/event-stream": {"schema": {"type": "string"}, "example": CHAT_STREAM_EXAMPLE}
    }
