"""Re-creations of the few Go standard-library behaviours HAMi's wire formats depend on.

Each function answers exactly what its Go counterpart answers for the inputs HAMi feeds it:
`strconv.ParseInt` / `strconv.Atoi` / `strconv.ParseBool` (with Go's error text),
`strconv.Quote` (`%q`), and the string, number and map output of `encoding/json`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "INT64_MAX",
    "INT64_MIN",
    "UINT64_MAX",
    "go_json_float",
    "go_json_string",
    "go_json_value",
    "go_parse_bool",
    "go_parse_int",
    "go_quote",
]

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1

_DECIMAL = re.compile(r"[+-]?[0-9]+")
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})

_QUOTE_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def go_quote(text: str) -> str:
    """Quote `text` the way Go's `strconv.Quote` (and `%q`) does."""
    out = ['"']
    for ch in text:
        escaped = _QUOTE_ESCAPES.get(ch)
        if escaped is not None:
            out.append(escaped)
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            if code < 0x80:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def go_parse_int(text: str, *, bits: int = 64, func: str = "ParseInt") -> int:
    """Parse a base-10 integer like `strconv.ParseInt(text, 10, bits)` (or `Atoi`).

    Raises `ValueError` carrying Go's own message, e.g.
    `strconv.ParseInt: parsing "x": invalid syntax`.
    """
    if _DECIMAL.fullmatch(text) is None:
        raise ValueError(f"strconv.{func}: parsing {go_quote(text)}: invalid syntax")
    limit = 1 << (bits - 1)
    # Bound the digit count before int() so a huge string costs nothing.
    if len(text.lstrip("+-").lstrip("0")) > 20:
        raise ValueError(f"strconv.{func}: parsing {go_quote(text)}: value out of range")
    number = int(text)
    if not -limit <= number < limit:
        raise ValueError(f"strconv.{func}: parsing {go_quote(text)}: value out of range")
    return number


def go_parse_bool(text: str) -> bool:
    """Parse like Go's `strconv.ParseBool`: `1,t,T,TRUE,true,True` / `0,f,F,FALSE,false,False`."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"strconv.ParseBool: parsing {go_quote(text)}: invalid syntax")


_JSON_NEEDS_ESCAPE = re.compile('[\\x00-\\x1f"\\\\<>&\u2028\u2029\ud800-\udfff]')
_JSON_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _json_escape(match: re.Match[str]) -> str:
    ch = match.group()
    escaped = _JSON_ESCAPES.get(ch)
    if escaped is not None:
        return escaped
    code = ord(ch)
    if code < 0x20:
        return f"\\u{code:04x}"
    return "\\ufffd"  # a lone surrogate: Go writes U+FFFD for text that is not valid UTF-8


def go_json_string(text: str) -> str:
    """Encode `text` as Go's `encoding/json` does (HTML-safe: `<`, `>`, `&` become `\\u003c`...)."""
    if _JSON_NEEDS_ESCAPE.search(text) is None:
        return '"' + text + '"'
    return '"' + _JSON_NEEDS_ESCAPE.sub(_json_escape, text) + '"'


def go_json_float(number: float) -> str:
    """Format a float64 as Go's `encoding/json` does (`1`, `0.5`, `1e+21`, `1e-7`)."""
    if not math.isfinite(number):
        raise ValueError(f"unsupported value: {number!r} (JSON has no NaN or Infinity)")
    magnitude = abs(number)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        text = repr(number)  # shortest round-trip digits, exponent form here
        if "e" not in text:  # pragma: no cover - repr always uses an exponent in this range
            text = f"{number:e}"
        mantissa, _, exponent = text.partition("e")
        if mantissa.endswith(".0"):
            mantissa = mantissa[:-2]
        sign = exponent[0] if exponent[0] in "+-" else "+"
        digits = exponent.lstrip("+-").lstrip("0") or "0"
        if sign == "+" and len(digits) < 2:
            digits = digits.rjust(2, "0")
        return f"{mantissa}e{sign}{digits}"
    text = format(Decimal(repr(number)).normalize(), "f")
    return "-0" if text == "0" and math.copysign(1.0, number) < 0 else text


def go_json_value(value: Any) -> str:
    """Encode a decoded-JSON value (`map[string]any` side) compactly as Go does: map keys sorted."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return go_json_string(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_json_float(value)
    if isinstance(value, Mapping):
        items = []
        for key in sorted(value):
            if not isinstance(key, str):
                raise ValueError(f"unsupported map key {key!r}: JSON object keys are strings")
            items.append(go_json_string(key) + ":" + go_json_value(value[key]))
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(go_json_value(item) for item in value) + "]"
    raise ValueError(f"unsupported value of type {type(value).__name__}: {value!r}")
