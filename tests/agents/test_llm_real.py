"""The LLM layer on the real packaged model: in process, and through llama_cpp.server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from agents.layer import LLMLayer
from agents.llm import LLMClient, LLMSettings, LLMTimeout
from agents.llm_weights import served_weights
from agents.rerank import LLMReranker, RerankConfig
from agents.rewrite import QueryRewriter, RewriteConfig
from recsys.artifacts import Bundle, load_bundle
from serving.app import create_app
from serving.settings import ServingSettings

LONGTAIL = [
    "my sister just took up wild camping, what should I get her, nothing over 150",
    "present ideas for someone who enjoys vinyl and playlists",
    "something for my husband who likes working out under 30",
    "what can I get my mum? she is really into gardening",
    "gift for a friend who loves baking bread at the weekend",
    "my dad goes angling every sunday, any ideas under 80",
]
SCHEMA = {
    "type": "object",
    "properties": {"colour": {"enum": ["red", "green", "blue"]}, "count": {"type": "integer"}},
    "required": ["colour", "count"],
}


def test_structured_output_parses(llm: LLMClient) -> None:
    messages = [{"role": "user", "content": "Pick a colour and a number. Answer in JSON."}]
    answer = llm.complete(messages, schema=SCHEMA, max_tokens=40, purpose="test").json()
    assert answer["colour"] in {"red", "green", "blue"} and isinstance(answer["count"], int)
    report = llm.report()["test"]
    assert report["calls"] == 1 and report["completion_tokens"] > 0 and report["seconds"] > 0


def test_a_deadline_cuts_the_answer(llm: LLMClient) -> None:
    messages = [{"role": "user", "content": "Write a long story about a shop."}]
    with pytest.raises(LLMTimeout):
        llm.complete(messages, max_tokens=200, timeout_s=0.01, purpose="deadline")


def test_every_rewrite_parses_and_validates(llm: LLMClient, shop_bundle: Bundle) -> None:
    from recsys.search.stage import query_stage

    lexical = query_stage(shop_bundle).lexical
    rewriter = QueryRewriter(
        llm, shop_bundle.items, lambda w: w in lexical.vocab, RewriteConfig(timeout_s=60.0)
    )
    leaves = set(rewriter.by_leaf.values())
    for query in LONGTAIL:
        try:
            out = rewriter.rewrite(query, "force")
        except LLMTimeout:  # a busy machine: a flagged timeout is an allowed outcome
            continue
        assert out.used_llm and out.kind == "longtail"
        assert out.category is None or out.category in leaves
        assert all(any(w in lexical.vocab for w in k.lower().split()) for k in out.keywords)
        said = {float(n) for n in __import__("re").findall(r"\d+", query)}
        assert out.price_max is None or out.price_max in said


def test_scoring_rerank_reads_one_score_per_candidate(
    llm: LLMClient, shop_bundle: Bundle
) -> None:
    reranker = LLMReranker(llm, shop_bundle.items, RerankConfig(top_n=8, timeout_s=120.0))
    rng = np.random.default_rng(0)
    items = rng.choice(len(shop_bundle.item_ids), 12, replace=False)
    context = "recently looked at: " + str(shop_bundle.items.row(int(items[0])).get("title"))
    first = reranker.scores([int(i) for i in items[:8]], context)
    again = reranker.scores([int(i) for i in items[:8]], context)  # its prefix now cached
    assert first.shape == (8,) and np.isfinite(first).all()
    np.testing.assert_allclose(first, again, atol=1e-3)  # reusing the KV cache changes nothing
    assert 8 in reranker._priors  # the letters' prior, computed once per list length
    other = reranker.scores([int(i) for i in items[4:12]], context)
    assert not np.allclose(first, other, atol=1e-3)  # the scores read the products
    out = reranker.rerank(items, context, weight=100.0)  # the LLM alone decides the top 8
    assert sorted(out.order.tolist()) == list(range(8))
    assert out.order.tolist() == np.argsort(-out.llm, kind="stable").tolist()
    same = reranker.rerank(items, context, weight=0.0)
    assert same.order.tolist() == list(range(8))  # weight 0: the decided order, nothing asked


def _app(bundle: Bundle, tmp: Path, layer: LLMLayer) -> TestClient:
    settings = ServingSettings(
        bundle_path=tmp / "none", events_path=tmp / "e.sqlite",
        decision_log_path=tmp / "d.jsonl", load_on_start=False,
    )  # fmt: skip
    return TestClient(create_app(settings, bundle, llm=layer))


# on a busy machine a step may time out; the small model's rewrite may not parse (cut at its
# token cap) and its reasons may all be unusable: each is flagged, the non-LLM answer stands
ALLOWED = {"llm_timeout", "llm_error", "llm_reasons_timeout", "llm_reasons_error"}


def test_api_rewrite_and_rerank_never_leave_the_candidates(
    llm: LLMClient, shop_bundle: Bundle, tmp_path: Path
) -> None:
    layer = LLMLayer(client=llm)
    # the bundle is untuned: the setting's weight applies, and moves the order
    layer.rerank_config = RerankConfig(top_n=8, weight=1.0, timeout_s=60.0, reasons="on",
                                       reasons_timeout_s=60.0)  # fmt: skip
    layer.rewrite_config = RewriteConfig(timeout_s=60.0)  # correctness, on a shared machine
    client = _app(shop_bundle, tmp_path, layer)
    catalog = set(map(str, shop_bundle.item_ids))
    for query in LONGTAIL[:3]:
        plain = client.post("/v1/search", json={"query": query, "k": 8}).json()
        body = client.post(
            "/v1/search", json={"query": query, "k": 8, "rewrite": "auto", "llm_rerank": True}
        ).json()
        # on a busy machine a step may time out: then it is flagged and the non-LLM answer stands
        assert set(body["degraded"]) <= ALLOWED
        if "rewrite" in body:  # the model's, or the parser's reading when the model failed
            assert body["rewrite"]["used_llm"] or {"llm_timeout", "llm_error"} & set(
                body["degraded"]
            )
        assert {it["item_id"] for it in body["items"]} <= catalog
        assert len(body["items"]) <= 8 and len(plain["items"]) <= 8
    user = str(shop_bundle.user_ids[0])
    ranked = client.post("/v1/recommend", json={"user_id": user, "k": 5}).json()
    pool = client.post("/v1/recommend", json={"user_id": user, "k": 8}).json()
    llm_ranked = client.post(
        "/v1/recommend", json={"user_id": user, "k": 5, "llm_rerank": True}
    ).json()
    assert set(llm_ranked["degraded"]) <= ALLOWED and len(llm_ranked["items"]) == 5
    # the LLM reorders the top 8 only: nothing outside the pipeline's own top 8 comes back
    assert {it["item_id"] for it in llm_ranked["items"]} <= {it["item_id"] for it in pool["items"]}
    if not llm_ranked["degraded"]:
        assert any("llm:" in " ".join(it["reasons"]) for it in llm_ranked["items"])
    assert len(ranked["items"]) == 5
    metrics = client.get("/metrics").text  # every LLM call, per purpose and backend
    assert 'recsys_llm_calls_total{backend="llama_cpp",outcome=' in metrics
    assert 'purpose="rerank"' in metrics and 'purpose="rewrite"' in metrics
    assert 'recsys_llm_latency_seconds_bucket{backend="llama_cpp"' in metrics


def test_a_slow_llm_returns_the_non_llm_answer_flagged(
    llm: LLMClient, shop_bundle: Bundle, tmp_path: Path
) -> None:
    layer = LLMLayer(client=llm)
    layer.rerank_config = RerankConfig(weight=1.0, timeout_s=0.01)
    client = _app(shop_bundle, tmp_path, layer)
    user = str(shop_bundle.user_ids[1])
    plain = client.post("/v1/recommend", json={"user_id": user, "k": 5}).json()
    cut = client.post("/v1/recommend", json={"user_id": user, "k": 5, "llm_rerank": True}).json()
    assert cut["degraded"] == ["llm_timeout"]
    assert [it["item_id"] for it in cut["items"]] == [it["item_id"] for it in plain["items"]]
    broken = _app(shop_bundle, tmp_path, LLMLayer(LLMSettings(model_path=tmp_path / "no.gguf")))
    body = broken.post("/v1/search", json={"query": LONGTAIL[0], "rewrite": "force"}).json()
    assert body["degraded"] == ["llm_error"] and "rewrite" not in body


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server(llm: LLMClient) -> str:
    """``python -m llama_cpp.server`` with the packaged model, on loopback, in the weights
    the in-process backend runs (agents/llm_weights.py)."""
    port = _free_port()
    model = served_weights(LLMSettings())
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model),
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
         "--logits_all", "true"],  # logprobs, for the scoring rerank
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.5)
    else:
        proc.terminate()
        raise AssertionError("llama_cpp.server never came up")
    yield url  # type: ignore[misc]
    proc.terminate()
    proc.wait(timeout=30)


def test_the_http_backend_speaks_to_llama_cpp_server(
    llama_server: str, shop_bundle: Bundle
) -> None:
    client = LLMClient.from_settings(
        LLMSettings(backend="openai", base_url=llama_server, timeout_s=300.0)
    )
    messages = [{"role": "user", "content": "Pick a colour and a number. Answer in JSON."}]
    answer = client.complete(messages, schema=SCHEMA, max_tokens=40).json()
    assert answer["colour"] in {"red", "green", "blue"} and isinstance(answer["count"], int)
    from recsys.search.stage import query_stage

    lexical = query_stage(shop_bundle).lexical
    out = QueryRewriter(
        client, shop_bundle.items, lambda w: w in lexical.vocab, RewriteConfig(timeout_s=300.0)
    ).rewrite(LONGTAIL[2], "force")
    assert out.used_llm and (out.price_max is None or out.price_max == 30.0)


def test_logprob_scoring_over_http_matches_in_process(
    llama_server: str, llm: LLMClient, shop_bundle: Bundle
) -> None:
    """The scoring rerank on an OpenAI-compatible server (vLLM differs in URL and model)."""
    remote = LLMClient.from_settings(
        LLMSettings(backend="openai", base_url=llama_server, timeout_s=300.0)
    )
    reranker = LLMReranker(llm, shop_bundle.items, RerankConfig(top_n=6, calibrate=False))
    prompt = reranker.prompt([reranker.describe(i) for i in range(6)], "likes cheap things")
    labels = list("ABCDEF")
    here = llm.label_logprobs(prompt, labels, timeout_s=300.0)
    there = remote.label_logprobs(prompt, labels, timeout_s=300.0)
    assert there.shape == (6,) and np.isfinite(there).all()
    assert int(np.argmax(there)) == int(np.argmax(here))  # the same model reads the same
    over_http = LLMReranker(remote, shop_bundle.items, RerankConfig(top_n=6, timeout_s=300.0))
    out = over_http.rerank(np.arange(10), "likes cheap things", weight=1.0)
    assert sorted(out.order.tolist()) == list(range(6))


def test_an_unreachable_server_is_an_error_after_retries() -> None:
    client = LLMClient.from_settings(
        LLMSettings(backend="openai", base_url=f"http://127.0.0.1:{_free_port()}/v1", retries=2)
    )
    with pytest.raises(Exception, match="LLM server at"):
        client.complete([{"role": "user", "content": "hi"}], timeout_s=5)
    assert client.usage["chat"].errors == 1


def test_a_prompt_over_the_context_window_is_an_llm_error(llm: LLMClient) -> None:
    from agents.llm import LLMError

    huge = [{"role": "user", "content": "0" * 20_000}]  # far past n_ctx: llama.cpp refuses
    with pytest.raises(LLMError, match="backend failed"):
        llm.complete(huge, max_tokens=10, purpose="overflow")


def test_waiting_for_the_model_counts_against_the_deadline(llm: LLMClient) -> None:
    """A call queued behind another generation times out in the queue, at its deadline."""
    lock = llm.backend.lock  # type: ignore[attr-defined]
    assert lock.acquire(timeout=300)  # the model is busy with someone else's generation
    try:
        quick = [{"role": "user", "content": "Say hi."}]
        with pytest.raises(LLMTimeout):  # before the fix: waited for the lock, however long
            llm.complete(quick, max_tokens=5, timeout_s=0.3, purpose="queued")
        assert llm.usage["queued"].completion_tokens == 0  # nothing was generated for it
    finally:
        lock.release()


def test_the_reply_streams_its_opening_words_before_the_message(
    llm: LLMClient, shop_bundle: Bundle, tmp_path: Path
) -> None:
    from agents.memory import SQLiteMemory
    from agents.router import RouterConfig
    from serving.chat.protocol import ChatRequest
    from serving.chat.service import ChatService
    from serving.engine_port import ServedEngine
    from serving.lists.service import ListDeps
    from serving.metrics import ServingMetrics
    from serving.state import Served

    # deadlines far out: this checks the protocol, not the speed of a shared machine
    config = RouterConfig(deadline_s=600.0, reply_timeout_s=300.0)
    service = ChatService(SQLiteMemory(tmp_path / "chat.sqlite"), router=config)
    engine = ServedEngine(Served.build(shop_bundle), ListDeps(ServingMetrics()), "chat")
    layer = LLMLayer(client=llm)
    leaf = str(shop_bundle.items.category[0]).split(" > ")[-1].lower()
    for message in (f"show me {leaf} under 60", "any in blue?"):
        request = ChatRequest(session_id="stream", message=message)
        events = []
        for block in service.stream(engine, layer, request):
            head, data = block.strip().split("\n", 1)
            events.append((head.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
        kinds = [k for k, _ in events]
        assert kinds[0] == "step" and kinds[-2:] == ["message", "done"], kinds
        assert set(kinds[1:-2]) <= {"delta"}  # the words come between the tool and the message
        shown = ""
        for kind, data in events:
            if kind == "delta":
                shown = "" if data.get("reset") else shown + data["text"]
        reply = events[-2][1]
        if {"llm_rejected", "llm_timeout", "llm_error"} & set(reply["degraded"]):
            assert shown == ""  # whatever was streamed was taken back
        else:
            assert shown.strip() and reply["text"].startswith(shown.strip())


def test_tune_llm_records_a_weight_the_server_reads(llm: LLMClient, tmp_path: Path) -> None:
    from agents.tune import TuneConfig, tune_rerank
    from recsys.artifacts import TrainConfig, train_bundle
    from recsys.data.synth import generate
    from recsys.errors import BundleError
    from recsys.retrieval.retriever import RetrievalConfig
    from serving.llm_steps import rerank_weight
    from serving.state import Served

    ds = generate(users=300, items=150, seed=3)
    config = TrainConfig(sources=("popular", "covisit", "attributes"),
                         retrieval=RetrievalConfig(total=40, depth=40), ranking=None)  # fmt: skip
    path = train_bundle(ds, tmp_path / "bundle", config)
    section = tune_rerank(ds, path, llm, TuneConfig(users=12, top_n=6))
    assert "0.0" in section["validation_ndcg10_by_weight"]  # the order unchanged is a candidate
    assert section["users_scored"] <= 12 and section["backend"] == "llama_cpp"
    grid = {float(w) for w in section["validation_ndcg10_by_weight"]}
    assert section["weight"] in grid
    bundle = load_bundle(path)  # the checksums still hold
    assert bundle.manifest["llm"]["rerank"]["weight"] == section["weight"]
    assert rerank_weight(Served.build(bundle), default=-1.0) == section["weight"]
    with pytest.raises(BundleError, match="was not trained on"):
        tune_rerank(generate(users=50, items=40, seed=9), path, llm, TuneConfig(users=12))
