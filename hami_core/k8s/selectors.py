"""Label and field selectors, parsed and matched as the apiserver does (pure functions).

Label selectors: `a=b`, `a==b`, `a!=b`, `a` (exists), `!a` (absent), `a in (x,y)`,
`a notin (x,y)`, joined by commas; `!=` and `notin` also match objects without the label.
Field selectors: `path=value`, `path==value`, `path!=value` over the fields a resource allows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from hami_core.k8s.errors import Invalid

__all__ = [
    "FieldSelector",
    "FieldTerm",
    "LabelSelector",
    "Requirement",
    "field_value",
    "parse_field_selector",
    "parse_label_selector",
]

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"[-A-Za-z0-9_.]*"
_SET_RE = re.compile(rf"^(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_EQ_RE = re.compile(rf"^(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>{_VALUE})$")
_EXISTS_RE = re.compile(rf"^(?P<bang>!?)\s*(?P<key>{_KEY})$")
_VALUE_RE = re.compile(rf"^{_VALUE}$")
_FIELD_RE = re.compile(r"^(?P<field>[A-Za-z0-9_.]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^,]*)$")

Operator = Literal["=", "!=", "in", "notin", "exists", "!"]


@dataclass(frozen=True, slots=True)
class Requirement:
    """One term of a label selector."""

    key: str
    op: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether an object with these labels satisfies the term."""
        present = self.key in labels
        match self.op:
            case "exists":
                return present
            case "!":
                return not present
            case "=" | "in":
                return present and labels[self.key] in self.values
            case "!=" | "notin":
                return not present or labels[self.key] not in self.values
        raise AssertionError(self.op)  # pragma: no cover - every operator is handled


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A parsed label selector: every requirement must hold (the empty one matches all)."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether an object with these labels is selected."""
        have = labels or {}
        return all(r.matches(have) for r in self.requirements)

    def matches_object(self, obj: Mapping[str, Any]) -> bool:
        """Whether the object's `metadata.labels` are selected."""
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return self.matches(labels)


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    terms: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return [t.strip() for t in terms]


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse a label selector; `Invalid` (HTTP 400) names the term that does not parse."""
    if text is None or not text.strip():
        return LabelSelector()
    requirements: list[Requirement] = []
    for term in _split_terms(text):
        if m := _SET_RE.match(term):
            values = [v.strip() for v in m["values"].split(",")]
            bad = [v for v in values if not _VALUE_RE.match(v)]
            if bad:
                raise Invalid(
                    f"labelSelector {text!r}: bad value {bad[0]!r} in {term!r}", status=400
                )
            op: Operator = "in" if m["op"] == "in" else "notin"
            requirements.append(Requirement(m["key"], op, frozenset(values)))
        elif m := _EQ_RE.match(term):
            op = "!=" if m["op"] == "!=" else "="
            requirements.append(Requirement(m["key"], op, frozenset({m["value"]})))
        elif m := _EXISTS_RE.match(term):
            requirements.append(Requirement(m["key"], "!" if m["bang"] else "exists"))
        else:
            raise Invalid(f"labelSelector {text!r}: cannot parse term {term!r}", status=400)
    return LabelSelector(tuple(requirements))


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string form of a dotted field of `obj` as a field selector sees it (`""` if absent)."""
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return ""
        node = node[part]
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


@dataclass(frozen=True, slots=True)
class FieldTerm:
    """One `field=value` or `field!=value` term."""

    field: str
    equal: bool
    value: str


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A parsed field selector: every term must hold (the empty one matches all)."""

    terms: tuple[FieldTerm, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether `obj` is selected."""
        return all((field_value(obj, t.field) == t.value) == t.equal for t in self.terms)

    def value_of(self, field: str) -> str | None:
        """The value an equality term requires of `field`, if the selector has one."""
        for term in self.terms:
            if term.field == field and term.equal:
                return term.value
        return None


def parse_field_selector(text: str | None, allowed: frozenset[str] | None = None) -> FieldSelector:
    """Parse a field selector; `Invalid` (HTTP 400) names a bad term or an unsupported field."""
    if text is None or not text.strip():
        return FieldSelector()
    terms: list[FieldTerm] = []
    for term in (t.strip() for t in text.split(",")):
        m = _FIELD_RE.match(term)
        if not m:
            raise Invalid(f"fieldSelector {text!r}: cannot parse term {term!r}", status=400)
        if allowed is not None and m["field"] not in allowed:
            raise Invalid(
                f'fieldSelector {text!r}: field label not supported: "{m["field"]}"', status=400
            )
        terms.append(FieldTerm(m["field"], m["op"] != "!=", m["value"].strip()))
    return FieldSelector(tuple(terms))
