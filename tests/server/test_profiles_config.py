"""The profiles file (PARLEY_PROFILES): what it reads, the errors that name the file, the
profile and the key, the default profile made of the settings, and the rules a catalog applies
(tool patterns, roles, hand-off targets). Pure: no server, no I/O beyond a temporary file."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol import ErrorCode, ProfileSummary
from server.config import Settings
from server.errors import ClientError
from server.profiles.catalog import DEFAULT_PROFILE_ID, ProfileCatalog
from server.profiles.config import load_profile_catalog, load_profiles_file
from server.profiles.errors import ProfileConfigError
from server.tools.errors import ToolForbidden, ToolNotInProfile
from server.tools.registry import ToolRegistry
from tests.server.host_app import DOCUMENT
from tests.server.test_tool_sources_units import specs

SETTINGS = Settings(
    model="gpt-4o-mini",
    system_prompt="The global prompt.",
    budget_conversation_tokens=1000,
    budget_conversation_usd=1.5,
    max_messages_per_conversation=40,
)

FULL = """
[[profile]]
id = "sales"
title = "Sales copilot"
description = "Deals and quotes"
system_prompt = "You sell."
tools = ["crm__*", "cash_balance"]
model = "gpt-4o"
temperature = 0.3
roles = ["sales", "manager"]
budget_conversation_tokens = 200000
budget_conversation_usd = 2
max_messages_per_conversation = 0
greeting = "Hi!"
suggestions = ["Show my deals"]
knowledge = ["playbook", "pricing"]
handoff = ["ops"]
default = true

[[profile]]
id = "ops"
title = "Ops copilot"
tools = []
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "profiles.toml"
    path.write_text(text, "utf-8")
    return str(path)


def config_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ProfileConfigError) as caught:
        load_profiles_file(path, SETTINGS)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    return message


def test_a_full_file_is_read_and_absent_values_come_from_the_settings(tmp_path: Path) -> None:
    sales, ops = load_profiles_file(write(tmp_path, FULL), SETTINGS)
    assert (sales.id, sales.title, sales.description) == (
        "sales",
        "Sales copilot",
        "Deals and quotes",
    )
    assert (sales.system_prompt, sales.model, sales.temperature) == ("You sell.", "gpt-4o", 0.3)
    assert sales.tools == ("crm__*", "cash_balance")
    assert sales.roles == {"sales", "manager"}
    assert (sales.budget_conversation_tokens, sales.budget_conversation_usd) == (200000, 2.0)
    assert sales.max_messages_per_conversation == 0
    assert (sales.greeting, sales.suggestions) == ("Hi!", ("Show my deals",))
    assert sales.knowledge == ("playbook", "pricing")
    assert (sales.handoff, sales.default) == (("ops",), True)

    assert (ops.system_prompt, ops.model, ops.temperature) == (
        "The global prompt.",
        "gpt-4o-mini",
        None,
    )
    assert ops.tools == ()
    assert ops.roles == frozenset()
    assert (ops.budget_conversation_tokens, ops.budget_conversation_usd) == (1000, 1.5)
    assert ops.max_messages_per_conversation == 40
    assert (ops.knowledge, ops.handoff, ops.default) == ((), (), False)


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ('id = "a"\ntitle = "A"\ntool = ["x"]', "profile 'a', key 'tool': unknown key"),
        ('title = "A"', "profile 'profile[0]', key 'id': is required"),
        ('id = "a b"\ntitle = "A"', "key 'id'"),
        ('id = "a"', "profile 'a', key 'title': is required"),
        ('id = "a"\ntitle = ""', "key 'title': must be a non-empty string"),
        ('id = "a"\ntitle = "A"\ntools = "x*"', "key 'tools': must be a list"),
        ('id = "a"\ntitle = "A"\nroles = ["", "x"]', "key 'roles'"),
        ('id = "a"\ntitle = "A"\ntemperature = 3', "key 'temperature'"),
        ('id = "a"\ntitle = "A"\ntemperature = true', "key 'temperature'"),
        ('id = "a"\ntitle = "A"\nbudget_conversation_tokens = -1', "'budget_conversation_tokens'"),
        ('id = "a"\ntitle = "A"\nbudget_conversation_tokens = 1.5', "'budget_conversation_tokens'"),
        ('id = "a"\ntitle = "A"\nbudget_conversation_usd = "2"', "'budget_conversation_usd'"),
        (
            'id = "a"\ntitle = "A"\nmax_messages_per_conversation = false',
            "'max_messages_per_conversation'",
        ),
        ('id = "a"\ntitle = "A"\ndefault = "yes"', "key 'default': must be true or false"),
        ('id = "a"\ntitle = "A"\nhandoff = ["a"]', "key 'handoff': a profile cannot hand"),
        ('id = "a"\ntitle = "A"\nhandoff = ["ghost"]', "key 'handoff': names 'ghost'"),
        ('id = "a"\ntitle = "A"\nsuggestions = [' + '"s",' * 11 + "]", "key 'suggestions'"),
        ('id = "a"\ntitle = "A"\nknowledge = [1]', "key 'knowledge'"),
    ],
)
def test_a_bad_profile_names_the_file_the_profile_and_the_key(
    tmp_path: Path, body: str, names: str
) -> None:
    assert names in config_error(tmp_path, f"[[profile]]\n{body}\n")


