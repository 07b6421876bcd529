"""The pod decision annotations: which card share each container got (`...-devices-to-allocate`,
`...-devices-allocated`).

One device is `uuid,type,usedmem,usedcores` followed by `:`; one container is its devices
concatenated (no devices: the empty string); a pod is each container's string followed by `;`,
init containers first. Example, two containers on one card:
`GPU-0fc3,NVIDIA,3000,0:;GPU-0fc3,NVIDIA,5000,0:;`.

Decoding keeps HAMi's shape exactly: every `;`-piece is a container, including the empty piece
after the final `;` (`"a:;"` gives two containers, `""` gives one empty container), so container
positions never shift. Inside a container, pieces without a `,` are skipped; a piece with fewer
than four fields is an error, extra fields are ignored. Memory and cores are Go int32. Choice:
negative memory or cores is an error (HAMi would subtract them from the card's usage).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from hami_core.protocol._golang import INT32_MAX, go_parse_int
from hami_core.protocol.errors import ProtocolError
from hami_core.protocol.limits import check_annotation_size
from hami_core.protocol.types import ContainerDevice

__all__ = [
    "decode_container_devices",
    "decode_pod_devices",
    "encode_container_devices",
    "encode_pod_devices",
    "pop_next_container",
]

DEVICE_END: Final = ":"
CONTAINER_END: Final = ";"
_FIELD_SEP: Final = ","
MISSING_FIELDS_MESSAGE: Final = (
    "pod annotation format error, missing fields, do not use nodeName in task spec"
)
NO_PENDING_MESSAGE: Final = "no pending device allocation found"


def encode_container_devices(devices: Iterable[ContainerDevice]) -> str:
    """Write one container's devices: `uuid,type,mem,cores:` per device (empty list: `""`).

    Raises `ProtocolError` if a uuid or type holds `,` `:` or `;`, or a number is not a
    non-negative int32: the text form cannot carry them.
    """
    return "".join(_encode_device(device) for device in devices)


def encode_pod_devices(containers: Iterable[Iterable[ContainerDevice]]) -> str:
    """Write a pod's containers, each terminated by `;` (`[[]]` gives `";"`, `[]` gives `""`)."""
    return "".join(encode_container_devices(devices) + CONTAINER_END for devices in containers)


def decode_container_devices(value: str) -> list[ContainerDevice]:
    """Read one container's devices, as HAMi's `DecodeContainerDevices` does.

    Raises `ProtocolError` with HAMi's message for a piece with too few fields or a bad number.
    """
    if not isinstance(value, str):
        raise ProtocolError(
            f"pod device annotation must be a string, got {type(value).__name__}", value=value
        )
    devices: list[ContainerDevice] = []
    for piece in value.split(DEVICE_END):
        if _FIELD_SEP not in piece:
            continue
        items = piece.split(_FIELD_SEP)
        if len(items) < 4:
            raise ProtocolError(MISSING_FIELDS_MESSAGE, value=piece)
        devices.append(
            ContainerDevice(
                uuid=items[0],
                type=items[1],
                usedmem=_usage("memory", "usedmem", items[2]),
                usedcores=_usage("core", "usedcores", items[3]),
            )
        )
    return devices


def decode_pod_devices(value: str) -> list[list[ContainerDevice]]:
    """Read a pod's containers, keeping every `;`-piece (so `"a:;"` is `[[a], []]`).

    Raises `ProtocolError` if any container fails to decode, or unread if the value is longer
    than any annotation the apiserver stores; nothing partial is returned.
    """
    if not isinstance(value, str):
        raise ProtocolError(
            f"pod device annotation must be a string, got {type(value).__name__}", value=value
        )
    check_annotation_size(value, "pod device annotation")
    return [decode_container_devices(piece) for piece in value.split(CONTAINER_END)]


def pop_next_container(value: str) -> tuple[list[ContainerDevice], str]:
    """Take the first container that still has devices; return it and the value to write back.

    This is the device plugin's step on each `Allocate`: the popped container becomes empty and
    every other container keeps its position, so the remaining value decodes to the same
    container indices. HAMi re-encodes the decoded list including the empty piece that follows
    the final `;`, so its value grows one `;` per call (`A;B;` -> `;B;;`, `A` and `B` being
    device lists). hami drops that artifact instead (`A;B;` -> `;B;` -> `;;`): the same
    containers, no growth; HAMi's plugin reads both forms. Raises `ProtocolError`
    (`no pending device allocation found`) when no container has devices left.
    """
    containers = decode_pod_devices(value)
    if value.endswith(CONTAINER_END):
        containers.pop()  # the empty piece after the final terminator is not a container
    for position, devices in enumerate(containers):
        if devices:
            containers[position] = []
            return devices, encode_pod_devices(containers)
    raise ProtocolError(NO_PENDING_MESSAGE, value=value)


def _usage(name: str, field: str, text: str) -> int:
    try:
        number = go_parse_int(text, bits=32)
    except ValueError as exc:
        raise ProtocolError(f"invalid {name} field: {exc}", field=field, value=text) from None
    if number < 0:
        raise ProtocolError(f"{name} field must not be negative: {number}", field=field, value=text)
    return number


def _encode_device(device: ContainerDevice) -> str:
    for key, text in (("uuid", device.uuid), ("type", device.type)):
        if _has_separator(text):
            raise ProtocolError(
                f'device field "{key}" contains "," ":" or ";", which the pod annotation '
                f"cannot carry: {text!r}",
                field=key,
                value=text,
            )
    for key, number in (("usedmem", device.usedmem), ("usedcores", device.usedcores)):
        if type(number) is not int or not 0 <= number <= INT32_MAX:
            raise ProtocolError(
                f'device {device.uuid!r}: field "{key}" must be a whole number between 0 and '
                f"{INT32_MAX}, got {number!r}",
                field=key,
                value=number,
            )
    return f"{device.uuid},{device.type},{device.usedmem},{device.usedcores}:"


def _has_separator(text: str) -> bool:
    return _FIELD_SEP in text or DEVICE_END in text or CONTAINER_END in text
