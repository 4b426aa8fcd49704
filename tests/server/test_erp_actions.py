"""The demo ERP's actions: each works, leaves the books balanced, or is refused clearly."""

from datetime import timedelta
from decimal import Decimal

import pytest

from server.tools.errors import ToolForbidden
from tests.server.test_erp_support import (
    TODAY,
    Erp,
    dec,
    erp_fixture,
    erp_template,
    postgres_template,
    sqlite_template,
)

__all__ = ["erp_fixture", "erp_template", "postgres_template", "sqlite_template"]

FINANCE = ("finance",)
MANAGER = ("purchasing_manager",)
SALES = ("sales",)


async def po_status(erp: Erp, number: str, tenant: str = "acme") -> str:
    status: str = (await erp.document("erp_purchase_order", tenant, number))["status"]
    return status


# -- purchase order approval -----------------------------------------------------------------


async def test_approve_purchase_order(erp: Erp) -> None:
    summary = await erp.summary("approve_purchase_order", roles=MANAGER, po_number="PO-1001")
    assert summary == "Approve purchase order PO-1001 from Acme Supplies for USD 12,400.00"
    outcome = await erp.run(
        "approve_purchase_order", roles=MANAGER, user="maria.manager", po_number="PO-1001"
    )
    assert outcome.ok
    assert outcome.summary == "PO-1001 approved"
    assert outcome.result == {
        "number": "PO-1001",
        "supplier": "Acme Supplies",
        "status": "approved",
        "total": "12400.00",
        "currency": "USD",
        "decided_by": "maria.manager",
        "decided_on": TODAY.isoformat(),
        "note": None,
    }
    row = await erp.document("erp_purchase_order", "acme", "PO-1001")
    assert row["status"] == "approved"
    assert row["decided_by"] == "maria.manager"
    pending = await erp.ok("pending_approvals", roles=MANAGER)
    assert [po["number"] for po in pending["purchase_orders"]] == ["PO-1002", "PO-1004"]
    # Approved orders are on order: the widgets and sensors of PO-1001 now count.
    stock = {i["sku"]: i for i in (await erp.ok("stock_levels"))["items"]}
    assert stock["WID-200"]["on_order"] == "1000"
    # A second approval of the same order is refused.
    again = await erp.refused("approve_purchase_order", roles=MANAGER, po_number="PO-1001")
    assert again == "purchase order PO-1001 is not awaiting approval (status: approved)"


async def test_approval_accepts_loose_numbers_and_keeps_a_comment(erp: Erp) -> None:
    summary = await erp.summary(
        "approve_purchase_order", roles=FINANCE, po_number="po 1002", comment="budgeted"
    )
    assert summary == (
        "Approve purchase order PO-1002 from Pacific Packaging for USD 3,150.00 with the comment "
        '"budgeted"'
    )
    result = await erp.ok("approve_purchase_order", roles=FINANCE, po_number="1002", comment="ok")
    assert result["note"] == "ok"
    assert await po_status(erp, "PO-1002") == "approved"


async def test_a_large_order_needs_finance_or_admin(erp: Erp) -> None:
    message = await erp.refused("approve_purchase_order", roles=MANAGER, po_number="PO-1003")
    assert message == (
        "purchase order PO-1003 from Sunrise Electronics for USD 48,750.00 is above the approval "
        "limit of USD 25,000.00 and needs an approver with the admin or finance role"
    )
    assert await po_status(erp, "PO-1003") == "awaiting_approval"
    assert (await erp.run("approve_purchase_order", roles=FINANCE, po_number="PO-1003")).ok
    assert await po_status(erp, "PO-1003") == "approved"
    # Globex's limit is EUR 20,000.00 and shows in its own format.
    globex = await erp.refused(
        "approve_purchase_order", tenant="globex", roles=MANAGER, po_number="PO-1002"
    )
    assert "EUR 25.800,00" in globex
    assert "EUR 20.000,00" in globex


@pytest.mark.parametrize(
    ("number", "status"),
    [
        ("PO-1005", "draft"),
        ("PO-1006", "approved"),
        ("PO-1008", "rejected"),
        ("PO-1009", "received"),
    ],
)
async def test_orders_not_awaiting_approval_are_refused(erp: Erp, number: str, status: str) -> None:
    for tool, extra in (
        ("approve_purchase_order", {}),
        ("reject_purchase_order", {"reason": "no"}),
    ):
        message = await erp.refused(tool, roles=FINANCE, po_number=number, **extra)
        assert message == f"purchase order {number} is not awaiting approval (status: {status})"
    assert await po_status(erp, number) == status


