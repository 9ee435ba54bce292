"""Request limits checked before any route runs, answered in the one error shape.

- A URL (path and query) longer than ``max_url_bytes``: 414.
- A body longer than ``max_body_bytes``: 413, from its Content-Length when it states one, else
  as soon as the streamed body passes the cap (nothing more is read).
- A JSON string holding a lone UTF-16 surrogate (``"\\ud800"``): 422 naming the field. Python
  decodes it into a ``str`` that no response can encode, so a route echoing it (an unknown id
  in /v1/rank) would fail with a 500 after doing the work.

The body is read here whole (it is capped) and handed on unchanged.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.errors import error_json

# a \\uD800-\\uDFFF escape: the only way a lone surrogate gets into a valid UTF-8 JSON body
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class RequestLimits:
    def __init__(self, app: ASGIApp, max_body_bytes: int, max_url_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_url = max_url_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        url = url_bytes(scope)
        if url > self.max_url:
            message = f"the URL is {url} bytes; at most {self.max_url} are accepted"
            await error_json(414, "uri_too_long", message)(scope, receive, send)
            return
        declared = content_length(scope)
        if declared is not None and declared > self.max_body:
            await self._too_large(scope, receive, send, f"{declared}")
            return
        body = bytearray()
        more = True
        while more:
            received = await receive()
            if received["type"] != "http.request":  # the client went away: nothing to answer
                return
            body += received.get("body", b"")
            more = received.get("more_body", False)
            if len(body) > self.max_body:
                await self._too_large(scope, receive, send, f"over {self.max_body}")
                return
        where = lone_surrogate(bytes(body))
        if where is not None:
            text = f"{where or 'body'}: a lone UTF-16 surrogate (\\ud800-\\udfff) is not text"
            await error_json(422, "invalid_request", text, where or None)(scope, receive, send)
            return
        whole: Message = {"type": "http.request", "body": bytes(body), "more_body": False}
        await self.app(scope, replay([whole], receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, size: str) -> None:
        message = f"the request body is {size} bytes; at most {self.max_body} are accepted"
        await error_json(413, "payload_too_large", message)(scope, receive, send)


def url_bytes(scope: Scope) -> int:
    """The length of the request's path and query, as the URL limit counts it."""
    return len(scope.get("raw_path") or scope["path"].encode()) + len(scope["query_string"])


def content_length(scope: Scope) -> int | None:
    """The declared body length; None when there is none or it is not a number."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that first gives back ``messages``, already read from it."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()  # http.disconnect, for streaming responses that wait on it

    return replayed


def lone_surrogate(body: bytes) -> str | None:
    """The path of the first JSON string (or key) with a lone surrogate ("" for the body
    itself); None when there is none or the body is not JSON (the route says so then)."""
    if not _SURROGATE_ESCAPE.search(body):
        return None  # the common case: one regex scan, no second parse
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return _find(doc, "")


def _find(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return None if _encodes(value) else path
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _find(item, f"{path}[{i}]")
            if found is not None:
                return found
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if not _encodes(key):
                return path or ""
            found = _find(item, inner)
            if found is not None:
                return found
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
