"""Kubernetes resource quantities (`"4096"`, `"4k"`, `"16Gi"`, `"1.5"`, `"100m"`, `"1e3"`), exactly.

Values are parsed into `decimal.Decimal` with no rounding, following the grammar of
`k8s.io/apimachinery/pkg/api/resource`:

    quantity  ::= [+-] number suffix
    number    ::= digits | digits "." [digits] | "." digits
    suffix    ::= "" | n | u | m | k | M | G | T | P | E          (decimal SI)
                | Ki | Mi | Gi | Ti | Pi | Ei                     (binary SI)
                | (e | E) [+-] digits                             (decimal exponent)

YAML-shaped objects may carry plain numbers (`nvidia.com/gpu: 1`); ints and floats are accepted
too. Anything else raises `QuantityError`, which names the value and the problem.
"""

from __future__ import annotations

import re
from decimal import Decimal, Inexact, localcontext
from functools import lru_cache

__all__ = ["QuantityError", "as_exact_int", "parse_quantity"]

_NUMBER = re.compile(r"([+-]?)(\d+(?:\.\d*)?|\.\d+)(.*)", re.DOTALL)
_EXPONENT = re.compile(r"[eE]([+-]?\d+)")
_MAX_EXPONENT = 1000
"""Exponents beyond this are refused: no real quantity needs them and they cost memory."""

_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}


class QuantityError(ValueError):
    """A value is not a Kubernetes quantity; the message quotes it and says why."""


def parse_quantity(value: str | int | float | Decimal) -> Decimal:
    """The exact value of a quantity (`"16Gi"` → `Decimal(17179869184)`).

    Raises `QuantityError` for anything that is not a quantity (including booleans, NaN and
    infinities).
    """
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity (a boolean)")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise QuantityError(f"{value!r} is not a finite number")
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise QuantityError(f"{value!r} is not a finite number")
        return Decimal(repr(value))
    if not isinstance(value, str):
        raise QuantityError(f"{value!r} is not a quantity (a {type(value).__name__})")
    return _parse_text(value)


@lru_cache(maxsize=4096)
def _parse_text(value: str) -> Decimal:
    """`parse_quantity` of a string (memoised: pods repeat the same few quantities)."""
    if value.isascii() and value.isdigit():
        return Decimal(value)
    match = _NUMBER.fullmatch(value)
    if match is None:
        raise QuantityError(f"{value!r} is not a quantity (expected a number with a unit)")
    sign, digits, suffix = match.groups()
    number = Decimal(sign + digits)
    multiplier = _SUFFIXES.get(suffix)
    power = 0
    if multiplier is None:
        exponent = _EXPONENT.fullmatch(suffix)
        if exponent is None:
            raise QuantityError(f"{value!r}: unknown unit {suffix!r}")
        power = int(exponent.group(1))
        if abs(power) > _MAX_EXPONENT:
            raise QuantityError(f"{value!r}: exponent {power} is out of range")
        multiplier = Decimal(1)
    with localcontext() as ctx:  # enough digits that nothing is ever rounded
        ctx.prec = len(digits) + 64
        ctx.traps[Inexact] = True
        return (number * multiplier).scaleb(power)


def as_exact_int(q: str | int | float | Decimal) -> int | None:
    """The quantity as an `int` when it is a whole number (`"4k"` → 4000), else `None`.

    `"1.5"` and `"100m"` give `None`; a value that is not a quantity at all raises
    `QuantityError`.
    """
    number = parse_quantity(q)
    if number != number.to_integral_value():
        return None
    return int(number)
