"""The host app's parts that need no server: its settings, its operation table and the sample
tool-sources file, plus the command line refusing bad settings."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from urllib.parse import urlsplit

import pytest

from examples.erp import pack
from examples.erp.host.operations import OPERATIONS, Operation, check_operations
from examples.erp.host.settings import HostSettings, SettingsError
from server.tools.sources.config import load_sources_file
from tests.examples.conftest import REPO, SECRET


def test_settings_come_from_the_environment() -> None:
    settings = HostSettings.from_env(
        {
            "ERP_PARLEY_SECRET": SECRET,
            "ERP_PORT": "9100",
            "ERP_SEED": "yes",
            "ERP_ISSUER": "",
            "ERP_DEMO_ORIGINS": "http://a.example, http://b.example",
            "ERP_PARLEY_JWKS_URL": "",
        }
    )
    assert settings.port == 9100
    assert settings.seed is True
    assert settings.issuer == ""  # empty text is a value: accept any issuer
    assert settings.parley_jwks_url is None  # empty otherwise means unset
    assert settings.demo_origins == ("http://a.example", "http://b.example")
    assert SECRET not in repr(settings)
    # Flags override the environment.
    assert HostSettings.from_env({"ERP_PARLEY_SECRET": SECRET}, port=8200).port == 8200


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "no token key configured: set ERP_PARLEY_SECRET"),
        ({"ERP_PARLEY_SECRET": "short"}, "ERP_PARLEY_SECRET must be at least 32 characters"),
        ({"ERP_PARLEY_SECRET": SECRET, "ERP_PORT": "web"}, "ERP_PORT must be a whole number"),
        ({"ERP_PARLEY_SECRET": SECRET, "ERP_PORT": "70000"}, "ERP_PORT must be between"),
        ({"ERP_PARLEY_SECRET": SECRET, "ERP_SEED": "maybe"}, "ERP_SEED must be true or false"),
        ({"ERP_PARLEY_SECRET": SECRET, "ERP_AUDIENCE": ""}, "ERP_AUDIENCE must not be empty"),
        (
            {"ERP_PARLEY_SECRET": SECRET, "ERP_MAX_BODY_BYTES": "0"},
            "ERP_MAX_BODY_BYTES must be positive",
        ),
    ],
)
def test_bad_settings_are_refused_by_name(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        HostSettings.from_env(environ)


def test_the_command_line_refuses_bad_settings_with_the_reason() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "examples.erp", "--port", "8100"],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "ERP_PARLEY_SECRET": "short", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "ERP_PARLEY_SECRET must be at least 32 characters" in done.stderr


def test_the_operations_serve_every_tool_once() -> None:
    check_operations(pack, OPERATIONS)
    assert [op.tool for op in OPERATIONS] == list(pack.tools)


@pytest.mark.parametrize(
    ("operations", "message"),
    [
        (OPERATIONS[1:], "tool 'cash_balance' has no operation"),
        ((*OPERATIONS, OPERATIONS[0]), "tool 'cash_balance' has two operations"),
        ((*OPERATIONS, Operation("export_ledger", "GET", "/ledger", "finance")), "names no tool"),
        (
            (Operation("cash_balance", "POST", "/cash-balance", "finance"), *OPERATIONS[1:]),
            "a query needs another method",
        ),
        (
            (
                *OPERATIONS[:7],
                Operation(
                    "approve_purchase_order",
                    "POST",
                    "/purchase-orders/{number}/approve",
                    "purchasing",
                    summary="Approve",
                ),
                *OPERATIONS[8:],
            ),
            "path parameter 'number' is not a required argument",
        ),
        (
            (
                *OPERATIONS[:7],
                Operation(
                    "approve_purchase_order",
                    "POST",
                    "/purchase-orders/{po_number}/approve",
                    "purchasing",
                    summary="Approve {po}",
                ),
                *OPERATIONS[8:],
            ),
            "summary uses unknown argument 'po'",
        ),
    ],
)
def test_a_wrong_operation_table_fails_at_startup(
    operations: tuple[Operation, ...], message: str
) -> None:
    with pytest.raises(RuntimeError, match=message):
        check_operations(pack, operations)


def test_the_sample_tool_sources_file_points_at_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    path = REPO / "examples" / "erp" / "tools.toml"
    monkeypatch.setenv("ERP_PARLEY_SECRET", SECRET)
    (loaded,) = load_sources_file(path)  # Parley itself accepts the file
    assert loaded.secret == SECRET
    sources = tomllib.loads(path.read_text())["source"]
    assert len(sources) == 1
    source = sources[0]
    defaults = HostSettings(parley_secret=SECRET)
    assert source["name"] == defaults.audience
    assert source["kind"] == "openapi"
    assert source["auth"] == "user-jwt"
    url = urlsplit(source["url"])
    assert (url.hostname, url.port, url.path) == (defaults.host, defaults.port, "/openapi.json")
    roles = set().union(*(spec.roles for spec in pack.tools.values()))
    assert set(source["roles"]) == roles


def test_docs_list_every_setting_with_its_default() -> None:
    doc = (REPO / "docs" / "tools.md").read_text()
    for name, default, meaning in HostSettings.describe():
        shown = f"`{default}`" if default else "unset"
        assert f"| `{name}` | {shown} | {meaning} |" in doc, name
