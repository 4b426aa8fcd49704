"""The demo companies' data, written out so every number in the demo can be looked up here.

Dates are offsets from "today" (the day the data is seeded), so aging buckets, overdue purchase
orders and recent revenue look the same whenever the demo starts. Amounts are exact strings.
Documents are listed oldest first and numbered in that order (INV-3001, BILL-4001 …), except the
purchase orders, which carry their numbers.
"""

from dataclasses import dataclass
from decimal import Decimal

from examples.erp.companies import Ledger
from examples.erp.models import PurchaseOrderStatus as PO

__all__ = [
    "SEEDS",
    "BankSeed",
    "BillSeed",
    "CustomerSeed",
    "InvoiceSeed",
    "ItemSeed",
    "PurchaseOrderSeed",
    "SalesOrderSeed",
    "SupplierSeed",
    "TenantSeed",
]

D = Decimal
NOTHING = Decimal("0.00")
Line = tuple[str, str, str]  # (sku, quantity, unit price)


@dataclass(frozen=True, slots=True)
class BankSeed:
    """A bank account and its opening balance."""

    name: str
    bank: str
    number: str
    account_code: str
    opening: Decimal


@dataclass(frozen=True, slots=True)
class CustomerSeed:
    """A customer, its credit limit and payment terms."""

    name: str
    email: str
    credit_limit: Decimal
    terms_days: int = 30


@dataclass(frozen=True, slots=True)
class SupplierSeed:
    """A supplier and its payment terms."""

    name: str
    email: str
    terms_days: int = 30


@dataclass(frozen=True, slots=True)
class ItemSeed:
    """A stock item; quantities and amounts as exact strings."""

    sku: str
    name: str
    unit: str
    on_hand: str
    reorder_level: str
    reorder_quantity: str
    unit_cost: str
    unit_price: str


@dataclass(frozen=True, slots=True)
class PurchaseOrderSeed:
    """A purchase order with its lines, status and who asked for and decided it."""

    number: str
    supplier: str
    status: PO
    ordered_days_ago: int
    expected_in_days: int  # negative: the expected date has passed
    lines: tuple[Line, ...]
    requested_by: str
    decided_by: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class SalesOrderSeed:
    """An open (not yet invoiced) sales order."""

    customer: str
    ordered_days_ago: int
    lines: tuple[Line, ...]


@dataclass(frozen=True, slots=True)
class InvoiceSeed:
    """An invoice: its age, terms, net amount (tax is added), and what was paid on it."""

    customer: str
    issued_days_ago: int
    terms_days: int
    subtotal: Decimal
    paid: Decimal = NOTHING
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class BillSeed:
    """A supplier bill, the account it is booked to, and what was paid on it."""

    supplier: str
    description: str
    expense_account: str
    issued_days_ago: int
    terms_days: int
    total: Decimal
    paid: Decimal = NOTHING
    purchase_order: str | None = None


@dataclass(frozen=True, slots=True)
class TenantSeed:
    """Everything one demo company starts with."""

    banks: tuple[BankSeed, ...]
    customers: tuple[CustomerSeed, ...]
    suppliers: tuple[SupplierSeed, ...]
    items: tuple[ItemSeed, ...]
    purchase_orders: tuple[PurchaseOrderSeed, ...]
    sales_orders: tuple[SalesOrderSeed, ...]
    invoices: tuple[InvoiceSeed, ...]
    bills: tuple[BillSeed, ...]


