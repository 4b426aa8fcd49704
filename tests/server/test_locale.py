"""The user's locale: the token's `locale` claim reaches every tab as `ready.locale`, so the
widget can speak the user's language; a malformed claim is ignored, never refused."""

from __future__ import annotations

import pytest

from server.config import Settings
from server.security.auth import TokenVerifier, issue_token
from tests.server.harness import TEST_JWT_SECRET, ParleyServer

pytestmark = pytest.mark.timeout(120)


async def test_ready_carries_the_locale_claim(server: ParleyServer) -> None:
    tab = await server.tab(server.token(locale="de-DE"))
    try:
        assert tab.ready["locale"] == "de-DE"
    finally:
        await tab.close()


@pytest.mark.parametrize("claim", [None, "", "not a locale!", 49, "x" * 40])
async def test_ready_leaves_out_a_missing_or_malformed_locale(
    server: ParleyServer, claim: object
) -> None:
    claims = {} if claim is None else {"locale": claim}
    tab = await server.tab(server.token(**claims))
    try:
        assert tab.ready["user"]["id"] == server.user
        assert "locale" not in tab.ready
    finally:
        await tab.close()


def test_dev_tokens_carry_the_locale_they_are_asked_for() -> None:
    settings = Settings(jwt_secret=TEST_JWT_SECRET)
    verifier = TokenVerifier(settings)
    german = issue_token(settings, user="u", tenant="globex", roles=[], locale="de-DE")
    plain = issue_token(settings, user="u", tenant="acme", roles=[])
    assert verifier.verify(german).locale == "de-DE"
    assert verifier.verify(plain).locale is None
