"""The tool registry: schemas from type hints, validation, role scoping, and running tools."""

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from server.tools.context import TenantSettings, ToolContext
from server.tools.errors import (
    ToolArgumentsInvalid,
    ToolError,
    ToolForbidden,
    ToolNotFound,
    ToolTimeout,
)
from server.tools.registry import ToolPack, ToolRegistry, ToolReturn, ValidatedCall


class OrderLine(BaseModel):
    """One line of an order."""

    item: str
    quantity: Decimal
    unit_price: Decimal | None = None


def build_pack() -> ToolPack:
    pack = ToolPack("sample")

    @pack.query(roles=("finance", "viewer"))
    async def balance(ctx: ToolContext) -> dict[str, Any]:
        """Tell the balance of the main account.

        More detail that the model does not need.
        """
        return {"balance": Decimal("1234.50"), "currency": ctx.currency}

    @pack.query()
    async def search(ctx: ToolContext, text: str, limit: int = 5, exact: bool | None = None) -> Any:
        """Search documents.

        Args:
            text: words to look for, matched
                case-insensitively.
            limit: how many documents at most.
        """
        return [f"{text}-{n}" for n in range(limit)]

    @pack.action(summary="Order {quantity} for {customer} {note}", roles=("sales",))
    async def place_order(
        ctx: ToolContext,
        customer: str,
        quantity: Decimal,
        lines: list[OrderLine],
        note: str | None = None,
    ) -> ToolReturn:
        """Place a sales order."""
        total = sum((line.quantity * (line.unit_price or Decimal(1)) for line in lines), Decimal())
        return ToolReturn({"total": total, "lines": len(lines)}, f"order for {customer} placed")

    @pack.action(summary=describe_refund)
    async def refund(ctx: ToolContext, invoice_number: str) -> str:
        """Refund an invoice."""
        if invoice_number == "INV-0":
            raise ToolError(f"invoice {invoice_number} is already refunded", code="refunded")
        return f"refunded {invoice_number}"

    @pack.query(timeout_s=0.05)
    async def slow(ctx: ToolContext) -> str:
        """Take far longer than allowed."""
        await asyncio.sleep(30)
        return "never"

    @pack.query()
    async def broken(ctx: ToolContext) -> str:
        """Fail with an internal error."""
        raise KeyError("secret internal detail")

    @pack.query()
    async def own_timeout(ctx: ToolContext) -> str:
        """Fail with a TimeoutError of its own, not the registry's."""
        raise TimeoutError("upstream api secret")

    @pack.query()
    async def wait_forever(ctx: ToolContext) -> str:
        """Wait until cancelled."""
        await asyncio.Event().wait()
        return "never"

    return pack


async def describe_refund(ctx: ToolContext, params: dict[str, Any]) -> str:
    if params["invoice_number"] == "INV-404":
        raise ToolError("no invoice INV-404")
    if params["invoice_number"] == "INV-500":
        raise RuntimeError("database is down")
    return f"Refund invoice {params['invoice_number']} for {ctx.user}"


@pytest.fixture
def registry() -> ToolRegistry:
    registry = ToolRegistry()
    registry.add_pack(build_pack())
    return registry


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine("sqlite+aiosqlite:///:memory:")
    yield engine
    await engine.dispose()


@pytest.fixture
def ctx(engine: AsyncEngine) -> ToolContext:
    return ToolContext(
        tenant="acme",
        user="ann",
        roles=frozenset({"sales"}),
        conversation_id="c1",
        turn_id="t1",
        currency="USD",
        locale="en-US",
        sessions=lambda: AsyncSession(engine),
    )


EVERYONE = frozenset({"admin", "finance", "sales", "viewer"})