ACME = TenantSeed(
    banks=(
        BankSeed("Operating Account", "First National Bank", "****4821", "1010", D("185000.00")),
        BankSeed("Payroll Account", "First National Bank", "****7730", "1020", D("1250.00")),
        BankSeed("Reserve Savings", "Harbor Savings", "****0915", "1030", D("120000.00")),
    ),
    customers=(
        CustomerSeed("Northwind Traders", "ap@northwind.example", D("15000.00")),
        CustomerSeed("Northwind Logistics", "billing@nwlogistics.example", D("10000.00")),
        CustomerSeed("Contoso Retail", "payables@contoso.example", D("20000.00")),
        CustomerSeed("Fabrikam Industries", "finance@fabrikam.example", D("30000.00")),
        CustomerSeed("Tailspin Toys", "accounts@tailspin.example", D("8000.00")),
        CustomerSeed("Wide World Importers", "ap@wideworld.example", D("40000.00"), 45),
        CustomerSeed("Blue Yonder Airlines", "invoices@blueyonder.example", D("5000.00")),
        # The company's own retail arm: the README's demo prompt sells to it.
        CustomerSeed("Acme Retail Outlet", "outlet@acme.example", D("10000.00")),
    ),
    suppliers=(
        SupplierSeed("Acme Supplies", "orders@acmesupplies.example", 45),
        SupplierSeed("Summit Steel Co.", "sales@summitsteel.example"),
        SupplierSeed("Pacific Packaging", "orders@pacpack.example"),
        SupplierSeed("Metro Office Depot", "service@metrooffice.example", 15),
        SupplierSeed("Great Lakes Logistics", "billing@greatlakes.example"),
        SupplierSeed("Sunrise Electronics", "sales@sunrise-elec.example"),
    ),
    items=(
        ItemSeed("WID-050", "Widget", "pcs", "600", "150", "400", "21.00", "50.00"),
        ItemSeed("WID-100", "Steel Widget", "pcs", "420", "200", "500", "4.20", "9.50"),
        ItemSeed("WID-200", "Aluminum Widget", "pcs", "85", "150", "400", "6.10", "13.90"),
        ItemSeed("BRK-310", "Mounting Bracket", "pcs", "1250", "300", "1000", "0.85", "2.40"),
        ItemSeed("GEAR-12", "Gear Assembly 12T", "pcs", "40", "60", "120", "38.00", "79.00"),
        ItemSeed("MTR-500", "Servo Motor 500W", "pcs", "18", "10", "25", "142.50", "289.00"),
        ItemSeed("CBL-05", "Control Cable 5m", "pcs", "0", "50", "200", "3.75", "8.90"),
        ItemSeed("PKG-BOX", "Shipping Box Large", "pcs", "900", "500", "2000", "0.60", "1.50"),
        ItemSeed("SNS-T1", "Temperature Sensor T1", "pcs", "64", "80", "150", "11.20", "24.50"),
    ),
    purchase_orders=(
        PurchaseOrderSeed(
            "PO-1001", "Acme Supplies", PO.AWAITING_APPROVAL, 3, 18,
            (("WID-200", "1000", "6.10"), ("SNS-T1", "450", "14.00")), "sam.buyer",
        ),
        PurchaseOrderSeed(
            "PO-1002", "Pacific Packaging", PO.AWAITING_APPROVAL, 2, 10,
            (("PKG-BOX", "5000", "0.63"),), "sam.buyer",
        ),
        PurchaseOrderSeed(
            "PO-1003", "Sunrise Electronics", PO.AWAITING_APPROVAL, 4, 30,
            (("MTR-500", "250", "195.00"),), "rita.ops",
        ),
        PurchaseOrderSeed(
            "PO-1004", "Summit Steel Co.", PO.AWAITING_APPROVAL, 1, 21,
            (("GEAR-12", "210", "38.00"),), "sam.buyer",
        ),
        PurchaseOrderSeed(
            "PO-1005", "Metro Office Depot", PO.DRAFT, 0, 7,
            (("CBL-05", "200", "3.20"),), "sam.buyer",
        ),
        PurchaseOrderSeed(
            "PO-1006", "Summit Steel Co.", PO.APPROVED, 30, -12,
            (("WID-100", "2000", "4.15"),), "sam.buyer", "maria.manager", "standing order",
        ),
        PurchaseOrderSeed(
            "PO-1007", "Sunrise Electronics", PO.APPROVED, 6, 9,
            (("SNS-T1", "300", "11.20"),), "rita.ops", "maria.manager",
        ),
        PurchaseOrderSeed(
            "PO-1008", "Acme Supplies", PO.REJECTED, 20, 10,
            (("WID-200", "5000", "6.40"),), "sam.buyer", "frank.finance", "quantity far too high",
        ),
        PurchaseOrderSeed(
            "PO-1009", "Pacific Packaging", PO.RECEIVED, 40, -28,
            (("PKG-BOX", "1500", "0.60"),), "sam.buyer", "maria.manager",
        ),
        PurchaseOrderSeed(
            "PO-1010", "Sunrise Electronics", PO.RECEIVED, 65, -52,
            (("MTR-500", "20", "142.50"),), "rita.ops", "maria.manager",
        ),
    ),
    sales_orders=(
        SalesOrderSeed(
            "Contoso Retail", 2, (("WID-100", "100", "9.50"), ("BRK-310", "200", "2.40"))
        ),
        SalesOrderSeed("Tailspin Toys", 1, (("GEAR-12", "10", "79.00"),)),
    ),
    invoices=(
        InvoiceSeed("Wide World Importers", 200, 45, D("12500.00"), paid=D("6000.00")),
        InvoiceSeed("Northwind Traders", 130, 30, D("4200.00"), paid=D("1000.00")),
        InvoiceSeed("Contoso Retail", 120, 30, D("2750.00")),
        InvoiceSeed("Fabrikam Industries", 95, 30, D("6100.00"), paid=D("6588.00")),
        InvoiceSeed("Northwind Logistics", 75, 30, D("3450.00"), paid=D("1726.00")),
        InvoiceSeed("Tailspin Toys", 61, 30, D("1980.00")),
        InvoiceSeed("Tailspin Toys", 60, 30, D("940.00"), paid=D("1015.20")),
        InvoiceSeed("Wide World Importers", 50, 30, D("8900.00")),
        InvoiceSeed("Contoso Retail", 40, 30, D("1250.00")),
        InvoiceSeed("Blue Yonder Airlines", 35, 30, D("5000.00"), cancelled=True),
        InvoiceSeed("Fabrikam Industries", 20, 30, D("7300.00")),
        InvoiceSeed("Northwind Traders", 5, 30, D("2640.00")),
    ),
    bills=(
        BillSeed("Summit Steel Co.", "Steel stock, spot purchase", Ledger.COST_OF_SALES, 160, 30,
                 D("5420.00"), paid=D("2000.00")),
        BillSeed("Great Lakes Logistics", "Inbound freight", Ledger.FREIGHT, 100, 30,
                 D("1840.00"), paid=D("840.00")),
        BillSeed("Metro Office Depot", "Office supplies", Ledger.OFFICE, 75, 30, D("615.40")),
        BillSeed("Great Lakes Logistics", "Inbound freight", Ledger.FREIGHT, 70, 30,
                 D("760.00"), paid=D("760.00")),
        BillSeed("Sunrise Electronics", "Servo motors", Ledger.INVENTORY, 50, 30,
                 D("2850.00"), purchase_order="PO-1010"),
        BillSeed("Acme Supplies", "Widgets and sensors, spot purchase", Ledger.COST_OF_SALES,
                 40, 45, D("3100.00")),
        BillSeed("Pacific Packaging", "Shipping boxes", Ledger.INVENTORY, 25, 30,
                 D("900.00"), purchase_order="PO-1009"),
        BillSeed("Metro Office Depot", "Printer toner", Ledger.OFFICE, 20, 15, D("289.90")),
    ),
)  # fmt: skip


