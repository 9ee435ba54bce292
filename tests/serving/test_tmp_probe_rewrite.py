import dataclasses
import pytest
from fastapi.testclient import TestClient
import serving.search.service as svc
from serving.app import create_app

@pytest.mark.parametrize("q", ["{w} under 50", "{w} over 20", "{w} between 10 and 50", "cheap {w} from 30 dollars"])
def test_probe(bundle, settings, monkeypatch, q):
    monkeypatch.setattr(svc, "with_rewrite", lambda f, r, priced=True, audience=frozenset(): svc.rewritten_filters(f, r, audience))
    unpriced = dataclasses.replace(bundle.items, price=None)
    shop = dataclasses.replace(bundle, catalog=unpriced)
    client = TestClient(create_app(settings, shop))
    word = str(bundle.items.title[0]).split()[0]
    r = client.post("/v1/search", json={"query": q.format(w=word), "rewrite": "auto"})
    print(q, r.status_code, r.text[:200])
