"""Confirmations and the audit trail over REST: a real action confirmed over the socket shows up
in both, lists page newest first with filters, and administrators alone see the tenant's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage.models import AuditEvent, Confirmation
from tests.server.harness import ParleyServer, frames_of
from tests.server.rest_support import Caller, Callers, assert_error, callers, rest, seed

__all__ = ["callers", "rest"]

pytestmark = pytest.mark.timeout(180)

BASE = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)


def confirmation(caller: Caller, index: int, status: str) -> Confirmation:
    return Confirmation(
        token=f"tok-{caller.user}-{index}",
        tenant=caller.tenant,
        user_id=caller.user,
        conversation_id="c_seeded",
        turn_id=f"t_{index}",
        call_id=f"call_{index}",
        action="send_memo",
        params={"text": f"memo {index}"},
        summary=f"Send the memo: memo {index}",
        status=status,
        created_at=BASE + timedelta(minutes=index),
        expires_at=BASE + timedelta(days=3650),
    )


def audit(caller: Caller, index: int, event: str, tool: str = "send_memo") -> AuditEvent:
    return AuditEvent(
        tenant=caller.tenant,
        user_id=caller.user,
        tool=tool,
        params={"n": index},
        event=event,
        decision={"approved": "approve", "rejected": "reject"}.get(event),
        created_at=BASE + timedelta(minutes=index),
    )


async def test_a_confirmed_action_shows_in_confirmations_and_audit(callers: Callers) -> None:
    alice = callers.new(roles=("member",))
    tab = await alice.tab()
    await tab.send(
        {
            "type": "user_message",
            "client_msg_id": "m-1",
            "text": '[call send_memo] {"text": "stand-up moved to 10:00"}',
        }
    )
    [*_, request] = await tab.until("confirm_request")
    token = request["token"]
    await tab.until("turn_end")

    pending = (await alice.get("/confirmations", status="pending")).json()["items"]
    assert [item["token"] for item in pending] == [token]
    assert pending[0]["action"] == "send_memo"
    assert pending[0]["params"] == {"text": "stand-up moved to 10:00"}
    assert pending[0]["summary"] == "Send the memo: stand-up moved to 10:00"
    assert "result" not in pending[0]

    await tab.send({"type": "confirm", "token": token, "decision": "approve"})
    frames = await tab.until("turn_end")
    [executed] = frames_of(frames, "action_executed")
    await tab.close()
    assert (await alice.get("/confirmations", status="pending")).json()["items"] == []
    [done] = (await alice.get("/confirmations", status="executed")).json()["items"]
    assert done["token"] == token
    assert done["result"] == {"sent": "stand-up moved to 10:00", "by": alice.user}
    assert done["audit_id"] == executed["audit_id"]
    assert done["decided_at"] >= done["created_at"]

    admin = callers.new(roles=("admin",))
    trail = (await admin.get("/admin/audit", user=alice.user, tool="send_memo")).json()["items"]
    assert [item["event"] for item in trail] == ["executed", "approved", "requested"]
    assert trail[0]["audit_id"] == executed["audit_id"]
    assert trail[0]["result"] == {"sent": "stand-up moved to 10:00", "by": alice.user}
    assert trail[1]["decision"] == "approve"
    assert {item["confirmation_token"] for item in trail} == {token}
    approvals = (await admin.get("/admin/audit", user=alice.user, decision="approve")).json()
    assert [item["event"] for item in approvals["items"]] == ["approved"]
    tenant_wide = (await admin.get("/admin/confirmations", user=alice.user)).json()["items"]
    assert [item["token"] for item in tenant_wide] == [token]


async def test_my_confirmations_page_newest_first_by_status(
    rest: ParleyServer, callers: Callers
) -> None:
    alice = callers.new()
    bob = callers.new()
    statuses = ["executed", "rejected", "expired", "executed", "failed", "executed"]
    await seed(
        rest.config.database_url,
        [confirmation(alice, index, status) for index, status in enumerate(statuses)]
        + [confirmation(bob, index, "executed") for index in range(2)],
    )
    pages = await alice.pages("/confirmations", limit=4)
    assert [len(page) for page in pages] == [4, 2]
    tokens = [item["token"] for page in pages for item in page]
    assert tokens == [f"tok-{alice.user}-{index}" for index in reversed(range(6))]
    assert pages[0][0]["created_at"] == "2025-05-01T09:05:00Z"
    executed = await alice.pages("/confirmations", limit=2, status="executed")
    assert [item["token"] for page in executed for item in page] == [
        f"tok-{alice.user}-{index}" for index in (5, 3, 0)
    ]
    assert all(item["user"] == alice.user for page in pages for item in page)


async def test_administrators_see_their_tenant_and_only_theirs(
    rest: ParleyServer, callers: Callers
) -> None:
    alice = callers.new()
    bob = callers.new()
    await seed(
        rest.config.database_url,
        [
            confirmation(alice, 0, "executed"),
            confirmation(bob, 1, "rejected"),
            audit(alice, 0, "requested"),
            audit(bob, 1, "refused", tool="audit_digest"),
        ],
    )
    admin = callers.new(roles=("admin", "member"))
    both = {alice.user, bob.user}
    tenant = await admin.pages("/admin/confirmations", limit=50)
    assert both <= {item["user"] for page in tenant for item in page}
    only_bob = (await admin.get("/admin/confirmations", user=bob.user)).json()["items"]
    assert [item["status"] for item in only_bob] == ["rejected"]
    refused = (await admin.get("/admin/audit", event="refused", user=bob.user)).json()["items"]
    assert [(item["tool"], item["event"]) for item in refused] == [("audit_digest", "refused")]

    for path in ("/admin/confirmations", "/admin/audit", "/admin/usage", "/admin/escalations"):
        assert_error(await alice.get(path), 403, "forbidden")
    foreign = callers.new(tenant="globex", roles=("admin",))
    assert (await foreign.get("/admin/confirmations", user=alice.user)).json()["items"] == []
    assert (await foreign.get("/admin/audit", user=alice.user)).json()["items"] == []
    # A user sees only their own confirmations, whatever they ask for.
    mine = (await bob.get("/confirmations", user=alice.user)).json()["items"]
    assert {item["user"] for item in mine} == {bob.user}


async def test_audit_filters_and_paging(rest: ParleyServer, callers: Callers) -> None:
    alice = callers.new()
    events = ["requested", "approved", "executed", "requested", "rejected", "requested"]
    await seed(
        rest.config.database_url,
        [audit(alice, index, event) for index, event in enumerate(events)]
        + [audit(alice, 10, "requested", tool="other_tool")],
    )
    admin = callers.new(roles=("admin",))
    pages = await admin.pages("/admin/audit", limit=3, user=alice.user, tool="send_memo")
    assert [len(page) for page in pages] == [3, 3]
    assert [item["params"]["n"] for page in pages for item in page] == [5, 4, 3, 2, 1, 0]
    window = await admin.get(
        "/admin/audit",
        user=alice.user,
        since=(BASE + timedelta(minutes=1)).isoformat(),
        until=(BASE + timedelta(minutes=4)).isoformat(),
    )
    assert [item["params"]["n"] for item in window.json()["items"]] == [3, 2, 1]
    requested = (await admin.get("/admin/audit", user=alice.user, event="requested")).json()
    assert [item["params"]["n"] for item in requested["items"]] == [10, 5, 3, 0]
    rejections = (await admin.get("/admin/audit", user=alice.user, decision="reject")).json()
    assert [item["event"] for item in rejections["items"]] == ["rejected"]


async def test_bad_filters_name_the_parameter(callers: Callers) -> None:
    alice = callers.new()
    admin = callers.new(roles=("admin",))
    assert_error(await alice.get("/confirmations", status="maybe"), 422, "invalid_field", "status")
    assert_error(await alice.get("/confirmations", limit=-1), 422, "invalid_field", "limit")
    cases = [
        ({"event": "deleted"}, "event"),
        ({"decision": "perhaps"}, "decision"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2025-01-01T00:00:00"}, "since"),  # no offset: ambiguous
        ({"since": "2025-02-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, "until"),
        ({"cursor": "bm9wZQ"}, "cursor"),
    ]
    for params, field in cases:
        assert_error(await admin.get("/admin/audit", **params), 422, "invalid_field", field)
    for path in ("/confirmations", "/admin/confirmations", "/admin/audit"):
        assert_error(await callers.anonymous().get(path), 401, "unauthenticated")
