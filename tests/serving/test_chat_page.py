"""GET /chat: the shopping-chat page, self-contained, and driven in a real browser.

The browser tests run headless Debian chromium (/usr/bin/chromium) through Playwright against a
real uvicorn server on loopback, over the session's small bundle, with no language model (the
router answers alone, with templated replies: fast and deterministic). They are skipped when
Playwright or chromium is missing; `playwright install` is never needed.
"""

from __future__ import annotations

import json
import math
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient

from agents.layer import LLMLayer
from agents.llm import LLMSettings
from recsys.artifacts import Bundle
from serving.app import create_app
from serving.settings import ServingSettings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 60_000  # a busy CI machine; a turn takes milliseconds here
FINISHED = ".turn.assistant:is([data-status=done], [data-status=error])"
EXTERNAL_REF = re.compile(r"^\s*(?:https?:|//)", re.IGNORECASE)  # a src or href naming a host
URL = re.compile(r"\bhttps?://|@import|url\(\s*['\"]?(?!data:)", re.IGNORECASE)  # in text


class _Refs(HTMLParser):
    """Every src and href of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.refs += [value or "" for name, value in attrs if name in {"src", "href"}]


def test_the_page_and_its_assets_name_no_other_host(client: TestClient) -> None:
    page = client.get("/chat")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "'self'" in page.headers["content-security-policy"]  # the browser enforces it too
    parser = _Refs()
    parser.feed(page.text)
    assert parser.refs, "the page names its script and style sheet"
    for ref in parser.refs:
        assert not EXTERNAL_REF.search(ref), f"{ref!r} names another host"
    assets = [ref for ref in parser.refs if not ref.startswith("data:")]
    types = set()
    for ref in assets:
        path = urlsplit(urljoin("http://testserver/chat", ref)).path
        assert path.startswith("/chat/"), ref
        asset = client.get(path)
        assert asset.status_code == 200, (ref, asset.status_code)
        assert not URL.search(asset.text), f"{ref} names another host"
        types.add(asset.headers["content-type"].split(";")[0])
    assert types == {"text/javascript", "text/css"}
    assert not URL.search(page.text)

    # the metrics count the page under its own route, not as "unmatched"
    metrics = client.get("/metrics").text
    assert 'recsys_requests_total{endpoint="/chat",method="GET",status="200"} 1.0' in metrics
    assert 'endpoint="/chat/chat.js",method="GET",status="200"' in metrics
    assert 'endpoint="unmatched"' not in metrics

    schema = client.get("/openapi.json").json()
    assert not [p for p in schema["paths"] if p == "/chat" or p.startswith("/chat/")]


# ---- in a browser ----


@dataclass(frozen=True)
class Conversation:
    """A turn-1 category and budget and a turn-2 colour that the catalog has answers for."""

    category: str  # the full path, "A > B > C"
    budget: int
    colour: str

    @property
    def first(self) -> str:
        return f"{self.category.split(' > ')[-1].lower()} under {self.budget}"

    @property
    def second(self) -> str:
        return f"in {self.colour}"


def pick_conversation(bundle: Bundle) -> Conversation:
    """The largest leaf category with a colour that three in-stock items (else two) at most its
    median price share; the budget is that median, rounded up."""
    catalog = bundle.items
    assert catalog.category is not None and catalog.price is not None
    assert catalog.attributes is not None
    colours = [str(json.loads(a or "{}").get("colour", "")) for a in catalog.attributes]
    # what search shows: items in stock
    in_stock = catalog.in_stock if catalog.in_stock is not None else np.ones(len(colours), bool)
    counts = Counter(str(c) for c in catalog.category[in_stock] if c)
    for enough in (3, 2):
        for category, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            idx = np.flatnonzero((catalog.category == category) & in_stock)
            prices = catalog.price[idx]
            idx, prices = idx[np.isfinite(prices)], prices[np.isfinite(prices)]
            if len(idx) < 6:
                continue
            budget = math.ceil(float(np.median(prices)))
            under = Counter(colours[i] for i in idx[prices <= budget] if colours[i])
            if under and under.most_common(1)[0][1] >= enough:
                return Conversation(category, budget, under.most_common(1)[0][0])
    pytest.fail("no category of the catalog has a colour shared under its median price")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (the dev extra: pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def live_url(bundle: Bundle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app under uvicorn on a free loopback port, in a background thread."""
    tmp = tmp_path_factory.mktemp("chat-page")
    settings = ServingSettings(
        bundle_path=tmp / "no-bundle-here",
        events_path=tmp / "events.sqlite",
        decision_log_path=tmp / "decisions.jsonl",
        chat_memory=str(tmp / "chat.sqlite"),
        load_on_start=False,
    )
    llm = LLMLayer(LLMSettings(model_path=tmp / "none.gguf"))  # no model: templated replies
    app = create_app(settings, bundle, llm=llm)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="chat-page-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped before it started"
        assert time.monotonic() < deadline, "uvicorn did not start within 60 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        assert not errors, f"errors in the page: {errors}"
    finally:
        context.close()


