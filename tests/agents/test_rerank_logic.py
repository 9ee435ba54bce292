"""The LLM rerank's arithmetic and routing, without a model (the real model: test_llm_real)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from agents.layer import LLMLayer
from agents.llm import LLMClient, LLMSettings
from agents.rerank import RerankConfig, blend, choose_weight, grounded
from agents.tune import ndcg_at
from recsys.decision import Decision
from recsys.decision.stage import DecisionEntry, Removed
from serving.llm_steps import reorder, rerank_weight


def test_weight_zero_keeps_the_decided_order_whatever_the_llm_says() -> None:
    rng = np.random.default_rng(0)
    for n in (2, 5, 20):
        llm = rng.normal(size=n) * 10
        assert np.argsort(-blend(llm, 0.0), kind="stable").tolist() == list(range(n))


def test_a_positive_weight_moves_what_the_llm_prefers_up() -> None:
    llm = np.array([0.0, 0.0, 0.0, 0.0, 5.0])  # the LLM is sure of the last one
    order = np.argsort(-blend(llm, 1.0), kind="stable")
    assert order[0] == 4


def _groups(informative: bool, n_groups: int = 300, n: int = 20, seed: int = 0) -> list[Any]:
    """Targets mostly near the top of the decided order, as a good ranker places them; LLM
    scores that know them or don't."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_groups):
        labels = np.zeros(n)
        labels[min(rng.geometric(0.25) - 1, n - 1)] = 1.0
        scores = rng.normal(size=n) + (3.0 * labels if informative else 0.0)
        out.append((scores, labels))
    return out


def test_the_weight_is_earned_on_validation() -> None:
    noise, _ = choose_weight(_groups(False), ndcg_at)
    useful, table = choose_weight(_groups(True), ndcg_at)
    assert useful > 0 and table[useful] > table[0.0]
    assert noise == 0.0  # an LLM that knows nothing earns nothing
    test_noise = _groups(False, seed=1)
    gain = np.mean([ndcg_at(np.argsort(-blend(s, noise), kind="stable"), y) for s, y in test_noise])
    base = np.mean([ndcg_at(np.arange(len(y)), y) for _, y in test_noise])
    assert gain >= base - 0.02


def test_reasons_must_be_grounded_and_not_copies() -> None:
    product = "Wildmoor Men's Blue Merino Wool Scarf | Scarves | $20.00"
    context = "recently looked at: red wool gloves"
    assert grounded("warm wool for cold days", product, context)
    assert grounded("matches the gloves you viewed", product, context)
    assert not grounded("Wildmoor Men's Blue Merino Wool Scarf", product, context)  # a copy
    assert not grounded("great value 1.1.1.1", product, context)  # a number
    assert not grounded("nice nice nice nice", product, context)  # a loop
    assert not grounded("perfect for hiking trips", product, context)  # shares no word
    assert not grounded("good", product, context)
    other = "Copperleaf Women's Classic Olive Cashmere Scarf"
    assert not grounded("Copperleaf Women's Classic Olive Cashre", product, context, other)


def _decision(n: int) -> Decision:
    ids = np.arange(100, 100 + n)
    shown = [DecisionEntry(int(i), "shown", f"r{i}", 1.0 - p / n, p, 0.1 * (p + 1))
             for p, i in enumerate(ids)]  # fmt: skip
    removed = Removed(np.array([999]), np.array([0.0]), np.array(["rule"], dtype=object))
    return Decision(ids, 1.0 - np.arange(n) / n, 0.1 * (np.arange(n) + 1), np.arange(n) * 2,
                    shown, removed, considered=n + 1)  # fmt: skip


def test_reordering_carries_each_items_propensity_and_slot_with_it() -> None:
    before = _decision(6)
    after = reorder(before, np.array([3, 0, 1, 2]), {3: "because"})
    assert after.ids.tolist() == [103, 100, 101, 102, 104, 105]
    for item, prop, slot in zip(after.ids, after.propensity, after.slots, strict=True):
        k = int(item) - 100
        assert prop == pytest.approx(before.propensity[k]) and slot == before.slots[k]
    shown = [e for e in after.entries if e.action == "shown"]
    assert [e.position for e in shown] == list(range(6))
    assert shown[0].item == 103 and shown[0].reason.endswith("llm: because")
    assert shown[0].propensity == pytest.approx(0.4)  # its own, not slot 0's
    assert after.entries[-1].action == "removed"


def test_the_served_weight_is_the_bundles_tuned_one() -> None:
    tuned = SimpleNamespace(bundle=SimpleNamespace(manifest={"llm": {"rerank": {"weight": 0.5}}}))
    untuned = SimpleNamespace(bundle=SimpleNamespace(manifest={}))
    assert rerank_weight(tuned, 0.0) == 0.5  # type: ignore[arg-type]
    assert rerank_weight(untuned, 0.0) == 0.0  # type: ignore[arg-type]
    assert rerank_weight(untuned, 0.25) == 0.25  # type: ignore[arg-type]


def test_routes_name_known_purposes_only() -> None:
    with pytest.raises(ValueError, match=r"unknown LLM purpose.*'rerankk'.*valid"):
        LLMSettings(routes={"rerankk": {"backend": "openai"}})  # type: ignore[dict-item]
    settings = LLMSettings(routes={"agent": {"backend": "openai", "model": "big"}})  # type: ignore[dict-item]
    assert settings.for_purpose("agent").backend == "openai"
    assert settings.for_purpose("agent").model == "big"
    assert settings.for_purpose("reply") is settings
    assert settings.for_purpose("agent").backend_key() != settings.backend_key()


def test_purposes_routed_alike_share_one_client() -> None:
    settings = LLMSettings(
        backend="openai", base_url="http://127.0.0.1:9/v1",
        routes={"agent": {"model": "big"}},  # type: ignore[dict-item]
    )  # fmt: skip
    layer = LLMLayer(settings)
    seen: list[Any] = []
    layer.observer = seen.append
    reply, rerank, agent = layer.client("reply"), layer.client("rerank"), layer.client("agent")
    assert reply is rerank and agent is not reply
    assert isinstance(agent, LLMClient) and agent.name == "openai:big"
    assert agent.observer is not None and len(layer.loaded()) == 2


def test_config_refuses_more_candidates_than_letters() -> None:
    with pytest.raises(ValueError, match="top_n=27"):
        RerankConfig(top_n=27)


def test_the_decision_widens_to_the_rerankers_top_only_when_it_may_move() -> None:
    from serving.lists.service import ListCall

    layer = LLMLayer(client=None)
    layer.rerank_config = RerankConfig(top_n=20)
    call = ListCall(endpoint="recommend", pipeline=None, inputs={}, k=5,  # type: ignore[arg-type]
                    llm_rerank=True)  # fmt: skip
    assert call.decision_request(layer, weight=0.0).k == 5  # the order stands: nothing to widen
    assert call.decision_request(layer, weight=0.5).k == 20
    assert call.decision_request(None, weight=0.5).k == 5  # no LLM: no rerank follows
    plain = ListCall(endpoint="recommend", pipeline=None, inputs={}, k=5)  # type: ignore[arg-type]
    assert plain.decision_request(layer, weight=0.5).k == 5
