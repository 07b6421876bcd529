"""The NVLink pair-score annotation `hami.io/node-nvidia-score`.

Written by the NVIDIA device plugin (when `ENABLE_TOPOLOGY_SCORE=true`) as Go's
`encoding/json` writes `[]DevicePairScore`: `[{"uuid":"GPU-a","score":{"GPU-b":200}},...]`,
map keys sorted, `omitempty` on both fields. Read into `{uuid: {other uuid: score}}`; a uuid
listed twice keeps its last entry, as a Go map would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from hami_core.protocol._golang import INT64_MAX, INT64_MIN, go_json_string
from hami_core.protocol.errors import ProtocolError

__all__ = ["decode_pair_scores", "encode_pair_scores"]


def decode_pair_scores(value: str) -> dict[str, dict[str, int]]:
    """Read the pair-score annotation.

    Raises `ProtocolError` if it is not JSON, not an array of `{"uuid", "score"}` objects, or a
    score is not a 64-bit whole number (HAMi then rejects the whole node).
    """
    if not isinstance(value, str):
        raise ProtocolError(
            f"pair-score annotation must be a string, got {type(value).__name__}", value=value
        )
    try:
        raw: Any = orjson.loads(value)
    except ValueError as exc:
        raise ProtocolError(
            f"pair-score annotation is not valid JSON: {exc}", value=value[:200]
        ) from None
    if raw is None:
        return {}
    if type(raw) is not list:
        raise ProtocolError("pair-score annotation must be a JSON array", value=raw)
    scores: dict[str, dict[str, int]] = {}
    for position, entry in enumerate(raw):
        if type(entry) is not dict:
            raise ProtocolError(f"pair-score entry #{position} must be a JSON object", value=entry)
        uuid = entry.get("uuid")
        if uuid is None:
            uuid = ""
        if type(uuid) is not str:
            raise ProtocolError(
                f'pair-score entry #{position}: field "uuid" must be a string, got {uuid!r}',
                field="uuid",
                value=uuid,
            )
        pairs = entry.get("score")
        if pairs is None:
            pairs = {}
        if type(pairs) is not dict:
            raise ProtocolError(
                f'pair-score entry #{position} ({uuid}): field "score" must be an object of '
                f"uuid to number, got {pairs!r}",
                field="score",
                value=pairs,
            )
        for other, score in pairs.items():
            if type(score) is not int or not INT64_MIN <= score <= INT64_MAX:
                raise ProtocolError(
                    f"pair-score entry #{position} ({uuid}): score to {other} must be a whole "
                    f"number, got {score!r}",
                    field="score",
                    value=score,
                )
        scores[uuid] = pairs
    return scores


def encode_pair_scores(scores: Mapping[str, Mapping[str, int]]) -> str:
    """Write pair scores as the device plugin does (entries in the given order, keys sorted).

    Raises `ProtocolError` for a score that is not a 64-bit whole number.
    """
    entries: list[str] = []
    for uuid, pairs in scores.items():
        fields: list[str] = []
        if uuid:
            fields.append('"uuid":' + go_json_string(uuid))
        if pairs:
            items: list[str] = []
            for other in sorted(pairs):
                score = pairs[other]
                if type(score) is not int or not INT64_MIN <= score <= INT64_MAX:
                    raise ProtocolError(
                        f"pair score {uuid} -> {other} must be a whole number, got {score!r}",
                        field="score",
                        value=score,
                    )
                items.append(f"{go_json_string(other)}:{score}")
            fields.append('"score":{' + ",".join(items) + "}")
        entries.append("{" + ",".join(fields) + "}")
    return "[" + ",".join(entries) + "]"
