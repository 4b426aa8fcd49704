"""Key names: escaping, hash tags, and the turn index member format."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage.keys import KeySpace, UserKey, escape, unescape

ids = st.text(max_size=30)


def cluster_hash_part(key: str) -> str:
    """The part of a key Redis Cluster hashes: the first non-empty ``{...}``, else all."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


def user_keys(keys: KeySpace, user: UserKey, other_id: str) -> list[str]:
    return [
        keys.log_meta(user),
        keys.log_frames(user),
        keys.log_writers(user),
        keys.log_channel(user),
        keys.turn_slot(user, other_id),
        keys.active_turns(user),
        keys.turn_partial(user, other_id),
        keys.turn_forgotten(user, other_id),
        keys.turn_queue(user, other_id),
        keys.context(user, other_id),
        keys.presence(user),
    ]


def test_tag_escapes_the_characters_that_carry_meaning() -> None:
    assert UserKey("acme", "alice").tag == "{t:acme:u:alice}"
    assert UserKey("a:b", "{x}%").tag == "{t:a%3Ab:u:%7Bx%7D%25}"


def test_ids_that_only_differ_in_where_a_colon_is_get_different_tags() -> None:
    assert UserKey("a:u:b", "c").tag != UserKey("a", "b:u:c").tag


def test_key_layout() -> None:
    keys = KeySpace("p:")
    user = UserKey("acme", "alice")

    assert keys.log_meta(user) == "p:{t:acme:u:alice}:log:meta"
    assert keys.turn_slot(user, "conv:1") == "p:{t:acme:u:alice}:turn:conv%3A1"
    assert keys.turn_deadlines() == "p:turns:deadlines"
    assert keys.rate("msg:{x}") == "p:rate:msg%3A%7Bx%7D"
    assert keys.control_channel() == "p:control"


def test_a_prefix_with_braces_is_refused() -> None:
    with pytest.raises(ValueError, match="braces"):
        KeySpace("p{1}:")


@given(ids, ids, ids)
def test_every_user_key_hashes_on_the_users_tag(tenant: str, user_id: str, other: str) -> None:
    user = UserKey(tenant, user_id)
    tag = user.tag

    assert tag.startswith("{")
    assert tag.endswith("}")
    assert tag.count("{") == tag.count("}") == 1
    for key in user_keys(KeySpace(), user, other):
        assert cluster_hash_part(key) == tag[1:-1]


@given(ids)
def test_escape_round_trips(part: str) -> None:
    escaped = escape(part)

    assert unescape(escaped) == part
    assert not {"{", "}", ":"} & set(escaped)


@given(ids, ids, ids, ids)
def test_turn_index_members_round_trip(
    tenant: str, user_id: str, conversation_id: str, turn_id: str
) -> None:
    user = UserKey(tenant, user_id)
    member = KeySpace.turn_deadline_member(user, conversation_id, turn_id)

    assert KeySpace.parse_turn_deadline_member(member) == (user, conversation_id, turn_id)


def test_a_foreign_index_member_is_refused() -> None:
    with pytest.raises(ValueError, match="turn index member"):
        KeySpace.parse_turn_deadline_member("a:b:c")


@given(ids, ids, ids)
def test_turn_queue_index_members_round_trip(
    tenant: str, user_id: str, conversation_id: str
) -> None:
    user = UserKey(tenant, user_id)
    member = KeySpace.turn_queue_member(user, conversation_id)

    assert KeySpace.parse_turn_queue_member(member) == (user, conversation_id)


def test_a_foreign_queue_index_member_is_refused() -> None:
    with pytest.raises(ValueError, match="turn queue index member"):
        KeySpace.parse_turn_queue_member("a:b:c:d")
