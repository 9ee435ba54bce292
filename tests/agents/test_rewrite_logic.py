"""The rewriter's own logic (classification, validation) with a scripted client.

A fake is fine here: these tests pin what validation keeps and throws away, whatever a model
says. ``test_llm_real.py`` runs the same code on the real packaged model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from agents.llm import LLMClient, LLMError
from agents.rewrite import QueryRewriter, RewriteConfig, query_kind
from recsys.catalog import Catalog

CATALOG = Catalog.from_frame(
    pd.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "title": ["Carbon Fishing Rod", "Trail Running Shoes", "Ceramic Mug"],
            "category": [
                "Sports > Fishing > Fishing Rods",
                "Footwear > Running > Running Shoes",
                "Home > Kitchen > Mugs",
            ],
        }
    )
)
VOCAB = {"carbon", "fishing", "rod", "rods", "trail", "running", "shoes", "ceramic", "mug", "mugs"}


class Scripted:
    """A backend that answers with a fixed text (one piece)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer if isinstance(answer, str) else json.dumps(answer)
        self.calls = 0

    def stream(self, messages: Any, schema: Any, max_tokens: int, temperature: float,
               deadline: float) -> Iterator[str]:  # fmt: skip
        self.calls += 1
        yield self.answer

    def count(self, messages: Any) -> int:
        return 1


def rewriter(answer: Any) -> tuple[QueryRewriter, Scripted]:
    backend = Scripted(answer)
    return QueryRewriter(LLMClient(backend), CATALOG, VOCAB.__contains__), backend


def test_head_and_longtail() -> None:
    config = RewriteConfig()
    assert query_kind("fishing rod", VOCAB.__contains__, config) == "head"
    assert query_kind("my dad loves angling", VOCAB.__contains__, config) == "longtail"  # unknown
    long = "something nice for a friend who goes fishing"
    assert query_kind(long, VOCAB.__contains__, config) == "longtail"  # natural language


def test_auto_leaves_head_queries_alone() -> None:
    rw, backend = rewriter({"keywords": ["x"], "category": None, "price_max": None})
    out = rw.rewrite("fishing rod", "auto")
    assert out.kind == "head" and not out.used_llm and out.queries == ["fishing rod"]
    assert backend.calls == 0


def test_validation_keeps_only_what_the_catalog_and_query_support() -> None:
    answer = {"keywords": ["fishing rod", "zzz gadget", "Fishing  rod"], "category": "Fishing Rods",
              "price_max": 999}  # fmt: skip
    rw, _ = rewriter(answer)
    out = rw.rewrite("my dad goes angling every weekend, nothing over 80", "auto")
    assert out.keywords == ("fishing rod",)
    assert out.category == "Sports > Fishing > Fishing Rods"
    assert out.price_max == 80.0  # 999 was never said; the stated budget is used
    assert any("zzz gadget" in r for r in out.rejected)
    assert any("price_max 999" in r for r in out.rejected)


def test_unknown_category_and_bad_json_are_refused() -> None:
    rw, _ = rewriter({"keywords": ["mug"], "category": "Spaceships", "price_max": None})
    out = rw.rewrite("a cup for my tea loving aunt please", "force")
    assert out.category is None and any("Spaceships" in r for r in out.rejected)
    broken, _ = rewriter("not json at all")
    with pytest.raises(LLMError, match="not JSON"):
        broken.rewrite("a cup for my tea loving aunt please", "force")


def test_answers_are_cached() -> None:
    rw, backend = rewriter({"keywords": ["mug"], "category": None, "price_max": None})
    for _ in range(3):
        rw.rewrite("a cup for my tea loving aunt please", "force")
    assert backend.calls == 1 and rw.llm.usage["rewrite"].cache_hits == 2
