"""The demo ERP's queries on the seeded books, cross-checked against the journal with plain SQL."""

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from examples.erp import build_pack
from examples.erp.aging import bucket_for
from examples.erp.money import format_money
from server.tools.errors import ToolForbidden
from server.tools.registry import ToolRegistry
from tests.server.test_erp_support import (
    TODAY,
    Erp,
    dec,
    erp_fixture,
    erp_template,
    postgres_template,
    seed,
    sqlite_engine,
    sqlite_template,
)

# The fixture `erp` and the session templates it copies, shared by the ERP test modules.
__all__ = ["erp_fixture", "erp_template", "postgres_template", "sqlite_template"]

# -- the books as seeded ---------------------------------------------------------------------


@pytest.mark.parametrize("tenant", ["acme", "globex"])
async def test_seeded_books_balance_and_agree_with_subledgers(erp: Erp, tenant: str) -> None:
    await erp.assert_books_balance(tenant)


async def test_seed_is_deterministic(erp: Erp, tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    async with sqlite_engine(tmp_path / "other") as engine:
        registry = await seed(engine)
        await registry.setup_packs(engine, True)  # a second start seeds nothing more
        other = Erp("sqlite", engine, registry, async_sessionmaker(engine, class_=AsyncSession))
        for tenant in ("acme", "globex"):
            assert await other.gl_balances(tenant) == await erp.gl_balances(tenant)
            assert await other.ok("ar_aging", tenant=tenant) == await erp.ok(
                "ar_aging", tenant=tenant
            )
        count = "SELECT COUNT(*) FROM erp_journal_voucher"
        assert await other.value(count) == await erp.value(count)


async def test_seed_dates_follow_the_day_it_runs(tmp_path: Path) -> None:
    # Seeded on another day and read on that day, the aging looks exactly the same.
    later = date.today() + timedelta(days=400)
    async with sqlite_engine(tmp_path) as engine:
        registry = await seed(engine, later)
        moved = Erp("sqlite", engine, registry, async_sessionmaker(engine, class_=AsyncSession))
        aging = await moved.ok("ar_aging")
    assert aging["as_of"] == later.isoformat()
    assert aging["buckets"] == ACME_AR_BUCKETS


# -- cash ------------------------------------------------------------------------------------


async def test_cash_balance_acme(erp: Erp) -> None:
    outcome = await erp.run("cash_balance")
    assert outcome.ok
    result = outcome.result
    assert result["currency"] == "USD"
    assert [(a["name"], a["balance"]) for a in result["accounts"]] == [
        ("Operating Account", "197729.20"),
        ("Payroll Account", "1250.00"),
        ("Reserve Savings", "120000.00"),
    ]
    assert result["total"] == "318979.20"
    assert outcome.summary == "3 bank accounts, total USD 318,979.20"
    # The balances are the ledger's: sum the journal lines of each bank account here.
    gl = await erp.gl_balances("acme")
    assert [Decimal(a["balance"]) for a in result["accounts"]] == [
        gl["1010"],
        gl["1020"],
        gl["1030"],
    ]


async def test_cash_balance_globex_in_euro(erp: Erp) -> None:
    outcome = await erp.run("cash_balance", tenant="globex")
    assert outcome.result["currency"] == "EUR"
    assert [(a["name"], a["balance"]) for a in outcome.result["accounts"]] == [
        ("Geschäftskonto", "106659.00"),
        ("Festgeld", "210000.00"),
    ]
    assert outcome.summary == "2 bank accounts, total EUR 316.659,00"
    gl = await erp.gl_balances("globex")
    assert Decimal(outcome.result["total"]) == gl["1010"] + gl["1030"]


# -- aging -----------------------------------------------------------------------------------

ACME_AR_BUCKETS = {
    "current": "10735.20",
    "0-30": "10962.00",
    "31-60": "4138.40",
    "61-90": "2970.00",
    "90+": "11036.00",
}


async def test_ar_aging_acme(erp: Erp) -> None:
    outcome = await erp.run("ar_aging", roles=("sales",))
    result = outcome.result
    assert result["as_of"] == TODAY.isoformat()
    assert result["buckets"] == ACME_AR_BUCKETS
    assert result["total"] == "39841.60"
    assert result["overdue"] == "29106.40"
    assert outcome.summary == (
        "AR USD 39,841.60 open, USD 29,106.40 overdue (90+ days: USD 11,036.00)"
    )
    # The aging total is the receivables balance of the ledger.
    assert Decimal(result["total"]) == (await erp.gl_balances("acme"))["1100"]
    customers = {c["name"]: c for c in result["customers"]}
    assert customers["Wide World Importers"]["total"] == "17112.00"
    assert customers["Wide World Importers"]["buckets"]["90+"] == "7500.00"
    assert "Blue Yonder Airlines" not in customers  # its only invoice is cancelled
    assert "Fabrikam Industries" in customers
    assert result["customers"][0]["name"] == "Wide World Importers"  # largest first


async def test_ar_aging_buckets_each_invoice_by_its_due_date(erp: Erp) -> None:
    result = await erp.ok("ar_aging")
    # Recompute every open invoice's bucket here, from the invoice rows themselves.
    rows = await erp.rows(
        "SELECT number, due_date, total, amount_paid FROM erp_invoice "
        "WHERE tenant = 'acme' AND status IN ('open', 'partially_paid')"
    )
    expected = {}
    for number, due, total, paid in rows:
        due_day = due if isinstance(due, date) else date.fromisoformat(due)
        expected[number] = (bucket_for((TODAY - due_day).days), str(dec(total) - dec(paid)))
    got = {d["number"]: (d["bucket"], d["open_amount"]) for d in result["open_documents"]}
    assert got == expected
    # The seed puts invoices right on the bucket edges: 90 days is 61-90, 31 days is 31-60,
    # 30 days is 0-30.
    days = {d["number"]: d["days_past_due"] for d in result["open_documents"]}
    assert days["INV-3003"] == 90
    assert got["INV-3003"][0] == "61-90"
    assert days["INV-3006"] == 31
    assert got["INV-3006"][0] == "31-60"
    assert bucket_for(30) == "0-30"
    assert bucket_for(-1) == "current"
    assert bucket_for(91) == "90+"


async def test_ar_aging_globex(erp: Erp) -> None:
    result = await erp.ok("ar_aging", tenant="globex")
    assert result["currency"] == "EUR"
    assert result["buckets"] == {
        "current": "13292.30",
        "0-30": "12344.25",
        "31-60": "1689.80",
        "61-90": "6223.70",
        "90+": "7282.00",
    }
    assert result["total"] == "40832.05"
    assert Decimal(result["total"]) == (await erp.gl_balances("globex"))["1100"]


async def test_ap_aging_both_tenants(erp: Erp) -> None:
    acme = await erp.ok("ap_aging", roles=("purchasing",))
    assert acme["buckets"] == {
        "current": "4000.00",
        "0-30": "3139.90",
        "31-60": "615.40",
        "61-90": "1000.00",
        "90+": "3420.00",
    }
    assert acme["total"] == "12175.30"
    assert Decimal(acme["total"]) == -(await erp.gl_balances("acme"))["2000"]
    assert {s["name"] for s in acme["suppliers"]} >= {"Summit Steel Co.", "Sunrise Electronics"}
    globex = await erp.ok("ap_aging", tenant="globex")
    assert globex["buckets"] == {
        "current": "495.00",
        "0-30": "2450.00",
        "31-60": "1115.00",
        "61-90": "730.00",
        "90+": "4380.00",
    }
    assert Decimal(globex["total"]) == -(await erp.gl_balances("globex"))["2000"]


# -- purchase orders -------------------------------------------------------------------------


def numbers(result: dict[str, object]) -> list[str]:
    orders = result["purchase_orders"]
    assert isinstance(orders, list)
    return [order["number"] for order in orders]


async def test_list_purchase_orders_without_filters(erp: Erp) -> None:
    result = await erp.ok("list_purchase_orders")
    assert numbers(result) == [f"PO-{n}" for n in range(1001, 1011)]
    by_number = {po["number"]: po for po in result["purchase_orders"]}
    first = by_number["PO-1001"]
    assert first["supplier"] == "Acme Supplies"
    assert first["status"] == "awaiting_approval"
    assert first["total"] == "12400.00"
    assert first["lines"] == [
        {
            "sku": "WID-200",
            "item": "Aluminum Widget",
            "quantity": "1000",
            "unit_price": "6.10",
            "amount": "6100.00",
        },
        {
            "sku": "SNS-T1",
            "item": "Temperature Sensor T1",
            "quantity": "450",
            "unit_price": "14.00",
            "amount": "6300.00",
        },
    ]
    # Each order's total is the sum of its lines.
    for po in result["purchase_orders"]:
        assert Decimal(po["total"]) == sum(Decimal(line["amount"]) for line in po["lines"])
    assert Decimal(result["total"]) == sum(Decimal(po["total"]) for po in by_number.values())


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"status": "awaiting_approval"}, ["PO-1001", "PO-1002", "PO-1003", "PO-1004"]),
        ({"status": "Awaiting approval"}, ["PO-1001", "PO-1002", "PO-1003", "PO-1004"]),
        ({"status": "pending"}, ["PO-1001", "PO-1002", "PO-1003", "PO-1004"]),
        ({"status": "approved"}, ["PO-1006", "PO-1007"]),
        ({"status": "received"}, ["PO-1009", "PO-1010"]),
        ({"status": "draft"}, ["PO-1005"]),
        ({"status": "rejected"}, ["PO-1008"]),
        ({"supplier": "summit"}, ["PO-1004", "PO-1006"]),
        ({"supplier": "ACME SUPPLIES"}, ["PO-1001", "PO-1008"]),
        ({"min_amount": 10000}, ["PO-1001", "PO-1003", "PO-1008"]),
        ({"max_amount": "900"}, ["PO-1005", "PO-1009"]),
        ({"min_amount": "3150", "max_amount": 3360}, ["PO-1002", "PO-1007"]),
        ({"overdue": True}, ["PO-1006"]),
        ({"status": "approved", "overdue": False}, ["PO-1007"]),
        ({"supplier": "Sunrise", "status": "received"}, ["PO-1010"]),
    ],
)
async def test_list_purchase_orders_filters(
    erp: Erp, filters: dict[str, object], expected: list[str]
) -> None:
    result = await erp.ok("list_purchase_orders", roles=("purchasing",), **filters)
    assert numbers(result) == expected
    assert result["count"] == len(expected)


