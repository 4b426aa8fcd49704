"""The pure parts of tool sources, without processes: the sources file, OpenAPI documents to
tools, the circuit breaker, the per-call token and the host's error messages."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jwt
import pytest

from server.config import Settings
from server.tools.context import ToolContext
from server.tools.errors import ToolArgumentsInvalid, ToolError
from server.tools.registry import ToolRegistry, ToolSpec
from server.tools.sources.base import SourceLimits
from server.tools.sources.breaker import BreakerState, CircuitBreaker
from server.tools.sources.config import SourceConfig, expand_env, load_sources_file
from server.tools.sources.errors import SourceConfigError, SourceLoadError
from server.tools.sources.http_calls import host_message
from server.tools.sources.openapi import operations, tool_specs
from server.tools.sources.user_token import CallAuth, SigningKey, load_signing_key
from tests.server.host_app import DOCUMENT

DOC_URL = "http://erp.test:8080/docs/openapi.json"
LIMITS = SourceLimits.of(Settings(), SourceConfig(name="host", kind="openapi", url=DOC_URL))


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "sources.toml"
    path.write_text(text)
    return str(path)


def config_error(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    path = write(tmp_path, text)
    with pytest.raises(SourceConfigError) as caught:
        load_sources_file(path, environ or {})
    assert str(caught.value).startswith(path)
    return str(caught.value)


# -- the sources file ------------------------------------------------------------------------


def test_a_full_source_is_read_with_its_env_references(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [[source]]
        name = "erp"
        kind = "openapi"
        url = "https://erp.example.com/openapi.json"
        secret = "${ERP_SECRET}"
        headers = { "X-Api-Key" = "key-${ERP_KEY}", "X-Price" = "$$5" }
        include = ["a", "b"]
        exclude = ["b"]
        roles = ["buyer"]
        timeout_s = 4

        [source.tools.a]
        kind = "action"
        summary = "Do {x}"

        [[source]]
        name = "crm"
        kind = "mcp"
        command = ["python", "-m", "crm_tools"]
        auth = "passthrough"
        """,
    )
    erp, crm = load_sources_file(path, {"ERP_SECRET": "s3cret", "ERP_KEY": "k1"})
    assert erp.secret == "s3cret"
    assert erp.headers == {"X-Api-Key": "key-k1", "X-Price": "$5"}
    assert erp.offers("a")
    assert not erp.offers("b")
    assert not erp.offers("c")
    assert erp.override("a").kind == "action"
    assert erp.override("a").summary == "Do {x}"
    assert erp.override("zzz").kind is None
    assert erp.timeout_s == 4.0
    assert erp.roles == {"buyer"}
    assert erp.auth == "user-jwt"
    assert crm.command == ("python", "-m", "crm_tools")
    assert crm.auth == "passthrough"
    assert "s3cret" not in repr(erp)
    assert "k1" not in repr(erp)


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ('name = "erp"\nkind = "openapi"\nurl = "http://x/o.json"\ntimeout = 3', "'timeout'"),
        ('name = "erp"\nkind = "soap"\nurl = "http://x/o.json"', "'kind'"),
        ('name = "erp"\nkind = "openapi"', "'url'"),
        ('name = "erp"\nkind = "openapi"\nurl = "ftp://x/o.json"', "'url'"),
        ('name = "erp"\nkind = "openapi"\nurl = "http://x"\nauth = "basic"', "'auth'"),
        ('name = "erp"\nkind = "openapi"\nurl = "http://x"\ntimeout_s = -1', "'timeout_s'"),
        ('name = "erp"\nkind = "openapi"\nurl = "http://x"\nroles = "admin"', "'roles'"),
        ('name = "erp"\nkind = "mcp"\nurl = "http://x"\ncommand = ["x"]', "'command'"),
        ('name = "erp"\nkind = "mcp"', "'url'"),
        ('name = "e__rp"\nkind = "openapi"\nurl = "http://x"', "'name'"),
        ('kind = "openapi"\nurl = "http://x"', "source[0]"),
        (
            'name = "erp"\nkind = "openapi"\nurl = "http://x"\nauth = "none"\nsecret = "s"',
            "'secret'",
        ),
        (
            'name = "erp"\nkind = "openapi"\nurl = "http://x"\nheaders = {Authorization = "k"}',
            "'headers.Authorization'",
        ),
        (
            'name = "erp"\nkind = "openapi"\nurl = "http://x"\n[source.tools.a]\nkind = "write"',
            "'tools.a.kind'",
        ),
        (
            'name = "erp"\nkind = "openapi"\nurl = "http://x"\n[source.tools.a]\nrole = ["x"]',
            "'tools.a.role'",
        ),
    ],
)
def test_a_bad_source_names_the_file_the_source_and_the_key(
    tmp_path: Path, body: str, names: str
) -> None:
    message = config_error(tmp_path, f"[[source]]\n{body}\n")
    assert names in message