async def test_nobody_approves_their_own_request(erp: Erp) -> None:
    message = await erp.refused(
        "approve_purchase_order", roles=FINANCE, user="sam.buyer", po_number="PO-1001"
    )
    assert message == ("purchase order PO-1001 was requested by you; someone else must approve it")


async def test_unknown_and_malformed_order_numbers(erp: Erp) -> None:
    assert (
        await erp.refused("approve_purchase_order", po_number="PO-9999")
        == "no purchase order PO-9999"
    )
    assert (
        await erp.refused("approve_purchase_order", po_number="INV-3001")
        == "'INV-3001' is not a PO number like PO-1001"
    )


async def test_reject_purchase_order(erp: Erp) -> None:
    summary = await erp.summary(
        "reject_purchase_order", roles=MANAGER, po_number="PO-1002", reason="use stock boxes"
    )
    assert summary == (
        'Reject purchase order PO-1002 from Pacific Packaging for USD 3,150.00: "use stock boxes"'
    )
    outcome = await erp.run(
        "reject_purchase_order", roles=MANAGER, po_number="PO-1002", reason=" use stock boxes "
    )
    assert outcome.ok
    assert outcome.summary == "PO-1002 rejected"
    row = await erp.document("erp_purchase_order", "acme", "PO-1002")
    assert (row["status"], row["decision_note"]) == ("rejected", "use stock boxes")
    blank = await erp.refused("reject_purchase_order", po_number="PO-1004", reason="  ")
    assert blank == "a reason is required to reject a purchase order"


async def test_approval_roles_are_enforced_by_the_registry(erp: Erp) -> None:
    for roles in (("sales",), ("purchasing",), ("viewer",)):
        with pytest.raises(ToolForbidden):
            await erp.run("approve_purchase_order", roles=roles, po_number="PO-1001")
    assert await po_status(erp, "PO-1001") == "awaiting_approval"


# -- customers and sales orders --------------------------------------------------------------


async def test_create_customer(erp: Erp) -> None:
    summary = await erp.summary(
        "create_customer", roles=SALES, name="Initech", email="ap@initech.example"
    )
    assert summary == (
        "Create customer Initech (ap@initech.example) with a credit limit of USD 10,000.00"
    )
    result = await erp.ok(
        "create_customer", roles=SALES, name=" Initech ", email="ap@initech.example"
    )
    assert result["name"] == "Initech"
    assert result["credit_limit"] == "10000.00"
    custom = await erp.ok("create_customer", name="Umbrella Corp", credit_limit="2500.50")
    assert custom["credit_limit"] == "2500.50"
    assert custom["email"] is None
    duplicate = await erp.refused("create_customer", name="initech")
    assert duplicate == "customer 'Initech' already exists"
    assert await erp.refused("create_customer", name="X", email="nope") == (
        "'nope' is not an email address"
    )
    assert await erp.refused("create_customer", name="X", credit_limit=-1) == (
        "credit_limit must be zero or positive"
    )
    # The same name is free in the other tenant.
    assert (await erp.run("create_customer", tenant="globex", name="Initech")).ok


async def test_create_sales_order(erp: Erp) -> None:
    lines = [
        {"item": "steel widget", "quantity": 10},
        {"item": "BRK-310", "quantity": "5", "unit_price": "2.00"},
    ]
    summary = await erp.summary("create_sales_order", roles=SALES, customer="contoso", lines=lines)
    assert summary == (
        "Create a sales order for Contoso Retail: 10 x Steel Widget at USD 9.50, "
        "5 x Mounting Bracket at USD 2.00; total USD 113.40 including USD 8.40 tax"
    )
    result = await erp.ok("create_sales_order", roles=SALES, customer="contoso", lines=lines)
    assert result["number"] == "SO-2003"
    assert result["customer"] == "Contoso Retail"
    assert [line["amount"] for line in result["lines"]] == ["95.00", "10.00"]
    assert (result["subtotal"], result["tax_rate"], result["tax"], result["total"]) == (
        "105.00",
        "0.08",
        "8.40",
        "113.40",
    )
    globex = await erp.ok(
        "create_sales_order",
        tenant="globex",
        customer="Vogel",
        lines=[{"item": "Kabelbaum", "quantity": 3}],
        tax_rate="0.07",
    )
    assert globex["number"] == "SO-2003"
    assert (globex["subtotal"], globex["tax"], globex["total"]) == ("105.00", "7.35", "112.35")
    # Orders change no money yet.
    await erp.assert_books_balance("acme")