async def test_overdue_purchase_orders_are_flagged(erp: Erp) -> None:
    result = await erp.ok("list_purchase_orders", overdue=True)
    (order,) = result["purchase_orders"]
    assert order["overdue"] is True
    assert date.fromisoformat(order["expected_date"]) < TODAY
    globex = await erp.ok("list_purchase_orders", tenant="globex", overdue=True)
    assert numbers(globex) == ["PO-1005"]


async def test_list_purchase_orders_refuses_bad_filters(erp: Erp) -> None:
    bad_status = await erp.run("list_purchase_orders", status="lost")
    assert not bad_status.ok
    assert bad_status.result["error"] == (
        "unknown purchase order status 'lost'; use one of draft, awaiting_approval, approved, "
        "rejected, received"
    )
    reversed_range = await erp.run("list_purchase_orders", min_amount=500, max_amount=100)
    assert reversed_range.result["error"] == "min_amount is larger than max_amount"
    unknown = await erp.run("list_purchase_orders", supplier="Initech")
    assert unknown.result["error"] == "no supplier named 'Initech'"


async def test_pending_approvals_follow_the_approvers_roles(erp: Erp) -> None:
    finance = await erp.ok("pending_approvals", roles=("finance",))
    assert numbers(finance) == ["PO-1001", "PO-1002", "PO-1003", "PO-1004"]
    assert finance["total"] == "72280.00"
    assert finance["awaiting_others"] == 0
    # A purchasing manager approves up to USD 25,000.00; PO-1003 is USD 48,750.00.
    manager = await erp.ok("pending_approvals", roles=("purchasing_manager",))
    assert numbers(manager) == ["PO-1001", "PO-1002", "PO-1004"]
    assert manager["awaiting_others"] == 1
    by_number = {po["number"]: po for po in finance["purchase_orders"]}
    assert by_number["PO-1003"]["approver_roles"] == "admin or finance"
    assert by_number["PO-1001"]["approver_roles"] == "admin, finance or purchasing_manager"
    # Nobody approves their own request: sam.buyer requested PO-1001, PO-1002 and PO-1004.
    requester = await erp.ok("pending_approvals", roles=("purchasing_manager",), user="sam.buyer")
    assert numbers(requester) == []
    assert requester["awaiting_others"] == 4
    globex = await erp.ok("pending_approvals", tenant="globex", roles=("purchasing_manager",))
    assert numbers(globex) == ["PO-1001", "PO-1003", "PO-1010"]
    assert globex["approval_limit"] == "20000.00"


