"""benchmarks/server_floor.py: its floor apps answer like the served endpoint, and every layer
names a factory that exists."""

from __future__ import annotations

import importlib
import json

from starlette.testclient import TestClient

from benchmarks import server_floor


def test_the_bare_and_fastapi_floors_answer_a_recommend_sized_body() -> None:
    for factory in (server_floor.bare_app, server_floor.fastapi_app):
        with TestClient(factory()) as client:
            got = client.post("/v1/recommend", json={"user_id": "u1", "k": 10})
            assert got.status_code == 200
            assert got.content == server_floor.BODY
            assert len(json.loads(got.content)["items"]) == 10
            assert client.get("/metrics").content == b""  # load.py scrapes it


def test_every_layer_names_an_app_factory() -> None:
    for layer, target in server_floor.LAYERS.items():
        module, _, name = target.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), layer