async def test_sales_order_refusals(erp: Erp) -> None:
    one_widget = [{"item": "Steel Widget", "quantity": 1}]
    assert await erp.refused("create_sales_order", customer="Northwind", lines=one_widget) == (
        "customer name 'Northwind' is ambiguous: Northwind Logistics, Northwind Traders"
    )
    assert await erp.refused("create_sales_order", customer="Hansa", lines=one_widget) == (
        "no customer named 'Hansa'"
    )
    assert await erp.refused(
        "create_sales_order", customer="Contoso", lines=[{"item": "Control Cable", "quantity": 10}]
    ) == ("not enough stock of Control Cable 5m (CBL-05): 0 pcs on hand, 10 ordered")
    assert await erp.refused(
        "create_sales_order", customer="Contoso", lines=[{"item": "gadget", "quantity": 1}]
    ) == ("no item named 'gadget'")
    assert await erp.refused("create_sales_order", customer="Contoso", lines=[]) == (
        "a sales order needs at least one line"
    )
    assert await erp.refused(
        "create_sales_order", customer="Contoso", lines=one_widget, tax_rate=19
    ) == ("tax_rate is a fraction between 0 and 1, e.g. 0.19 for 19 %")
    assert await erp.refused(
        "create_sales_order", customer="Contoso", lines=[{"item": "Steel Widget", "quantity": 0}]
    ) == ("quantity of line 1 must be positive")
    # Blue Yonder Airlines may owe USD 5,000.00; 18 servo motors are USD 5,618.16 with tax.
    assert await erp.refused(
        "create_sales_order", customer="Blue Yonder", lines=[{"item": "MTR-500", "quantity": 18}]
    ) == (
        "an order of USD 5,618.16 would take Blue Yonder Airlines to USD 5,618.16 owed and on "
        "order, above its credit limit of USD 5,000.00"
    )
    count = await erp.value("SELECT COUNT(*) FROM erp_sales_order WHERE tenant = 'acme'")
    assert count == 2


async def test_credit_limit_counts_open_invoices_and_orders(erp: Erp) -> None:
    # Tailspin Toys owes USD 2,138.40 and has SO-2002 (USD 853.20) open; its limit is 8,000.
    lines = [{"item": "Gear Assembly", "quantity": 30, "unit_price": "156.00"}]  # 4,680 + tax
    message = await erp.refused("create_sales_order", customer="Tailspin", lines=lines)
    assert "to USD 8,046.00 owed and on order" in message
    lines = [{"item": "Gear Assembly", "quantity": 30, "unit_price": "150.00"}]  # 4,500 + tax
    assert (await erp.run("create_sales_order", customer="Tailspin", lines=lines)).ok


# -- invoicing -------------------------------------------------------------------------------


async def test_post_ar_invoice(erp: Erp) -> None:
    before = await erp.gl_balances("acme")
    summary = await erp.summary("post_ar_invoice", roles=FINANCE, sales_order_number="SO-2001")
    due = TODAY + timedelta(days=30)
    assert summary == (
        "Post an invoice for sales order SO-2001 to Contoso Retail: USD 1,544.40 including "
        f"USD 114.40 tax, due {due.isoformat()}"
    )
    outcome = await erp.run("post_ar_invoice", roles=FINANCE, sales_order_number="so-2001")
    assert outcome.ok
    assert outcome.summary == "INV-3013 to Contoso Retail, USD 1,544.40"
    assert outcome.result == {
        "invoice_number": "INV-3013",
        "sales_order_number": "SO-2001",
        "customer": "Contoso Retail",
        "issue_date": TODAY.isoformat(),
        "due_date": due.isoformat(),
        "currency": "USD",
        "subtotal": "1430.00",
        "tax": "114.40",
        "total": "1544.40",
        "cost_of_sales": "590.00",  # 100 x 4.20 + 200 x 0.85
    }
    after = await erp.gl_balances("acme")
    change = {code: after.get(code, Decimal(0)) - before.get(code, Decimal(0)) for code in after}
    assert {code: amount for code, amount in change.items() if amount} == {
        "1100": Decimal("1544.40"),  # receivable
        "4000": Decimal("-1430.00"),  # revenue (a credit)
        "2100": Decimal("-114.40"),  # sales tax payable
        "5000": Decimal("590.00"),  # cost of goods sold
        "1200": Decimal("-590.00"),  # inventory
    }
    await erp.assert_books_balance("acme")
    stock = {i["sku"]: i for i in (await erp.ok("stock_levels"))["items"]}
    assert (stock["WID-100"]["on_hand"], stock["BRK-310"]["on_hand"]) == ("320", "1050")
    order = await erp.document("erp_sales_order", "acme", "SO-2001")
    assert order["status"] == "invoiced"
    aging = await erp.ok("ar_aging")
    assert aging["buckets"]["current"] == "12279.60"  # 10,735.20 + 1,544.40
    again = await erp.refused("post_ar_invoice", sales_order_number="SO-2001")
    assert again == "sales order SO-2001 is already invoiced (INV-3013)"


