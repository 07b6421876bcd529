"""The node register annotation, JSON and legacy text, read and written as HAMi does."""

from __future__ import annotations

import pytest

from hami_core.protocol import DeviceInfo, ProtocolError, decode_node_devices, encode_node_devices

V100 = "NVIDIA-Tesla V100-PCIE-32GB"

# The reference's two-GPU example, exactly as HAMi's Go encoder writes it.
HAMI_JSON = (
    '[{"id":"GPU-aaa","count":10,"devmem":32768,"devcore":100,"type":"NVIDIA-Tesla V100-PCIE-32GB",'
    '"mode":"hami-core","health":true},'
    '{"id":"GPU-bbb","index":1,"count":10,"devmem":32768,"devcore":100,'
    '"type":"NVIDIA-Tesla V100-PCIE-32GB","numa":1,"mode":"hami-core","health":true}]'
)
TWO_V100 = [
    DeviceInfo(id="GPU-aaa", count=10, devmem=32768, devcore=100, type=V100, mode="hami-core",
               health=True),
    DeviceInfo(id="GPU-bbb", index=1, count=10, devmem=32768, devcore=100, type=V100, numa=1,
               mode="hami-core", health=True),
]  # fmt: skip


# --- JSON ------------------------------------------------------------------------------------


def test_reads_hamis_json_example() -> None:
    assert decode_node_devices(HAMI_JSON) == TWO_V100


def test_writes_json_byte_for_byte_as_hami() -> None:
    assert encode_node_devices(TWO_V100) == HAMI_JSON


def test_zero_values_are_omitted_and_read_back_as_zero() -> None:
    idle = DeviceInfo(id="GPU-c", count=0, devmem=0, devcore=0, type="")
    assert encode_node_devices([idle]) == '[{"id":"GPU-c"}]'
    assert decode_node_devices('[{"id":"GPU-c"}]') == [idle]
    assert decode_node_devices("[{}]") == [DeviceInfo(id="", count=0, devmem=0, devcore=0, type="")]


def test_reads_hamis_own_test_fixture_with_explicit_zeros_and_other_key_order() -> None:
    # pkg/device/nvidia/device_test.go writes numa and index explicitly and health before index.
    value = (
        '[{"id":"GPU-0","count":5,"devmem":8192,"devcore":100,"type":"NVIDIA-Tesla P4",'
        '"numa":0,"health":true,"index":0}]'
    )
    assert decode_node_devices(value) == [
        DeviceInfo(id="GPU-0", count=5, devmem=8192, devcore=100, type="NVIDIA-Tesla P4",
                   health=True)
    ]  # fmt: skip


def test_unknown_keys_are_ignored() -> None:
    value = '[{"id":"GPU-a","count":1,"devicevendor":"NVIDIA","devicepairscore":{},"future":[1]}]'
    assert decode_node_devices(value) == [
        DeviceInfo(id="GPU-a", count=1, devmem=0, devcore=0, type="")
    ]


def test_null_fields_and_null_value_read_as_absent_like_go() -> None:
    assert decode_node_devices('[{"id":"GPU-a","count":null,"health":null}]') == [
        DeviceInfo(id="GPU-a", count=0, devmem=0, devcore=0, type="")
    ]
    assert decode_node_devices("null") == []
    assert decode_node_devices("[]") == []


def test_surrounding_whitespace_is_allowed() -> None:
    assert decode_node_devices("\n  " + HAMI_JSON + " \n") == TWO_V100


def test_ascend_custominfo_is_read_and_written_after_health() -> None:
    value = (
        '[{"id":"VDIE-1","count":4,"devmem":65536,"devcore":20,"type":"Ascend910B3",'
        '"health":true,"custominfo":{"NetworkID":1}}]'
    )
    [npu] = decode_node_devices(value)
    assert npu.custominfo == {"NetworkID": 1}
    assert encode_node_devices([npu]) == value


def test_custominfo_is_written_with_sorted_keys_like_a_go_map() -> None:
    npu = DeviceInfo(id="n", count=1, devmem=1, devcore=1, type="t",
                     custominfo={"b": [1.5, None, True], "a": {"z": "x<y"}})  # fmt: skip
    assert encode_node_devices([npu]) == (
        '[{"id":"n","count":1,"devmem":1,"devcore":1,"type":"t",'
        '"custominfo":{"a":{"z":"x\\u003cy"},"b":[1.5,null,true]}}]'
    )