def test_an_unset_environment_variable_is_an_error(tmp_path: Path) -> None:
    message = config_error(
        tmp_path,
        '[[source]]\nname = "erp"\nkind = "openapi"\nurl = "http://x"\n'
        'headers = { "X-Api-Key" = "${ERP_KEY}" }\n',
    )
    assert "source 'erp'" in message
    assert "'headers.X-Api-Key'" in message
    assert "ERP_KEY" in message


def test_two_sources_of_one_name_and_broken_toml_are_errors(tmp_path: Path) -> None:
    twice = '[[source]]\nname = "erp"\nkind = "openapi"\nurl = "http://x"\n' * 2
    assert "used by two sources" in config_error(tmp_path, twice)
    assert "not valid TOML" in config_error(tmp_path, "[[source]\nname=")
    assert "unknown key" in config_error(tmp_path, "sources = 1\n")
    with pytest.raises(SourceConfigError, match="cannot be read"):
        load_sources_file(str(tmp_path / "missing.toml"), {})


def test_env_references() -> None:
    assert expand_env("a${X}b$${X}", {"X": "1"}) == "a1b${X}"
    with pytest.raises(KeyError):
        expand_env("${Y}", {})


# -- OpenAPI documents to tools ------------------------------------------------------------------


def specs(document: Any, config: SourceConfig | None = None) -> dict[str, ToolSpec]:
    config = config or SourceConfig(name="host", kind="openapi", url=DOC_URL)

    def caller(operation: Any, kind: str) -> Any:
        async def call(ctx: ToolContext, /, **arguments: Any) -> Any:
            return {"operation": operation.operation_id, "arguments": arguments}

        return call

    return tool_specs(config, operations("host", document, DOC_URL), LIMITS, caller)


def test_each_operation_becomes_a_tool() -> None:
    found = specs(DOCUMENT)
    assert sorted(found) == [
        "host__approve_order",
        "host__get_big",
        "host__get_salaries",
        "host__get_thing",
    ]
    thing, approve = found["host__get_thing"], found["host__approve_order"]
    assert thing.kind == "query"
    assert approve.kind == "action"
    assert thing.source == "host"
    assert thing.description == "Look up a thing by its id."
    assert thing.parameters["required"] == ["thing_id"]
    assert set(thing.parameters["properties"]) == {"thing_id", "verbose"}
    # The body's $ref is inlined: the model sees one self-contained schema.
    assert approve.parameters["properties"]["comment"] == {"type": "string", "maxLength": 200}
    assert approve.parameters["required"] == ["po_number"]


def test_calls_go_to_the_servers_url_resolved_against_the_document() -> None:
    (first, *_) = operations("host", DOCUMENT, DOC_URL)
    assert first.base_url == "http://erp.test:8080/api"
    bare = {key: value for key, value in DOCUMENT.items() if key != "servers"}
    assert operations("host", bare, DOC_URL)[0].base_url == "http://erp.test:8080"
    templated = {**DOCUMENT, "servers": [{"url": "https://{region}.erp.test/v{v}", "variables": {
        "region": {"default": "eu"}, "v": {"default": "2"}}}]}  # fmt: skip
    assert operations("host", templated, DOC_URL)[0].base_url == "https://eu.erp.test/v2"


async def test_arguments_are_checked_against_the_schema() -> None:
    registry = ToolRegistry()

    class Provider:
        name = "host"
        available = True
        problem = None
        tools = specs(DOCUMENT)

    registry.add_provider(Provider())
    roles = frozenset({"admin"})
    call = registry.validate("host__get_thing", '{"thing_id": "T-1", "verbose": true}', roles)
    assert call.arguments == {"thing_id": "T-1", "verbose": True}
    with pytest.raises(ToolArgumentsInvalid, match="'thing_id': field required"):
        registry.validate("host__get_thing", "{}", roles)
    with pytest.raises(ToolArgumentsInvalid, match="'colour': unknown argument"):
        registry.validate("host__get_thing", '{"thing_id": "T", "colour": 1}', roles)
    with pytest.raises(ToolArgumentsInvalid, match="'comment'"):
        registry.validate("host__approve_order", {"po_number": "P", "comment": "x" * 201}, roles)
    approve = registry.validate("host__approve_order", {"po_number": "PO-7"}, roles)
    assert await registry.summarize(approve, _context()) == "Approve purchase order PO-7"
    outcome = await registry.run(call, _context())
    assert outcome.result == {"operation": "get_thing", "arguments": call.arguments}
    assert registry.source_of("host__anything") == "host"
    assert registry.source_of("x") is None