GLOBEX = TenantSeed(
    banks=(
        BankSeed("Geschäftskonto", "Deutsche Bank", "DE** **** 3310", "1010", D("96400.00")),
        BankSeed("Festgeld", "Commerzbank", "DE** **** 8842", "1030", D("210000.00")),
    ),
    customers=(
        CustomerSeed("Müller Maschinenbau GmbH", "buchhaltung@mueller-mb.example", D("25000.00")),
        CustomerSeed("Schneider Logistik AG", "rechnungen@schneider-log.example", D("12000.00")),
        CustomerSeed("Schneider Elektro KG", "info@schneider-elektro.example", D("8000.00")),
        CustomerSeed("Bauer Handels GmbH", "einkauf@bauer-handel.example", D("15000.00")),
        CustomerSeed("Keller & Söhne OHG", "kontakt@keller-soehne.example", D("10000.00")),
        CustomerSeed("Vogel Automotive GmbH", "ap@vogel-auto.example", D("40000.00")),
    ),
    suppliers=(
        SupplierSeed("Hansa Metallbau GmbH", "vertrieb@hansa-metall.example"),
        SupplierSeed("Rhein Kunststoff AG", "auftrag@rhein-kunststoff.example"),
        SupplierSeed("Nordlicht Elektronik GmbH", "sales@nordlicht.example"),
        SupplierSeed("Alpen Verpackung GmbH", "bestellung@alpen-verpackung.example"),
        SupplierSeed("Weser Transport GmbH", "dispo@weser-transport.example", 14),
    ),
    items=(
        ItemSeed("GX-100", "Hydraulikpumpe HP-100", "Stk", "22", "15", "40", "310.00", "640.00"),
        ItemSeed("GX-210", "Dichtungssatz DS-210", "Stk", "140", "200", "500", "4.80", "12.90"),
        ItemSeed("GX-330", "Steuerplatine SP-330", "Stk", "35", "30", "60", "88.00", "179.00"),
        ItemSeed("GX-450", "Edelstahlrohr 2m", "Stk", "9", "25", "100", "21.50", "44.00"),
        ItemSeed("GX-520", "Kabelbaum KB-520", "Stk", "260", "120", "300", "16.40", "35.00"),
        ItemSeed("GX-600", "Transportkiste", "Stk", "75", "40", "150", "9.90", "19.50"),
    ),
    purchase_orders=(
        PurchaseOrderSeed(
            "PO-1001", "Hansa Metallbau GmbH", PO.AWAITING_APPROVAL, 2, 14,
            (("GX-450", "300", "21.50"), ("GX-600", "360", "9.50")), "lena.einkauf",
        ),
        PurchaseOrderSeed(
            "PO-1002", "Nordlicht Elektronik GmbH", PO.AWAITING_APPROVAL, 5, 28,
            (("GX-330", "300", "86.00"),), "lena.einkauf",
        ),
        PurchaseOrderSeed(
            "PO-1003", "Rhein Kunststoff AG", PO.AWAITING_APPROVAL, 1, 10,
            (("GX-210", "1000", "4.75"),), "jonas.lager",
        ),
        PurchaseOrderSeed(
            "PO-1004", "Alpen Verpackung GmbH", PO.DRAFT, 0, 12,
            (("GX-600", "100", "9.90"),), "jonas.lager",
        ),
        PurchaseOrderSeed(
            "PO-1005", "Hansa Metallbau GmbH", PO.APPROVED, 35, -20,
            (("GX-100", "20", "305.00"),), "lena.einkauf", "petra.leitung",
        ),
        PurchaseOrderSeed(
            "PO-1006", "Nordlicht Elektronik GmbH", PO.APPROVED, 8, 14,
            (("GX-520", "200", "16.40"),), "lena.einkauf", "petra.leitung",
        ),
        PurchaseOrderSeed(
            "PO-1007", "Rhein Kunststoff AG", PO.REJECTED, 25, 5,
            (("GX-210", "5000", "5.10"),), "jonas.lager", "karl.finanzen", "Menge zu hoch",
        ),
        PurchaseOrderSeed(
            "PO-1008", "Alpen Verpackung GmbH", PO.RECEIVED, 30, -22,
            (("GX-600", "50", "9.90"),), "jonas.lager", "petra.leitung",
        ),
        PurchaseOrderSeed(
            "PO-1009", "Nordlicht Elektronik GmbH", PO.RECEIVED, 60, -47,
            (("GX-330", "20", "88.00"),), "lena.einkauf", "petra.leitung",
        ),
        PurchaseOrderSeed(
            "PO-1010", "Weser Transport GmbH", PO.AWAITING_APPROVAL, 3, 9,
            (("GX-520", "150", "16.20"),), "jonas.lager",
        ),
    ),
    sales_orders=(
        SalesOrderSeed("Bauer Handels GmbH", 2, (("GX-520", "40", "35.00"),)),
        SalesOrderSeed(
            "Schneider Logistik AG", 1, (("GX-100", "2", "640.00"), ("GX-210", "10", "12.90"))
        ),
    ),
    invoices=(
        InvoiceSeed("Müller Maschinenbau GmbH", 140, 30, D("7800.00"), paid=D("2000.00")),
        InvoiceSeed("Schneider Logistik AG", 100, 30, D("3150.00")),
        InvoiceSeed("Keller & Söhne OHG", 95, 30, D("2080.00")),
        InvoiceSeed("Bauer Handels GmbH", 85, 30, D("1420.00")),
        InvoiceSeed("Keller & Söhne OHG", 70, 30, D("5600.00"), paid=D("6664.00")),
        InvoiceSeed("Müller Maschinenbau GmbH", 60, 30, D("980.00"), cancelled=True),
        InvoiceSeed("Vogel Automotive GmbH", 45, 30, D("12300.00"), paid=D("5000.00")),
        InvoiceSeed("Schneider Elektro KG", 38, 30, D("2275.00")),
        InvoiceSeed("Bauer Handels GmbH", 12, 30, D("4450.00")),
        InvoiceSeed("Vogel Automotive GmbH", 3, 14, D("6720.00")),
    ),
    bills=(
        BillSeed("Hansa Metallbau GmbH", "Rohmaterial Stahl", Ledger.COST_OF_SALES, 150, 30,
                 D("4380.00")),
        BillSeed("Weser Transport GmbH", "Frachtkosten", Ledger.FREIGHT, 110, 30,
                 D("1230.00"), paid=D("500.00")),
        BillSeed("Alpen Verpackung GmbH", "Verpackungsmaterial", Ledger.COST_OF_SALES, 80, 30,
                 D("1115.00")),
        BillSeed("Rhein Kunststoff AG", "Kunststoffteile", Ledger.COST_OF_SALES, 75, 30,
                 D("2905.00"), paid=D("2905.00")),
        BillSeed("Nordlicht Elektronik GmbH", "Steuerplatinen", Ledger.INVENTORY, 45, 30,
                 D("1760.00"), purchase_order="PO-1009"),
        BillSeed("Weser Transport GmbH", "Frachtkosten", Ledger.FREIGHT, 30, 14, D("690.00")),
        BillSeed("Alpen Verpackung GmbH", "Transportkisten", Ledger.INVENTORY, 20, 30,
                 D("495.00"), purchase_order="PO-1008"),
    ),
)  # fmt: skip


SEEDS: dict[str, TenantSeed] = {"acme": ACME, "globex": GLOBEX}
