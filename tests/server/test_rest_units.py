"""Small pure parts of the REST API, the webhook and the metrics, without a server."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import ErrorCode
from server.errors import ClientError
from server.ops.metrics import frame_type
from server.rest.errors import ApiError, from_client_error
from server.rest.paging import decode_cursor, encode_cursor
from server.rest.webhooks import backoff_s, origin, sign
from storage.paging import PagePosition


@given(
    moment=st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    ident=st.text(max_size=60),
)
def test_a_cursor_names_the_position_it_was_made_from(moment: datetime, ident: str) -> None:
    position = PagePosition(time=moment, id=ident)
    cursor = encode_cursor("messages", position)
    assert cursor is not None
    assert "=" not in cursor
    assert decode_cursor("messages", cursor) == position


@pytest.mark.parametrize(
    "cursor",
    # A fixed moment: parameters must be the same wherever the tests are collected.
    [
        "",
        "!!!",
        "bm9wZQ",
        encode_cursor("audit", PagePosition(datetime(2026, 1, 2, tzinfo=UTC), "a_1")),
    ],
)
def test_anything_else_is_not_a_cursor_of_this_list(cursor: str | None) -> None:
    assert cursor is not None
    with pytest.raises(ApiError) as refused:
        decode_cursor("messages", cursor)
    assert (refused.value.status, refused.value.field) == (422, "cursor")


def test_the_last_page_has_no_cursor() -> None:
    assert encode_cursor("messages", None) is None
    assert decode_cursor("messages", None) is None


def test_the_signature_is_the_hmac_of_the_exact_body() -> None:
    body = b'{"event":"conversation.escalated"}'
    expected = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert sign("k", body) == f"sha256={expected}"
    assert sign("k", body + b" ") != sign("k", body)


@pytest.mark.parametrize("attempt", range(1, 12))
def test_backoff_doubles_within_jitter_and_stays_under_the_cap(attempt: int) -> None:
    ceiling = min(60.0, 2.0 * 2 ** (attempt - 1))
    for _ in range(50):
        delay = backoff_s(attempt, 2.0, 60.0)
        assert ceiling / 2 <= delay <= ceiling


def test_only_the_origin_of_a_webhook_url_is_recorded() -> None:
    url = "https://user:pw@hooks.example.com:8443/T0/B0/secret?token=x"
    assert origin(url) == "https://hooks.example.com:8443"


def test_a_frame_type_is_read_with_or_without_its_seq() -> None:
    assert frame_type('{"type":"pong","t":1}') == "pong"
    assert frame_type('{"seq":123456789,"type":"response_delta","delta":"x"}') == "response_delta"
    assert frame_type('{"type":"made_up"}') == "other"
    assert frame_type("not json") == "other"


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (ErrorCode.MESSAGE_NOT_FOUND, 404),
        (ErrorCode.INVALID_FIELD, 422),
        (ErrorCode.FORBIDDEN, 403),
        (ErrorCode.CONFIRMATION_NOT_PENDING, 409),
        (ErrorCode.RATE_LIMITED, 429),
        (ErrorCode.STORE_UNAVAILABLE, 503),
        (ErrorCode.HELLO_REQUIRED, 400),
    ],
)
def test_socket_errors_keep_their_code_over_http(code: ErrorCode, status: int) -> None:
    error = from_client_error(ClientError(code, "field 'rating' must be 1-5"))
    assert (error.status, error.code) == (status, code)
    assert error.field == ("rating" if status == 422 else None)
    response = error.response()
    assert response.status_code == status
    if status == 429:
        assert response.headers["retry-after"] == "1"