async def test_invoice_refusals(erp: Erp) -> None:
    assert await erp.refused("post_ar_invoice", sales_order_number="SO-9999") == (
        "no sales order SO-9999"
    )
    # Globex's SO-2002 wants 2 pumps; sell 21 of the 22 first and the invoice is refused.
    assert (
        await erp.run(
            "create_sales_order",
            tenant="globex",
            customer="Müller",
            lines=[{"item": "GX-100", "quantity": 21}],
        )
    ).ok
    assert (await erp.run("post_ar_invoice", tenant="globex", sales_order_number="SO-2003")).ok
    message = await erp.refused("post_ar_invoice", tenant="globex", sales_order_number="SO-2002")
    assert message == "not enough stock of Hydraulikpumpe HP-100 (GX-100): 1 Stk on hand, 2 ordered"
    await erp.assert_books_balance("globex")


# -- receipts and payments -------------------------------------------------------------------


async def test_record_customer_receipt(erp: Erp) -> None:
    before = await erp.gl_balances("acme")
    allocations = [
        {"invoice_number": "INV-3003", "amount": "2970.00"},
        {"invoice_number": "3009", "amount": 350},
    ]
    summary = await erp.summary(
        "record_customer_receipt", customer="Contoso Retail", amount=3320, allocations=allocations
    )
    assert summary == (
        "Record a receipt of USD 3,320.00 from Contoso Retail into Operating Account, applied "
        "to INV-3003 (USD 2,970.00), INV-3009 (USD 350.00)"
    )
    outcome = await erp.run(
        "record_customer_receipt",
        roles=FINANCE,
        customer="Contoso Retail",
        amount="3320.00",
        allocations=allocations,
    )
    assert outcome.ok
    result = outcome.result
    assert result["receipt_number"] == "RC-5006"
    assert result["bank_account"] == "Operating Account"
    assert result["allocations"] == [
        {
            "invoice_number": "INV-3003",
            "amount": "2970.00",
            "open_balance": "0.00",
            "status": "paid",
        },
        {
            "invoice_number": "INV-3009",
            "amount": "350.00",
            "open_balance": "1000.00",
            "status": "partially_paid",
        },
    ]
    assert result["voucher_number"].startswith("JV-")
    assert outcome.summary == "RC-5006 from Contoso Retail, USD 3,320.00"
    after = await erp.gl_balances("acme")
    assert after["1010"] - before["1010"] == Decimal("3320.00")
    assert after["1100"] - before["1100"] == Decimal("-3320.00")
    invoice = await erp.document("erp_invoice", "acme", "INV-3009")
    assert (dec(invoice["amount_paid"]), invoice["status"]) == (Decimal("350.00"), "partially_paid")
    await erp.assert_books_balance("acme")
    aging = await erp.ok("ar_aging")
    assert aging["buckets"]["61-90"] == "0.00"
    assert aging["total"] == "36521.60"


async def test_receipt_into_another_bank_account(erp: Erp) -> None:
    before = await erp.gl_balances("acme")
    result = await erp.ok(
        "record_customer_receipt",
        customer="Wide World",
        amount=500,
        allocations=[{"invoice_number": "INV-3001", "amount": 500}],
        bank_account="reserve",
    )
    assert result["bank_account"] == "Reserve Savings"
    after = await erp.gl_balances("acme")
    assert after["1030"] - before["1030"] == Decimal("500.00")
    assert after["1010"] == before["1010"]


