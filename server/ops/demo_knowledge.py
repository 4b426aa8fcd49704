"""The demo's knowledge as `parley serve` loads it in dev mode: each demo company's policies,
added to Parley's database by each worker once it runs, so that "what is our approval limit for
purchase orders?" is answered from a document, with its citation.

The documents and the manifest naming their tenants belong to the demo (``examples/erp/
knowledge``); the server reads them as files, as an operator's ``parley knowledge add`` would,
and imports nothing of the demo. Adding is incremental, so a restart writes nothing new.
"""

from __future__ import annotations

import asyncio
import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path

from server.knowledge.parts import KnowledgeParts
from storage.errors import Conflict
from storage.knowledge import PutOutcome

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DemoCollection:
    tenant: str
    name: str
    title: str
    folder: Path


def demo_collections(manifest: Path) -> list[DemoCollection]:
    """The collections a manifest lists; its folders are relative to the manifest.

    Raises:
        ValueError: the file is not TOML or an entry lacks a field.
    """
    try:
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
        return [
            DemoCollection(
                tenant=str(entry["tenant"]),
                name=str(entry["name"]),
                title=str(entry.get("title") or entry["name"]),
                folder=manifest.parent / str(entry["folder"]),
            )
            for entry in data.get("collection", ())
        ]
    except (tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"PARLEY_DEMO_KNOWLEDGE: {manifest} is not a knowledge manifest") from exc


LOAD_ATTEMPTS = 3


async def load_demo_knowledge(manifest: Path, parts: KnowledgeParts) -> None:
    """Add the manifest's collections; what is already there unchanged is left alone.

    Runs in the background of every worker: workers starting together may add the same
    document at once; the one that loses (``Conflict``) tries again, and finds it there.
    Nothing here stops a worker; a problem is logged.
    """
    for attempt in range(1, LOAD_ATTEMPTS + 1):
        try:
            await _load(manifest, parts)
            return
        except Conflict:
            logger.info("demo knowledge: added by another worker meanwhile (try %d)", attempt)
            await asyncio.sleep(attempt * 0.5)
        except (OSError, ValueError) as exc:
            logger.warning("demo knowledge not loaded: %s", exc)
            return
        except Exception:
            logger.exception("demo knowledge not loaded")
            return


async def _load(manifest: Path, parts: KnowledgeParts) -> None:
    collections = await asyncio.to_thread(demo_collections, manifest)
    for collection in collections:
        await parts.store.put_collection(collection.tenant, collection.name, title=collection.title)
        report = await parts.ingest.add_folder(
            collection.tenant, collection.name, collection.folder
        )
        logger.info(
            "demo knowledge %s/%s: %d documents, %d unchanged",
            collection.tenant,
            collection.name,
            len(report.outcomes),
            report.count(PutOutcome.UNCHANGED),
        )