def test_mig_profiles_are_read_and_written_in_go_field_order() -> None:
    profile = (
        '{"name":"1g.5gb","memoryMB":4864,"core":15,"sliceCount":1,'
        '"placements":[{"start":6,"size":1}]}'
    )
    value = (
        '[{"id":"GPU-m","count":7,"devmem":40960,"devcore":100,"type":"NVIDIA A100-SXM4-40GB",'
        f'"mode":"mig","migProfiles":[{profile}],"health":true}}]'
    )
    [gpu] = decode_node_devices(value)
    assert gpu.mig_profiles[0]["name"] == "1g.5gb"
    assert gpu.mig_profiles[0]["placements"] == [{"start": 6, "size": 1}]
    assert encode_node_devices([gpu]) == value
    shuffled_profile = {
        "placements": [{"size": 1, "start": 6}],
        "core": 15,
        "sliceCount": 1,
        "memoryMB": 4864,
        "name": "1g.5gb",
    }
    shuffled = DeviceInfo(
        id="GPU-m",
        count=7,
        devmem=40960,
        devcore=100,
        type="NVIDIA A100-SXM4-40GB",
        mode="mig",
        health=True,
        mig_profiles=(shuffled_profile,),
    )
    assert encode_node_devices([shuffled]) == value


def test_strings_are_escaped_as_go_does() -> None:
    odd = DeviceInfo(id='a"b\\c', count=1, devmem=1, devcore=1, type="<A&B>\u2028\t\x01\b\f",
                     mode="é")  # fmt: skip
    encoded = encode_node_devices([odd])
    assert encoded == (
        '[{"id":"a\\"b\\\\c","count":1,"devmem":1,"devcore":1,'
        '"type":"\\u003cA\\u0026B\\u003e\\u2028\\t\\u0001\\b\\f","mode":"é"}]'
    )
    assert decode_node_devices(encoded) == [odd]


def test_empty_list_encodes_as_empty_array() -> None:
    assert encode_node_devices([]) == "[]"


MIG = '[{"migProfiles":[%s]}]'


@pytest.mark.parametrize(
    ("value", "field", "words"),
    [
        ('[{"count":"x"}]', "count", 'device #0: field "count" must be a whole number, got string'),
        ('[{"id":"a"},{"devmem":1.5}]', "devmem", 'device #1: field "devmem" must be a whole'),
        ('[{"devcore":true}]', "devcore", "must be a whole number, got boolean true"),
        ('[{"count":-1}]', "count", 'field "count" must be between 0 and 2147483647, got -1'),
        ('[{"devmem":-5}]', "devmem", "must be between 0 and 2147483647, got -5"),
        ('[{"devcore":2147483648}]', "devcore", "got 2147483648"),
        ('[{"index":-1}]', "index", 'field "index" must be between 0 and 18446744073709551615'),
        ('[{"numa":9223372036854775808}]', "numa", 'field "numa" must be between'),
        ('[{"count":123456789012345678901234567890}]', "count", "must be a whole number"),
        ('[{"id":5}]', "id", 'field "id" must be a string, got number 5'),
        ('[{"type":["a"]}]', "type", 'field "type" must be a string, got array'),
        ('[{"mode":{}}]', "mode", 'field "mode" must be a string'),
        ('[{"health":"true"}]', "health", 'field "health" must be true or false, got string'),
        ('[{"custominfo":[1]}]', "custominfo", 'field "custominfo" must be a JSON object'),
        ('[{"migProfiles":{}}]', "migProfiles", "must be a list of MIG profiles"),
        (MIG % "1", "migProfiles", "migProfiles[0]: expected a JSON object"),
        (MIG % '{"name":1}', "name", 'field "name" must be a string'),
        (MIG % '{"memoryMB":"x"}', "memoryMB", 'field "memoryMB" must be a whole number'),
        (MIG % '{"placements":{}}', "placements", 'field "placements" must be a list'),
        (MIG % '{"placements":[1]}', "placements", "each placement must be an object"),
        (MIG % '{"placements":[{"start":0.5}]}', "start", 'field "start" must be a whole'),
    ],
)
def test_json_field_errors_name_the_device_and_field(value: str, field: str, words: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_node_devices(value)
    assert caught.value.field == field
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("[", "node device annotation is not valid JSON"),
        ("[NaN]", "not valid JSON"),
        ('[{"count":1e400}]', "not valid JSON"),
        ("[" * 5000, "not valid JSON"),
        ('{"id":"a"}', "must be a JSON array of devices, got object"),
        ("[1]", "device #0: expected a JSON object, got number 1"),
        ("[null]", "device #0: expected a JSON object, got null"),
        ('[{"id":"a"}] x', "not valid JSON"),
    ],
)
def test_json_structure_errors(value: str, words: str) -> None:
    with pytest.raises(ProtocolError, match=words.replace("[", r"\[")):
        decode_node_devices(value)


