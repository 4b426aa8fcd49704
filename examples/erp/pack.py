"""Assembling the demo ERP pack: its tools, its tables and seed, and its tenants' settings."""

from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from examples.erp.analytics import register_analytics
from examples.erp.companies import COMPANIES, Today
from examples.erp.models import ErpBase
from examples.erp.purchasing import register_purchasing
from examples.erp.queries import register_queries
from examples.erp.sales import register_sales
from examples.erp.seed import SEEDED_TENANTS, is_seeded, seed_tenant
from examples.erp.settlements import register_settlements
from server.tools.context import TenantSettings
from server.tools.registry import ToolPack

__all__ = ["build_pack", "prepare_database"]

# Any fixed number: workers starting together take this PostgreSQL advisory lock in turn, so
# only one creates the tables and seeds while the others wait and then find the work done.
_SETUP_LOCK_KEY = 0x5041524C4559  # "PARLEY"


async def prepare_database(engine: AsyncEngine, dev: bool, today: Today = date.today) -> None:
    """Create the pack's tables if missing and, when `dev`, seed the demo tenants not seeded yet.

    Everything happens in one transaction, so a failed seed leaves no half-written books.
    """
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SETUP_LOCK_KEY}
            )
        await connection.run_sync(ErpBase.metadata.create_all)
        if not dev:
            return
        # The session joins the connection's transaction; engine.begin() commits it.
        session = AsyncSession(bind=connection)
        try:
            for tenant in SEEDED_TENANTS:
                if not await is_seeded(session, tenant):
                    await seed_tenant(session, tenant, today())
            await session.flush()
        finally:
            await session.close()


def build_pack(today: Today = date.today) -> ToolPack:
    """The demo ERP pack, reading the current day from `today` (tests pass a fixed day)."""
    pack = ToolPack("erp_demo")
    register_queries(pack, today)
    register_analytics(pack, today)
    register_purchasing(pack, today)
    register_sales(pack, today)
    register_settlements(pack, today)

    @pack.on_setup
    async def setup(engine: AsyncEngine, dev: bool) -> None:
        await prepare_database(engine, dev, today)

    @pack.tenant_info
    def tenant_settings(tenant: str) -> TenantSettings:
        company = COMPANIES.get(tenant)
        if company is None:
            return TenantSettings()
        return TenantSettings(currency=company.currency, locale=company.locale)

    return pack