def test_the_sources_file_overrides_and_filters() -> None:
    config = SourceConfig(
        name="host",
        kind="openapi",
        url=DOC_URL,
        exclude=frozenset({"get_big"}),
        roles=frozenset({"buyer"}),
        tools={"get_salaries": _override(kind="action", roles=frozenset({"hr"}))},
    )
    found = specs(DOCUMENT, config)
    assert "host__get_big" not in found
    salaries = found["host__get_salaries"]
    assert salaries.kind == "action"
    assert salaries.roles == {"hr"}
    assert salaries.allowed(frozenset({"hr", "buyer"}))
    assert not salaries.allowed(frozenset({"hr"}))  # the source's own gate still applies
    assert found["host__get_thing"].allowed(frozenset({"buyer"}))


def _override(**fields: Any) -> Any:
    from server.tools.sources.config import ToolOverride

    return ToolOverride(**fields)


def broken(change: Any) -> dict[str, Any]:
    document = copy.deepcopy(DOCUMENT)
    change(document)
    return document


@pytest.mark.parametrize(
    ("change", "names"),
    [
        (
            lambda d: d["components"]["schemas"]["Approval"]["properties"].update(
                po_number={"type": "string"}
            ),
            ["POST /orders/{po_number}/approve", "approve_order", "'po_number'"],
        ),
        (lambda d: d.update(openapi="2.0"), ["openapi", "3.x"]),
        (
            lambda d: d["paths"]["/big"]["get"].update({"x-parley": {"kind": "write"}}),
            ["paths./big.get.x-parley.kind"],
        ),
        (
            lambda d: d["paths"]["/big"]["get"].update(
                {"x-parley": {"kind": "action", "summary": "Do {nope}"}}
            ),
            ["get_big", "'nope'"],
        ),
        (
            lambda d: d["paths"]["/big"]["get"].update(
                {"x-parley": {"kind": "action", "preview": "relative/preview"}}
            ),
            ["paths./big.get.x-parley.preview", "starting with '/'"],
        ),
        (
            lambda d: d["paths"]["/big"]["get"].update(
                {"x-parley": {"kind": "action", "preview": "/big/{id}/preview"}}
            ),
            ["paths./big.get.x-parley.preview", "'id' is not a path parameter"],
        ),
        (
            lambda d: d["paths"]["/big"]["get"].update(operationId="big report!"),
            ["GET /big", "'big report!'"],
        ),
        (
            lambda d: d["paths"]["/big"]["get"].update(
                parameters=[{"name": "n", "in": "query", "schema": {"$ref": "#/nowhere"}}]
            ),
            ["paths./big.get.parameters.n", "'#/nowhere'"],
        ),
        (
            lambda d: d["components"]["schemas"]["Approval"]["properties"].update(
                again={"$ref": "#/components/schemas/Approval"}
            ),
            ["refers to itself"],
        ),
    ],
)
def test_a_malformed_document_is_a_load_error_naming_where(change: Any, names: list[str]) -> None:
    with pytest.raises(SourceLoadError) as caught:
        specs(broken(change))
    for name in names:
        assert name in str(caught.value)
    assert caught.value.reachable


def test_an_operation_without_an_id_is_skipped() -> None:
    document = broken(lambda d: d["paths"]["/big"]["get"].pop("operationId"))
    assert "host__get_big" not in specs(document)


def test_openapi_30_nullable_becomes_a_null_type() -> None:
    document = broken(lambda d: d.update(openapi="3.0.3"))
    document["components"]["schemas"]["Approval"]["properties"]["comment"]["nullable"] = True
    approve = specs(document)["host__approve_order"]
    assert approve.parameters["properties"]["comment"]["type"] == ["string", "null"]


# -- the circuit breaker -----------------------------------------------------------------------


def test_the_breaker_opens_after_failures_and_lets_one_trial_through() -> None:
    now = [0.0]
    breaker = CircuitBreaker(3, 10.0, clock=lambda: now[0])
    for _ in range(2):
        assert breaker.allow()
        breaker.failed()
    assert breaker.state is BreakerState.CLOSED
    breaker.failed()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    now[0] = 10.0
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()
    breaker.failed()
    assert breaker.state is BreakerState.OPEN
    now[0] = 20.0
    assert breaker.allow()
    breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.failures == 0
    with pytest.raises(ValueError):
        CircuitBreaker(0, 1.0)


# -- the per-call token ------------------------------------------------------------------------


def _context(**fields: Any) -> ToolContext:
    base: dict[str, Any] = {
        "tenant": "acme",
        "user": "alice",
        "roles": frozenset({"buyer", "admin"}),
        "conversation_id": "c_1",
        "turn_id": "t_1",
        "currency": "USD",
        "locale": "en-US",
        "sessions": lambda: None,
        "call_id": "call_1",
    }
    return ToolContext(**(base | fields))


