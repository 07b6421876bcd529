"""How a golden vector is checked: run its `input` through the contract, render canonically.

A vector is `{"name", "dialect", "about", "input", "output"}`; the file must equal
`render(evaluate(vector))` byte for byte, so both the inputs and the expected edits are pinned.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hami_core.contract import (
    ContainerTarget,
    GpuShare,
    HamiCoreSettings,
    edits_json,
    hami_edits,
    koordinator_edits,
    koordinator_pod_metadata,
    parse_limit,
)

GOLDEN = Path(__file__).parent / "golden"


def render(vector: dict[str, Any]) -> str:
    """The canonical text of a vector: two-space JSON, keys in order, a final newline."""
    return json.dumps(vector, indent=2, ensure_ascii=False) + "\n"


def evaluate(vector: dict[str, Any]) -> dict[str, Any]:
    """The vector with `output` recomputed from its `input` by the contract."""
    given = vector["input"]
    dialect = vector["dialect"]
    if dialect == "limit-grammar":
        output: Any = {text: parse_limit(text) for text in given["limits"]}
        return {**vector, "output": output}
    shares = [GpuShare(**d) for d in given["devices"]]
    target = ContainerTarget(**given["container"])
    settings = HamiCoreSettings(**given["settings"])
    if dialect == "hami":
        output = edits_json(hami_edits(shares, target, settings, cache_id=given["cache_id"]))
    elif dialect == "koordinator":
        pod = koordinator_pod_metadata(shares, given["node_name"]).to_json()
        output = {"pod": pod, **edits_json(koordinator_edits(shares, target, settings))}
    else:
        raise ValueError(f"unknown dialect {dialect!r}")
    return {**vector, "output": output}
