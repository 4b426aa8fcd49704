"""Who may decide a purchase order: the approval policy, apart from the tools that apply it."""

from decimal import Decimal

from examples.erp.companies import APPROVER_ROLES, LARGE_PO_APPROVER_ROLES
from examples.erp.models import PurchaseOrder, PurchaseOrderStatus
from examples.erp.money import format_money
from server.tools.context import ToolContext

__all__ = ["approval_refusal", "required_roles", "roles_text", "status_refusal"]


def required_roles(total: Decimal, approval_limit: Decimal) -> frozenset[str]:
    """Roles of which an approver needs one: above the limit only finance or an admin."""
    return LARGE_PO_APPROVER_ROLES if total > approval_limit else APPROVER_ROLES


def roles_text(roles: frozenset[str]) -> str:
    """``{"admin", "finance"}`` → ``"admin or finance"``."""
    names = sorted(roles)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def status_refusal(order: PurchaseOrder) -> str | None:
    """Why `order` cannot be decided (approved or rejected) now, or None when it can."""
    if order.status != PurchaseOrderStatus.AWAITING_APPROVAL:
        return (
            f"purchase order {order.number} is not awaiting approval "
            f"(status: {order.status.replace('_', ' ')})"
        )
    return None


def approval_refusal(
    order: PurchaseOrder, supplier: str, ctx: ToolContext, approval_limit: Decimal
) -> str | None:
    """Why `ctx`'s user may not approve `order`, or None when they may.

    Checked in this order: the order must await approval; nobody approves their own request;
    an order above the company's approval limit needs a finance or admin approver.
    """
    refusal = status_refusal(order)
    if refusal is not None:
        return refusal
    if order.requested_by == ctx.user:
        return f"purchase order {order.number} was requested by you; someone else must approve it"
    needed = required_roles(order.total, approval_limit)
    if needed.isdisjoint(ctx.roles):
        total = format_money(order.total, ctx.currency, ctx.locale)
        limit = format_money(approval_limit, ctx.currency, ctx.locale)
        return (
            f"purchase order {order.number} from {supplier} for {total} is above the approval "
            f"limit of {limit} and needs an approver with the {roles_text(needed)} role"
        )
    return None
