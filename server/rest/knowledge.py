"""Knowledge collections over REST: administrators add, replace and remove documents; every
user may list and search the collections their roles allow.

Whatever a caller may not search answers exactly as what does not exist (404, or nothing
found), so neither a tenant's collections nor a role-limited one reveal themselves.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from http import HTTPStatus
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from protocol import ErrorCode
from server.knowledge.extraction import DocumentFormat, ExtractionError
from server.knowledge.ingest import DocumentInput, DocumentTooLarge
from server.rest.api import ApiCall, ApiRouter
from server.rest.errors import ApiError, RestErrorCode
from storage.errors import Conflict, NotFound
from storage.knowledge import KnowledgeStore, PutOutcome
from storage.models import KnowledgeCollection, KnowledgeDocument
from storage.paging import as_utc

router = ApiRouter(
    "knowledge",
    "Collections of the host app's documents that the assistant searches and cites.",
)

# Names of collections and ids of documents, as they appear in paths.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


class CollectionIn(BaseModel):
    """What to change of a collection; it is created if missing."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=200, description="shown to people")
    roles: list[str] | None = Field(
        default=None,
        max_length=50,
        description="roles of which a user needs one to search it; empty: every user",
    )


class CollectionOut(BaseModel):
    """A collection I may search."""

    name: str
    title: str
    roles: list[str] = Field(description="roles that may search it; empty: every user")


class CollectionList(BaseModel):
    items: list[CollectionOut]


