"""`hami.io/node-nvidia-score`: NVLink pair scores between GPUs."""

from __future__ import annotations

import pytest

from hami_core.protocol import ProtocolError, decode_pair_scores, encode_pair_scores

REFERENCE = '[{"uuid":"GPU-a","score":{"GPU-b":200,"GPU-c":60}}]'


def test_reads_and_writes_the_reference_example() -> None:
    assert decode_pair_scores(REFERENCE) == {"GPU-a": {"GPU-b": 200, "GPU-c": 60}}
    assert encode_pair_scores({"GPU-a": {"GPU-c": 60, "GPU-b": 200}}) == REFERENCE


def test_writes_entries_in_order_and_scores_sorted_like_go_maps() -> None:
    scores = {"GPU-b": {"GPU-c": 100, "GPU-a": 200}, "GPU-a": {"GPU-c": 60, "GPU-b": 200}}
    assert encode_pair_scores(scores) == (
        '[{"uuid":"GPU-b","score":{"GPU-a":200,"GPU-c":100}},'
        '{"uuid":"GPU-a","score":{"GPU-b":200,"GPU-c":60}}]'
    )
    assert decode_pair_scores(encode_pair_scores(scores)) == scores


def test_empty_scores_are_omitted_like_go_omitempty() -> None:
    assert encode_pair_scores({"GPU-a": {}}) == '[{"uuid":"GPU-a"}]'
    assert decode_pair_scores('[{"uuid":"GPU-a"}]') == {"GPU-a": {}}
    assert decode_pair_scores('[{"uuid":"GPU-a","score":null}]') == {"GPU-a": {}}
    assert encode_pair_scores({}) == "[]"
    assert decode_pair_scores("null") == {}


def test_a_uuid_listed_twice_keeps_the_last_entry() -> None:
    value = '[{"uuid":"GPU-a","score":{"GPU-b":1}},{"uuid":"GPU-a","score":{"GPU-b":2}}]'
    assert decode_pair_scores(value) == {"GPU-a": {"GPU-b": 2}}


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("{", "not valid JSON"),
        ('{"uuid":"a"}', "must be a JSON array"),
        ("[1]", "entry #0 must be a JSON object"),
        ('[{"uuid":1}]', 'field "uuid" must be a string'),
        ('[{"uuid":"a","score":[1]}]', 'field "score" must be an object'),
        ('[{"uuid":"a","score":{"b":1.5}}]', "score to b must be a whole number"),
        ('[{"uuid":"a","score":{"b":"1"}}]', "score to b must be a whole number"),
        ('[{"uuid":"a","score":{"b":true}}]', "score to b must be a whole number"),
    ],
)
def test_errors(value: str, words: str) -> None:
    with pytest.raises(ProtocolError, match=words):
        decode_pair_scores(value)


def test_writing_rejects_non_integer_scores() -> None:
    with pytest.raises(ProtocolError, match="must be a whole number"):
        encode_pair_scores({"GPU-a": {"GPU-b": 1.5}})  # type: ignore[dict-item]
