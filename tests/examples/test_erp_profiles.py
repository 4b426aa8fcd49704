"""The demo ERP's profiles file loads, and every tool pattern in it names a real ERP tool, under
the pack's names and the host source's alike."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from server.config import Settings
from server.profiles.config import load_profiles_file
from server.tools.registry import ToolRegistry

PROFILES = Path(__file__).resolve().parents[2] / "examples" / "erp" / "profiles.toml"


# The functions client-js/demo/index.html registers as page tools.
DEMO_PAGE_TOOLS = ("page__open_record", "page__set_filter")


def test_every_pattern_of_the_demo_profiles_names_a_tool_of_the_demo() -> None:
    profiles = load_profiles_file(str(PROFILES), Settings())
    assert [profile.id for profile in profiles] == ["finance", "sales"]
    names = {
        spec.name
        for spec in ToolRegistry.from_import_paths(["examples.erp:pack"]).visible_to(
            frozenset({"admin"})
        )
    }
    for profile in profiles:
        assert profile.tools
        for pattern in profile.tools:
            single = dataclasses.replace(profile, tools=(pattern,))
            if pattern.startswith("page__"):
                assert any(single.offers(name) for name in DEMO_PAGE_TOOLS), (profile.id, pattern)
                continue
            assert any(single.offers(name) for name in names), (profile.id, pattern)
            assert any(single.offers(f"erp__{name}") for name in names), (profile.id, pattern)
    finance, sales = profiles
    assert finance.default
    assert finance.handoff == ("sales",)
    assert not finance.offers("create_sales_order")
    assert sales.offers("erp__create_sales_order")
    assert not sales.offers("approve_purchase_order")
