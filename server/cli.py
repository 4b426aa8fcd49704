"""The ``parley`` command: serve, migrate, token, schema, devllm, knowledge."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from server.config import Settings, describe


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except ValueError as exc:  # bad settings in the environment
        print(f"parley: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parley", description="Parley assistant server.")
    commands = parser.add_subparsers(dest="command")

    serve = commands.add_parser(
        "serve",
        help="run the server",
        description="Run the server. Settings come from the environment:",
        epilog=_settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", help="bind address (PARLEY_HOST)")
    serve.add_argument("--port", type=int, help="port (PORT)")
    serve.add_argument(
        "--workers", type=int, help="worker processes on the port (PARLEY_WORKERS; 2+ need Redis)"
    )
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser("migrate", help="apply database migrations (DATABASE_URL)")
    migrate.set_defaults(run=_migrate)

    token = commands.add_parser("token", help="print a signed dev token (dev mode only)")
    token.add_argument("--user", required=True)
    token.add_argument("--tenant", required=True)
    token.add_argument("--roles", default="", help="comma-separated roles")
    token.add_argument("--name")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    token.set_defaults(run=_token)

    schema = commands.add_parser("schema", help="write the JSON Schema of all frames")
    schema.add_argument("--output", "-o", default="docs/protocol.schema.json")
    schema.set_defaults(run=_schema)

    devllm = commands.add_parser("devllm", help="run the scripted dev model as its own server")
    devllm.add_argument("--host", default="127.0.0.1")
    devllm.add_argument("--port", type=int, default=8100)
    devllm.add_argument("--token-rate", type=float, default=40.0, help="tokens per second")
    devllm.set_defaults(run=_devllm)

    from server.knowledge.command import add_arguments

    add_arguments(commands)
    return parser


def _settings_help() -> str:
    rows = describe()
    width = max(len(name) for name, _, _ in rows)
    lines = [
        f"  {name:<{width}}  {meaning} [default: {default or 'unset'}]"
        for name, default, meaning in rows
    ]
    return "\n".join(lines)


def _serve(args: argparse.Namespace) -> int:
    from server.ops.demo_erp import demo_erp
    from server.ops.serving import run_worker, run_workers

    overrides: dict[str, Any] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    if args.workers is not None:
        overrides["workers"] = args.workers
    settings = Settings.from_env(**overrides)
    workers = settings.workers
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    # Started here, before any worker, so that N workers share one demo ERP app.
    with demo_erp(settings) as demo_overrides:
        overrides.update(demo_overrides)
        if workers == 1:
            run_worker(overrides)
            return 0
        return run_workers(overrides, workers)


def _migrate(_args: argparse.Namespace) -> int:
    from storage.db import Database

    settings = Settings.from_env()

    async def run() -> None:
        db = Database(settings.database_url)
        try:
            await db.migrate()
        finally:
            await db.close()

    asyncio.run(run())
    print("migrations applied")
    return 0


def _token(args: argparse.Namespace) -> int:
    from server.security.auth import issue_token

    settings = Settings.from_env()
    if not settings.dev:
        print("parley token: only in dev mode (PARLEY_DEV=1)", file=sys.stderr)
        return 2
    roles = [role for role in args.roles.split(",") if role]
    print(
        issue_token(
            settings,
            user=args.user,
            tenant=args.tenant,
            roles=roles,
            name=args.name,
            ttl_s=args.ttl,
        )
    )
    return 0


def _schema(args: argparse.Namespace) -> int:
    from protocol.schema import write_schema

    write_schema(args.output)
    print(f"wrote {args.output}")
    return 0


def _devllm(args: argparse.Namespace) -> int:
    from server.devllm.serve import run

    run(host=args.host, port=args.port, token_rate=args.token_rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
