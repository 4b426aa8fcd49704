"""``parley knowledge``: add a folder (or one file) of documents to a collection, or remove a
document, straight into the database (DATABASE_URL), without a running server."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from server.config import Settings

if TYPE_CHECKING:
    import openai

    from server.knowledge.ingest import FolderReport, KnowledgeIngest
    from storage.db import Database

# The parsers, PDF reader and tokenizer load only when a knowledge command runs, not for
# every `parley` invocation.


def add_arguments(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Declare ``parley knowledge add`` and ``parley knowledge remove``."""
    knowledge = commands.add_parser("knowledge", help="manage knowledge collections")
    actions = knowledge.add_subparsers(dest="action", required=True)
    add = actions.add_parser(
        "add",
        help="add a folder or a file (Markdown, HTML, text, PDF) to a collection",
        description="Add every .md, .markdown, .html, .htm, .txt and .pdf file under PATH to a "
        "collection; a document's id is its path under the folder. Unchanged files are skipped, "
        "changed ones replaced.",
    )
    add.add_argument("path", type=Path)
    add.add_argument("--tenant", required=True)
    add.add_argument("--collection", required=True)
    add.add_argument("--roles", help="comma-separated roles that may search the collection")
    add.add_argument("--title", help="the collection's title")
    add.add_argument(
        "--url-prefix", help="link of each document: this prefix followed by the document's id"
    )
    add.set_defaults(run=run_add)
    remove = actions.add_parser("remove", help="remove a document from a collection")
    remove.add_argument("document_id")
    remove.add_argument("--tenant", required=True)
    remove.add_argument("--collection", required=True)
    remove.set_defaults(run=run_remove)


def run_add(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    return asyncio.run(_add(settings, args, single_file=args.path.is_file()))


def run_remove(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    return asyncio.run(_remove(settings, args))


async def _add(settings: Settings, args: argparse.Namespace, *, single_file: bool) -> int:
    from server.knowledge.parts import knowledge_parts
    from storage.db import Database
    from storage.knowledge import PutOutcome

    db = Database(settings.database_url)
    try:
        await _prepare(settings, db)
        parts = knowledge_parts(settings, db, _model_client(settings))
        roles = None if args.roles is None else [r for r in args.roles.split(",") if r]
        if roles is not None or args.title is not None:
            await parts.store.put_collection(
                args.tenant, args.collection, title=args.title, roles=roles
            )
        prefix = args.url_prefix

        def url_for(document_id: str) -> str | None:
            return f"{prefix}{document_id}" if prefix else None

        path: Path = args.path
        if single_file:
            report = await _add_file(parts.ingest, args, path, url_for(path.name))
        else:
            try:
                report = await parts.ingest.add_folder(
                    args.tenant, args.collection, path, url_for=url_for
                )
            except FileNotFoundError as exc:
                print(f"parley knowledge: {exc}", file=sys.stderr)
                return 2
    finally:
        await db.close()
    for document_id, outcome in sorted(report.outcomes.items()):
        print(f"{outcome.value:9} {document_id}")
    for document_id, reason in sorted(report.failed.items()):
        print(f"failed    {document_id}: {reason}", file=sys.stderr)
    counts = ", ".join(f"{report.count(outcome)} {outcome.value}" for outcome in PutOutcome)
    print(f"{args.collection}: {counts}, {len(report.failed)} failed")
    return 1 if report.failed else 0


async def _add_file(
    ingest: KnowledgeIngest, args: argparse.Namespace, path: Path, url: str | None
) -> FolderReport:
    from server.knowledge.extraction import ExtractionError, format_of
    from server.knowledge.ingest import DocumentInput, DocumentTooLarge, FolderReport

    report = FolderReport()
    kind = format_of(path)
    if kind is None:
        report.failed[path.name] = "not a Markdown, HTML, text or PDF file"
        return report
    try:
        data = await asyncio.to_thread(path.read_bytes)
        document = DocumentInput(document_id=path.name, kind=kind, data=data, url=url)
        report.outcomes[path.name] = await ingest.add(args.tenant, args.collection, document)
    except (OSError, DocumentTooLarge, ExtractionError) as exc:
        report.failed[path.name] = str(exc)
    return report


async def _remove(settings: Settings, args: argparse.Namespace) -> int:
    from server.knowledge.parts import knowledge_parts
    from storage.db import Database
    from storage.errors import NotFound

    db = Database(settings.database_url)
    try:
        await _prepare(settings, db)
        store = knowledge_parts(settings, db, _model_client(settings)).store
        try:
            await store.delete_document(args.tenant, args.collection, args.document_id)
        except NotFound as exc:
            print(f"parley knowledge: no {exc}", file=sys.stderr)
            return 1
    finally:
        await db.close()
    print(f"removed {args.document_id}")
    return 0


async def _prepare(settings: Settings, db: Database) -> None:
    # Like a worker: the embedded database (and dev mode) is migrated in place; elsewhere
    # `parley migrate` has done it.
    if settings.dev or db.is_sqlite:
        await db.migrate()


def _model_client(settings: Settings) -> openai.AsyncOpenAI | None:
    """The model endpoint's client, when documents are embedded (the dev model's in dev)."""
    if not settings.knowledge_embeddings:
        return None
    from server.assembly import model_clients

    return model_clients(settings)[0]
