"""Fuzz every operation of the served OpenAPI schema with schemathesis: no 5xx, one error shape.

The schema comes from the in-process ASGI app (``create_app`` over the session's small bundle);
every operation it lists is fuzzed, so routes added later are covered without editing this file.
Three schemathesis phases run per operation: examples, coverage (schema-driven boundary and
negative cases: missing required fields, wrong types, out-of-range values, unexpected properties,
other HTTP methods, wrong content types) and fuzzing in positive and negative modes, seeded and
derandomized so a run is repeatable.

Checks on every response: no 5xx (schemathesis' ``not_a_server_error``); every 4xx is
``{"error": {"code", "type", "message", "param"}}`` with ``code`` equal to the status; a request
generated invalid (negative body or declared parameter) is refused with a 4xx, and a refused JSON
object body names the field at fault in ``param``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis
import jsonschema_rs
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation

from agents.layer import LLMLayer
from agents.llm import LLMSettings
from recsys.artifacts import Bundle
from serving.app import create_app
from serving.settings import ServingSettings
from tests.serving.conftest import ERROR_KEYS, assert_error

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 40  # per operation, fuzzing phase; coverage and examples cases come on top
SEED = 20240601
ADMIN_KEY = "fuzz-admin-key-the-fuzzer-never-sends"  # /admin routes on; fuzz meets the 401 path


def _app(bundle: Bundle, tmp: Path) -> FastAPI:
    """The served app over ``bundle``; everything it writes goes under ``tmp``."""
    settings = ServingSettings(
        bundle_path=tmp / "no-bundle-here",
        events_path=tmp / "events.sqlite",
        decision_log_path=tmp / "decisions.jsonl",
        load_on_start=False,
        admin_api_key=SecretStr(ADMIN_KEY),
    )
    # An LLM that cannot load: the fuzzer checks the HTTP contract of every route, and the LLM
    # routes answer it degraded at once instead of running the model on each of thousands of
    # cases (the real model has its own tests: tests/agents/test_llm_real.py, test_injection.py).
    no_llm = LLMLayer(LLMSettings(model_path=tmp / "no-model.gguf"))
    return create_app(settings, bundle, llm=no_llm)


@pytest.fixture(scope="module")
def fuzz_app(bundle: Bundle, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    # schemathesis starts the app's lifespan on the first call and ends it (event log closed)
    # when the fuzz test finishes: other tests get an app of their own.
    return _app(bundle, tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(scope="module")
def api_schema(fuzz_app: FastAPI, bundle: Bundle) -> Any:
    # Catalog ids and known shoppers, drawn half the time, so cases get past "unknown item".
    items = [str(i) for i in bundle.item_ids[:50]]
    users = [str(u) for u in bundle.user_ids[:50]]
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True},
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
            "dictionaries": {"items": {"values": items}, "users": {"values": users}},
            "parameters": {
                "path.item_id": {"dictionary": "items", "probability": 0.5},
                "body.item_id": {"dictionary": "items", "probability": 0.5},
                "body.item_ids[*]": {"dictionary": "items", "probability": 0.5},
                "body.user_id": {"dictionary": "users", "probability": 0.5},
            },
        }
    )
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app, config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.timeout(600)
@schema.parametrize()
def test_fuzz_no_5xx_and_one_error_shape(case: Any) -> None:
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
    status = response.status_code
    if 400 <= status < 500:
        _assert_error_shape(response)
    negative = {loc for loc, c in case.meta.components.items() if c.mode.is_negative}
    if ParameterLocation.BODY in negative:
        _assert_body_refused(case, response)
    if negative & {ParameterLocation.QUERY, ParameterLocation.PATH}:
        _assert_parameters_refused(case, response)


def _assert_error_shape(response: Any) -> None:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        pytest.fail(f"{status} body is not JSON: {response.text[:300]!r}")
    assert isinstance(body, dict) and set(body) == {"error"}, (status, body)
    error = body["error"]
    assert isinstance(error, dict) and set(error) == ERROR_KEYS, (status, body)
    assert error["code"] == status, (status, body)
    assert isinstance(error["type"], str) and error["type"], (status, body)
    assert isinstance(error["message"], str) and error["message"], (status, body)
    assert error["param"] is None or isinstance(error["param"], str), (status, body)


def _assert_body_refused(case: Any, response: Any) -> None:
    """An invalid body gets a 4xx; a refused JSON object names one of its fields in ``param``."""
    status = response.status_code
    if status < 400:
        pytest.fail(f"invalid body accepted with {status}: {case.method} {case.path} {case.body!r}")
    if status != 422 or not isinstance(case.body, dict):
        return  # a body that is not a JSON object is refused whole: no field to name
    param = response.json()["error"]["param"]
    assert param, f"422 for an invalid body names no field: {case.body!r} -> {response.text}"
    fields = set(case.body) | set(_body_schema(case).get("properties", {}))
    assert _root(param) in fields, f"param {param!r} is not a body field: {response.text}"


def _assert_parameters_refused(case: Any, response: Any) -> None:
    """Invalid declared query/path values get a 422 naming the parameter; undeclared extras
    (which schemathesis also counts as negative) are ignored by the server, as HTTP APIs do."""
    invalid = list(_invalid_parameters(case))
    status = response.status_code
    if not invalid:
        return
    assert 400 <= status < 500, (
        f"invalid {invalid} accepted with {status}: {case.path} {case.query}"
    )
    if status == 422:
        assert response.json()["error"]["param"] in invalid, (invalid, response.text)


def _invalid_parameters(case: Any) -> Iterator[str]:
    given = {"query": case.query or {}, "path": case.path_parameters or {}}
    for parameter in case.operation.definition.raw.get("parameters", []):
        values = given.get(parameter.get("in"), {})
        if parameter["name"] not in values:
            continue
        value = values[parameter["name"]]
        spec = parameter.get("schema", {})
        if isinstance(value, str) and spec.get("type") in {"integer", "number", "boolean"}:
            try:
                value = json.loads(value)  # query and path values are text on the wire
            except ValueError:
                yield parameter["name"]
                continue
        if not jsonschema_rs.validator_for(spec).is_valid(value):
            yield parameter["name"]


def _body_spec(case: Any) -> dict[str, Any]:
    """The operation's JSON request body schema as written (a ``$ref`` for a pydantic model)."""
    content = case.operation.definition.raw.get("requestBody", {}).get("content", {})
    return dict(content.get("application/json", {}).get("schema", {}))


