"""Live data for the demo page: a company's purchase orders and cash, read from the books.

The demo page stands in for the ERP's own screen, so it reads what the ERP holds: a purchase
order approved through the assistant shows as approved after a reload. This endpoint is for
the demo only: it needs no token (the page is served by Parley, not by this app, and has no
session here), so it is off unless ``ERP_DEMO_DATA`` is set, answers only for the demo
companies, and returns a bounded, read-only list.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from examples.erp.companies import COMPANIES
from examples.erp.host.api import json_response
from examples.erp.host.openapi import API_ROOT
from examples.erp.ledger import account_balances
from examples.erp.models import ZERO, BankAccount, PurchaseOrder, Supplier
from examples.erp.money import amount_text

__all__ = ["DemoData"]

MAX_ORDERS = 200


class DemoData:
    """``GET /api/demo/purchase-orders?tenant=acme``, readable from the allowed origins."""

    def __init__(self, engine: AsyncEngine, origins: tuple[str, ...]) -> None:
        self._sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
        self._origins = origins

    def routes(self) -> list[Route]:
        """The demo's routes."""
        return [
            Route(f"{API_ROOT}/demo/purchase-orders", self.purchase_orders, methods=["GET"]),
        ]

    async def purchase_orders(self, request: Request) -> Response:
        """The company, its cash and its purchase orders, newest numbers last."""
        headers = self._cors(request)
        tenant = request.query_params.get("tenant", "")
        company = COMPANIES.get(tenant)
        if company is None:
            known = ", ".join(sorted(COMPANIES))
            return json_response(
                {"error": f"no demo company {tenant!r}; use one of {known}"}, 404, headers
            )
        async with self._sessions() as session:
            rows = (
                await session.exec(
                    select(PurchaseOrder, Supplier.name)
                    .join(Supplier, col(Supplier.id) == col(PurchaseOrder.supplier_id))
                    .where(PurchaseOrder.tenant == tenant)
                    .order_by(col(PurchaseOrder.number))
                    .limit(MAX_ORDERS)
                )
            ).all()
            banks = (
                await session.exec(select(BankAccount).where(BankAccount.tenant == tenant))
            ).all()
            balances = await account_balances(session, tenant, {b.account_code for b in banks})
        cash = sum((balances.get(bank.account_code, ZERO) for bank in banks), ZERO)
        return json_response(
            {
                "tenant": tenant,
                "company": company.name,
                "currency": company.currency,
                "locale": company.locale,
                "cash": amount_text(cash),
                "purchase_orders": [
                    {
                        "number": order.number,
                        "supplier": supplier,
                        "status": order.status,
                        "order_date": order.order_date.isoformat(),
                        "expected_date": order.expected_date.isoformat(),
                        "total": amount_text(order.total),
                    }
                    for order, supplier in rows
                ],
            },
            headers=headers,
        )

    def _cors(self, request: Request) -> dict[str, str]:
        origin = request.headers.get("origin")
        if "*" in self._origins:
            return {"Access-Control-Allow-Origin": "*"}
        if origin is not None and origin in self._origins:
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {}