class DocumentIn(BaseModel):
    """A document to add or replace. PDF content is sent base64-encoded."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(
        default=None, max_length=500, description="else the document's own (first heading)"
    )
    url: str | None = Field(
        default=None, max_length=2000, description="a link back to it in the host app"
    )
    format: Literal["markdown", "html", "text", "pdf"] = Field(default="markdown")
    content: str = Field(description="the document; base64 for `pdf`")


class DocumentOut(BaseModel):
    """A stored document."""

    collection: str
    document_id: str
    title: str
    url: str | None = None
    chunks: int = Field(description="passages it was split into")
    content_hash: str
    updated_at: datetime


class PutDocumentOut(DocumentOut):
    outcome: Literal["created", "replaced", "unchanged"] = Field(
        description="`unchanged`: the same content was already stored, nothing was written"
    )


class DocumentList(BaseModel):
    items: list[DocumentOut]


class SearchQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    q: str = Field(min_length=1, max_length=1000, description="the question or words")
    collection: str | None = Field(default=None, description="only this collection")


class PassageOut(BaseModel):
    """A passage found, best first."""

    collection: str
    document_id: str
    title: str
    url: str | None = None
    section: str = Field(description="the headings above it, outermost first")
    text: str


class SearchOut(BaseModel):
    items: list[PassageOut]


@router.get("/knowledge", response=CollectionList)
async def list_collections(call: ApiCall[None, None]) -> CollectionList:
    """The knowledge collections my roles let me search."""
    visible = await call.rest.knowledge_store.visible_collections(
        call.principal.tenant, call.principal.roles
    )
    return CollectionList(items=[_collection_out(found) for found in visible])


@router.get("/knowledge/search", response=SearchOut, query=SearchQuery)
async def search_knowledge(call: ApiCall[SearchQuery, None]) -> SearchOut:
    """Search the collections my roles let me search, as the assistant's `search_knowledge`
    tool does."""
    principal = call.principal
    names = [
        found.name
        for found in await call.rest.knowledge_store.visible_collections(
            principal.tenant, principal.roles
        )
    ]
    if call.query.collection is not None:
        names = [name for name in names if name == call.query.collection]
    hits = await call.rest.knowledge.find(principal.tenant, names, call.query.q)
    return SearchOut(
        items=[
            PassageOut(
                collection=hit.collection,
                document_id=hit.document_id,
                title=hit.title,
                url=hit.url,
                section=hit.heading,
                text=hit.text,
            )
            for hit in hits
        ]
    )


@router.put("/knowledge/{collection}", response=CollectionOut, body=CollectionIn, admin=True)
async def put_collection(call: ApiCall[None, CollectionIn]) -> CollectionOut:
    """Create a collection or change its title or roles (administrators)."""
    name = _name(call.path("collection"), "collection")
    try:
        stored = await call.rest.knowledge_store.put_collection(
            call.principal.tenant, name, title=call.body.title, roles=call.body.roles
        )
    except Conflict as exc:
        raise ApiError(HTTPStatus.CONFLICT, RestErrorCode.CONFLICT, str(exc)) from None
    return _collection_out(stored)


@router.get("/knowledge/{collection}/documents", response=DocumentList)
async def list_documents(call: ApiCall[None, None]) -> DocumentList:
    """The documents of a collection I may search, by id (the first `PARLEY_API_PAGE_MAX`)."""
    collection = await _searchable(call, call.path("collection"))
    documents = await call.rest.knowledge_store.documents(
        call.principal.tenant, collection, call.rest.settings.api_page_max
    )
    return DocumentList(items=[_document_out(document) for document in documents])


@router.get(
    "/knowledge/{collection}/documents/{document_id:path}", response=DocumentOut, errors=(404,)
)
async def get_document(call: ApiCall[None, None]) -> DocumentOut:
    """One document of a collection I may search."""
    collection = await _searchable(call, call.path("collection"))
    return _document_out(await _document(call.rest.knowledge_store, call, collection))


@router.put(
    "/knowledge/{collection}/documents/{document_id:path}",
    response=PutDocumentOut,
    body=DocumentIn,
    admin=True,
    errors=(409,),
    body_limit=lambda settings: settings.knowledge_document_max_bytes * 4 // 3 + 8192,
)
async def put_document(call: ApiCall[None, DocumentIn]) -> PutDocumentOut:
    """Add or replace a document (administrators).

    The collection is created if missing. Sending the same content, title and URL again
    writes nothing (`outcome: unchanged`); a change replaces all of the document's passages.
    """
    collection = _name(call.path("collection"), "collection")
    document_id = call.path("document_id")
    if not 1 <= len(document_id) <= 200:
        raise ApiError(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            ErrorCode.INVALID_FIELD,
            "a document id has 1 to 200 characters",
            field="document_id",
        )
    body = call.body
    kind = DocumentFormat(body.format)
    data = _content_bytes(body.content, kind)
    document = DocumentInput(
        document_id=document_id, kind=kind, data=data, title=body.title, url=body.url
    )
    store = call.rest.knowledge_store
    try:
        outcome = await call.rest.knowledge_ingest.add(call.principal.tenant, collection, document)
    except DocumentTooLarge as exc:
        raise ApiError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE, RestErrorCode.BODY_TOO_LARGE, str(exc)
        ) from None
    except ExtractionError as exc:
        raise ApiError(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            RestErrorCode.UNREADABLE_DOCUMENT,
            f"field 'content' is {exc}",
            field="content",
        ) from None
    except Conflict as exc:
        raise ApiError(HTTPStatus.CONFLICT, RestErrorCode.CONFLICT, str(exc)) from None
    stored = await _document(store, call, collection)
    return PutDocumentOut(**_document_out(stored).model_dump(), outcome=PutOutcome(outcome).value)


@router.delete(
    "/knowledge/{collection}/documents/{document_id:path}",
    response=None,
    status=HTTPStatus.NO_CONTENT,
    admin=True,
)
async def delete_document(call: ApiCall[None, None]) -> None:
    """Remove a document and all its passages (administrators)."""
    collection = call.path("collection")
    document_id = call.path("document_id")
    try:
        await call.rest.knowledge_store.delete_document(
            call.principal.tenant, collection, document_id
        )
    except NotFound:
        raise _document_not_found(document_id) from None


async def _searchable(call: ApiCall[Any, Any], name: str) -> str:
    visible = await call.rest.knowledge_store.visible_collections(
        call.principal.tenant, call.principal.roles, [name]
    )
    if not visible:
        raise ApiError(
            HTTPStatus.NOT_FOUND,
            RestErrorCode.COLLECTION_NOT_FOUND,
            f"collection '{name}' not found",
        )
    return name


async def _document(
    store: KnowledgeStore, call: ApiCall[Any, Any], collection: str
) -> KnowledgeDocument:
    document_id = call.path("document_id")
    try:
        return await store.document(call.principal.tenant, collection, document_id)
    except NotFound:
        raise _document_not_found(document_id) from None


def _document_not_found(document_id: str) -> ApiError:
    return ApiError(
        HTTPStatus.NOT_FOUND,
        RestErrorCode.DOCUMENT_NOT_FOUND,
        f"document '{document_id}' not found",
    )


def _name(value: str, what: str) -> str:
    if re.fullmatch(NAME_PATTERN, value) is None:
        raise ApiError(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            ErrorCode.INVALID_FIELD,
            f"a {what} name is 1 to 100 letters, digits, '.', '_' or '-'",
            field=what,
        )
    return value


def _content_bytes(content: str, kind: DocumentFormat) -> bytes:
    if kind is not DocumentFormat.PDF:
        return content.encode("utf-8")
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            ErrorCode.INVALID_FIELD,
            "field 'content' of a pdf must be base64",
            field="content",
        ) from None


def _collection_out(found: KnowledgeCollection) -> CollectionOut:
    return CollectionOut(name=found.name, title=found.title, roles=list(found.roles))


def _document_out(document: KnowledgeDocument) -> DocumentOut:
    return DocumentOut(
        collection=document.collection,
        document_id=document.document_id,
        title=document.title,
        url=document.url,
        chunks=document.chunk_count,
        content_hash=document.content_hash,
        updated_at=as_utc(document.updated_at),
    )