def test_file_level_mistakes_are_errors(tmp_path: Path) -> None:
    one = '[[profile]]\nid = "a"\ntitle = "A"\n'
    other = '[[profile]]\nid = "b"\ntitle = "B"\n'
    assert "profile 'a', key 'id': is used by two profiles" in config_error(tmp_path, one * 2)
    assert ": key 'default': set default = true" in config_error(tmp_path, one + other)
    both = one + "default = true\n" + other + "default = true\n"
    assert "profile 'b', key 'default': only one profile" in config_error(tmp_path, both)
    assert "not valid TOML" in config_error(tmp_path, "[[profile]\nid=")
    assert "key 'profiles': unknown key" in config_error(tmp_path, "profiles = 1\n")
    assert "defines no profile" in config_error(tmp_path, "")
    assert "must be an array of tables" in config_error(tmp_path, "profile = 1\n")
    with pytest.raises(ProfileConfigError, match="cannot be read"):
        load_profiles_file(str(tmp_path / "missing.toml"), SETTINGS)


def test_a_single_profile_is_the_default_without_saying_so(tmp_path: Path) -> None:
    path = write(tmp_path, '[[profile]]\nid = "only"\ntitle = "Only"\n')
    catalog = load_profile_catalog(Settings(profiles=path))
    assert catalog.default.id == "only"


def test_without_a_file_one_default_profile_is_made_of_the_settings() -> None:
    catalog = load_profile_catalog(SETTINGS)
    (profile,) = catalog.profiles
    assert catalog.default is profile
    assert (profile.id, profile.default) == (DEFAULT_PROFILE_ID, True)
    assert (profile.system_prompt, profile.model, profile.temperature) == (
        "The global prompt.",
        "gpt-4o-mini",
        None,
    )
    assert profile.tools is None  # every tool, as before profiles
    assert profile.offers("anything__at_all")
    assert profile.allowed(frozenset())
    assert (profile.budget_conversation_tokens, profile.max_messages_per_conversation) == (1000, 40)


def test_tool_patterns_roles_and_hand_off_targets(tmp_path: Path) -> None:
    catalog = ProfileCatalog(load_profiles_file(write(tmp_path, FULL), SETTINGS))
    sales, ops = catalog.profiles
    assert sales.offers("crm__list_deals")
    assert sales.offers("cash_balance")
    assert not sales.offers("crm_list")
    assert not sales.offers("cash_balance_2")
    assert not ops.offers("cash_balance")
    assert [p.id for p in catalog.available_to({"sales"})] == ["sales", "ops"]
    assert [p.id for p in catalog.available_to({"viewer"})] == ["ops"]
    assert [p.id for p in catalog.handoff_targets(sales, frozenset())] == ["ops"]
    assert catalog.handoff_targets(ops, frozenset({"sales"})) == []

    assert catalog.choose("ops", {"viewer"}, ref="r").id == "ops"
    with pytest.raises(ClientError) as unknown:
        catalog.choose("nope", {"sales"}, ref="r")
    assert (unknown.value.code, unknown.value.ref) == (ErrorCode.PROFILE_NOT_FOUND, "r")
    with pytest.raises(ClientError) as forbidden:
        catalog.choose(None, {"viewer"}, ref="r")  # the default, sales, needs a role
    assert forbidden.value.code == ErrorCode.FORBIDDEN
    # A stored conversation whose profile left the file runs under the default.
    assert catalog.of_conversation("gone") is sales
    assert catalog.of_conversation(None) is sales
    assert sales.summary() == ProfileSummary(
        id="sales",
        title="Sales copilot",
        description="Deals and quotes",
        greeting="Hi!",
        suggestions=("Show my deals",),
        default=True,
    )
    assert ops.summary() == ProfileSummary(id="ops", title="Ops copilot")


def test_the_registry_offers_and_validates_within_a_profile(tmp_path: Path) -> None:
    # Patterns reach a tool source's tools as well as a pack's: both are just names.
    registry = ToolRegistry.from_import_paths(["tests.server.rest_pack:pack"])

    class Source:
        name = "host"
        available = True
        problem = None
        tools = specs(DOCUMENT)

    registry.add_provider(Source())
    text = '[[profile]]\nid = "p"\ntitle = "P"\ntools = ["host__get_*", "count_letters"]\n'
    (profile,) = load_profiles_file(write(tmp_path, text), SETTINGS)
    roles = frozenset({"admin", "auditor"})
    everything = {spec.name for spec in registry.visible_to(roles)}
    assert {"host__get_thing", "host__approve_order", "audit_digest"} <= everything
    scoped = {tool["function"]["name"] for tool in registry.openai_tools(roles, profile)}
    assert scoped == {"host__get_thing", "host__get_big", "host__get_salaries", "count_letters"}
    assert registry.validate("host__get_thing", '{"thing_id": "T-1"}', roles, profile)
    for outside in ("host__approve_order", "audit_digest"):
        with pytest.raises(ToolNotInProfile, match=f"'{outside}' is not part of the profile 'p'"):
            registry.validate(outside, "{}", roles, profile)
    # The roles wall still comes first: a profile never widens what roles allow.
    with pytest.raises(ToolForbidden) as forbidden:
        registry.validate("audit_digest", "{}", frozenset(), profile)
    assert not isinstance(forbidden.value, ToolNotInProfile)
