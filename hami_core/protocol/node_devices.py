"""The node register annotation: the list of cards a node offers (`hami.io/node-*-register`).

Two wire forms exist and both are read:

* JSON (HAMi >= v2.8; NVIDIA, Ascend, ...): an array of objects written by Go's `encoding/json`
  with `omitempty`, keys in the order `id,index,count,devmem,devcore,type,numa,mode,migProfiles,
  health`. Omitted keys mean zero values. Unknown keys are ignored; keys match exactly (Go's
  case-insensitive key matching is not reproduced: no writer relies on it). `custominfo` (Ascend's
  `{"NetworkID": n}`) is written after `health`, as Ascend's device plugin does.
* Legacy text (HAMi <= v2.7; Hygon and Iluvatar still today): each device
  `uuid,count,devmem,devcore,type,numa,health[,index,mode]` terminated by `:`.

Choices where HAMi is silent or accidental, kept identical in both forms:

* A negative `count`, `devmem` or `devcore` is an error (HAMi would accept it and then schedule
  onto a card with negative capacity). A negative `index` is an error, as in HAMi's legacy decoder
  (and Go's `uint`). `numa` may be negative.
* JSON `null` for a field, or for the whole value, means "absent", as in Go.
* An empty device list is not an error here; a vendor decides whether "no devices" is.
* `custominfo` values are written as Go writes a decoded `map[string]any`: keys sorted, numbers
  as float64 (a whole-valued float is written without a fraction, so it reads back as an int).

JSON is parsed with orjson, which, like Go, refuses NaN and Infinity; a number beyond 64 bits
reads as a float and is therefore refused in integer fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import fields, make_dataclass
from types import MappingProxyType
from typing import Any, Final

import orjson

from hami_core.protocol._golang import (
    INT32_MAX,
    INT64_MAX,
    INT64_MIN,
    UINT64_MAX,
    go_json_string,
    go_json_value,
    go_parse_bool,
    go_parse_int,
    go_quote,
)
from hami_core.protocol.errors import ProtocolError
from hami_core.protocol.limits import check_annotation_size
from hami_core.protocol.types import DeviceInfo

__all__ = ["decode_node_devices", "encode_node_devices"]

LEGACY_DEFAULT_MODE: Final = "hami-core"
"""Mode given to a 7-field legacy device (HAMi <= v2.4 wrote no mode)."""

_JSON_STARTS: Final = frozenset("[{")


def decode_node_devices(value: str) -> list[DeviceInfo]:
    """Read a node register annotation, JSON or legacy text, into its devices.

    Raises `ProtocolError` (and nothing else) for any value HAMi would reject, plus negative
    capacities; the message names the device, the field and the offending value. A value longer
    than any annotation the apiserver stores is refused unread.
    """
    if not isinstance(value, str):
        raise ProtocolError(
            f"node device annotation must be a string, got {type(value).__name__}", value=value
        )
    check_annotation_size(value, "node device annotation")
    stripped = value.lstrip(" \t\r\n")
    if stripped[:1] in _JSON_STARTS or stripped.rstrip(" \t\r\n") == "null":
        return _decode_json(value)
    return _decode_legacy(value)


def encode_node_devices(devices: Iterable[DeviceInfo], *, legacy: bool = False) -> str:
    """Write devices as HAMi's Go components do: compact JSON, or 9-field legacy text.

    Raises `ProtocolError` for a device the chosen form cannot carry (a value outside its Go
    type's range; in legacy text, a `,` or `:` inside a string field, a first id starting
    with `[` or `{`, or JSON-only data). Like HAMi, no devices in legacy text is `""`, which HAMi's
    decoder (and this one) rejects: register at least one device or use JSON.
    """
    if legacy:
        text = "".join(_encode_legacy_device(device) for device in devices)
        if text.lstrip(" \t\r\n")[:1] in _JSON_STARTS:
            raise ProtocolError(
                f"legacy text cannot start with '[' or '{{' (it would read as JSON): {text[:40]!r}",
                field="id",
                value=text,
            )
        return text
    return "[" + ",".join(_encode_json_device(device) for device in devices) + "]"


# --------------------------------------------------------------------------------------------
# JSON decoding


# The fast path builds instances of a non-frozen twin of DeviceInfo with the very same slots and
# then re-labels them as DeviceInfo: the frozen dataclass __init__ (object.__setattr__ per field)
# would otherwise cost more than parsing the JSON. The twin is derived from DeviceInfo's fields,
# so the two layouts cannot drift apart; the fast path passes them positionally in DeviceInfo's
# field order (the round-trip tests fail at once if that order changes).
_Draft: Final[type[Any]] = make_dataclass(
    "_DeviceInfoDraft", [(f.name, Any) for f in fields(DeviceInfo)], slots=True
)


def _decode_json(value: str) -> list[DeviceInfo]:
    try:
        raw = orjson.loads(value)
    except ValueError as exc:
        raise ProtocolError(
            f"node device annotation is not valid JSON: {exc}", value=value[:200]
        ) from None
    if type(raw) is list:
        devices = _decode_json_fast(raw)
        if devices is not None:
            return devices
    return _decode_json_checked(raw)


def _decode_json_fast(raw: list[Any]) -> list[DeviceInfo] | None:
    """Decode the common, well-formed case; None as soon as anything needs a closer look."""
    # Locals instead of globals, and dict.get instead of a merged copy (fewer allocations):
    # this loop runs once per card of every node.
    out: list[DeviceInfo] = []
    append = out.append
    draft, final = _Draft, DeviceInfo
    i32, u64, i64_min, i64_max = INT32_MAX, UINT64_MAX, INT64_MIN, INT64_MAX
    for obj in raw:
        if type(obj) is not dict:
            return None
        get = obj.get
        uid = get("id", "")
        count = get("count", 0)
        mem = get("devmem", 0)
        core = get("devcore", 0)
        typ = get("type", "")
        index = get("index", 0)
        numa = get("numa", 0)
        mode = get("mode", "")
        health = get("health", False)
        custom = get("custominfo")
        if not (
            type(uid) is type(typ) is type(mode) is str
            and type(health) is bool
            and type(count) is type(mem) is type(core) is type(index) is type(numa) is int
            and 0 <= count <= i32
            and 0 <= mem <= i32
            and 0 <= core <= i32
            and 0 <= index <= u64
            and i64_min <= numa <= i64_max
            and "migProfiles" not in obj
        ):
            return None
        if custom is not None:
            if type(custom) is not dict:
                return None
            custom = MappingProxyType(custom)
        device = draft(uid, count, mem, core, typ, index, numa, mode, health, custom, ())
        device.__class__ = final
        append(device)
    return out


def _decode_json_checked(raw: Any) -> list[DeviceInfo]:
    """Decode field by field, naming the first problem found."""
    if raw is None:
        return []
    if type(raw) is not list:
        raise ProtocolError(
            f"node device annotation must be a JSON array of devices, got {_kind(raw)}",
            value=raw,
        )
    devices: list[DeviceInfo] = []
    for position, obj in enumerate(raw):
        if type(obj) is not dict:
            raise ProtocolError(
                f"device #{position}: expected a JSON object, got {_kind(obj)} {_show(obj)}",
                value=obj,
            )
        devices.append(_device_from_json(position, obj))
    return devices


def _device_from_json(position: int, obj: dict[str, Any]) -> DeviceInfo:
    custom = obj.get("custominfo")
    if custom is not None and type(custom) is not dict:
        raise _field_error(position, "custominfo", custom, "must be a JSON object")
    return DeviceInfo(
        id=_json_str(position, obj, "id"),
        index=_json_int(position, obj, "index", 0, UINT64_MAX),
        count=_json_int(position, obj, "count", 0, INT32_MAX),
        devmem=_json_int(position, obj, "devmem", 0, INT32_MAX),
        devcore=_json_int(position, obj, "devcore", 0, INT32_MAX),
        type=_json_str(position, obj, "type"),
        numa=_json_int(position, obj, "numa", INT64_MIN, INT64_MAX),
        mode=_json_str(position, obj, "mode"),
        health=_json_bool(position, obj, "health"),
        custominfo=None if custom is None else MappingProxyType(custom),
        mig_profiles=_json_mig_profiles(position, obj.get("migProfiles")),
    )


def _json_str(position: int, obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if type(value) is not str:
        raise _field_error(position, key, value, "must be a string")
    return value


def _json_bool(position: int, obj: Mapping[str, Any], key: str) -> bool:
    value = obj.get(key)
    if value is None:
        return False
    if type(value) is not bool:
        raise _field_error(position, key, value, "must be true or false")
    return value


def _json_int(position: int, obj: Mapping[str, Any], key: str, low: int, high: int) -> int:
    value = obj.get(key)
    if value is None:
        return 0
    return _checked_int(f"device #{position}", key, value, low, high)


def _checked_int(where: str, key: str, value: Any, low: int, high: int) -> int:
    if type(value) is not int:
        raise ProtocolError(
            f'{where}: field "{key}" must be a whole number, got {_kind(value)} {_show(value)}',
            field=key,
            value=value,
        )
    if not low <= value <= high:
        raise ProtocolError(
            f'{where}: field "{key}" must be between {low} and {high}, got {value}',
            field=key,
            value=value,
        )
    return value


_MIG_INT_KEYS: Final = ("memoryMB", "core", "sliceCount")


def _json_mig_profiles(position: int, value: Any) -> tuple[Mapping[str, Any], ...]:
    if value is None:
        return ()
    if type(value) is not list:
        raise _field_error(position, "migProfiles", value, "must be a list of MIG profiles")
    profiles: list[Mapping[str, Any]] = []
    for number, profile in enumerate(value):
        where = f"device #{position}: migProfiles[{number}]"
        if type(profile) is not dict:
            raise ProtocolError(
                f"{where}: expected a JSON object, got {_kind(profile)} {_show(profile)}",
                field="migProfiles",
                value=profile,
            )
        name = profile.get("name")
        if name is not None and type(name) is not str:
            raise ProtocolError(
                f'{where}: field "name" must be a string, got {_kind(name)} {_show(name)}',
                field="name",
                value=name,
            )
        for key in _MIG_INT_KEYS:
            if profile.get(key) is not None:
                _checked_int(where, key, profile[key], INT64_MIN, INT64_MAX)
        placements = profile.get("placements")
        if placements is not None:
            if type(placements) is not list:
                raise ProtocolError(
                    f'{where}: field "placements" must be a list, got {_kind(placements)}',
                    field="placements",
                    value=placements,
                )
            for placement in placements:
                if type(placement) is not dict:
                    raise ProtocolError(
                        f"{where}: each placement must be an object, got {_kind(placement)}",
                        field="placements",
                        value=placement,
                    )
                for key in ("start", "size"):
                    if placement.get(key) is not None:
                        _checked_int(where, key, placement[key], INT64_MIN, INT64_MAX)
        profiles.append(MappingProxyType(profile))
    return tuple(profiles)


def _field_error(position: int, key: str, value: Any, rule: str) -> ProtocolError:
    return ProtocolError(
        f'device #{position}: field "{key}" {rule}, got {_kind(value)} {_show(value)}',
        field=key,
        value=value,
    )


_KINDS: Final = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def _kind(value: Any) -> str:
    return _KINDS.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --------------------------------------------------------------------------------------------
# JSON encoding

_MIG_KEY_ORDER: Final = ("name", "memoryMB", "core", "sliceCount", "placements")
_PLACEMENT_KEY_ORDER: Final = ("start", "size")


def _encode_json_device(device: DeviceInfo) -> str:
    parts: list[str] = []
    if device.id:
        parts.append('"id":' + go_json_string(device.id))
    if device.index:
        parts.append(f'"index":{_ranged(device, "index", device.index, 0, UINT64_MAX)}')
    if device.count:
        parts.append(f'"count":{_ranged(device, "count", device.count, 0, INT32_MAX)}')
    if device.devmem:
        parts.append(f'"devmem":{_ranged(device, "devmem", device.devmem, 0, INT32_MAX)}')
    if device.devcore:
        parts.append(f'"devcore":{_ranged(device, "devcore", device.devcore, 0, INT32_MAX)}')
    if device.type:
        parts.append('"type":' + go_json_string(device.type))
    if device.numa:
        parts.append(f'"numa":{_ranged(device, "numa", device.numa, INT64_MIN, INT64_MAX)}')
    if device.mode:
        parts.append('"mode":' + go_json_string(device.mode))
    if device.mig_profiles:
        profiles = ",".join(_encode_mig_profile(device, p) for p in device.mig_profiles)
        parts.append('"migProfiles":[' + profiles + "]")
    if device.health:
        parts.append('"health":true')
    if device.custominfo:
        parts.append('"custominfo":' + _go_value(device, "custominfo", device.custominfo))
    return "{" + ",".join(parts) + "}"


def _encode_mig_profile(device: DeviceInfo, profile: Mapping[str, Any]) -> str:
    items: list[str] = []
    for key in _ordered_keys(profile, _MIG_KEY_ORDER):
        value = profile[key]
        if key == "placements" and isinstance(value, list | tuple):
            encoded = (
                "["
                + ",".join(
                    _encode_ordered(device, placement, _PLACEMENT_KEY_ORDER)
                    if isinstance(placement, Mapping)
                    else _go_value(device, "migProfiles", placement)
                    for placement in value
                )
                + "]"
            )
        else:
            encoded = _go_value(device, "migProfiles", value)
        items.append(go_json_string(key) + ":" + encoded)
    return "{" + ",".join(items) + "}"


def _encode_ordered(device: DeviceInfo, obj: Mapping[str, Any], order: tuple[str, ...]) -> str:
    return (
        "{"
        + ",".join(
            go_json_string(key) + ":" + _go_value(device, "migProfiles", obj[key])
            for key in _ordered_keys(obj, order)
        )
        + "}"
    )


def _ordered_keys(obj: Mapping[str, Any], order: tuple[str, ...]) -> list[str]:
    """Go's struct field order for the known keys, then any other keys as given."""
    return [key for key in order if key in obj] + [key for key in obj if key not in order]