# -- stock -----------------------------------------------------------------------------------


async def test_stock_levels(erp: Erp) -> None:
    outcome = await erp.run("stock_levels", roles=("sales",))
    items = {item["sku"]: item for item in outcome.result["items"]}
    assert len(items) == 9
    assert outcome.summary == "9 items, 4 below reorder level"
    widget = items["WID-100"]
    assert widget["name"] == "Steel Widget"
    assert widget["on_hand"] == "420"
    assert widget["reorder_level"] == "200"
    assert widget["below_reorder"] is False
    assert widget["on_order"] == "2000"  # approved PO-1006
    assert widget["value"] == "1764.00"
    assert items["SNS-T1"]["on_order"] == "300"  # approved PO-1007
    assert items["WID-200"]["on_order"] == "0"  # PO-1001 awaits approval: not on order yet
    # The stock valuation is the inventory balance of the ledger.
    assert Decimal(outcome.result["value"]) == (await erp.gl_balances("acme"))["1200"]


async def test_stock_levels_below_reorder(erp: Erp) -> None:
    outcome = await erp.run("stock_levels", below_reorder=True)
    assert [item["sku"] for item in outcome.result["items"]] == [
        "CBL-05",
        "GEAR-12",
        "SNS-T1",
        "WID-200",
    ]
    assert outcome.summary == "4 items below reorder level"
    above = await erp.ok("stock_levels", below_reorder=False)
    assert len(above["items"]) == 5
    globex = await erp.ok("stock_levels", tenant="globex", below_reorder=True)
    assert [item["name"] for item in globex["items"]] == [
        "Dichtungssatz DS-210",
        "Edelstahlrohr 2m",
    ]


