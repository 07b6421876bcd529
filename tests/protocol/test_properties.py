"""Properties over generated values: every codec round-trips, and no decoder lets anything but
`ProtocolError` escape, whatever text or JSON it is handed."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hami_core.protocol import (
    ContainerDevice,
    DeviceInfo,
    NodeLock,
    ProtocolError,
    Reason,
    ScoringWeights,
    decode_container_devices,
    decode_node_devices,
    decode_pair_scores,
    decode_pod_devices,
    encode_container_devices,
    encode_node_devices,
    encode_pair_scores,
    encode_pod_devices,
    format_node_lock,
    format_reasons,
    format_requesting,
    handshake_health,
    parse_gpu_policy,
    parse_handshake,
    parse_node_lock,
    parse_node_policy,
    parse_reasons,
    parse_scoring_weights,
    pop_next_container,
)

EXAMPLES = settings(max_examples=200, deadline=None)
INT32 = st.integers(0, 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
# JSON has one number type: a whole-valued float is written like an integer (as Go does) and so
# reads back as an int. Such floats are left out of the round-trip values.
FRACTIONS = st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer())
JSON_SCALARS = st.none() | st.booleans() | INT64 | FRACTIONS
JSON_VALUES = st.recursive(
    JSON_SCALARS | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
MIG_PROFILES = st.fixed_dictionaries(
    {},
    optional={
        "name": TEXT,
        "memoryMB": INT64,
        "core": INT64,
        "sliceCount": INT64,
        "placements": st.lists(
            st.fixed_dictionaries({}, optional={"start": INT64, "size": INT64}), max_size=3
        ),
    },
)


def devices(text: st.SearchStrategy[str] = TEXT, *, json_only: bool = True) -> Any:
    return st.builds(
        DeviceInfo,
        id=text,
        count=INT32,
        devmem=INT32,
        devcore=INT32,
        type=text,
        index=st.integers(0, 2**64 - 1 if json_only else 2**63 - 1),
        numa=INT64,
        mode=text,
        health=st.booleans(),
        custominfo=st.none() | st.dictionaries(TEXT, JSON_VALUES, min_size=1, max_size=3)
        if json_only
        else st.none(),
        mig_profiles=st.lists(MIG_PROFILES, max_size=2).map(tuple) if json_only else st.just(()),
    )


LEGACY_TEXT = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters=",:"), max_size=20
)
LEGACY_ID = LEGACY_TEXT.filter(lambda s: s.lstrip(" \t\r\n")[:1] not in ("[", "{"))


@EXAMPLES
@given(st.lists(devices(), max_size=4))
def test_json_node_devices_round_trip(devs: list[DeviceInfo]) -> None:
    encoded = encode_node_devices(devs)
    assert decode_node_devices(encoded) == devs
    assert encode_node_devices(decode_node_devices(encoded)) == encoded


@EXAMPLES
@given(st.lists(devices(LEGACY_TEXT, json_only=False), min_size=1, max_size=5), LEGACY_ID)
def test_legacy_node_devices_round_trip(devs: list[DeviceInfo], first_id: str) -> None:
    devs[0] = DeviceInfo(**{**_as_dict(devs[0]), "id": first_id})
    assert decode_node_devices(encode_node_devices(devs, legacy=True)) == devs


def _as_dict(device: DeviceInfo) -> dict[str, Any]:
    return {name: getattr(device, name) for name in DeviceInfo.__slots__}


FIELD_VALUES = {
    "id": TEXT,
    "index": st.integers(0, 2**64 - 1),
    "count": INT32,
    "devmem": INT32,
    "devcore": INT32,
    "type": TEXT,
    "numa": INT64,
    "mode": TEXT,
    "health": st.booleans(),
}


@st.composite
def device_objects(draw: st.DrawFn) -> tuple[dict[str, Any], DeviceInfo]:
    """A JSON device object as any writer might lay it out, and what it must decode to."""
    present = draw(st.dictionaries(st.sampled_from(sorted(FIELD_VALUES)), st.none(), max_size=9))
    obj: dict[str, Any] = {}
    expected: dict[str, Any] = {"id": "", "count": 0, "devmem": 0, "devcore": 0, "type": ""}
    for key in present:
        value = draw(st.none() | FIELD_VALUES[key])  # null reads as absent, as in Go
        obj[key] = value
        if value is not None:
            expected[key] = value
    for extra in draw(st.lists(st.sampled_from(["devicevendor", "x", "ID"]), max_size=2)):
        obj[extra] = draw(JSON_VALUES)
    return obj, DeviceInfo(**expected)


@EXAMPLES
@given(st.lists(device_objects(), max_size=4))
def test_any_layout_of_valid_device_objects_decodes(
    pairs: list[tuple[dict[str, Any], DeviceInfo]],
) -> None:
    value = json.dumps([obj for obj, _ in pairs])
    decoded = decode_node_devices(value)
    assert decoded == [expected for _, expected in pairs]
    assert all(type(device) is DeviceInfo for device in decoded)


def _only_protocol_errors(decode: Any, value: Any) -> None:
    with contextlib.suppress(ProtocolError):
        decode(value)


DECODERS = [
    decode_node_devices,
    decode_pod_devices,
    decode_container_devices,
    decode_pair_scores,
    parse_node_lock,
    parse_scoring_weights,
    parse_gpu_policy,
    parse_node_policy,
    pop_next_container,
    parse_handshake,
    parse_reasons,
    lambda value: handshake_health(value, datetime(2024, 1, 1), 0),
]
WIRE_ALPHABET = st.sampled_from([*',:;[]{}"=_/-.0123456789 tTfx\\\n', "true", "null"])


@EXAMPLES
@given(st.text() | st.lists(WIRE_ALPHABET, max_size=40).map("".join))
def test_arbitrary_text_raises_only_protocol_error(value: str) -> None:
    for decode in DECODERS:
        _only_protocol_errors(decode, value)


@EXAMPLES
@given(JSON_VALUES | st.lists(st.dictionaries(st.sampled_from(sorted(FIELD_VALUES)) | TEXT,
                                              JSON_VALUES, max_size=6), max_size=3))  # fmt: skip
def test_arbitrary_json_raises_only_protocol_error(document: Any) -> None:
    value = json.dumps(document)
    _only_protocol_errors(decode_node_devices, value)
    _only_protocol_errors(decode_pair_scores, value)
    _only_protocol_errors(decode_pair_scores, json.dumps([{"uuid": "GPU-a", "score": document}]))


@EXAMPLES
@given(st.sampled_from([None, 0, 1.5, b"x", [], {}]))
def test_non_text_values_raise_only_protocol_error(value: Any) -> None:
    for decode in DECODERS:
        _only_protocol_errors(decode, value)


POD_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters=",:;"), max_size=12)
SHARES = st.builds(ContainerDevice, uuid=POD_TEXT, type=POD_TEXT, usedmem=INT32, usedcores=INT32)
PODS = st.lists(st.lists(SHARES, max_size=3), max_size=5)


@EXAMPLES
@given(PODS)
def test_pod_devices_round_trip(pod: list[list[ContainerDevice]]) -> None:
    encoded = encode_pod_devices(pod)
    assert decode_pod_devices(encoded) == [*pod, []]  # the piece after the final ';'
    for container in pod:
        assert decode_container_devices(encode_container_devices(container)) == container


@EXAMPLES
@given(PODS)
def test_popping_serves_containers_in_order_and_keeps_positions(
    pod: list[list[ContainerDevice]],
) -> None:
    value = encode_pod_devices(pod)
    for position, container in enumerate(pod):
        if not container:
            continue
        popped, value = pop_next_container(value)
        assert popped == container
        remaining = decode_pod_devices(value)[: len(pod)]
        assert remaining == [[] if i <= position else c for i, c in enumerate(pod)]
    try:
        pop_next_container(value)
    except ProtocolError as err:
        assert "no pending device allocation found" in str(err)
    else:
        raise AssertionError("a fully served pod still popped a container")


SECONDS = st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 1, 1)).map(
    lambda moment: moment.replace(microsecond=0)
)


@EXAMPLES
@given(SECONDS)
def test_handshake_round_trip(moment: datetime) -> None:
    assert parse_handshake(format_requesting(moment)).time == moment
    assert handshake_health(format_requesting(moment), moment, 0).healthy


OFFSETS = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
K8S_NAMES = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)


@EXAMPLES
@given(SECONDS, OFFSETS | st.just(UTC), K8S_NAMES, K8S_NAMES)
def test_node_lock_round_trip(moment: datetime, zone: timezone, namespace: str, name: str) -> None:
    taken = moment.replace(tzinfo=zone)
    lock = parse_node_lock(format_node_lock(taken, namespace, name))
    assert lock == NodeLock(time=taken, namespace=namespace, name=name)
    assert lock.held_by(namespace, name)


@EXAMPLES
@given(st.dictionaries(st.sampled_from(list(Reason)), st.integers(0, 10**6)), st.integers(0, 999))
def test_reasons_round_trip(counts: dict[Reason, int], total: int) -> None:
    parsed = parse_reasons(format_reasons(counts, total))
    assert parsed == {str(reason): (count, total) for reason, count in counts.items()}


WEIGHT = st.integers(0, 2**63 - 1)


@EXAMPLES
@given(st.permutations(["slot", "core", "memory"]), WEIGHT, WEIGHT, WEIGHT)
def test_weights_round_trip(order: list[str], slot: int, core: int, memory: int) -> None:
    weights = {"slot": slot, "core": core, "memory": memory}
    value = ",".join(f"{key}={weights[key]}" for key in order)
    if slot == core == memory == 0:
        try:
            parse_scoring_weights(value)
        except ProtocolError:
            return
        raise AssertionError("all-zero weights were accepted")
    assert parse_scoring_weights(value) == ScoringWeights(slot=slot, core=core, memory=memory)


@EXAMPLES
@given(st.dictionaries(TEXT.filter(bool), st.dictionaries(TEXT, INT64, max_size=4), max_size=4))
def test_pair_scores_round_trip(scores: dict[str, dict[str, int]]) -> None:
    assert decode_pair_scores(encode_pair_scores(scores)) == scores
