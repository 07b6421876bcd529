"""Hypothesis strategies for the fuzz suite: near-valid and hostile pods, nodes, extender and
admission bodies, annotation values and kubelet requests, built from every installed vendor's
resource names and annotation keys so the generated inputs reach deep into the code.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from hami_core.plugins import VendorRegistry, load_vendors
from hami_core.protocol import keys

Obj = dict[str, Any]


def fuzz_settings(examples: int) -> settings:
    """Hypothesis settings for `examples` inputs: no deadline, no example database on disk."""
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def all_vendors() -> VendorRegistry:
    """Every installed vendor (real ones and the example), as the services load them."""
    return load_vendors(environ={})


def vocabulary(registry: VendorRegistry) -> tuple[list[str], list[str]]:
    """(resource names, annotation keys) of every vendor, plus hami's shared keys."""
    resources: set[str] = set()
    notes: set[str] = {
        keys.ASSIGNED_NODE,
        keys.ASSIGNED_TIME,
        keys.BIND_PHASE,
        keys.BIND_TIME,
        keys.NODE_LOCK,
        keys.DEVICE_CORDON,
        keys.GPU_SCHEDULER_POLICY,
        keys.NODE_SCHEDULER_POLICY,
        keys.DEVICE_SCORING_WEIGHTS,
        keys.NVIDIA_MIG_ALLOCATIONS,
    }
    for spec in registry.specs():
        resources.update(spec.resource_names())
        for value in spec.annotations.model_dump().values():
            if isinstance(value, str):
                notes.add(value)
            elif isinstance(value, dict):
                notes.update(v for v in value.values() if isinstance(v, str))
                notes.update(k for k in value if isinstance(k, str) and "/" in k)
    return sorted(resources), sorted(notes)


TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=24)
SMALL = st.text(st.sampled_from("abc-019.,:;/ "), max_size=8)
NUMBERS = st.integers(-(2**40), 2**40) | st.floats(allow_nan=True, allow_infinity=True)
JSON = st.recursive(
    st.none() | st.booleans() | NUMBERS | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
QUANTITY = st.one_of(
    st.integers(-5, 40).map(str),
    st.sampled_from(["1", "2", "0", "-1", "100", "1k", "2Gi", "0.5", "1e3", "1e400", "0x10", ""]),
    st.integers(-(2**70), 2**70),
    st.floats(),
    TEXT,
    JSON,
)


def device_entries(uuids: list[str]) -> st.SearchStrategy[str]:
    """Pod device annotation values: well-formed, off by one field, or noise."""
    device = st.builds(
        lambda u, t, m, c: f"{u},{t},{m},{c}:",
        st.sampled_from(uuids) | SMALL,
        st.sampled_from(["NVIDIA", "EXAMPLE", "DCU", "MLU"]) | SMALL,
        st.integers(-5, 2**33).map(str) | SMALL,
        st.integers(-5, 300).map(str) | SMALL,
    )
    container = st.lists(device, max_size=3).map("".join)
    return st.one_of(
        st.lists(container, max_size=4).map(lambda cs: "".join(c + ";" for c in cs)),
        st.lists(container | SMALL, max_size=4).map(";".join),
        TEXT,
    )


def register_values(uuids: list[str]) -> st.SearchStrategy[str]:
    """Node register annotation values: JSON lists of near-valid devices, legacy text, noise."""
    record = st.fixed_dictionaries(
        {},
        optional={
            "id": st.sampled_from(uuids) | TEXT,
            "index": st.integers(-3, 2**33) | JSON,
            "count": st.integers(-3, 2**33) | JSON,
            "devmem": st.integers(-3, 2**40) | JSON,
            "devcore": st.integers(-3, 400) | JSON,
            "type": SMALL | JSON,
            "numa": st.integers(-3, 9) | JSON,
            "mode": SMALL,
            "health": st.booleans() | JSON,
            "custominfo": JSON,
            "migtemplate": JSON,
        },
    )
    legacy = st.lists(
        st.lists(SMALL | st.integers(-3, 99999).map(str), min_size=0, max_size=10).map(",".join),
        max_size=3,
    ).map(lambda ds: "".join(d + ":" for d in ds))
    import json as _json

    return st.one_of(
        st.lists(record, max_size=4).map(lambda rs: _json.dumps(rs)),
        legacy,
        JSON.map(lambda v: _json.dumps(v)),
        TEXT,
    )


def containers(resources: list[str]) -> st.SearchStrategy[list[Obj]]:
    """Container lists whose limits and requests use vendor resource names with odd values."""
    limits = st.dictionaries(st.sampled_from(resources) | SMALL, QUANTITY, max_size=4)
    container = st.fixed_dictionaries(
        {"name": SMALL | JSON},
        optional={
            "image": SMALL,
            "resources": st.fixed_dictionaries({}, optional={"limits": limits, "requests": limits})
            | JSON,
            "env": st.lists(
                st.fixed_dictionaries({"name": SMALL, "value": SMALL | JSON}), max_size=2
            )
            | JSON,
            "securityContext": st.fixed_dictionaries({"privileged": st.booleans() | JSON}),
        },
    )
    either: st.SearchStrategy[Any] = st.one_of(container, JSON)
    return st.lists(either, max_size=3)


def pods(
    resources: list[str], notes: list[str], uuids: list[str], nodes: list[str]
) -> st.SearchStrategy[Obj]:
    """Pods: sensible shapes with hostile parts (decision annotations, odd quantities, wrong
    types where objects belong)."""
    annotation_values = device_entries(uuids) | st.sampled_from(nodes) | TEXT
    meta = st.fixed_dictionaries(
        {"name": st.sampled_from(["fz-0", "fz-1", "fz-2"]) | SMALL},
        optional={
            "namespace": st.sampled_from(["default", "other"]) | SMALL,
            "uid": SMALL,
            "annotations": st.dictionaries(st.sampled_from(notes) | SMALL, annotation_values)
            | JSON,
            "labels": st.dictionaries(st.sampled_from(notes) | SMALL, SMALL) | JSON,
        },
    )
    spec = st.fixed_dictionaries(
        {"containers": containers(resources)},
        optional={
            "initContainers": containers(resources),
            "nodeName": st.sampled_from(nodes) | SMALL,
            "schedulerName": st.sampled_from(["hami-scheduler", "default-scheduler"]) | SMALL,
            "runtimeClassName": SMALL,
        },
    )
    pod = st.fixed_dictionaries(
        {"metadata": meta | JSON, "spec": spec | JSON},
        optional={"status": st.fixed_dictionaries({"phase": SMALL}) | JSON},
    )
    return pod


def cased(key: str) -> st.SearchStrategy[str]:
    """A Go field name as kube-scheduler writes it, or in another case (Go reads any)."""
    return st.sampled_from([key, key.lower(), key.upper()])


class ErrorLog(logging.Handler):
    """Collects every ERROR (or worse) record hami logs: a logged exception is a crash that
    was caught too late to be a typed error."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record's logger and message."""
        self.records.append(f"{record.name}: {record.getMessage()}")


@contextmanager
def errors_logged() -> Iterator[ErrorLog]:
    """Collect hami's ERROR records while the block runs."""
    handler = ErrorLog()
    root = logging.getLogger("hami_core")
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
