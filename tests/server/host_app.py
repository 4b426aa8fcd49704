"""A host app of the tests' own: a small REST API with an OpenAPI document, as a user's app
would publish it, run as a process (``python -m tests.server.host_app --port N ...``).

It checks Parley's per-call JWT with PyJWT (signature, ``aud``, ``exp``, ``sub``, ``tenant``),
records every request it gets, and honours ``Idempotency-Key``: an action whose key it has seen
is answered from its record instead of running again. Control routes (no auth; loopback only):

- ``GET /_requests`` every request so far; ``DELETE /_requests`` forgets them;
- ``GET /_executions`` how often each action really ran, by key;
- ``POST /_control`` switches: ``{"fail_after_work": n}`` answers 500 to the next n actions after
  doing their work; ``{"always_500": true}`` answers every action (replays too) with 500 after
  doing its work once; ``{"forget_keys": true}`` acts like a host that keeps no idempotency
  records: a repeated key is refused with 409; ``{"slow_s": x}`` waits x seconds before
  answering any API route;
  ``{"document": "clash"}`` publishes a document with two arguments of one name.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
from typing import Any

import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

BIG_RESPONSE_BYTES = 10 * 1024 * 1024

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Test host", "version": "1"},
    "servers": [{"url": "/api"}],
    "paths": {
        "/things/{thing_id}": {
            "get": {
                "operationId": "get_thing",
                "summary": "Look up a thing by its id.",
                "parameters": [
                    {
                        "name": "thing_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    {"name": "verbose", "in": "query", "schema": {"type": "boolean"}},
                ],
            }
        },
        "/orders/{po_number}/approve": {
            "post": {
                "operationId": "approve_order",
                "summary": "Approve a purchase order.",
                "x-parley": {"summary": "Approve purchase order {po_number}"},
                "parameters": [
                    {
                        "name": "po_number",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Approval"}}
                    },
                },
            }
        },
        "/big": {"get": {"operationId": "get_big", "summary": "A very large report."}},
        "/salaries": {"get": {"operationId": "get_salaries", "summary": "Everyone's salary."}},
    },
    "components": {
        "schemas": {
            "Approval": {
                "type": "object",
                "properties": {"comment": {"type": "string", "maxLength": 200}},
            }
        }
    },
}


class Host:
    """The host's state: what it was asked, what it did, and the switches."""

    def __init__(
        self,
        secret: str | None,
        jwks_url: str | None,
        audience: str,
        user_secret: str | None = None,
    ) -> None:
        self.secret = secret
        self.user_secret = user_secret
        self.jwks = jwt.PyJWKClient(jwks_url) if jwks_url else None
        self.audience = audience
        self.requests: list[dict[str, Any]] = []
        self.executions: dict[str, int] = {}
        self.answers: dict[str, dict[str, Any]] = {}
        self.fail_after_work = 0
        self.always_500 = False
        self.forget_keys = False
        self.slow_s = 0.0
        self.document = "good"
        self.lock = asyncio.Lock()

    def verify(self, request: Request) -> dict[str, Any]:
        """The token's claims; raises PermissionError with the reason."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise PermissionError("no bearer token")
        if self.user_secret is not None:
            # auth = "passthrough": the user's own token, as the app itself issued it.
            try:
                user: dict[str, Any] = jwt.decode(
                    token,
                    self.user_secret,
                    algorithms=["HS256"],
                    options={"require": ["exp", "sub", "tenant"], "verify_aud": False},
                )
            except jwt.PyJWTError as exc:
                raise PermissionError(f"bad user token: {exc}") from None
            return user
        if self.jwks is not None:
            key: Any = self.jwks.get_signing_key_from_jwt(token).key
            algorithms = ["ES256", "RS256"]
        else:
            key, algorithms = self.secret, ["HS256"]
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.audience,
                issuer="parley",
                options={"require": ["exp", "iat", "sub", "tenant", "aud", "jti"]},
            )
        except jwt.PyJWTError as exc:
            raise PermissionError(f"bad token: {exc}") from None
        return claims


def build_app(host: Host) -> Starlette:
    async def record(request: Request) -> tuple[dict[str, Any], dict[str, Any] | None]:
        body = await request.body()
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.url.path,
            "query": dict(request.query_params),
            "body": body.decode(errors="replace")[:2000],
            "idempotency_key": request.headers.get("idempotency-key"),
            "api_key": request.headers.get("x-api-key"),
        }
        try:
            entry["claims"] = host.verify(request)
        except PermissionError as exc:
            entry["auth_error"] = str(exc)
        host.requests.append(entry)
        if host.slow_s:
            await asyncio.sleep(host.slow_s)
        return entry, entry.get("claims")

    async def document(_request: Request) -> Response:
        if host.document == "clash":
            broken = copy.deepcopy(DOCUMENT)
            schema = broken["components"]["schemas"]["Approval"]
            schema["properties"]["po_number"] = {"type": "string"}
            return JSONResponse(broken)
        return JSONResponse(DOCUMENT)

    async def get_thing(request: Request) -> Response:
        entry, claims = await record(request)
        if claims is None:
            return JSONResponse({"detail": entry["auth_error"]}, status_code=401)
        thing = request.path_params["thing_id"]
        return JSONResponse(
            {
                "id": thing,
                "name": f"Thing {thing}",
                "tenant": claims["tenant"],
                "user": claims["sub"],
            }
        )

    async def approve_order(request: Request) -> Response:
        entry, claims = await record(request)
        if claims is None:
            return JSONResponse({"detail": entry["auth_error"]}, status_code=401)
        key = request.headers.get("idempotency-key")
        if not key:
            return JSONResponse({"detail": "Idempotency-Key is required"}, status_code=400)
        async with host.lock:
            stored = host.answers.get(key)
            if stored is not None and host.forget_keys:
                return JSONResponse({"detail": "order is already approved"}, status_code=409)
            if stored is None:
                host.executions[key] = host.executions.get(key, 0) + 1
                stored = {
                    "po_number": request.path_params["po_number"],
                    "status": "approved",
                    "approved_by": claims["sub"],
                }
                host.answers[key] = stored
                if host.fail_after_work > 0:
                    host.fail_after_work -= 1
                    return JSONResponse({"detail": "database hiccup"}, status_code=500)
        if host.always_500:
            return JSONResponse({"detail": "database hiccup"}, status_code=500)
        return JSONResponse(stored)

    async def get_big(request: Request) -> Response:
        await record(request)
        filler = "x" * 1000
        rows = ",".join(
            f'{{"row":{n},"text":"{filler}"}}' for n in range(BIG_RESPONSE_BYTES // 1020)
        )
        return Response(f'{{"rows":[{rows}]}}', media_type="application/json")

    async def get_salaries(request: Request) -> Response:
        await record(request)
        return JSONResponse({"detail": "only managers may see salaries"}, status_code=403)

    async def requests(request: Request) -> Response:
        if request.method == "DELETE":
            host.requests.clear()
        return JSONResponse(host.requests)

    async def executions(_request: Request) -> Response:
        return JSONResponse(host.executions)

    async def control(request: Request) -> Response:
        switches = await request.json()
        host.fail_after_work = int(switches.get("fail_after_work", host.fail_after_work))
        host.always_500 = bool(switches.get("always_500", host.always_500))
        host.forget_keys = bool(switches.get("forget_keys", host.forget_keys))
        host.slow_s = float(switches.get("slow_s", host.slow_s))
        host.document = str(switches.get("document", host.document))
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/openapi.json", document),
            Route("/api/things/{thing_id}", get_thing),
            Route("/api/orders/{po_number}/approve", approve_order, methods=["POST"]),
            Route("/api/big", get_big),
            Route("/api/salaries", get_salaries),
            Route("/_requests", requests, methods=["GET", "DELETE"]),
            Route("/_executions", executions),
            Route("/_control", control, methods=["POST"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", help="HS256 secret of Parley's tokens")
    parser.add_argument("--jwks-url", help="Parley's JWKS, for ES256/RS256 tokens")
    parser.add_argument("--audience", default="host")
    parser.add_argument("--user-secret", help="HS256 secret of the users' own tokens")
    args = parser.parse_args()
    host = Host(args.secret, args.jwks_url, args.audience, args.user_secret)
    uvicorn.run(build_app(host), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