# -- dashboard -------------------------------------------------------------------------------


async def test_dashboard_summary_agrees_with_the_other_queries(erp: Erp) -> None:
    outcome = await erp.run("dashboard_summary", roles=("viewer",))
    result = outcome.result
    assert result["cash"] == (await erp.ok("cash_balance"))["total"]
    ar = await erp.ok("ar_aging")
    ap = await erp.ok("ap_aging")
    assert result["receivables"] == {"total": ar["total"], "overdue": ar["overdue"]}
    assert result["payables"] == {"total": ap["total"], "overdue": ap["overdue"]}
    assert result["purchase_orders_awaiting_approval"] == {"count": 4, "total": "72280.00"}
    assert result["open_sales_orders"] == {"count": 2, "total": "2397.60"}
    assert result["items_below_reorder"] == 4
    # Revenue booked in the last 30 days: INV-3011 and INV-3012, net of nothing cancelled.
    since = date.fromisoformat(result["revenue_last_30_days"]["since"])
    assert since == TODAY - timedelta(days=30)
    assert result["revenue_last_30_days"]["total"] == "9940.00"
    rows = await erp.rows(
        "SELECT subtotal, issue_date FROM erp_invoice WHERE tenant = 'acme' "
        "AND status <> 'cancelled'"
    )
    recent = sum(
        dec(subtotal)
        for subtotal, issued in rows
        if (issued if isinstance(issued, date) else date.fromisoformat(issued)) >= since
    )
    assert Decimal(result["revenue_last_30_days"]["total"]) == recent
    assert outcome.summary == (
        "cash USD 318,979.20, receivables USD 39,841.60, payables USD 12,175.30, "
        "4 POs awaiting approval"
    )