def test_error_can_name_the_annotation_it_came_from() -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_node_devices('[{"count":"x"}]')
    named = caught.value.with_annotation("hami.io/node-nvidia-register")
    assert str(named).startswith("annotation hami.io/node-nvidia-register: device #0")
    assert (named.field, named.value) == ("count", "x")


def test_writing_rejects_values_outside_go_types() -> None:
    with pytest.raises(ProtocolError, match='"devmem" must be a whole number between 0'):
        encode_node_devices([DeviceInfo(id="g", count=1, devmem=-1, devcore=1, type="t")])
    not_a_number = DeviceInfo(
        id="g", count=1, devmem=1, devcore=1, type="t", custominfo={"x": float("nan")}
    )
    with pytest.raises(ProtocolError, match="JSON has no NaN"):
        encode_node_devices([not_a_number])


# --- legacy text -----------------------------------------------------------------------------

LEGACY_DOC_EXAMPLE = (
    "GPU-00552014-5c87-89ac-b1a6-7b53aa24b0ec,10,32768,100,NVIDIA-Tesla V100-PCIE-32GB,0,true:"
    "GPU-0fc3eda5-e98b-a25b-5b0d-cf5c855d1448,10,32768,100,NVIDIA-Tesla V100-PCIE-32GB,0,true:"
)


def test_reads_seven_field_legacy_devices_with_default_index_and_mode() -> None:
    first, second = decode_node_devices(LEGACY_DOC_EXAMPLE)
    assert first == DeviceInfo(id="GPU-00552014-5c87-89ac-b1a6-7b53aa24b0ec", count=10,
                               devmem=32768, devcore=100, type=V100, numa=0, health=True,
                               index=0, mode="hami-core")  # fmt: skip
    assert second.id == "GPU-0fc3eda5-e98b-a25b-5b0d-cf5c855d1448"


def test_reads_nine_field_legacy_devices_like_hygons_plugin_writes() -> None:
    value = "DCU-TPXS320016070601,4,65520,100,DCU-K100_AI,0,true,3,hami:"
    assert decode_node_devices(value) == [
        DeviceInfo(id="DCU-TPXS320016070601", count=4, devmem=65520, devcore=100,
                   type="DCU-K100_AI", health=True, index=3, mode="hami")
    ]  # fmt: skip


def test_reads_iluvatars_test_value() -> None:
    [gpu] = decode_node_devices("GPU-bad51c5a-1111,10,8192,100,MR-V100,0,true:")
    assert (gpu.type, gpu.devmem, gpu.mode) == ("MR-V100", 8192, "hami-core")


def test_writes_nine_field_legacy_text() -> None:
    assert encode_node_devices(TWO_V100, legacy=True) == (
        "GPU-aaa,10,32768,100,NVIDIA-Tesla V100-PCIE-32GB,0,true,0,hami-core:"
        "GPU-bbb,10,32768,100,NVIDIA-Tesla V100-PCIE-32GB,1,true,1,hami-core:"
    )
    assert decode_node_devices(encode_node_devices(TWO_V100, legacy=True)) == TWO_V100


@pytest.mark.parametrize("value", [":", "::", ":::"])
def test_legacy_with_only_separators_is_an_empty_list(value: str) -> None:
    assert decode_node_devices(value) == []


@pytest.mark.parametrize("health", ["1", "t", "T", "TRUE", "true", "True"])
def test_legacy_health_accepts_go_true_spellings(health: str) -> None:
    assert decode_node_devices(f"g,1,1,1,t,0,{health}:")[0].health is True


@pytest.mark.parametrize("health", ["0", "f", "F", "FALSE", "false", "False"])
def test_legacy_health_accepts_go_false_spellings(health: str) -> None:
    assert decode_node_devices(f"g,1,1,1,t,0,{health}:")[0].health is False


def test_legacy_numa_may_be_negative() -> None:
    assert decode_node_devices("g,1,1,1,t,-1,true:")[0].numa == -1


PARSE_INT = "strconv.ParseInt: parsing"
ATOI = "strconv.Atoi: parsing"
SYNTAX = "invalid syntax"
RANGE = "value out of range"
BIG = "99999999999999999999"


