"""A demo ERP for two companies, to show Parley inside a business app.

It runs two ways. In-process, as the tool pack ``examples.erp:pack`` (Parley's default
``PARLEY_TOOLS``), the pack plays the host application inside Parley: it keeps its own books
(general ledger with balanced vouchers, receivables, payables, purchasing, sales, stock) in its
own tables of Parley's database, created and, in dev mode, seeded by its setup hook. As a host
app of its own (``python -m examples.erp``, see `examples.erp.host`), the same tools are a REST
API over the app's own database, which Parley reaches through a tool source. Tenants: ``acme``
(Acme Corporation, USD, en-US) and ``globex`` (Globex GmbH, EUR, de-DE).

Roles per tool (a user needs one of them):

=========================  ==========================================================
tool                       roles
=========================  ==========================================================
cash_balance               admin, finance, viewer
ar_aging                   admin, finance, sales, viewer
ap_aging                   admin, finance, purchasing, viewer
list_purchase_orders       admin, finance, purchasing, purchasing_manager, viewer
pending_approvals          admin, finance, purchasing_manager
stock_levels               admin, finance, purchasing, purchasing_manager, sales, viewer
dashboard_summary          admin, finance, viewer
approve_purchase_order     admin, finance, purchasing_manager (above the company's
                           approval limit only admin or finance; never one's own request)
reject_purchase_order      admin, finance, purchasing_manager
create_customer            admin, sales
create_sales_order         admin, sales
post_ar_invoice            admin, finance
record_customer_receipt    admin, finance
record_supplier_payment    admin, finance
=========================  ==========================================================

Approval limits: acme USD 25,000.00, globex EUR 20,000.00.
"""

from examples.erp.pack import build_pack

__all__ = ["build_pack", "pack"]

pack = build_pack()
