"""Error codes, close codes and their tables."""

import json
from pathlib import Path

import pytest

from protocol import (
    ABNORMAL_CLOSURE,
    CLOSE_INFO,
    ERROR_INFO,
    PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
    CloseCode,
    ErrorCode,
    describe,
    is_temporary,
)

# The retryable column of the protocol spec, restated independently of the table under test.
RETRYABLE = {
    "turn_in_progress",
    "rate_limited",
    "too_many_connections",
    "model_unavailable",
    "model_rate_limited",
    "model_timeout",
    "stream_interrupted",
    "store_unavailable",
    "turn_interrupted",
    "internal_error",
}


def test_error_code_values_are_lowercased_names() -> None:
    assert len(ErrorCode) == 37
    for code in ErrorCode:
        assert code.value == code.name.lower()


def test_every_error_code_has_a_meaning_and_the_specified_retryable_default() -> None:
    assert list(ERROR_INFO) == list(ErrorCode)
    for code in ErrorCode:
        info = describe(code)
        assert info is ERROR_INFO[code]
        assert info.meaning
        assert info.meaning[0].islower() or info.meaning[0] in "`R"
        assert info.retryable is (code.value in RETRYABLE)


def test_describe_refuses_what_is_not_an_error_code() -> None:
    with pytest.raises(KeyError):
        describe("no_such_code")  # type: ignore[arg-type]


def test_close_code_values() -> None:
    assert {code.name: code.value for code in CloseCode} == {
        "NORMAL": 1000,
        "GOING_AWAY": 1001,
        "POLICY_VIOLATION": 1008,
        "MESSAGE_TOO_BIG": 1009,
        "INTERNAL_ERROR": 1011,
        "SERVICE_RESTART": 1012,
        "TRY_AGAIN_LATER": 1013,
        "BAD_HELLO": 4400,
        "UNAUTHENTICATED": 4401,
        "FORBIDDEN_ORIGIN": 4403,
        "UNSUPPORTED_PROTOCOL": 4426,
        "TOO_MANY_CONNECTIONS": 4429,
    }


@pytest.mark.parametrize("code", [1001, 1006, 1011, 1012, 1013, 4429])
def test_temporary_close_codes_mean_reconnect(code: int) -> None:
    assert is_temporary(code)


@pytest.mark.parametrize("code", [1000, 1008, 1009, 4400, 4401, 4403, 4426, 1002, 3000, 4999])
def test_other_close_codes_are_terminal(code: int) -> None:
    assert not is_temporary(code)


def test_close_table_covers_every_close_code_and_abnormal_closure() -> None:
    assert set(CLOSE_INFO) == {*CloseCode, ABNORMAL_CLOSURE}
    assert ABNORMAL_CLOSURE not in set(CloseCode)  # never sent, only observed
    for code, info in CLOSE_INFO.items():
        assert info.meaning
        assert info.temporary is is_temporary(code)


def test_the_close_code_fixture_shared_with_the_js_client_says_what_the_protocol_does() -> None:
    path = Path(__file__).resolve().parents[1] / "fixtures" / "close-codes.json"
    fixture = json.loads(path.read_text())
    assert set(fixture["temporary"]) | set(fixture["terminal"]) == set(CLOSE_INFO)
    assert all(is_temporary(code) for code in fixture["temporary"])
    terminal = [*fixture["terminal"], *fixture["undefined_codes_are_terminal"]]
    assert not any(is_temporary(code) for code in terminal)


def test_version() -> None:
    assert PROTOCOL_VERSION == 1
    assert frozenset({1}) == SUPPORTED_VERSIONS
