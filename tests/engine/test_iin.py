"""IIN validation: the check digit with both weight sets, the century digit, the birth date."""

from __future__ import annotations

from datetime import date

import pytest

from engine.errors import ValidationFailed
from engine.iin import (
    REASON_CENTURY,
    REASON_CHECK_DIGIT,
    REASON_DATE,
    REASON_LENGTH,
    REASON_NEVER_ISSUED,
    check_digit,
    is_valid_iin,
    mask_iin,
    validate_iin,
)


def test_first_worked_example():
    info = validate_iin("791028302728")
    assert info.iin == "791028302728"
    assert info.birth_date == date(1979, 10, 28)
    assert info.sex == "male"


def test_second_worked_example_needs_the_second_weights():
    info = validate_iin("061211600012")
    assert info.birth_date == date(2006, 12, 11)
    assert info.sex == "female"


def test_surrounding_spaces_are_ignored():
    assert validate_iin(" 791028302728\n").iin == "791028302728"


# 79102830095: both weight sets give 10 (weights 1..11 sum 197, weights 3..11,1,2 sum 241).
NEVER_ISSUED = "791028300950"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("791028302729", REASON_CHECK_DIGIT),
        ("79102830272", REASON_LENGTH),
        ("7910283027280", REASON_LENGTH),
        ("79102830272a", REASON_LENGTH),
        ("７９１０２８３０２７２８", REASON_LENGTH),  # full-width digits are not ASCII digits
        ("", REASON_LENGTH),
        ("791028002728", REASON_CENTURY),
        ("791028702728", REASON_CENTURY),
        ("050230500013", REASON_DATE),  # 30 February 2005
        ("791328302728", REASON_DATE),  # month 13
        (NEVER_ISSUED, REASON_NEVER_ISSUED),
    ],
)
def test_refused_with_the_right_reason(value, reason):
    with pytest.raises(ValidationFailed) as caught:
        validate_iin(value)
    [error] = caught.value.errors
    assert error.field == "iin"
    assert error.message == reason
    assert not is_valid_iin(value)


def test_never_issued_prefix():
    assert check_digit(NEVER_ISSUED[:11]) is None
    assert check_digit("79102830272") == 8
    assert check_digit("06121160001") == 2


def test_leap_day_follows_the_century():
    # 29 February 2000 (digit 5/6) is real; 29 February 1900 (digit 3/4) is not.
    prefix_2000 = "000229500001"[:11]
    valid = prefix_2000 + str(check_digit(prefix_2000))
    assert validate_iin(valid).birth_date == date(2000, 2, 29)
    with pytest.raises(ValidationFailed) as caught:
        validate_iin("000229300001")
    assert caught.value.errors[0].message == REASON_DATE


def test_non_strings_are_not_valid():
    assert not is_valid_iin(791028302728)
    assert not is_valid_iin(None)
    with pytest.raises(ValidationFailed):
        validate_iin(791028302728)  # type: ignore[arg-type]


def test_mask():
    assert mask_iin("791028302728") == "791028*****8"
    assert mask_iin("061211600012") == "061211*****2"
    assert mask_iin("123") == "************"
    assert "3027" not in mask_iin("791028302728")
