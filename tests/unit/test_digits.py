"""portside.digits: the one reader of decimal numbers in request text."""

import pytest

from portside.digits import SATURATED, is_decimal, parse_decimal


@pytest.mark.parametrize("text, value", [("0", 0), ("007", 7), ("1234", 1234), (str(2**63 - 1), 2**63 - 1)])
def test_ascii_digits_read_as_their_number(text: str, value: int) -> None:
    assert is_decimal(text) and parse_decimal(text) == value


@pytest.mark.parametrize("text", ["", "²", "1²", "٣", "۴", " 1", "1 ", "+1", "-1", "1_000", "1.0", "0x10", "１"])
def test_anything_but_ascii_digits_is_no_number(text: str) -> None:
    assert not is_decimal(text) and parse_decimal(text) is None


@pytest.mark.parametrize("text", [str(2**63), "9" * 20, "9" * 5000, "0" * 5000 + "1" * 30])
def test_numbers_past_64_bits_saturate(text: str) -> None:
    assert parse_decimal(text) == SATURATED


def test_leading_zeros_do_not_count_towards_the_length() -> None:
    assert parse_decimal("0" * 5000 + "42") == 42