def walk(node: Any) -> list[dict[str, Any]]:
    """Every dict inside a JSON value."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(walk(value))
    return found


# -- schemas ---------------------------------------------------------------------------------


def test_schema_is_an_openai_function_with_inlined_nested_models(registry: ToolRegistry) -> None:
    spec = registry.get("place_order")
    assert spec is not None
    tool = spec.openai_tool()
    assert tool["type"] == "function"
    assert tool["function"]["name"] == "place_order"
    assert tool["function"]["description"] == "Place a sales order."
    params = tool["function"]["parameters"]
    assert params["type"] == "object"
    assert params["required"] == ["customer", "quantity", "lines"]
    assert params["additionalProperties"] is False
    props = params["properties"]
    assert props["customer"] == {"type": "string"}
    assert props["quantity"] == {"anyOf": [{"type": "number"}, {"type": "string"}]}
    assert props["note"] == {"type": "string"}
    line = props["lines"]["items"]
    assert line["type"] == "object"
    assert set(line["properties"]) == {"item", "quantity", "unit_price"}
    assert line["required"] == ["item", "quantity"]
    assert line["description"] == "One line of an order."
    assert line["properties"]["unit_price"] == {"anyOf": [{"type": "number"}, {"type": "string"}]}
    # Nothing left for the endpoint to resolve, and no noise.
    text = json.dumps(params)
    assert "$ref" not in text
    assert "$defs" not in text
    assert all("title" not in node for node in walk(params) if "type" in node or "anyOf" in node)
    json.dumps(registry.openai_tools(EVERYONE))  # JSON-able as a whole


def test_schema_takes_descriptions_and_defaults_from_the_function(registry: ToolRegistry) -> None:
    spec = registry.get("search")
    assert spec is not None
    assert spec.description == "Search documents."
    props = spec.parameters["properties"]
    assert props["text"] == {
        "type": "string",
        "description": "words to look for, matched case-insensitively.",
    }
    assert props["limit"] == {
        "type": "integer",
        "default": 5,
        "description": "how many documents at most.",
    }
    assert props["exact"] == {"type": "boolean"}
    assert spec.parameters["required"] == ["text"]
    balance = registry.get("balance")
    assert balance is not None
    assert balance.description == "Tell the balance of the main account."
    assert balance.parameters == {
        "type": "object",
        "properties": {},
        "required": [],
        "additionalProperties": False,
    }


def test_a_pack_refuses_tools_it_cannot_describe() -> None:
    pack = ToolPack("bad")

    with pytest.raises(TypeError, match="async"):

        @pack.query()
        def not_async(ctx: ToolContext) -> str:  # type: ignore[type-var]
            """Sync."""
            return ""

    with pytest.raises(TypeError, match="'count' has no type hint"):

        @pack.query()
        async def untyped(ctx: ToolContext, count) -> str:  # type: ignore[no-untyped-def]
            """Untyped."""
            return ""

    with pytest.raises(TypeError, match=r"\*args"):

        @pack.query()
        async def variadic(ctx: ToolContext, *names: str) -> str:
            """Variadic."""
            return ""

    with pytest.raises(ValueError, match="needs a description"):

        @pack.query()
        async def silent(ctx: ToolContext) -> str:
            return ""

    with pytest.raises(ValueError, match="unknown argument 'amount'"):

        @pack.action(summary="Pay {amount}")
        async def pay(ctx: ToolContext, total: Decimal) -> str:
            """Pay."""
            return ""

    @pack.query(name="twice")
    async def first(ctx: ToolContext) -> str:
        """First."""
        return ""

    with pytest.raises(ValueError, match="already has a tool named 'twice'"):

        @pack.query(name="twice")
        async def second(ctx: ToolContext) -> str:
            """Second."""
            return ""


def test_tool_names_are_unique_across_packs(registry: ToolRegistry) -> None:
    other = ToolPack("other")

    @other.query()
    async def balance(ctx: ToolContext) -> str:
        """Another balance."""
        return ""

    with pytest.raises(ValueError, match="'balance' of pack 'other' is already registered"):
        registry.add_pack(other)
    assert registry.get("balance") is not None
    assert [pack.name for pack in registry.packs] == ["sample"]


def test_from_import_paths_loads_a_pack_module() -> None:
    registry = ToolRegistry.from_import_paths(["examples.erp"])
    assert registry.get("approve_purchase_order") is not None
    explicit = ToolRegistry.from_import_paths(["examples.erp:pack"])
    assert [spec.name for spec in explicit.visible_to(EVERYONE)] == [
        spec.name for spec in registry.visible_to(EVERYONE)
    ]
    with pytest.raises(TypeError, match="is not a ToolPack"):
        ToolRegistry.from_import_paths(["json:dumps"])
    with pytest.raises(ImportError):
        ToolRegistry.from_import_paths(["examples.no_such_pack"])


# -- roles -----------------------------------------------------------------------------------


def test_only_allowed_tools_are_shown(registry: ToolRegistry) -> None:
    def names(roles: set[str]) -> set[str]:
        return {tool["function"]["name"] for tool in registry.openai_tools(frozenset(roles))}

    open_to_all = {"search", "refund", "slow", "broken", "own_timeout", "wait_forever"}
    assert names(set()) == open_to_all
    assert names({"viewer"}) == open_to_all | {"balance"}
    assert names({"sales"}) == open_to_all | {"place_order"}
    assert names({"sales", "finance"}) == open_to_all | {"place_order", "balance"}


def test_validate_refuses_unknown_and_forbidden_tools(registry: ToolRegistry) -> None:
    with pytest.raises(ToolNotFound, match="unknown tool 'delete_everything'") as not_found:
        registry.validate("delete_everything", "{}", EVERYONE)
    assert not_found.value.code == "tool_not_found"
    with pytest.raises(ToolForbidden, match="tool 'balance' is not allowed") as forbidden:
        registry.validate("balance", "{}", frozenset({"sales"}))
    assert forbidden.value.code == "tool_forbidden"
    assert registry.validate("balance", "{}", frozenset({"viewer"})).arguments == {}


# -- validation ------------------------------------------------------------------------------


def test_valid_arguments_become_json_with_exact_decimals(registry: ToolRegistry) -> None:
    raw = (
        '{"customer": "Acme", "quantity": 0.1, "note": "rush",'
        ' "lines": [{"item": "bolt", "quantity": "2", "unit_price": 19.99}]}'
    )
    call = registry.validate("place_order", raw, EVERYONE)
    assert isinstance(call, ValidatedCall)
    assert call.spec.name == "place_order"
    assert call.arguments == {
        "customer": "Acme",
        "quantity": "0.1",
        "note": "rush",
        "lines": [{"item": "bolt", "quantity": "2", "unit_price": "19.99"}],
    }
    json.dumps(call.arguments)
    # A mapping works as well as JSON text, and absent optionals stay absent.
    call = registry.validate(
        "place_order",
        {"customer": "Acme", "quantity": Decimal("3"), "lines": [{"item": "nut", "quantity": 4}]},
        EVERYONE,
    )
    assert call.arguments == {
        "customer": "Acme",
        "quantity": "3",
        "lines": [{"item": "nut", "quantity": "4"}],
    }


@pytest.mark.parametrize(
    ("raw", "message", "field"),
    [
        (
            '{"quantity": 1, "lines": []}',
            "argument 'customer': field required",
            "customer",
        ),
        (
            '{"customer": "A", "quantity": "lots", "lines": []}',
            "argument 'quantity': input should be a valid decimal",
            "quantity",
        ),
        (
            '{"customer": "A", "quantity": 1,'
            ' "lines": [{"item": "x", "quantity": 1}, {"item": "y"}]}',
            "argument 'lines[1].quantity': field required",
            "lines[1].quantity",
        ),
        (
            '{"customer": "A", "quantity": 1, "lines": [], "discount": 5}',
            "argument 'discount': unknown argument",
            "discount",
        ),
    ],
)
def test_invalid_arguments_name_the_field(
    registry: ToolRegistry, raw: str, message: str, field: str
) -> None:
    with pytest.raises(ToolArgumentsInvalid) as caught:
        registry.validate("place_order", raw, EVERYONE)
    assert caught.value.message == message
    assert caught.value.field == field
    assert caught.value.code == "invalid_arguments"
    assert isinstance(caught.value, ToolError)


def test_all_problems_are_reported_together(registry: ToolRegistry) -> None:
    with pytest.raises(ToolArgumentsInvalid) as caught:
        registry.validate("place_order", "{}", EVERYONE)
    assert caught.value.problems == [
        "argument 'customer': field required",
        "argument 'quantity': field required",
        "argument 'lines': field required",
    ]
    assert caught.value.field == "customer"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"text": "a"', "arguments are not valid JSON"),
        ("not json at all", "arguments are not valid JSON"),
        ('["a", "b"]', "arguments must be a JSON object"),
    ],
)
def test_malformed_arguments_are_refused(registry: ToolRegistry, raw: str, message: str) -> None:
    with pytest.raises(ToolArgumentsInvalid, match=message) as caught:
        registry.validate("search", raw, EVERYONE)
    assert caught.value.field is None


def test_empty_arguments_text_means_no_arguments(registry: ToolRegistry) -> None:
    assert registry.validate("balance", "", EVERYONE).arguments == {}
    with pytest.raises(ToolArgumentsInvalid, match="argument 'text': field required"):
        registry.validate("search", "  ", EVERYONE)


# -- running ---------------------------------------------------------------------------------


async def test_a_plain_result_is_made_json_and_summarised(
    registry: ToolRegistry, ctx: ToolContext
) -> None:
    outcome = await registry.run(registry.validate("balance", "{}", EVERYONE), ctx)
    assert outcome.ok
    assert outcome.result == {"balance": "1234.50", "currency": "USD"}
    assert outcome.summary == "balance done"
    outcome = await registry.run(
        registry.validate("search", '{"text": "x", "limit": 2}', EVERYONE), ctx
    )
    assert outcome.result == ["x-0", "x-1"]
    assert outcome.summary == "2 results"
    outcome = await registry.run(
        registry.validate("refund", '{"invoice_number": "A"}', EVERYONE), ctx
    )
    assert outcome.summary == "refunded A"


async def test_a_tool_return_carries_its_own_summary(
    registry: ToolRegistry, ctx: ToolContext
) -> None:
    raw = (
        '{"customer": "Acme", "quantity": 1, "lines": [{"item": "a", "quantity": 2,'
        ' "unit_price": "1.25"}, {"item": "b", "quantity": 3}]}'
    )
    outcome = await registry.run(registry.validate("place_order", raw, EVERYONE), ctx)
    assert outcome.ok
    assert outcome.result == {"total": "5.50", "lines": 2}
    assert outcome.summary == "order for Acme placed"


async def test_a_tool_error_becomes_a_failed_outcome(
    registry: ToolRegistry, ctx: ToolContext
) -> None:
    call = registry.validate("refund", {"invoice_number": "INV-0"}, EVERYONE)
    outcome = await registry.run(call, ctx)
    assert not outcome.ok
    assert outcome.result == {"error": "invoice INV-0 is already refunded"}
    assert outcome.summary == "invoice INV-0 is already refunded"


async def test_a_slow_tool_times_out(registry: ToolRegistry, ctx: ToolContext) -> None:
    outcome = await registry.run(registry.validate("slow", {}, EVERYONE), ctx)
    assert not outcome.ok
    assert outcome.result == {"error": "tool 'slow' timed out after 0.05s"}
    assert ToolTimeout("slow", 10.0).message == "tool 'slow' timed out after 10s"


async def test_an_unexpected_exception_is_logged_not_shown(
    registry: ToolRegistry, ctx: ToolContext, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="server.tools.registry"):
        outcome = await registry.run(registry.validate("broken", {}, EVERYONE), ctx)
        own = await registry.run(registry.validate("own_timeout", {}, EVERYONE), ctx)
    assert not outcome.ok
    assert outcome.result == {"error": "tool 'broken' failed unexpectedly"}
    assert "secret" not in json.dumps(outcome.result) + outcome.summary
    # A TimeoutError the tool raised itself is a failure of the tool, not a timeout.
    assert own.result == {"error": "tool 'own_timeout' failed unexpectedly"}
    assert "secret internal detail" in caplog.text
    assert "upstream api secret" in caplog.text


async def test_cancellation_propagates(registry: ToolRegistry, ctx: ToolContext) -> None:
    task = asyncio.create_task(registry.run(registry.validate("wait_forever", {}, EVERYONE), ctx))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_stored_arguments_that_no_longer_fit_fail_cleanly(
    registry: ToolRegistry, ctx: ToolContext
) -> None:
    spec = registry.get("refund")
    assert spec is not None
    outcome = await registry.run(ValidatedCall(spec, {"invoice": "INV-1"}), ctx)
    assert not outcome.ok
    assert outcome.result["error"].startswith("argument 'invoice_number': field required")


# -- summaries -------------------------------------------------------------------------------


async def test_summaries_from_a_format_string_or_a_function(
    registry: ToolRegistry, ctx: ToolContext
) -> None:
    call = registry.validate(
        "place_order", {"customer": "Acme", "quantity": 2, "lines": [], "note": "asap"}, EVERYONE
    )
    assert await registry.summarize(call, ctx) == "Order 2 for Acme asap"
    call = registry.validate(
        "place_order", {"customer": "Acme", "quantity": 2, "lines": []}, EVERYONE
    )
    assert await registry.summarize(call, ctx) == "Order 2 for Acme "
    call = registry.validate("refund", {"invoice_number": "INV-7"}, EVERYONE)
    assert await registry.summarize(call, ctx) == "Refund invoice INV-7 for ann"
    assert (
        await registry.summarize(registry.validate("balance", {}, EVERYONE), ctx) == "Run balance"
    )


async def test_a_summary_may_refuse_the_action(registry: ToolRegistry, ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="no invoice INV-404"):
        await registry.summarize(
            registry.validate("refund", {"invoice_number": "INV-404"}, EVERYONE), ctx
        )
    with pytest.raises(ToolError, match="could not prepare action 'refund'") as caught:
        await registry.summarize(
            registry.validate("refund", {"invoice_number": "INV-500"}, EVERYONE), ctx
        )
    assert "database" not in caught.value.message


# -- pack hooks ------------------------------------------------------------------------------


async def test_setup_hooks_and_tenant_settings(engine: AsyncEngine) -> None:
    registry = ToolRegistry()
    plain = ToolPack("plain")
    registry.add_pack(plain)
    assert registry.tenant_settings("anyone") == TenantSettings("USD", "en-US")

    seen: list[tuple[AsyncEngine, bool]] = []
    pack = ToolPack("with_hooks")

    @pack.on_setup
    async def setup(engine: AsyncEngine, dev: bool) -> None:
        seen.append((engine, dev))

    @pack.tenant_info
    def settings(tenant: str) -> TenantSettings:
        return TenantSettings("EUR", "de-DE") if tenant == "globex" else TenantSettings()

    registry.add_pack(pack)
    await registry.setup_packs(engine, True)
    assert seen == [(engine, True)]
    assert registry.tenant_settings("globex") == TenantSettings("EUR", "de-DE")
    assert registry.tenant_settings("acme") == TenantSettings("USD", "en-US")
