"""Kubernetes quantities are read exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hami_core.quantity import QuantityError, as_exact_int, parse_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4096", Decimal(4096)),
        ("4k", Decimal(4000)),
        ("16Gi", Decimal(16 * 2**30)),
        ("1.5", Decimal("1.5")),
        ("100m", Decimal("0.1")),
        ("1e3", Decimal(1000)),
        ("2E-2", Decimal("0.02")),
        (".5", Decimal("0.5")),
        ("-3", Decimal(-3)),
        ("+7Mi", Decimal(7 * 2**20)),
        ("250u", Decimal("0.00025")),
        (3, Decimal(3)),
        (2.5, Decimal("2.5")),
    ],
)
def test_parse_quantity_is_exact(text: str | int | float, value: Decimal) -> None:
    assert parse_quantity(text) == value


def test_huge_quantities_are_not_rounded() -> None:
    assert parse_quantity("123456789012345678901234567890Ei") == (
        123456789012345678901234567890 * 2**60
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4096", 4096),
        ("4k", 4000),
        ("16Gi", 17179869184),
        ("1.5", None),
        ("100m", None),
        ("2000m", 2),
        ("5.", 5),
        (1, 1),
    ],
)
def test_as_exact_int(text: str | int, expected: int | None) -> None:
    assert as_exact_int(text) == expected


@pytest.mark.parametrize(
    "bad", ["", "abc", "1.2.3", "1 Gi", "Gi", "1KiB", "1e", True, None, [], "nan"]
)
def test_not_a_quantity_names_the_value(bad: object) -> None:
    with pytest.raises(QuantityError, match=r"not a|unknown unit"):
        parse_quantity(bad)  # type: ignore[arg-type]


def test_absurd_exponents_are_refused() -> None:
    with pytest.raises(QuantityError, match="exponent"):
        parse_quantity("1e999999")
