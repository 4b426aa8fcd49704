"""Actions on purchase orders: approve and reject, under the company's approval policy."""

from datetime import date
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from examples.erp.approvals import approval_refusal, status_refusal
from examples.erp.companies import APPROVER_ROLES, Today, profile
from examples.erp.guards import guarded_update
from examples.erp.lookup import document_number
from examples.erp.models import PurchaseOrder, PurchaseOrderStatus, Supplier
from examples.erp.money import amount_text, format_money
from server.tools.context import ToolContext
from server.tools.errors import ToolError
from server.tools.registry import ToolPack, ToolReturn

__all__ = ["register_purchasing"]


async def _load_order(
    session: AsyncSession, tenant: str, po_number: str, *, lock: bool = False
) -> tuple[PurchaseOrder, Supplier]:
    number = document_number(po_number, "PO")
    query = select(PurchaseOrder).where(
        PurchaseOrder.tenant == tenant, PurchaseOrder.number == number
    )
    if lock:
        # Two approvers deciding the same order at once: the second waits, then sees the
        # first decision and is refused, instead of both succeeding.
        query = query.with_for_update()
    order = (await session.exec(query)).one_or_none()
    if order is None:
        raise ToolError(f"no purchase order {number}", code="not_found")
    supplier = await session.get(Supplier, order.supplier_id)
    assert supplier is not None
    return order, supplier


async def _decide(
    session: AsyncSession,
    order: PurchaseOrder,
    status: PurchaseOrderStatus,
    user: str,
    day: date,
    note: str | None,
) -> None:
    # Only an order still awaiting approval is decided: of two approvers acting at once,
    # exactly one decision lands.
    await guarded_update(
        session,
        PurchaseOrder,
        order.id,
        PurchaseOrder.status == PurchaseOrderStatus.AWAITING_APPROVAL,
        values={"status": status, "decided_by": user, "decided_on": day, "decision_note": note},
        what=f"purchase order {order.number}",
    )


def _decision_result(order: PurchaseOrder, supplier: Supplier, ctx: ToolContext) -> dict[str, Any]:
    return {
        "number": order.number,
        "supplier": supplier.name,
        "status": order.status,
        "total": amount_text(order.total),
        "currency": ctx.currency,
        "decided_by": order.decided_by,
        "decided_on": order.decided_on.isoformat() if order.decided_on else None,
        "note": order.decision_note,
    }


def _describe(order: PurchaseOrder, supplier: Supplier, ctx: ToolContext) -> str:
    total = format_money(order.total, ctx.currency, ctx.locale)
    return f"purchase order {order.number} from {supplier.name} for {total}"


# The width of the decision note column that holds a comment or a reason.
_MAX_NOTE_CHARS = 500


def _require_reason(reason: str) -> None:
    if not reason.strip():
        raise ToolError("a reason is required to reject a purchase order")
    _check_note(reason, "reason")


def _check_note(note: str | None, what: str) -> None:
    if note is not None and len(note.strip()) > _MAX_NOTE_CHARS:
        raise ToolError(f"the {what} is longer than {_MAX_NOTE_CHARS} characters")


def register_purchasing(pack: ToolPack, today: Today) -> None:
    """Declare the purchase-order actions on `pack`."""

    async def approval_summary(ctx: ToolContext, params: dict[str, Any]) -> str:
        _check_note(params.get("comment"), "comment")
        async with ctx.db() as session:
            order, supplier = await _load_order(session, ctx.tenant, params["po_number"])
        refusal = approval_refusal(order, supplier.name, ctx, profile(ctx.tenant).approval_limit)
        if refusal is not None:
            raise ToolError(refusal, code="not_allowed")
        comment = f' with the comment "{params["comment"]}"' if params.get("comment") else ""
        return f"Approve {_describe(order, supplier, ctx)}{comment}"

    @pack.action(summary=approval_summary, roles=APPROVER_ROLES)
    async def approve_purchase_order(
        ctx: ToolContext, po_number: str, comment: str | None = None
    ) -> ToolReturn:
        """Approve a purchase order that is awaiting approval.

        Orders above the company's approval limit need the finance or admin role; a purchasing
        manager approves the others. Nobody approves an order they requested.

        Args:
            po_number: the order number, e.g. PO-1001.
            comment: a note stored with the approval.
        """
        _check_note(comment, "comment")
        async with ctx.db() as session:
            order, supplier = await _load_order(session, ctx.tenant, po_number, lock=True)
            limit = profile(ctx.tenant).approval_limit
            refusal = approval_refusal(order, supplier.name, ctx, limit)
            if refusal is not None:
                raise ToolError(refusal, code="not_allowed")
            await _decide(session, order, PurchaseOrderStatus.APPROVED, ctx.user, today(), comment)
            result = _decision_result(order, supplier, ctx)
            summary = f"{order.number} approved"
            await session.commit()
        return ToolReturn(result, summary)

    async def rejection_summary(ctx: ToolContext, params: dict[str, Any]) -> str:
        _require_reason(params["reason"])
        async with ctx.db() as session:
            order, supplier = await _load_order(session, ctx.tenant, params["po_number"])
        refusal = status_refusal(order)
        if refusal is not None:
            raise ToolError(refusal, code="not_allowed")
        return f'Reject {_describe(order, supplier, ctx)}: "{params["reason"]}"'

    @pack.action(summary=rejection_summary, roles=APPROVER_ROLES)
    async def reject_purchase_order(ctx: ToolContext, po_number: str, reason: str) -> ToolReturn:
        """Reject a purchase order that is awaiting approval, giving the requester a reason.

        Args:
            po_number: the order number, e.g. PO-1002.
            reason: why the order is rejected; the requester sees it.
        """
        _require_reason(reason)
        async with ctx.db() as session:
            order, supplier = await _load_order(session, ctx.tenant, po_number, lock=True)
            refusal = status_refusal(order)
            if refusal is not None:
                raise ToolError(refusal, code="not_allowed")
            await _decide(
                session, order, PurchaseOrderStatus.REJECTED, ctx.user, today(), reason.strip()
            )
            result = _decision_result(order, supplier, ctx)
            summary = f"{order.number} rejected"
            await session.commit()
        return ToolReturn(result, summary)
