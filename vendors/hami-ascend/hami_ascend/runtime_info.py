"""The `huawei.com/<commonWord>` pod annotation: per allocated NPU, its UUID and the vNPU
template (hard slicing) or memory and core quota (soft slicing), for the device plugin.

Wire form (Go `encoding/json` of HAMi's `RuntimeInfo`, keys in this order, zero values
omitted): `[{"UUID":"…","temp":"vir05_1c_16g","memory":16384,"core":0}]` → with `core` 0
omitted. hami also writes `memory` in hard slicing (HAMi leaves it out there); HAMi's device
plugin reads it only in soft slicing, where it is the same value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hami_ascend.chips import ChipConfig, round_memory
from hami_core.model import ContainerDevice
from hami_core.protocol.errors import ProtocolError

__all__ = [
    "RuntimeInfo",
    "decode_runtime_info",
    "encode_runtime_info",
    "runtime_infos",
    "template_for_share",
]


@dataclass(frozen=True, slots=True)
class RuntimeInfo:
    """One allocated NPU: its UUID, template name, memory MiB and core quota (None = absent)."""

    uuid: str
    temp: str | None = None
    memory: int | None = None
    core: int | None = None


def template_for_share(chip: ChipConfig, usedmem: int) -> str | None:
    """The template a hard-sliced share of `usedmem` MiB is (HAMi re-derives it with
    `trimMemory`); `None` for a whole NPU."""
    rounded = round_memory(chip, usedmem)
    if rounded is None or rounded.template is None:
        return None
    return rounded.template.name


def runtime_infos(
    chip: ChipConfig, containers: Iterable[Sequence[ContainerDevice]], soft: bool
) -> list[RuntimeInfo]:
    """One entry per allocated NPU over all containers, in order: memory and cores in soft
    slicing, template and memory in hard slicing."""
    out: list[RuntimeInfo] = []
    for devices in containers:
        for d in devices:
            if soft:
                out.append(RuntimeInfo(d.uuid, None, d.usedmem, d.usedcores))
            else:
                out.append(RuntimeInfo(d.uuid, template_for_share(chip, d.usedmem), d.usedmem))
    return out


def encode_runtime_info(infos: Iterable[RuntimeInfo]) -> str:
    """The annotation value, byte-compatible with Go's `json.Marshal` (compact, omitempty)."""
    items: list[dict[str, object]] = []
    for info in infos:
        item: dict[str, object] = {}
        if info.uuid:
            item["UUID"] = info.uuid
        if info.temp:
            item["temp"] = info.temp
        if info.memory:
            item["memory"] = info.memory
        if info.core:
            item["core"] = info.core
        items.append(item)
    return json.dumps(items, separators=(",", ":"), ensure_ascii=False)


def _int_field(item: dict[str, object], key: str, position: int) -> int | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(
            f"entry {position}: {key}: expected a whole number, got {value!r}",
            field=key,
            value=value,
        )
    return value


def decode_runtime_info(value: str, annotation: str | None = None) -> list[RuntimeInfo]:
    """Read the annotation value. Raises `ProtocolError` naming `annotation`, the entry and
    the field when it is not HAMi's JSON list."""
    try:
        try:
            raw = json.loads(value)
        except ValueError as exc:
            raise ProtocolError(f"not valid JSON: {exc}", value=value) from None
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise ProtocolError("expected a JSON list of {UUID, temp, memory, core}", value=value)
        out: list[RuntimeInfo] = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise ProtocolError(f"entry {i}: expected an object", value=item)
            uuid = item.get("UUID", "")
            temp = item.get("temp")
            if not isinstance(uuid, str):
                raise ProtocolError(f"entry {i}: UUID: expected a string", field="UUID", value=uuid)
            if temp is not None and not isinstance(temp, str):
                raise ProtocolError(f"entry {i}: temp: expected a string", field="temp", value=temp)
            out.append(
                RuntimeInfo(
                    uuid=uuid,
                    temp=temp or None,
                    memory=_int_field(item, "memory", i),
                    core=_int_field(item, "core", i),
                )
            )
        return out
    except ProtocolError as exc:
        raise exc.with_annotation(annotation) if annotation else exc from None