# -- roles and tenants -----------------------------------------------------------------------


async def test_tools_are_shown_by_role(erp: Erp) -> None:
    def names(*roles: str) -> set[str]:
        return {t["function"]["name"] for t in erp.registry.openai_tools(frozenset(roles))}

    assert names("viewer") == {
        "cash_balance",
        "ar_aging",
        "ap_aging",
        "list_purchase_orders",
        "purchase_orders_by_status",
        "stock_levels",
        "dashboard_summary",
    }
    assert names("sales") == {
        "ar_aging",
        "stock_levels",
        "create_customer",
        "create_sales_order",
    }
    assert names("purchasing_manager") == {
        "list_purchase_orders",
        "purchase_orders_by_status",
        "pending_approvals",
        "stock_levels",
        "approve_purchase_order",
        "reject_purchase_order",
    }
    assert "record_supplier_payment" in names("finance")
    assert "create_sales_order" not in names("finance")
    assert len(names("admin")) == 15
    assert names() == set()
    with pytest.raises(ToolForbidden):
        erp.registry.validate("cash_balance", "{}", frozenset({"sales"}))


async def test_tenants_see_only_their_own_books(erp: Erp) -> None:
    acme_names = {c["name"] for c in (await erp.ok("ar_aging"))["customers"]}
    globex_names = {c["name"] for c in (await erp.ok("ar_aging", tenant="globex"))["customers"]}
    assert acme_names
    assert globex_names
    assert acme_names.isdisjoint(globex_names)
    acme_po = await erp.ok("list_purchase_orders", status="awaiting_approval")
    globex_po = await erp.ok("list_purchase_orders", tenant="globex", status="awaiting_approval")
    assert acme_po["purchase_orders"][0]["supplier"] == "Acme Supplies"
    assert globex_po["purchase_orders"][0]["supplier"] == "Hansa Metallbau GmbH"
    assert globex_po["purchase_orders"][0]["total"] == "9870.00"
    # A supplier of the other tenant is unknown here.
    outcome = await erp.run("list_purchase_orders", supplier="Hansa")
    assert outcome.result == {"error": "no supplier named 'Hansa'"}
    # A tenant without books sees empty books, not someone else's.
    stranger = await erp.ok("cash_balance", tenant="initech")
    assert stranger["accounts"] == []
    assert stranger["total"] == "0.00"
    assert (await erp.ok("ar_aging", tenant="initech"))["total"] == "0.00"


def test_money_is_shown_in_the_tenants_locale() -> None:
    assert format_money(Decimal("12400"), "USD", "en-US") == "USD 12,400.00"
    assert format_money(Decimal("1234567.891"), "EUR", "de-DE") == "EUR 1.234.567,89"
    assert format_money(Decimal("-5"), "USD", "en-US") == "USD -5.00"


def test_tenant_settings_come_from_the_pack() -> None:
    registry = ToolRegistry()
    registry.add_pack(build_pack())
    acme = registry.tenant_settings("acme")
    globex = registry.tenant_settings("globex")
    assert (acme.currency, acme.locale) == ("USD", "en-US")
    assert (globex.currency, globex.locale) == ("EUR", "de-DE")
    assert registry.tenant_settings("unknown").currency == "USD"