def test_a_secret_source_gets_hs256_tokens_naming_the_user_and_the_call() -> None:
    config = SourceConfig(
        name="erp", kind="openapi", url=DOC_URL, secret="s" * 32, headers={"X-Api-Key": "k"}
    )
    auth = CallAuth(config, issuer="parley", ttl_s=30, signing_key=None, clock=lambda: 1000)
    headers = auth.headers(_context(confirmation="cf-1"), action=True)
    assert headers["X-Api-Key"] == "k"
    _scheme, token = headers["Authorization"].split()
    claims = jwt.decode(
        token, "s" * 32, algorithms=["HS256"], audience="erp", options={"verify_exp": False}
    )
    assert claims["sub"] == "alice"
    assert claims["tenant"] == "acme"
    assert claims["iss"] == "parley"
    assert claims["roles"] == ["admin", "buyer"]
    assert claims["call_id"] == "call_1"
    assert claims["exp"] - claims["iat"] == 30
    assert claims["confirmation"] == "cf-1"
    query = auth.token(_context(confirmation="cf-1"), action=False)
    assert "confirmation" not in jwt.decode(query, options={"verify_signature": False})
    with pytest.raises(ValueError, match="at most 60"):
        CallAuth(config, issuer="parley", ttl_s=61, signing_key=None)


def test_parleys_own_key_signs_with_a_kid_the_jwks_publishes(tmp_path: Path) -> None:
    settings = Settings(dev=True, dev_signing_key_file=str(tmp_path / "key.pem"))
    key = load_signing_key(settings)
    assert key is not None
    assert key.algorithm == "ES256"
    again = load_signing_key(settings)
    assert again is not None
    assert again.kid == key.kid
    config = SourceConfig(name="erp", kind="openapi", url=DOC_URL)
    auth = CallAuth(config, issuer="parley", ttl_s=30, signing_key=key)
    token = auth.token(_context(), action=False)
    assert jwt.get_unverified_header(token)["kid"] == key.kid
    public = jwt.PyJWKSet.from_dict(key.jwks())[key.kid].key
    assert jwt.decode(token, public, algorithms=["ES256"], audience="erp")["sub"] == "alice"
    with pytest.raises(ValueError, match="PARLEY_TOOL_SIGNING_KEY_FILE"):
        CallAuth(config, issuer="parley", ttl_s=30, signing_key=None)
    assert load_signing_key(Settings()) is None
    with pytest.raises(RuntimeError, match="no unencrypted PEM"):
        SigningKey.from_pem(b"nonsense", "test key")


def test_passthrough_sends_the_users_token_and_none_sends_nothing() -> None:
    passthrough = SourceConfig(name="erp", kind="openapi", url=DOC_URL, auth="passthrough")
    auth = CallAuth(passthrough, issuer="parley", ttl_s=30, signing_key=None)
    assert auth.headers(_context(user_token="u.t.k"), action=False) == {
        "Authorization": "Bearer u.t.k"
    }
    with pytest.raises(ToolError, match="user's own token"):
        auth.headers(_context(), action=False)
    silent = SourceConfig(name="erp", kind="openapi", url=DOC_URL, auth="none")
    assert (
        CallAuth(silent, issuer="p", ttl_s=30, signing_key=None).headers(_context(), action=True)
        == {}
    )


def test_the_hosts_message_is_found_and_bounded() -> None:
    assert host_message(b'{"detail": "no  such\\n order"}', "application/json", 100) == (
        "no such order"
    )
    assert host_message(b'{"error": {"message": "nope"}}', "application/json", 100) == "nope"
    assert host_message(b"x" * 50, "text/plain", 10) == "x" * 9 + "…"
    assert host_message(b"", "text/plain", 10) == "no message"
    assert host_message(b'{"detail": [{"loc": 1}]}', "application/json", 100) == '[{"loc": 1}]'


def test_the_registrys_deadline_sits_behind_the_calls_own_budget() -> None:
    # So an action's unknown outcome is reported by the call, never as a bare timeout.
    spec = specs(DOCUMENT)["host__approve_order"]
    assert spec.timeout_s > LIMITS.timeout_s * LIMITS.action_attempts


def test_a_down_sources_tools_are_hidden_and_a_call_says_why() -> None:
    class DownSource:
        name = "host"
        available = False
        problem = "unreachable (ConnectError)"
        tools: dict[str, ToolSpec] = {}

    registry = ToolRegistry()
    registry.add_provider(DownSource())
    assert registry.visible_to(frozenset({"admin"})) == []
    assert registry.degraded_sources() == {"host": "unreachable (ConnectError)"}
    with pytest.raises(ToolError, match="'host' is not available at the moment"):
        registry.validate("host__get_thing", "{}", frozenset({"admin"}))
    with pytest.raises(ValueError, match="already registered"):
        registry.add_provider(DownSource())