def _wait_turns(page: Any, n: int) -> Any:
    """The n-th assistant turn, once it has finished (done or error)."""
    turn = page.locator(FINISHED).nth(n - 1)
    turn.wait_for(timeout=WAIT_MS)
    return page.locator(".turn.assistant").nth(n - 1)


def _say(page: Any, text: str, n: int) -> Any:
    page.fill("#message", text)
    page.click("#send")
    return _wait_turns(page, n)


def _cards(turn: Any) -> list[dict[str, Any]]:
    cards = []
    for card in turn.locator(".card").all():
        cards.append({
            "item_id": card.get_attribute("data-item-id"),
            "position": card.get_attribute("data-position"),
            "title": card.locator(".title").inner_text(),
            "price": float(card.locator(".price").inner_text()),
            "category": card.locator(".category").inner_text(),
        })  # fmt: skip
    return cards


def _check_cards(cards: list[dict[str, Any]], bundle: Bundle, talk: Conversation,
                 colour: str | None) -> None:  # fmt: skip
    catalog = bundle.items
    assert catalog.price is not None and catalog.attributes is not None
    assert catalog.title is not None and catalog.category is not None
    assert cards, "the turn showed no products"
    assert [c["position"] for c in cards] == [str(i) for i in range(1, len(cards) + 1)]
    for card in cards:
        i = catalog.index[card["item_id"]]
        price = float(catalog.price[i])
        assert price <= talk.budget and card["price"] <= talk.budget, card
        assert card["price"] == pytest.approx(price, abs=0.005), card
        assert card["title"] == str(catalog.title[i]), card
        assert card["category"] == str(catalog.category[i]) == talk.category, card
        if colour is not None:
            assert json.loads(str(catalog.attributes[i])).get("colour") == colour, card
            assert colour.lower() in card["title"].lower(), card


