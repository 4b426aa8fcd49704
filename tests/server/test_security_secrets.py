"""Secrets never in logs, frames or error messages.

One full session against a server logging at DEBUG: refused tokens of every kind (one in the
URL), good sessions by hello token and by Bearer header, a turn with a tool and a confirmed
action, a token renewed in place, a rate-limited model key, a failing model, REST calls with
good and bad tokens, the dev token route. Then the server's whole log output and every frame
the clients received are searched for the JWT secret, the model API keys and every token used.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.server.conftest import Backend
from tests.server.harness import TEST_JWT_SECRET, DevModel, ParleyServer, Tab, make_token
from tests.server.security_support import SECURITY_PACK, hello_outcome

pytestmark = pytest.mark.timeout(240)

API_KEYS = ("sk-parley-first-key-7d3c2b1a0f9e8d7c", "sk-parley-second-key-1a2b3c4d5e6f7a8b")


class Session:
    """Everything secret the session handles, and everything the clients received."""

    def __init__(self, server: ParleyServer) -> None:
        self.server = server
        self.tokens: list[str] = []
        self.received: list[dict[str, Any]] = []

    def token(self, user: str | None = None, **claims: Any) -> str:
        token = make_token(user or self.server.user, **claims)
        self.tokens.append(token)
        return token

    def keep(self, tab: Tab) -> None:
        self.received.extend(tab.frames)


async def run_session(session: Session, model: DevModel) -> None:
    server = session.server
    url = server.ws_url
    # Refused: forged, expired, malformed, and a good token offered only in the URL.
    forged = jwt.encode(
        {"sub": server.user, "tenant": "acme", "exp": 2**31},
        "not-the-secret-but-just-as-long-0123456789",
    )
    session.tokens.append(forged)
    for bad in (forged, session.token(ttl_s=-120), "garbage-token"):
        code, _, frames = await hello_outcome(url, bad)
        assert code == 4401
        session.received.extend(frames)
    in_url = session.token()
    code, _, frames = await hello_outcome(f"{url}?token={in_url}&access_token={in_url}", None)
    assert code == 4401
    session.received.extend(frames)

    # A working session: a turn, a tool, a confirmed action, a renewed token.
    tab = await server.tab(session.token(ttl_s=3))
    await tab.ask("hello", "s-1")
    await tab.ask("[call employee_record] {}", "s-2")
    await tab.send(
        {"type": "user_message", "client_msg_id": "s-3", "text": '[call send_note] {"text": "hi"}'}
    )
    request = (await tab.until("confirm_request"))[-1]
    await tab.send({"type": "confirm", "token": request["token"], "decision": "approve"})
    await tab.until("turn_end")
    await tab.until(lambda frame: frame.get("code") == "token_expired", timeout=15)
    await tab.send({"type": "hello", "protocol": 1, "token": session.token()})
    # The first key is rate limited, the next takes over; then the model fails outright.
    model.set_faults([{"fault": "rate_limit", "retry_after": 30, "api_keys": [API_KEYS[0]]}])
    await tab.ask("hello again", "s-4")
    model.set_faults([{"fault": "server_error"}])
    failed = await tab.ask("and again", "s-5")
    assert failed[-1]["status"] == "failed"
    model.clear_faults()
    session.keep(tab)
    await tab.close()

    # The Bearer header instead of hello.
    bearer = session.token()
    tab = await Tab.connect(url, additional_headers={"Authorization": f"Bearer {bearer}"})
    await tab.send({"type": "hello", "protocol": 1})
    await tab.expect("ready")
    session.keep(tab)
    await tab.close()

    # REST with good and bad tokens, and the dev token route.
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        good = await client.get(
            "/api/v1/conversations", headers={"Authorization": f"Bearer {session.token()}"}
        )
        assert good.status_code == 200
        bad = await client.get(
            "/api/v1/conversations", headers={"Authorization": f"Bearer {forged}"}
        )
        assert bad.status_code == 401
        assert forged not in bad.text
        # A token in a query string, its dots percent-encoded: logged by the web server as sent.
        encoded = session.token().replace(".", "%2E")
        session.tokens.append(encoded)
        await client.get(f"/api/v1/status?access_token={encoded}")
        await client.get(f"/api/v1/status?state=x&next={encoded}")
        issued = (await client.get("/dev/token?user=devuser&tenant=acme")).json()["token"]
        session.tokens.append(issued)


async def test_no_secret_or_token_in_any_log_line_or_frame(
    backend: Backend, model: DevModel, tmp_path: Path
) -> None:
    config = backend.config(model, PARLEY_LOG_LEVEL="DEBUG")
    config.tools = SECURITY_PACK
    config.api_keys = ",".join(API_KEYS)
    server = ParleyServer(tmp_path, config)
    session = Session(server)
    try:
        await run_session(session, model)
        await asyncio.sleep(0.5)  # let the last log lines reach the file
        log = server.output()
    finally:
        server.stop()
    secrets = [TEST_JWT_SECRET, *API_KEYS, *session.tokens]
    frames = json.dumps(session.received)
    for secret in secrets:
        assert secret not in log, f"a secret reached the log: {secret[:12]}…"
        assert secret not in frames, f"a secret reached a frame: {secret[:12]}…"
    # The signature alone is as good as the token's proof: it must not leak either.
    for token in session.tokens:
        assert token.rsplit(".", 1)[-1] not in log
    # Parley's own code never tried to log a secret: the log filter only had to mask lines
    # the web server writes itself (the URL of the handshake with a token in its query string,
    # and at DEBUG the request headers).
    masked = [json.loads(line) for line in log.splitlines() if "[redacted]" in line]
    assert any("/ws?token=[redacted]" in entry["message"] for entry in masked)
    for entry in masked:
        assert entry["logger"].startswith(("uvicorn.", "websockets.")), entry