@pytest.mark.parametrize(
    ("customer", "amount", "allocations", "message"),
    [
        (
            "Contoso Retail",
            5000,
            [{"invoice_number": "INV-3003", "amount": 5000}],
            "the allocation of USD 5,000.00 to invoice INV-3003 exceeds its open balance of "
            "USD 2,970.00",
        ),
        (
            "Fabrikam",
            100,
            [{"invoice_number": "INV-3004", "amount": 100}],
            "invoice INV-3004 is already paid",
        ),
        (
            "Blue Yonder",
            100,
            [{"invoice_number": "INV-3010", "amount": 100}],
            "invoice INV-3010 is cancelled",
        ),
        (
            "Northwind Traders",
            100,
            [{"invoice_number": "INV-3003", "amount": 100}],
            "invoice INV-3003 is not Northwind Traders's",
        ),
        (
            "Contoso Retail",
            100,
            [{"invoice_number": "INV-3099", "amount": 100}],
            "no invoice INV-3099",
        ),
        (
            "Contoso Retail",
            300,
            [
                {"invoice_number": "INV-3003", "amount": 100},
                {"invoice_number": "INV-3009", "amount": 100},
            ],
            "the allocations add up to USD 200.00 but the amount is USD 300.00",
        ),
        (
            "Contoso Retail",
            200,
            [
                {"invoice_number": "INV-3003", "amount": 100},
                {"invoice_number": "INV-3003", "amount": 100},
            ],
            "invoice INV-3003 appears twice in the allocations",
        ),
        ("Contoso Retail", 100, [], "allocations must name at least one invoice"),
        (
            "Contoso Retail",
            "10.005",
            [{"invoice_number": "INV-3003", "amount": "10.005"}],
            "amount has more than two decimal places",
        ),
        (
            "Contoso Retail",
            0,
            [{"invoice_number": "INV-3003", "amount": 0}],
            "amount must be positive",
        ),
        (
            "Northwind",
            100,
            [{"invoice_number": "INV-3002", "amount": 100}],
            "customer name 'Northwind' is ambiguous: Northwind Logistics, Northwind Traders",
        ),
    ],
)
async def test_receipt_refusals(
    erp: Erp, customer: str, amount: object, allocations: list[object], message: str
) -> None:
    before = await erp.gl_balances("acme")
    got = await erp.refused(
        "record_customer_receipt", customer=customer, amount=amount, allocations=allocations
    )
    assert got == message
    assert await erp.gl_balances("acme") == before  # nothing was booked


async def test_record_supplier_payment(erp: Erp) -> None:
    before = await erp.gl_balances("acme")
    allocations = [{"bill_number": "BILL-4005", "amount": "2850.00"}]
    summary = await erp.summary(
        "record_supplier_payment", supplier="Sunrise", amount=2850, allocations=allocations
    )
    assert summary == (
        "Pay USD 2,850.00 to Sunrise Electronics from Operating Account, applied to "
        "BILL-4005 (USD 2,850.00)"
    )
    outcome = await erp.run(
        "record_supplier_payment",
        roles=FINANCE,
        supplier="Sunrise",
        amount=2850,
        allocations=allocations,
    )
    assert outcome.ok
    assert outcome.summary == "PAY-6004 to Sunrise Electronics, USD 2,850.00"
    assert outcome.result["allocations"] == [
        {"bill_number": "BILL-4005", "amount": "2850.00", "open_balance": "0.00", "status": "paid"}
    ]
    after = await erp.gl_balances("acme")
    assert after["1010"] - before["1010"] == Decimal("-2850.00")
    assert after["2000"] - before["2000"] == Decimal("2850.00")  # less owed (a debit)
    await erp.assert_books_balance("acme")
    aging = await erp.ok("ap_aging")
    assert aging["total"] == "9325.30"
    # A partial payment leaves the bill partially paid.
    await erp.ok(
        "record_supplier_payment",
        supplier="Summit Steel",
        amount=420,
        allocations=[{"bill_number": "BILL-4001", "amount": 420}],
    )
    bill = await erp.document("erp_bill", "acme", "BILL-4001")
    assert (dec(bill["amount_paid"]), bill["status"]) == (Decimal("2420.00"), "partially_paid")
    await erp.assert_books_balance("acme")