def test_a_conversation_in_the_browser(
    page: Any, live_url: str, bundle: Bundle, tmp_path: Path
) -> None:
    talk = pick_conversation(bundle)
    requests: list[Any] = []
    page.on("request", lambda request: requests.append(request))
    page.goto(f"{live_url}/chat")
    session_id = page.locator("#session-id").inner_text()
    assert re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", session_id)

    first = _say(page, talk.first, 1)
    assert first.get_attribute("data-status") == "done", first.inner_text()
    _check_cards(_cards(first), bundle, talk, colour=None)
    steps = first.locator(".step").all_inner_texts()
    assert steps and steps[0].startswith("direct · search_products"), steps
    meta = first.locator(".meta").inner_text()
    assert re.match(r"path direct · \d+ (ms|s)", meta), meta
    assert "llm_unavailable" in meta  # degraded, shown discreetly

    second = _say(page, talk.second, 2)
    assert second.get_attribute("data-status") == "done", second.inner_text()
    shown = _cards(second)
    _check_cards(shown, bundle, talk, colour=talk.colour)
    assert first.locator(".cards.stale").count() == 1  # positions now mean the second list
    assert first.locator("input.select:enabled").count() == 0

    picked = [0, 2] if len(shown) >= 3 else [0, 1]
    boxes = second.locator("input.select")
    for p in picked:
        boxes.nth(p).check()
    assert page.locator("#compare").is_enabled()
    page.click("#compare")
    third = _wait_turns(page, 3)
    positions = " and ".join(str(p + 1) for p in picked)
    assert page.locator(".turn.user").nth(2).inner_text() == f"compare items {positions}"
    assert third.get_attribute("data-status") == "done", third.inner_text()
    assert third.locator(".text").inner_text().strip()
    assert "compare_items" in third.locator(".steps").inner_text()
    compared = [c["item_id"] for c in _cards(third)]
    assert compared == [shown[p]["item_id"] for p in picked]
    page.screenshot(path=str(tmp_path / "chat_page.png"))

    # every request went to this server; the session id, and a token once one was issued,
    # travel with every turn
    assert all(r.url.startswith(live_url) for r in requests), [r.url for r in requests]
    bodies = [json.loads(r.post_data) for r in requests if r.method == "POST"]
    assert [b["message"] for b in bodies] == [talk.first, talk.second, f"compare items {positions}"]
    assert {b["session_id"] for b in bodies} == {session_id}
    assert "session_token" not in bodies[0]
    token = page.evaluate("() => sessionStorage.getItem('recsys.chat.session_token')")
    for later in bodies[1:]:
        assert later.get("session_token") == token, later


def _sse(*events: tuple[str, dict[str, Any]], newline: str = "\n") -> str:
    return "".join(
        f"event: {name}{newline}data: {json.dumps(data)}{newline}{newline}" for name, data in events
    )


def test_the_page_escapes_server_text_and_keeps_a_token_only_when_given(
    page: Any, live_url: str
) -> None:
    """Canned streams (CRLF lines, markup in the text, a token on the second turn only)."""
    markup = '<img src="x" onerror="window.hacked = 1"><b>bold</b>'
    turns = iter([
        _sse(("step", {"path": "direct", "why": "parsed", "tool": "search_products"}),
             ("message", {"text": markup, "degraded": [], "notes": [],
                          "items": [{"item_id": "i1", "title": markup, "price": 5,
                                     "category": "A > B", "brand": "<i>Acme</i>"}]}),
             ("done", {"seconds": 0.5, "path": "direct", "degraded": []}),
             newline="\r\n"),
        _sse(("message", {"text": "ok", "items": [], "degraded": ["llm_timeout"],
                          "notes": ["a note"]}),
             ("done", {"seconds": 1.25, "path": "fallback", "degraded": ["llm_timeout"],
                       "session_token": "tok-1"})),
        _sse(("message", {"text": "again", "items": []}), ("done", {"seconds": 0.01})),
    ])  # fmt: skip
    bodies: list[dict[str, Any]] = []

    def fulfil(route: Any) -> None:
        bodies.append(json.loads(route.request.post_data))
        route.fulfill(status=200, content_type="text/event-stream", body=next(turns))

    page.route("**/v1/chat", fulfil)
    page.goto(f"{live_url}/chat")
    first = _say(page, "anything", 1)
    assert first.locator(".text").inner_text() == markup  # shown as text, not parsed
    assert first.locator(".card .title").inner_text() == markup
    assert first.locator(".card .brand").inner_text() == "<i>Acme</i>"
    assert page.locator("img, b, i").count() == 0
    assert page.evaluate("() => window.hacked") is None
    assert first.locator(".meta").inner_text() == "path direct · 500 ms"

    second = _say(page, "more", 2)
    meta = second.locator(".meta").inner_text()
    assert meta == "path fallback · 1.25 s · degraded: llm_timeout", meta
    assert second.locator(".notes").inner_text().startswith("note")
    _say(page, "again", 3)
    assert [b.get("session_token") for b in bodies] == [None, None, "tok-1"]
    assert len({b["session_id"] for b in bodies}) == 1
