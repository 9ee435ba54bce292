"""The rewriter's own logic (classification, validation) with a scripted client.

A fake is fine here: these tests pin what validation keeps and throws away, whatever a model
says. ``test_llm_real.py`` runs the same code on the real packaged model.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from agents.llm import LLMClient, LLMError
from agents.rewrite import QueryRewriter, RewriteConfig, lexical_confidence, query_kind
from agents.rewrite_cache import (
    BUNDLE_FILE,
    RedisStore,
    RewriteCache,
    RewriteCacheSettings,
    SQLiteStore,
    open_store,
    query_key,
    redis_url_from_feast,
    to_doc,
)
from agents.rewrite_cli import frequent, precompute
from agents.vocabulary import CatalogVocabulary
from recsys.catalog import Catalog
from recsys.search.lexical import LexicalIndex

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
            "price": [60.0, 90.0, 12.0],
            "attributes": [
                json.dumps({"colour": "black", "material": "carbon"}),
                json.dumps({"colour": "red", "audience": "women"}),
                json.dumps({"colour": "white", "material": "ceramic"}),
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
               deadline: float, *purpose: str) -> Iterator[str]:  # fmt: skip
        self.calls += 1
        yield self.answer

    def label_logprobs(self, prompt: str, labels: Any, deadline: float,
                       purpose: str = "") -> np.ndarray | None:  # fmt: skip
        raise AssertionError("the rewriter never scores labels")

    def count(self, messages: Any) -> int:
        return 1


def rewriter(answer: Any, **extra: Any) -> tuple[QueryRewriter, Scripted]:
    backend = Scripted(answer)
    return QueryRewriter(LLMClient(backend), CATALOG, VOCAB.__contains__, **extra), backend


def confidence() -> Any:
    return lexical_confidence(LexicalIndex().build(CATALOG, np.ones(len(CATALOG))))


def test_head_and_longtail_by_retrieval_confidence() -> None:
    config, score = RewriteConfig(), confidence()
    assert score("fishing rod") == pytest.approx(1.0)  # one item holds every word
    assert score("carbon fishing rod under 80") == pytest.approx(1.0)  # a budget is no product
    assert score("my dad loves angling") < config.min_confidence  # unknown words weigh most
    # known words spread over unrelated items: no single match explains the query
    assert score("ceramic running rod") < config.min_confidence
    for query, kind in [("fishing rod", "head"), ("my dad loves angling", "longtail"),
                        ("something nice for a friend who goes fishing", "longtail")]:  # fmt: skip
        assert query_kind(query, VOCAB.__contains__, config, score(query)) == kind
    # the length alone decides nothing: a long query the catalog knows is head
    long = "red trail running shoes running shoes trail"
    assert query_kind(long, VOCAB.__contains__, config, score(long)) == "head"


def test_without_an_index_the_known_share_decides() -> None:
    config = RewriteConfig()
    assert query_kind("fishing rod", VOCAB.__contains__, config) == "head"
    assert query_kind("my dad loves angling", VOCAB.__contains__, config) == "longtail"


def test_auto_leaves_head_queries_to_the_parser() -> None:
    rw, backend = rewriter({"keywords": ["x"], "category": None}, confidence=confidence())
    out = rw.rewrite("fishing rod", "auto")
    assert out.kind == "head" and not out.used_llm and out.queries == ["fishing rod"]
    assert out.source == "parser" and out.confidence == pytest.approx(1.0)
    assert backend.calls == 0


def test_prices_and_attributes_come_from_the_shopping_agents_parser() -> None:
    parser = CatalogVocabulary.build(CATALOG)
    rw, backend = rewriter({"keywords": ["x"], "category": None}, parser=parser,
                           confidence=confidence())  # fmt: skip
    out = rw.rewrite("black carbon fishing rod over 20", "auto")
    assert backend.calls == 0 and out.kind == "head"
    assert out.price_min == 20.0 and out.price_max is None and out.price_source == "text"
    assert dict(out.attributes) == {"colour": ("black",), "material": ("carbon",)}
    assert out.category == "Sports > Fishing > Fishing Rods"
    ranged = rw.rewrite("ceramic mug between 5 and 15", "auto")
    assert (ranged.price_min, ranged.price_max) == (5.0, 15.0)


def test_validation_keeps_only_what_the_catalog_and_query_support() -> None:
    answer = {"keywords": ["fishing rod", "zzz gadget", "Fishing  rod"], "category": "Fishing Rods",
              "price_max": 999}  # fmt: skip
    rw, _ = rewriter(answer)
    out = rw.rewrite("my dad goes angling every weekend, nothing over 80", "auto")
    assert out.keywords == ("fishing rod",)
    assert out.category == "Sports > Fishing > Fishing Rods"
    assert out.price_max == 80.0 and out.price_source == "text"  # the words' own budget
    assert out.source == "llm" and out.used_llm
    assert any("zzz gadget" in r for r in out.rejected)


def test_a_capable_models_prices_and_attributes_are_checked() -> None:
    parser = CatalogVocabulary.build(CATALOG)
    answer = {"keywords": ["mug"], "category": None, "price_min": 7, "price_max": 999,
              "attributes": [{"key": "colour", "value": "White"},
                             {"key": "colour", "value": "plaid"},
                             {"key": "material", "value": "carbon"}]}  # fmt: skip
    rw, _ = rewriter(answer, parser=parser, config=RewriteConfig(ask_filters=True))
    assert {"price_min", "attributes"} <= set(rw.schema()["properties"])
    out = rw.rewrite("a white cup for my aunt, 7 is fine", "force")
    assert dict(out.attributes)["colour"] == ("white",)  # the catalog's spelling
    rejected = " | ".join(out.rejected)
    assert "'plaid': not a catalog value (" in rejected  # names the valid ones
    assert "material='carbon': not something the query asks for" in rejected
    assert out.price_min == 7 and out.price_source == "llm"  # said, and the parser saw no price
    assert out.price_max is None and "price_max 999: not a number the shopper said" in rejected


def test_unknown_category_and_bad_json_are_refused() -> None:
    rw, _ = rewriter({"keywords": ["mug"], "category": "Spaceships"})
    out = rw.rewrite("a cup for my tea loving aunt please", "force")
    assert out.category is None and any("Spaceships" in r for r in out.rejected)
    broken, _ = rewriter("not json at all")
    with pytest.raises(LLMError, match="not JSON"):
        broken.rewrite("a cup for my tea loving aunt please", "force")


def test_answers_are_cached_by_the_client() -> None:
    rw, backend = rewriter({"keywords": ["mug"], "category": None})
    for _ in range(3):
        rw.rewrite("a cup for my tea loving aunt please", "force")
    assert backend.calls == 1 and rw.llm.usage["rewrite"].cache_hits == 2


def test_query_keys_normalize() -> None:
    assert query_key("  Running   Shoes? ") == query_key("running shoes") == "running shoes"
    assert query_key("Mum’s mug!") == "mum's mug"
    assert query_key("tea-loving aunt, $1,000.50 max") == "tea loving aunt $1,000.50 max"


def _shared(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "shared.sqlite")


def test_workers_share_one_store_keyed_by_bundle_version(tmp_path: Path) -> None:
    answer = {"keywords": ["mug"], "category": "Mugs"}
    one, first = rewriter(answer, cache=RewriteCache("v1", _shared(tmp_path)))
    two, second = rewriter(answer, cache=RewriteCache("v1", _shared(tmp_path)))  # a worker
    made = one.rewrite("a cup for my tea loving aunt please", "auto")
    hit = two.rewrite("A cup for my tea-loving aunt, please!", "auto")
    assert first.calls == 1 and second.calls == 0 and hit.source == "cache"
    assert hit.keywords == made.keywords and hit.category == made.category
    new, third = rewriter(answer, cache=RewriteCache("v2", _shared(tmp_path)))
    assert new.rewrite("a cup for my tea loving aunt please", "auto").source == "llm"
    assert third.calls == 1  # another bundle version never reads v1's rewrites


def test_precomputed_rewrites_come_first(tmp_path: Path) -> None:
    offline, _ = rewriter({"keywords": ["ceramic mug"], "category": "Mugs"})
    queries = ["a cup for my aunt", "fishing rod", "A cup for my aunt?", "gift for a runner"]
    assert frequent(queries)[0] == ("a cup for my aunt", 2)
    stats = precompute(offline, "v1", queries, tmp_path / BUNDLE_FILE, top=10)
    assert stats["stored"] == 2 and stats["longtail"] == 2  # fishing rod is a head query
    served, backend = rewriter({"keywords": ["x"], "category": None},
                               cache=RewriteCache("v1", _shared(tmp_path), tmp_path))  # fmt: skip
    out = served.rewrite("a cup for my aunt", "auto")
    assert out.source == "precomputed" and out.keywords == ("ceramic mug",)
    assert backend.calls == 0


def test_redis_store_is_shared(redis_port: int, tmp_path: Path) -> None:
    settings = RewriteCacheSettings(store="auto", sqlite_path=tmp_path / "unused.sqlite")
    store = open_store(settings, f"127.0.0.1:{redis_port}")  # the feature store's Redis
    assert isinstance(store, RedisStore)
    one, _ = rewriter({"keywords": ["mug"], "category": None}, cache=RewriteCache("v1", store))
    other = RewriteCache("v1", open_store(settings, f"127.0.0.1:{redis_port}"))  # a worker
    two, backend = rewriter({"keywords": ["x"], "category": None}, cache=other)
    one.rewrite("a cup for my tea loving aunt please", "auto")
    assert two.rewrite("a cup for my tea loving aunt please", "auto").source == "cache"
    assert backend.calls == 0 and not (tmp_path / "unused.sqlite").exists()


def test_a_store_that_fails_is_a_miss_not_an_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    down = RewriteCache("v1", RedisStore(f"redis://127.0.0.1:{port}/0", ttl_s=60))
    rw, backend = rewriter({"keywords": ["mug"], "category": None}, cache=down)
    assert rw.rewrite("a cup for my tea loving aunt please", "auto").keywords == ("mug",)
    assert backend.calls == 1


def test_store_settings_name_the_valid_ones() -> None:
    assert redis_url_from_feast("redis:6380,password=pw,db=2") == "redis://:pw@redis:6380/2"
    assert redis_url_from_feast("h:1,ssl=true") == "rediss://h:1/0"
    with pytest.raises(ValueError, match="auto, redis, sqlite, off"):
        open_store(RewriteCacheSettings(store="redis"))
    assert open_store(RewriteCacheSettings(store="off")) is None
    assert to_doc(rewriter({"keywords": []})[0].parse("mug", "head", 1.0)).startswith("{")