@pytest.mark.parametrize(
    ("supplier", "amount", "allocations", "bank", "message"),
    [
        (
            "Sunrise",
            2850,
            [{"bill_number": "BILL-4005", "amount": 2850}],
            "Payroll",
            "insufficient funds in Payroll Account: the balance is USD 1,250.00, the payment "
            "USD 2,850.00",
        ),
        (
            "Great Lakes",
            100,
            [{"bill_number": "BILL-4004", "amount": 100}],
            None,
            "bill BILL-4004 is already paid",
        ),
        (
            "Great Lakes",
            1500,
            [{"bill_number": "BILL-4002", "amount": 1500}],
            None,
            "the allocation of USD 1,500.00 to bill BILL-4002 exceeds its open balance of "
            "USD 1,000.00",
        ),
        (
            "Acme Supplies",
            900,
            [{"bill_number": "BILL-4007", "amount": 900}],
            None,
            "bill BILL-4007 is not Acme Supplies's",
        ),
        (
            "Acme Supplies",
            10,
            [{"bill_number": "BILL-4006", "amount": 10}],
            "Offshore",
            "no bank account named 'Offshore'",
        ),
    ],
)
async def test_payment_refusals(
    erp: Erp,
    supplier: str,
    amount: object,
    allocations: list[object],
    bank: str | None,
    message: str,
) -> None:
    before = await erp.gl_balances("acme")
    extra = {"bank_account": bank} if bank else {}
    got = await erp.refused(
        "record_supplier_payment",
        supplier=supplier,
        amount=amount,
        allocations=allocations,
        **extra,
    )
    assert got == message
    assert await erp.gl_balances("acme") == before


async def test_settlement_roles(erp: Erp) -> None:
    for tool in ("record_customer_receipt", "record_supplier_payment", "post_ar_invoice"):
        with pytest.raises(ToolForbidden):
            erp.registry.validate(tool, "{}", frozenset(SALES))
    with pytest.raises(ToolForbidden):
        erp.registry.validate("create_sales_order", "{}", frozenset(FINANCE))


# -- a whole cycle, and the tenants kept apart -----------------------------------------------


async def test_order_to_cash_keeps_the_books_balanced(erp: Erp) -> None:
    customer = await erp.ok("create_customer", name="Initech", credit_limit=5000)
    assert customer["name"] == "Initech"
    order = await erp.ok(
        "create_sales_order",
        customer="initech",
        lines=[{"item": "Servo", "quantity": 2}, {"item": "SNS-T1", "quantity": 4}],
    )
    assert order["total"] == "730.08"  # (578.00 + 98.00) x 1.08
    invoice = await erp.ok("post_ar_invoice", sales_order_number=order["number"])
    receipt = await erp.ok(
        "record_customer_receipt",
        customer="Initech",
        amount=invoice["total"],
        allocations=[{"invoice_number": invoice["invoice_number"], "amount": invoice["total"]}],
    )
    assert receipt["allocations"][0]["status"] == "paid"
    await erp.assert_books_balance("acme")
    aging = await erp.ok("ar_aging")
    assert "Initech" not in {c["name"] for c in aging["customers"]}


async def test_actions_in_one_tenant_leave_the_other_untouched(erp: Erp) -> None:
    globex_before = await erp.gl_balances("globex")
    globex_po = await erp.document("erp_purchase_order", "globex", "PO-1001")
    # Both tenants have a PO-1001 and an INV-3002; acting in acme changes only acme's.
    await erp.ok("approve_purchase_order", po_number="PO-1001")
    assert await erp.document("erp_purchase_order", "globex", "PO-1001") == globex_po
    await erp.ok(
        "record_customer_receipt",
        customer="Northwind Traders",
        amount=100,
        allocations=[{"invoice_number": "INV-3002", "amount": 100}],
    )
    globex_invoice = await erp.document("erp_invoice", "globex", "INV-3002")
    assert dec(globex_invoice["amount_paid"]) == Decimal("0.00")
    assert await erp.gl_balances("globex") == globex_before
    # And the other tenant's names cannot be reached from here.
    assert await erp.refused(
        "record_customer_receipt",
        customer="Schneider Logistik AG",
        amount=100,
        allocations=[{"invoice_number": "INV-3002", "amount": 100}],
    ) == ("no customer named 'Schneider Logistik AG'")
    await erp.assert_books_balance("acme")
    await erp.assert_books_balance("globex")
