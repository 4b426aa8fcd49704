"""Run the demo ERP host app: ``python -m examples.erp [--port 8100] [--seed] [--demo-data]``.

Settings come from ``ERP_*`` environment variables (see ``--help``); flags override them.
"""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from examples.erp.host.app import create_app
from examples.erp.host.settings import HostSettings, SettingsError


def main(argv: list[str] | None = None) -> int:
    """Parse the flags, build the app and serve it until interrupted."""
    settings_help = "\n".join(
        f"  {name:<28} {meaning} (default: {default or 'unset'})"
        for name, default, meaning in HostSettings.describe()
    )
    parser = argparse.ArgumentParser(
        prog="python -m examples.erp",
        description="The demo ERP as a host app: REST API, OpenAPI document, its own database.",
        epilog=f"environment:\n{settings_help}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", help="address to bind (ERP_HOST)")
    parser.add_argument("--port", type=int, help="port to listen on (ERP_PORT)")
    parser.add_argument("--database-url", help="SQLAlchemy URL of the books (ERP_DATABASE_URL)")
    parser.add_argument(
        "--seed",
        action="store_true",
        default=None,
        help="create the demo companies acme and globex if missing (ERP_SEED)",
    )
    parser.add_argument(
        "--demo-data",
        action="store_true",
        default=None,
        help="serve the demo page's live data without a token (ERP_DEMO_DATA)",
    )
    parser.add_argument("--log-level", default="info", help="log level (default: info)")
    args = parser.parse_args(argv)
    try:
        settings = HostSettings.from_env(
            host=args.host,
            port=args.port,
            database_url=args.database_url,
            seed=args.seed,
            demo_data=args.demo_data,
        )
    except SettingsError as exc:
        print(f"examples.erp: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=args.log_level.lower(),
        lifespan="on",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