def _body_schema(case: Any) -> dict[str, Any]:
    spec = _body_spec(case)
    ref = spec.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        components = case.operation.schema.raw_schema.get("components", {}).get("schemas", {})
        return dict(components.get(ref.rsplit("/", 1)[1], {}))
    return spec


def _root(param: str) -> str:
    """ "filters.brands[2]" -> "filters"."""
    return re.split(r"[.\[]", param, maxsplit=1)[0]


# Found by the fuzz while request models validated in pydantic's lax mode (0/1 and "yes" taken
# for booleans, "5" for 5): the models are strict now, and these stay refused.
@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        pytest.param("/v1/recommend", {"user_id": "u", "trace": 0}, "trace", id="bool-as-0"),
        pytest.param("/v1/rank", {"item_ids": ["x"], "explain": 1}, "explain", id="bool-as-1"),
        pytest.param(
            "/v1/recommend",
            {"user_id": "u", "filters": {"in_stock": 0}},
            "filters.in_stock",
            id="nested-bool-as-0",
        ),
        pytest.param(
            "/v1/recommend",
            {"user_id": "u", "filters": {"price_min": False}},
            "filters.price_min",
            id="number-as-false",
        ),
        pytest.param("/v1/recommend", {"user_id": "u", "k": "5"}, "k", id="int-as-string"),
        pytest.param("/v1/recommend", {"user_id": "u", "explain": "yes"}, "explain", id="yes"),
    ],
)
def test_schema_types_are_enforced(
    bundle: Bundle, tmp_path: Path, path: str, body: dict[str, Any], param: str
) -> None:
    assert_error(TestClient(_app(bundle, tmp_path)).post(path, json=body), 422, param)


@pytest.mark.timeout(600)
def _run_checked(machine: Any, seen: Callable[[Any, Any], object], steps: int) -> None:
    """Run a schemathesis state machine: every answer seen, no 5xx, every 4xx in the shape."""

    class Checked(machine):
        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            seen(response, case)
            case.validate_response(response, checks=[not_a_server_error])
            if 400 <= response.status_code < 500:
                _assert_error_shape(response)

    Checked.run(settings=hypothesis.settings(
        max_examples=30, stateful_step_count=steps, deadline=None, derandomize=True,
        suppress_health_check=list(hypothesis.HealthCheck),
    ))  # fmt: skip


def test_stateful_call_sequences_no_5xx(fuzz_app: FastAPI) -> None:
    """Calls chained along the schema's links (those schemathesis infers, such as an
    experiment created then ramped, promoted or rolled back by its name, and the declared ones
    from a list's first item to the item routes): no 5xx, every 4xx in the error shape."""
    config = schemathesis.Config.from_dict(
        {"seed": SEED, "phases": {"stateful": {"enabled": True}}}
    )
    stateful = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app, config=config)
    machine = stateful.as_state_machine()

    followed: list[str] = []
    _run_checked(machine, lambda response, case: followed.append(f"{case.method} {case.path}"), 5)
    assert len({call for call in followed}) >= 2, set(followed)  # sequences ran, not one call


def test_list_answers_lead_to_their_items(bundle: Bundle, tmp_path: Path) -> None:
    """The declared links alone: with only the list and item routes in the machine, every
    chain goes from a list answer's first item to the item routes (serving/links.py). Item ids
    are taken from real answers, so the item routes see known ids, not only fuzzed ones."""
    config = schemathesis.Config.from_dict(
        {"seed": SEED, "phases": {"stateful": {"enabled": True}}}
    )
    # an app of its own: a finished schemathesis run ends its app's lifespan (event log closed)
    own = _app(bundle, tmp_path)
    stateful = schemathesis.openapi.from_asgi("/openapi.json", own, config=config)
    linked = stateful.include(path_regex=r"^/v1/(recommend|search|items/\{item_id\}(/similar)?)$")
    machine = linked.as_state_machine()
    # the item routes have no random entry: they are reached through the declared links only
    rules = [name for name in dir(machine) if "__GET_v1_items_item_id" in name]
    assert {r.split("___200_")[1].split("__")[0] for r in rules} == {
        "FirstItem", "SimilarToFirstItem"
    }, rules
    assert not [name for name in dir(machine) if name.startswith("RANDOM__GET")]
    firsts: set[str] = set()  # first items of the list answers so far
    linked_ids: list[str] = []  # item routes called with one of them

    def seen(response: Any, case: Any) -> None:
        item = (case.path_parameters or {}).get("item_id")
        if item is not None and item in firsts:
            linked_ids.append(item)
        if item is None and response.status_code == 200 and response.json().get("items"):
            firsts.add(response.json()["items"][0]["item_id"])

    _run_checked(machine, seen, 4)
    assert linked_ids, sorted(firsts)[:5]  # item routes were called with ids lists gave
