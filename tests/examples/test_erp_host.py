"""The demo ERP host app over real HTTP: its OpenAPI document, calls made as the user (a JWT
signed as Parley signs it), tenant scoping, its own role checks, and exactly-once actions.

Each backend (SQLite file, PostgreSQL database) gets one seeded host process for the module;
tests that change the books touch documents no other test reads.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest
from openapi_spec_validator import validate

from examples.erp import pack
from tests.examples.conftest import ISSUER, ErpHost, bearer, call_token

# The ERP host app is a real process of its own: the full run has these tests.
pytestmark = pytest.mark.slow


def action_headers(key: str | None = None, **token: Any) -> dict[str, str]:
    """Headers of an action call: a token issued for a confirmation, and the key Parley sends."""
    confirmation = key or f"confirm-{uuid.uuid4().hex}"
    headers = bearer(call_token(confirmation=confirmation, **token))
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


async def get(host: ErpHost, path: str, token: str | None = None, **params: Any) -> httpx.Response:
    headers = bearer(token if token is not None else call_token())
    async with httpx.AsyncClient(base_url=host.url, timeout=30) as client:
        return await client.get(path, params=params, headers=headers)


async def post(
    host: ErpHost, path: str, body: Any, headers: dict[str, str], **options: Any
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=host.url, timeout=30) as client:
        return await client.post(path, json=body, headers=headers, **options)


# -- the document --------------------------------------------------------------------------


async def test_the_openapi_document_validates_and_offers_every_tool(host: ErpHost) -> None:
    async with httpx.AsyncClient(base_url=host.url) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert document["servers"] == [{"url": "/api"}]

    operations = {
        entry["operationId"]: (method, path, entry)
        for path, item in document["paths"].items()
        for method, entry in item.items()
    }
    assert set(operations) == set(pack.tools)
    for name, spec in pack.tools.items():
        method, path, entry = operations[name]
        hints = entry["x-parley"]
        assert hints["kind"] == spec.kind
        assert hints["roles"] == sorted(spec.roles)
        assert entry["summary"] == spec.description
        assert (method == "get") == (spec.kind == "query")
        # Every argument of the tool is a parameter or a body property, exactly once.
        parameters = {p["name"]: p for p in entry.get("parameters", []) if p["in"] != "header"}
        body = entry.get("requestBody", {}).get("content", {}).get("application/json", {})
        properties = body.get("schema", {}).get("properties", {})
        assert not set(parameters) & set(properties), name
        assert set(parameters) | set(properties) == set(spec.parameters["properties"]), name
        for argument in spec.parameters["required"]:
            assert parameters.get(argument, {}).get("required") or argument in body["schema"].get(
                "required", []
            ), (name, argument)
        if spec.kind == "action":
            assert hints["summary"]
            headers = [p for p in entry["parameters"] if p["in"] == "header"]
            assert [h["name"] for h in headers] == ["Idempotency-Key"]
            assert headers[0]["required"] is True

    method, path, approve = operations["approve_purchase_order"]
    assert (method, path) == ("post", "/purchase-orders/{po_number}/approve")
    assert approve["x-parley"]["summary"] == "Approve purchase order {po_number}"
    lines = operations["create_sales_order"][2]["requestBody"]["content"]["application/json"]
    assert lines["schema"]["properties"]["lines"]["maxItems"] == 100


# -- queries, per tenant -------------------------------------------------------------------


async def test_a_query_answers_from_the_callers_tenant(host: ErpHost) -> None:
    acme = await get(host, "/api/cash-balance", call_token(tenant="acme", roles=["viewer"]))
    globex = await get(host, "/api/cash-balance", call_token(tenant="globex", roles=["finance"]))
    assert acme.status_code == globex.status_code == 200
    assert acme.json()["currency"] == "USD"
    assert acme.json()["total"] == "318979.20"
    assert globex.json()["currency"] == "EUR"
    assert [(a["name"], a["balance"]) for a in globex.json()["accounts"]] == [
        ("Geschäftskonto", "106659.00"),
        ("Festgeld", "210000.00"),
    ]
    # A tenant without books sees empty books, never another tenant's.
    other = await get(host, "/api/purchase-orders", call_token(tenant="initech"))
    assert other.status_code == 200
    assert other.json()["count"] == 0


async def test_query_parameters_are_typed_and_checked(host: ErpHost) -> None:
    big = await get(host, "/api/purchase-orders", min_amount="20000", status="awaiting approval")
    assert big.status_code == 200
    assert [o["number"] for o in big.json()["purchase_orders"]] == ["PO-1003"]
    late = await get(host, "/api/purchase-orders", overdue="true")
    assert late.status_code == 200
    assert all(o["overdue"] for o in late.json()["purchase_orders"])

    for params, message in [
        ({"overdue": "maybe"}, "argument 'overdue'"),
        ({"colour": "red"}, "argument 'colour': unknown argument"),
        ({"status": "lost"}, "unknown purchase order status 'lost'"),
        ({"min_amount": "5", "max_amount": "1"}, "min_amount is larger than max_amount"),
        # Far beyond what the books hold: refused by name, not a failure of the rounding.
        ({"min_amount": "1e30"}, "min_amount is larger than 999,999,999,999.99"),
    ]:
        response = await get(host, "/api/purchase-orders", **params)
        assert response.status_code == 400, params
        assert message in response.json()["error"], response.json()
    unknown = await get(host, "/api/purchase-orders", supplier="Nobody Ltd")
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "no supplier named 'Nobody Ltd'", "code": "not_found"}


# -- who may call --------------------------------------------------------------------------


def _bad_tokens() -> list[Any]:
    # Each token is made when its test runs: one made at collection may expire before then.
    return [
        pytest.param(lambda: None, "a bearer token is required", id="none"),
        pytest.param(lambda: "not-a-jwt", "token signature or format is invalid", id="garbage"),
        pytest.param(
            lambda: call_token(secret="another-secret-of-someone-else-0123456789"),
            "token signature or format is invalid",
            id="wrong-secret",
        ),
        pytest.param(lambda: call_token(ttl_s=-120), "token expired", id="expired"),
        pytest.param(
            lambda: call_token(aud="crm"), "token audience is not accepted", id="wrong-audience"
        ),
        pytest.param(
            lambda: call_token(drop=["aud"]), "token lacks the 'aud' claim", id="no-audience"
        ),
        pytest.param(
            lambda: call_token(iss="someone"), "token issuer is not accepted", id="wrong-issuer"
        ),
        pytest.param(
            lambda: call_token(ttl_s=3600), "token lives longer than 60 s", id="long-lived"
        ),
        pytest.param(
            lambda: call_token(drop=["tenant"]), "token lacks the 'tenant' claim", id="no-tenant"
        ),
        pytest.param(
            lambda: call_token(drop=["call_id"]), "token lacks the 'call_id' claim", id="no-call"
        ),
        pytest.param(
            lambda: call_token(roles="admin"), "'roles' must be a list", id="roles-not-a-list"
        ),
        pytest.param(
            lambda: jwt.encode(
                {"sub": "alice", "aud": "erp", "iss": ISSUER}, None, algorithm="none"
            ),
            "not signed with an accepted algorithm",
            id="unsigned",
        ),
    ]


@pytest.mark.parametrize(("token", "reason"), _bad_tokens())
async def test_a_bad_token_gets_401(
    host: ErpHost, token: Callable[[], str | None], reason: str
) -> None:
    made = token()
    headers = {} if made is None else bearer(made)
    async with httpx.AsyncClient(base_url=host.url) as client:
        query = await client.get("/api/cash-balance", headers=headers)
        action = await client.post(
            "/api/purchase-orders/PO-1004/approve",
            json={},
            headers={**headers, "Idempotency-Key": f"key-{uuid.uuid4().hex}"},
        )
    for response in (query, action):
        assert response.status_code == 401
        assert reason in response.json()["error"]
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_role_the_tool_does_not_allow_gets_403(host: ErpHost) -> None:
    viewer = call_token(user="vera", roles=["viewer"])
    response = await get(host, "/api/approvals/purchase-orders", viewer)
    assert response.status_code == 403
    assert response.json()["error"] == (
        "pending_approvals needs one of the roles admin, finance, purchasing_manager"
    )
    action = await post(
        host,
        "/api/purchase-orders/PO-1004/approve",
        {},
        action_headers(f"key-{uuid.uuid4().hex}", user="vera", roles=["viewer"]),
    )
    assert action.status_code == 403
    assert "approve_purchase_order needs one of the roles" in action.json()["error"]

    # The app's finer rule: above the approval limit a purchasing manager may not approve.
    manager = await post(
        host,
        "/api/purchase-orders/PO-1003/approve",
        {},
        action_headers(f"key-{uuid.uuid4().hex}", user="mia", roles=["purchasing_manager"]),
    )
    assert manager.status_code == 403
    assert "above the approval limit of USD 25,000.00" in manager.json()["error"]
    assert manager.json()["code"] == "not_allowed"
    still = await get(host, "/api/purchase-orders", status="awaiting_approval")
    assert "PO-1003" in [o["number"] for o in still.json()["purchase_orders"]]


async def test_a_query_token_cannot_run_an_action(host: ErpHost) -> None:
    headers = {**bearer(call_token()), "Idempotency-Key": f"key-{uuid.uuid4().hex}"}
    response = await post(host, "/api/purchase-orders/PO-1004/approve", {}, headers)
    assert response.status_code == 403
    assert response.json()["code"] == "not_confirmed"


# -- actions, exactly once -----------------------------------------------------------------


SALES_ORDER = {"customer": "Fabrikam", "lines": [{"item": "WID-100", "quantity": 10}]}


async def test_an_action_sent_twice_with_one_key_runs_once(host: ErpHost) -> None:
    before = await host.count("erp_sales_order", "acme")
    key = f"confirm-{uuid.uuid4().hex}"
    first = await post(host, "/api/sales-orders", SALES_ORDER, action_headers(key))
    # Parley retries with the same key, under a fresh token for the same call.
    second = await post(host, "/api/sales-orders", SALES_ORDER, action_headers(key))
    assert first.status_code == second.status_code == 201, first.text
    assert first.content == second.content
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    order = first.json()
    assert order["customer"] == "Fabrikam Industries"
    assert order["total"] == "102.60"  # 10 x 9.50, plus 8 % tax
    assert await host.count("erp_sales_order", "acme") == before + 1

    # The key stands for that request only: other arguments under it are refused.
    other = await post(
        host, "/api/sales-orders", {**SALES_ORDER, "tax_rate": "0"}, action_headers(key)
    )
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    thief = await post(host, "/api/sales-orders", SALES_ORDER, action_headers(key, user="mallory"))
    assert thief.status_code == 422
    assert await host.count("erp_sales_order", "acme") == before + 1


async def test_concurrent_repeats_of_one_key_run_once(host: ErpHost) -> None:
    before = await host.count("erp_sales_order", "globex")
    key = f"confirm-{uuid.uuid4().hex}"
    body = {"customer": "Vogel", "lines": [{"item": "GX-210", "quantity": 1}]}
    async with httpx.AsyncClient(base_url=host.url, timeout=60) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    "/api/sales-orders",
                    json=body,
                    headers=action_headers(key, tenant="globex", user="greta"),
                )
                for _ in range(8)
            )
        )
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
    assert len({r.content for r in responses}) == 1
    assert sum("idempotent-replayed" not in r.headers for r in responses) == 1
    assert await host.count("erp_sales_order", "globex") == before + 1


async def test_an_action_without_a_key_is_refused_and_changes_nothing(host: ErpHost) -> None:
    before = await host.count("erp_customer", "acme")
    response = await post(host, "/api/customers", {"name": "Keyless Ltd"}, action_headers())
    assert response.status_code == 400
    assert response.json() == {
        "error": "the Idempotency-Key header is required for actions",
        "code": "idempotency_key_missing",
    }
    assert await host.count("erp_customer", "acme") == before


async def test_a_preview_answers_the_cards_line_and_changes_nothing(host: ErpHost) -> None:
    # A preview is sent before the user is asked: a plain call token, no key.
    headers = bearer(call_token(user="carol", roles=["finance"]))
    preview = await post(host, "/api/purchase-orders/PO-1004/approve/preview", {}, headers)
    assert preview.status_code == 200, preview.text
    summary = preview.json()["summary"]
    assert summary.startswith("Approve purchase order PO-1004")
    assert "USD" in summary  # the looked-up amount, which a template cannot give
    still = await get(host, "/api/purchase-orders", status="awaiting_approval")
    assert "PO-1004" in [o["number"] for o in still.json()["purchase_orders"]]

    # An action that cannot run is refused at the preview, with the books' reason.
    done = await post(host, "/api/purchase-orders/PO-1006/approve/preview", {}, headers)
    assert done.status_code == 403, done.text
    assert "not awaiting approval" in done.json()["error"]
    viewer = bearer(call_token(roles=["viewer"]))
    refused = await post(host, "/api/purchase-orders/PO-1004/approve/preview", {}, viewer)
    assert refused.status_code == 403
    seller = bearer(call_token(roles=["sales"]))
    bad = await post(host, "/api/sales-orders/preview", {"customer": 7}, seller)
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_arguments"


async def test_an_approval_lands_in_the_books_and_the_demo_data(host: ErpHost) -> None:
    key = f"confirm-{uuid.uuid4().hex}"
    headers = action_headers(key, user="carol", roles=["finance"])
    approved = await post(
        host, "/api/purchase-orders/po 1002/approve", {"comment": "ok for Q3"}, headers
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert approved.json()["decided_by"] == "carol"
    assert approved.json()["note"] == "ok for Q3"

    async with httpx.AsyncClient(base_url=host.url) as client:
        demo = await client.get("/api/demo/purchase-orders", params={"tenant": "acme"})
        globex = await client.get("/api/demo/purchase-orders", params={"tenant": "globex"})
        unknown = await client.get("/api/demo/purchase-orders", params={"tenant": "initech"})
    statuses = {o["number"]: o["status"] for o in demo.json()["purchase_orders"]}
    assert statuses["PO-1002"] == "approved"
    assert demo.json()["currency"] == "USD"
    assert demo.headers["access-control-allow-origin"] == "*"
    # The same number in the other tenant is another order, untouched.
    others = {o["number"]: o["status"] for o in globex.json()["purchase_orders"]}
    assert others["PO-1002"] == "awaiting_approval"
    assert unknown.status_code == 404

    # Deciding it again is the books' refusal, with their message, and is kept for its key.
    again_key = f"confirm-{uuid.uuid4().hex}"
    again = await post(
        host, "/api/purchase-orders/PO-1002/reject", {"reason": "late"}, action_headers(again_key)
    )
    assert again.status_code == 403
    assert again.json()["error"] == (
        "purchase order PO-1002 is not awaiting approval (status: approved)"
    )
    replayed = await post(
        host, "/api/purchase-orders/PO-1002/reject", {"reason": "late"}, action_headers(again_key)
    )
    assert replayed.content == again.content
    assert replayed.headers["idempotent-replayed"] == "true"


async def test_bad_action_bodies_get_clear_errors(host: ErpHost) -> None:
    def headers() -> dict[str, str]:
        return action_headers(f"key-{uuid.uuid4().hex}")

    async with httpx.AsyncClient(base_url=host.url) as client:
        cases = [
            (
                await client.post("/api/customers", content=b"[1, 2]", headers=headers()),
                400,
                "the body must be a JSON object",
            ),
            (
                await client.post("/api/customers", content=b"{nope", headers=headers()),
                400,
                "the body is not valid JSON",
            ),
            (
                await client.post("/api/customers", json={"email": "x@y.z"}, headers=headers()),
                400,
                "argument 'name': field required",
            ),
            (
                await client.post(
                    "/api/customers", json={"name": "Big", "notes": "x" * 70_000}, headers=headers()
                ),
                413,
                "the body is larger than 65536 bytes",
            ),
            (
                await client.post(
                    "/api/sales-orders",
                    json={
                        "customer": "Fabrikam",
                        "lines": [{"item": "WID-100", "quantity": 1}] * 101,
                    },
                    headers=headers(),
                ),
                400,
                "argument 'lines' has more than 100 items",
            ),
            (
                await client.post(
                    "/api/purchase-orders/PO-1004/approve",
                    json={"po_number": "PO-1001"},
                    headers=headers(),
                ),
                400,
                "argument 'po_number' is given in the path",
            ),
            (
                await client.post(
                    "/api/purchase-orders/PO-9999/approve", json={}, headers=headers()
                ),
                404,
                "no purchase order PO-9999",
            ),
            (
                await client.post(
                    "/api/customers",
                    json={"name": "Spaced"},
                    headers={**headers(), "Idempotency-Key": "has spaces"},
                ),
                400,
                "the Idempotency-Key must be 1 to 200 visible ASCII characters",
            ),
            (await client.get("/api/no-such-thing", headers=headers()), 404, "no such operation"),
            (
                await client.get("/api/customers", headers=headers()),
                405,
                "method not allowed on this path",
            ),
        ]
    for response, status, message in cases:
        assert response.status_code == status, (message, response.text)
        assert message in response.json()["error"], response.json()
        json.dumps(response.json())


# Values of every wrong (and some right) shape, for every argument of every operation.
ODD_VALUES: list[Any] = [
    None,
    True,
    -1,
    1.5,
    10**20,
    "1e30",
    "NaN",
    "",
    "x" * 5_000,
    "ünïcode ✓",
    [],
    [{}],
    {"a": 1},
]


async def test_odd_arguments_to_every_operation_get_a_json_4xx(host: ErpHost) -> None:
    # Runs as globex, whose books the other tests only read where this one could write.
    async with httpx.AsyncClient(base_url=host.url) as client:
        document = (await client.get("/openapi.json")).json()
        failures = []
        for path, item in document["paths"].items():
            for method, operation in item.items():
                in_path = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
                in_query = [
                    p["name"] for p in operation.get("parameters", []) if p["in"] == "query"
                ]
                body = operation.get("requestBody", {}).get("content", {})
                in_body = list(
                    body.get("application/json", {}).get("schema", {}).get("properties", {})
                )
                for name, value in itertools.product([*in_path, *in_query, *in_body], ODD_VALUES):
                    url = "/api" + path
                    for parameter in in_path:
                        text = json.dumps(value) if parameter == name else "PO-1004"
                        url = url.replace(f"{{{parameter}}}", quote(text, safe=""))
                    key = f"key-{uuid.uuid4().hex}"
                    headers = action_headers(key, tenant="globex", user="fuzz")
                    if method == "get":
                        params = {name: json.dumps(value)} if name in in_query else {}
                        response = await client.get(url, params=params, headers=headers)
                    else:
                        payload = {name: value} if name in in_body else {}
                        response = await client.post(url, json=payload, headers=headers)
                    is_json = response.headers["content-type"] == "application/json"
                    ran = response.status_code in (200, 201)
                    refused = 400 <= response.status_code < 500 and "error" in response.json()
                    if not (is_json and (ran or refused)):
                        failures.append((method, url[:80], name, response.status_code))
    assert failures == []