@pytest.mark.parametrize(
    ("value", "message", "field"),
    [
        ("", "node annotation missing device separator", None),
        ("GPU-a,10,1,1,t,0,true", "node annotation missing device separator", None),
        ("GPU-a:", 'malformed node annotation segment: "GPU-a"', None),
        ('a"b\x01:', 'malformed node annotation segment: "a\\"b\\x01"', None),
        ("a,b,c:", "unexpected field count 3 in node annotation", None),
        ("a,1,1,1,t,0,true,0:", "unexpected field count 8 in node annotation", None),
        ("a,1,1,1,t,0,true,0,m,x:", "unexpected field count 10 in node annotation", None),
        ("a,x,1,1,t,0,true:", f'invalid count field: {PARSE_INT} "x": {SYNTAX}', "count"),
        ("a, 1,1,1,t,0,true:", f'invalid count field: {PARSE_INT} " 1": {SYNTAX}', "count"),
        ("a,2147483648,1,1,t,0,true:", f'invalid count field: {PARSE_INT} "2147483648": {RANGE}',
         "count"),
        ("a,1,,1,t,0,true:", f'invalid memory field: {PARSE_INT} "": {SYNTAX}', "devmem"),
        ("a,1,1,1.5,t,0,true:", f'invalid core field: {PARSE_INT} "1.5": {SYNTAX}', "devcore"),
        ("a,1,1,1,t,0,yes:", f'invalid health field: strconv.ParseBool: parsing "yes": {SYNTAX}',
         "health"),
        ("a,1,1,1,t,x,true:", f'invalid numa field: {ATOI} "x": {SYNTAX}', "numa"),
        ("a,1,1,1,t,0,true,x,m:", f'invalid index field: {ATOI} "x": {SYNTAX}', "index"),
        (f"a,1,1,1,t,0,true,{BIG},m:", f'invalid index field: {ATOI} "{BIG}": {RANGE}', "index"),
        ("a,1,1,1,t,0,true,-1,m:", "index field must not be negative: -1", "index"),
        ("a,-1,1,1,t,0,true:", "count field must not be negative: -1", "count"),
        ("a,1,-2,1,t,0,true:", "memory field must not be negative: -2", "devmem"),
        ("a,1,1,-3,t,0,true:", "core field must not be negative: -3", "devcore"),
    ],
)  # fmt: skip
def test_legacy_errors_use_hamis_words(value: str, message: str, field: str | None) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_node_devices(value)
    assert str(caught.value) == message
    assert caught.value.field == field


def test_legacy_parse_order_is_count_mem_core_health_numa_index() -> None:
    with pytest.raises(ProtocolError, match="invalid core field"):
        decode_node_devices("a,1,1,x,t,x,x,x,m:")
    with pytest.raises(ProtocolError, match="invalid health field"):
        decode_node_devices("a,1,1,1,t,x,x,x,m:")
    with pytest.raises(ProtocolError, match="invalid numa field"):
        decode_node_devices("a,1,1,1,t,x,true,x,m:")


def test_legacy_error_anywhere_rejects_the_whole_value() -> None:
    with pytest.raises(ProtocolError, match="invalid count field"):
        decode_node_devices("good,1,1,1,t,0,true:bad,x,1,1,t,0,true:")


@pytest.mark.parametrize("field", ["id", "type", "mode"])
def test_legacy_writing_refuses_separators_inside_fields(field: str) -> None:
    values = {"id": "g", "type": "t", "mode": "m", field: "a,b"}
    device = DeviceInfo(id=values["id"], count=1, devmem=1, devcore=1, type=values["type"],
                        mode=values["mode"])  # fmt: skip
    with pytest.raises(ProtocolError) as caught:
        encode_node_devices([device], legacy=True)
    assert caught.value.field == field


def test_legacy_writing_refuses_a_value_that_would_read_as_json() -> None:
    device = DeviceInfo(id="[x]", count=1, devmem=1, devcore=1, type="t")
    with pytest.raises(ProtocolError, match="would read as JSON"):
        encode_node_devices([device], legacy=True)


def test_legacy_writing_refuses_json_only_data() -> None:
    device = DeviceInfo(id="g", count=1, devmem=1, devcore=1, type="t", custominfo={"a": 1})
    with pytest.raises(ProtocolError, match="only be written as JSON"):
        encode_node_devices([device], legacy=True)


def test_decoding_a_non_string_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="must be a string"):
        decode_node_devices(None)  # type: ignore[arg-type]
