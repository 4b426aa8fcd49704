"""Two people acting on the same documents at once: exactly one change lands, the books balance.

On PostgreSQL the rows are locked (``SELECT … FOR UPDATE``) and the second transaction waits,
then sees the first one's result; on SQLite the conditional updates refuse the second writer.
"""

import asyncio
from decimal import Decimal
from typing import Any

from server.tools.registry import ToolOutcome
from tests.server.test_erp_support import (
    Erp,
    dec,
    erp_fixture,
    erp_template,
    postgres_template,
    sqlite_template,
)

__all__ = ["erp_fixture", "erp_template", "postgres_template", "sqlite_template"]


async def together(erp: Erp, tool: str, *calls: dict[str, Any]) -> list[ToolOutcome]:
    """Run several calls of `tool` at the same time, each in its own session."""
    return list(await asyncio.gather(*(erp.run(tool, **arguments) for arguments in calls)))


def split(outcomes: list[ToolOutcome]) -> tuple[list[ToolOutcome], list[str]]:
    return [o for o in outcomes if o.ok], [o.result["error"] for o in outcomes if not o.ok]


async def test_one_invoice_cannot_be_paid_twice(erp: Erp) -> None:
    full = {
        "customer": "Contoso Retail",
        "amount": "2970.00",
        "allocations": [{"invoice_number": "INV-3003", "amount": "2970.00"}],
    }
    outcomes = await together(erp, "record_customer_receipt", full, full, full)
    succeeded, errors = split(outcomes)
    assert len(succeeded) == 1
    for error in errors:
        if erp.backend == "postgres":
            assert error == "invoice INV-3003 is already paid"
        else:
            assert error in (
                "invoice INV-3003 is already paid",
                "invoice INV-3003 was changed by someone else just now; nothing was saved, "
                "please try again",
            )
    invoice = await erp.document("erp_invoice", "acme", "INV-3003")
    assert (dec(invoice["amount_paid"]), invoice["status"]) == (Decimal("2970.00"), "paid")
    receipts = await erp.value("SELECT COUNT(*) FROM erp_receipt WHERE tenant = 'acme'")
    assert receipts == 6  # five seeded, one new
    await erp.assert_books_balance("acme")


async def test_one_purchase_order_is_approved_once(erp: Erp) -> None:
    outcomes = await together(
        erp,
        "approve_purchase_order",
        {"po_number": "PO-1001", "comment": "first"},
        {"po_number": "PO-1001", "comment": "second"},
    )
    succeeded, errors = split(outcomes)
    assert len(succeeded) == 1
    assert len(errors) == 1
    assert errors[0].startswith("purchase order PO-1001 ")
    row = await erp.document("erp_purchase_order", "acme", "PO-1001")
    assert row["status"] == "approved"
    assert row["decision_note"] == succeeded[0].result["note"]


async def test_one_sales_order_is_invoiced_once(erp: Erp) -> None:
    outcomes = await together(
        erp,
        "post_ar_invoice",
        {"sales_order_number": "SO-2001"},
        {"sales_order_number": "SO-2001"},
    )
    succeeded, errors = split(outcomes)
    assert len(succeeded) == 1
    assert len(errors) == 1
    invoices = await erp.rows(
        "SELECT number FROM erp_invoice WHERE tenant = 'acme' AND sales_order_id IS NOT NULL"
    )
    assert [number for (number,) in invoices] == [succeeded[0].result["invoice_number"]]
    on_hand = await erp.value(
        "SELECT on_hand FROM erp_item WHERE tenant = 'acme' AND sku = 'WID-100'"
    )
    assert Decimal(str(on_hand)) == 320  # 420 less the 100 shipped, once
    await erp.assert_books_balance("acme")


async def test_concurrent_documents_get_distinct_numbers(erp: Erp) -> None:
    outcomes = await together(
        erp,
        "record_customer_receipt",
        {
            "customer": "Contoso Retail",
            "amount": 100,
            "allocations": [{"invoice_number": "INV-3003", "amount": 100}],
        },
        {
            "customer": "Wide World Importers",
            "amount": 100,
            "allocations": [{"invoice_number": "INV-3008", "amount": 100}],
        },
    )
    succeeded, errors = split(outcomes)
    if erp.backend == "postgres":
        # Different invoices do not block each other; the numbering queues them.
        assert errors == []
    assert succeeded
    numbers = [o.result["receipt_number"] for o in succeeded]
    assert len(set(numbers)) == len(numbers)
    vouchers = await erp.rows(
        "SELECT number, COUNT(*) FROM erp_journal_voucher WHERE tenant = 'acme' "
        "GROUP BY number HAVING COUNT(*) > 1"
    )
    assert vouchers == []
    await erp.assert_books_balance("acme")
