"""The pod decision annotations: per-container device shares, and the device plugin's pop."""

from __future__ import annotations

import pytest

from hami_core.protocol import (
    ContainerDevice,
    ProtocolError,
    decode_container_devices,
    decode_pod_devices,
    encode_container_devices,
    encode_pod_devices,
    pop_next_container,
)

CARD = "GPU-0fc3eda5-e98b-a25b-5b0d-cf5c855d1448"


def share(uuid: str, mem: int, cores: int = 0, vendor: str = "NVIDIA") -> ContainerDevice:
    return ContainerDevice(uuid=uuid, type=vendor, usedmem=mem, usedcores=cores)


def test_reference_example_two_containers_on_one_card() -> None:
    value = f"{CARD},NVIDIA,3000,0:;{CARD},NVIDIA,5000,0:;"
    pod = [[share(CARD, 3000)], [share(CARD, 5000)]]
    assert encode_pod_devices(pod) == value
    # The trailing ';' yields one more, empty, container entry, exactly as HAMi decodes it.
    assert decode_pod_devices(value) == [*pod, []]


def test_container_with_several_devices() -> None:
    devices = [share("a", 1000, 30), share("b", 1000, 30)]
    assert encode_container_devices(devices) == "a,NVIDIA,1000,30:b,NVIDIA,1000,30:"
    assert decode_container_devices("a,NVIDIA,1000,30:b,NVIDIA,1000,30:") == devices


@pytest.mark.parametrize(
    ("containers", "value"),
    [([], ""), ([[]], ";"), ([[], []], ";;"), ([[], [share("a", 1)]], ";a,NVIDIA,1,0:;")],
)
def test_empty_containers_keep_their_place(
    containers: list[list[ContainerDevice]], value: str
) -> None:
    assert encode_pod_devices(containers) == value


@pytest.mark.parametrize(
    ("value", "decoded"),
    [
        ("", [[]]),
        (";", [[], []]),
        ("a,NVIDIA,1,2:;", [[share("a", 1, 2)], []]),
        ("a,NVIDIA,1,2:", [[share("a", 1, 2)]]),
        (";b,MLU,3,4:;", [[], [share("b", 3, 4, "MLU")], []]),
    ],
)
def test_decode_keeps_every_piece_like_hami(
    value: str, decoded: list[list[ContainerDevice]]
) -> None:
    assert decode_pod_devices(value) == decoded


def test_pieces_without_comma_are_skipped_and_extra_fields_ignored() -> None:
    assert decode_container_devices("junk:a,NVIDIA,1,2,extra,more::") == [share("a", 1, 2)]


@pytest.mark.parametrize(
    ("value", "message", "field"),
    [
        (
            "a,NVIDIA,1:",
            "pod annotation format error, missing fields, do not use nodeName in task spec",
            None,
        ),
        ("a,NVIDIA,x,1:", 'invalid memory field: strconv.ParseInt: parsing "x": invalid syntax',
         "usedmem"),
        ("a,NVIDIA,1,x:", 'invalid core field: strconv.ParseInt: parsing "x": invalid syntax',
         "usedcores"),
        ("a,NVIDIA,2147483648,0:",
         'invalid memory field: strconv.ParseInt: parsing "2147483648": value out of range',
         "usedmem"),
        ("a,NVIDIA,-1,0:", "memory field must not be negative: -1", "usedmem"),
        ("a,NVIDIA,1,-5:", "core field must not be negative: -5", "usedcores"),
    ],
)  # fmt: skip
def test_decode_errors(value: str, message: str, field: str | None) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_container_devices(value)
    assert str(caught.value) == message
    assert caught.value.field == field


def test_a_bad_container_fails_the_whole_pod() -> None:
    with pytest.raises(ProtocolError, match="missing fields"):
        decode_pod_devices("a,NVIDIA,1,1:;b,NVIDIA:;")


@pytest.mark.parametrize(
    "device",
    [share("a,b", 1), share("a:b", 1), share("a;b", 1), share("a", 1, vendor="N,V")],
)
def test_encode_refuses_separators(device: ContainerDevice) -> None:
    with pytest.raises(ProtocolError, match="cannot carry"):
        encode_container_devices([device])


def test_encode_refuses_negative_or_oversized_numbers() -> None:
    with pytest.raises(ProtocolError) as caught:
        encode_container_devices([share("a", -1)])
    assert caught.value.field == "usedmem"
    with pytest.raises(ProtocolError) as caught:
        encode_container_devices([share("a", 1, 2**31)])
    assert caught.value.field == "usedcores"


def test_pop_walks_containers_in_order_and_keeps_positions() -> None:
    value = "a,NVIDIA,1000,30:;b,NVIDIA,2000,0:c,NVIDIA,2000,0:;"
    popped, remaining = pop_next_container(value)
    assert popped == [share("a", 1000, 30)]
    assert remaining == ";b,NVIDIA,2000,0:c,NVIDIA,2000,0:;"
    assert decode_pod_devices(remaining)[1] == [share("b", 2000), share("c", 2000)]

    popped, remaining = pop_next_container(remaining)
    assert popped == [share("b", 2000), share("c", 2000)]
    assert remaining == ";;"
    assert "NVIDIA" not in remaining  # the plugin's "all containers served" test

    with pytest.raises(ProtocolError, match="no pending device allocation found"):
        pop_next_container(remaining)


def test_pop_skips_leading_empty_containers_and_reads_hamis_grown_value() -> None:
    # After one pop HAMi's own plugin writes ";b:;;" (one extra ';'); it still works here.
    popped, remaining = pop_next_container(";b,NVIDIA,1,0:;;")
    assert popped == [share("b", 1)]
    assert remaining == ";;;"


def test_pop_of_a_value_without_final_terminator() -> None:
    assert pop_next_container("a,NVIDIA,1,0:") == ([share("a", 1)], ";")


def test_pop_rejects_a_broken_value() -> None:
    with pytest.raises(ProtocolError, match="missing fields"):
        pop_next_container("a,NVIDIA:;")


def test_non_string_values_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError):
        decode_pod_devices(b"a,b,1,1:")  # type: ignore[arg-type]
    with pytest.raises(ProtocolError):
        decode_container_devices(None)  # type: ignore[arg-type]