def _go_value(device: DeviceInfo, key: str, value: Any) -> str:
    try:
        return go_json_value(value)
    except ValueError as exc:
        raise ProtocolError(
            f'device {device.id!r}: field "{key}" cannot be written as JSON: {exc}',
            field=key,
            value=value,
        ) from None


def _ranged(device: DeviceInfo, key: str, value: int, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ProtocolError(
            f'device {device.id!r}: field "{key}" must be a whole number between {low} and '
            f"{high}, got {value!r}",
            field=key,
            value=value,
        )
    return value


# --------------------------------------------------------------------------------------------
# Legacy text

_DEVICE_END: Final = ":"
_FIELD_SEP: Final = ","


def _decode_legacy(value: str) -> list[DeviceInfo]:
    if _DEVICE_END not in value:
        raise ProtocolError("node annotation missing device separator", value=value)
    devices: list[DeviceInfo] = []
    for segment in value.split(_DEVICE_END):
        if not segment:
            continue
        if _FIELD_SEP not in segment:
            raise ProtocolError(
                f"malformed node annotation segment: {go_quote(segment)}", value=segment
            )
        items = segment.split(_FIELD_SEP)
        if len(items) not in (7, 9):
            raise ProtocolError(
                f"unexpected field count {len(items)} in node annotation", value=segment
            )
        count = _legacy_int("count", items[1], 32, "ParseInt")
        devmem = _legacy_int("memory", items[2], 32, "ParseInt")
        devcore = _legacy_int("core", items[3], 32, "ParseInt")
        try:
            health = go_parse_bool(items[6])
        except ValueError as exc:
            raise ProtocolError(
                f"invalid health field: {exc}", field="health", value=items[6]
            ) from None
        numa = _legacy_int("numa", items[5], 64, "Atoi", allow_negative=True)
        index = 0
        mode = LEGACY_DEFAULT_MODE
        if len(items) == 9:
            index = _legacy_int("index", items[7], 64, "Atoi")
            mode = items[8]
        devices.append(
            DeviceInfo(
                id=items[0],
                index=index,
                count=count,
                devmem=devmem,
                devcore=devcore,
                type=items[4],
                numa=numa,
                mode=mode,
                health=health,
            )
        )
    return devices


_LEGACY_FIELD: Final = {
    "count": "count",
    "memory": "devmem",
    "core": "devcore",
    "numa": "numa",
    "index": "index",
}


def _legacy_int(name: str, text: str, bits: int, func: str, *, allow_negative: bool = False) -> int:
    try:
        number = go_parse_int(text, bits=bits, func=func)
    except ValueError as exc:
        raise ProtocolError(
            f"invalid {name} field: {exc}", field=_LEGACY_FIELD[name], value=text
        ) from None
    if number < 0 and not allow_negative:
        raise ProtocolError(
            f"{name} field must not be negative: {number}", field=_LEGACY_FIELD[name], value=text
        )
    return number


def _encode_legacy_device(device: DeviceInfo) -> str:
    for key in ("id", "type", "mode"):
        text = getattr(device, key)
        if _FIELD_SEP in text or _DEVICE_END in text:
            raise ProtocolError(
                f'device {device.id!r}: field "{key}" contains "," or ":", which the legacy '
                f"text form cannot carry: {text!r}",
                field=key,
                value=text,
            )
    if device.custominfo or device.mig_profiles:
        raise ProtocolError(
            f"device {device.id!r}: custominfo and migProfiles can only be written as JSON",
            field="custominfo" if device.custominfo else "migProfiles",
        )
    health = "true" if device.health else "false"
    return (
        f"{device.id},{_ranged(device, 'count', device.count, 0, INT32_MAX)},"
        f"{_ranged(device, 'devmem', device.devmem, 0, INT32_MAX)},"
        f"{_ranged(device, 'devcore', device.devcore, 0, INT32_MAX)},{device.type},"
        f"{_ranged(device, 'numa', device.numa, INT64_MIN, INT64_MAX)},{health},"
        f"{_ranged(device, 'index', device.index, 0, INT64_MAX)},{device.mode}:"
    )
