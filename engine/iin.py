"""The IIN (ЖСН / ИИН): Kazakhstan's 12-digit individual identification number.

Layout: ``YYMMDD`` birth date, one century-and-sex digit, a 4-digit serial, a check digit.
The check digit is the weighted sum of the first 11 digits modulo 11, with weights 1..11;
when that gives 10 the weights 3..11,1,2 are used instead, and a number for which both give 10
is never issued. The IIN is restricted-access personal data: keep it a string (leading zeros
matter for births in 2000-2009) and mask it wherever it is listed or logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from engine.errors import FieldError, ValidationFailed

IIN_LENGTH = 12

_FIRST_WEIGHTS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
_SECOND_WEIGHTS = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)

# The 7th digit: (century of birth, sex). 0 marks a business number (BIN), not a person.
_CENTURY_SEX = {
    1: (1800, "male"),
    2: (1800, "female"),
    3: (1900, "male"),
    4: (1900, "female"),
    5: (2000, "male"),
    6: (2000, "female"),
}

# Stable English reasons; the web layer translates them, so do not reword them casually.
REASON_LENGTH = "must be exactly 12 digits"
REASON_CENTURY = "the 7th digit (century and sex) must be 1 to 6"
REASON_DATE = "the first 6 digits are not a real date of birth"
REASON_CHECK_DIGIT = "the check digit is wrong"
REASON_NEVER_ISSUED = "no IIN is issued with these first 11 digits"


@dataclass(frozen=True)
class IinInfo:
    """A valid IIN and what it says about its holder."""

    iin: str
    birth_date: date
    sex: str  # "male" | "female"


def _refuse(reason: str) -> ValidationFailed:
    return ValidationFailed("invalid IIN", errors=[FieldError("iin", reason)])


def check_digit(first_eleven: str) -> int | None:
    """Compute the check digit for the first 11 digits of an IIN.

    Args:
        first_eleven: exactly 11 ASCII digits.

    Returns:
        The check digit 0-9, or None when both weight sets give 10 (such numbers are not issued).
    """
    digits = [int(c) for c in first_eleven]
    for weights in (_FIRST_WEIGHTS, _SECOND_WEIGHTS):
        remainder = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
        if remainder != 10:
            return remainder
    return None


def validate_iin(value: str) -> IinInfo:
    """Validate an IIN and decode its birth date and sex.

    Args:
        value: the IIN as typed; surrounding spaces are ignored, nothing else is.

    Returns:
        The IIN with the birth date and sex it encodes.

    Raises:
        ValidationFailed: with one FieldError on "iin" giving the first reason it is invalid.
    """
    if not isinstance(value, str):
        raise _refuse(REASON_LENGTH)
    iin = value.strip()
    # isdigit() also accepts other scripts' digits and superscripts; only ASCII 0-9 are valid.
    if len(iin) != IIN_LENGTH or not (iin.isascii() and iin.isdigit()):
        raise _refuse(REASON_LENGTH)
    century_sex = _CENTURY_SEX.get(int(iin[6]))
    if century_sex is None:
        raise _refuse(REASON_CENTURY)
    century, sex = century_sex
    try:
        birth_date = date(century + int(iin[0:2]), int(iin[2:4]), int(iin[4:6]))
    except ValueError:
        raise _refuse(REASON_DATE) from None
    expected = check_digit(iin[:11])
    if expected is None:
        raise _refuse(REASON_NEVER_ISSUED)
    if expected != int(iin[11]):
        raise _refuse(REASON_CHECK_DIGIT)
    return IinInfo(iin=iin, birth_date=birth_date, sex=sex)


def is_valid_iin(value: object) -> bool:
    """Tell whether ``value`` is a valid IIN, without saying why not.

    Args:
        value: anything; non-strings are simply not valid.

    Returns:
        True when :func:`validate_iin` accepts it.
    """
    if not isinstance(value, str):
        return False
    try:
        validate_iin(value)
    except ValidationFailed:
        return False
    return True


def mask_iin(value: str) -> str:
    """Mask an IIN for lists and logs: the birth date and the check digit stay visible.

    The first 6 digits (birth date) let a clerk tell two children apart in a list, and the last
    digit lets them confirm a number read out on the phone; the century-sex digit and the serial
    are hidden. Anything that is not 12 characters long is masked entirely, so a malformed value
    never leaks into a log either.

    Args:
        value: an IIN (valid or not).

    Returns:
        For example ``"791028*****8"`` for ``"791028302728"``.
    """
    text = value.strip() if isinstance(value, str) else ""
    if len(text) != IIN_LENGTH:
        return "*" * IIN_LENGTH
    return text[:6] + "*" * 5 + text[-1]
