"""The three patch formats the apiserver accepts, as pure functions over JSON-shaped data.

`merge_patch` is RFC 7386 (a `None` value removes the key). `strategic_merge_patch` is merge patch
plus the apiserver's merge keys for the lists hami meets (containers by `name`, conditions by
`type`, ...); any other list is replaced, as the apiserver does for atomic lists, and patch
directives (`$patch`, `$retainKeys`, ...) are refused rather than guessed. `json_patch` is
RFC 6902. None of them modifies its inputs; `merge_patch_shared` is merge patch for stores of
objects that are never modified in place (its result shares what the patch leaves alone).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import jsonpatch
import orjson

from hami_core.k8s.errors import Invalid

__all__ = [
    "MERGE_KEYS",
    "copy_json",
    "copy_obj",
    "json_patch",
    "merge_patch",
    "merge_patch_shared",
    "metadata_patch",
    "strategic_merge_patch",
]

MERGE_KEYS = MappingProxyType(
    {
        "containers": "name",
        "initContainers": "name",
        "ephemeralContainers": "name",
        "volumes": "name",
        "env": "name",
        "volumeMounts": "mountPath",
        "volumeDevices": "devicePath",
        "imagePullSecrets": "name",
        "conditions": "type",
        "ownerReferences": "uid",
        "addresses": "type",
        "taints": "key",
        "resourceClaims": "name",
    }
)
"""List fields that strategic merge patch merges element-wise, with the key that matches items."""

_SET_LISTS = frozenset({"finalizers"})


def copy_json(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars), as a JSON round trip would give.

    Serialised and parsed with orjson (about 3x faster than walking it in Python); data JSON
    cannot hold (non-string keys, integers over 64 bits, other types) is walked instead.
    """
    if not isinstance(value, (dict, list)):
        return value
    try:
        return orjson.loads(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError):
        return _walk_copy(value)


def _walk_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _walk_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk_copy(v) for v in value]
    return value


def copy_obj(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of one JSON object (a Kubernetes object dict)."""
    copied: dict[str, Any] = copy_json(dict(obj))
    return copied


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch to `target` and return the result."""
    return merge_patch_shared(copy_json(target), patch)


def merge_patch_shared(target: Any, patch: Any) -> Any:
    """`merge_patch`, copying only the objects along the patched paths: the result shares
    every part of `target` the patch leaves alone (for a store whose objects are never
    modified in place once stored; the patch's own values are copied)."""
    if not isinstance(patch, dict):
        return copy_json(patch)
    result: dict[str, Any] = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch_shared(result.get(key), value)
    return result


def _strategic_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    if field in _SET_LISTS and isinstance(current, list):
        return [copy_json(v) for v in current] + [copy_json(v) for v in patch if v not in current]
    key = MERGE_KEYS.get(field)
    if key is None or not isinstance(current, list):
        return [_strategic(None, v, field) for v in patch]
    merged: list[Any] = copy_json(current)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise Invalid(f"strategic merge patch: every item of {field!r} needs its {key!r}")
        for i, existing in enumerate(merged):
            if isinstance(existing, dict) and existing.get(key) == item[key]:
                merged[i] = _strategic(existing, item, field)
                break
        else:
            merged.append(_strategic(None, item, field))
    return merged


def _strategic(target: Any, patch: Any, field: str) -> Any:
    if isinstance(patch, list):
        return _strategic_list(field, target, patch)
    if not isinstance(patch, dict):
        return copy_json(patch)
    result: dict[str, Any] = copy_json(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            raise Invalid(f"strategic merge patch: directive {key!r} is not supported", status=415)
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _strategic(result.get(key), value, key)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Apply a strategic merge patch (maps merge, keyed lists merge by key, other lists replace)."""
    if not isinstance(patch, dict):
        raise Invalid("strategic merge patch: the body must be a JSON object")
    return _strategic(target, patch, "")


def json_patch(target: Any, operations: Any) -> Any:
    """Apply an RFC 6902 JSON patch; `Invalid` names the operation that failed."""
    if not isinstance(operations, list):
        raise Invalid("json patch: the body must be a JSON array of operations")
    try:
        return jsonpatch.JsonPatch(operations).apply(copy_json(target))
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise Invalid(f"json patch: {exc}") from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise Invalid(f"json patch: malformed operation: {exc}") from exc


def _checked(field: str, values: Mapping[str, str | None] | None) -> dict[str, str | None] | None:
    if values is None:
        return None
    if not isinstance(values, Mapping):
        raise Invalid(f"metadata.{field}: expected a mapping, got {type(values).__name__}")
    out: dict[str, str | None] = {}
    for key, value in values.items():
        if not isinstance(key, str) or not key:
            raise Invalid(f"metadata.{field}: key {key!r} must be a non-empty string")
        if value is not None and not isinstance(value, str):
            raise Invalid(
                f"metadata.{field}[{key!r}]: value must be a string or None, "
                f"got {type(value).__name__}"
            )
        out[key] = value
    return out


def metadata_patch(
    *,
    annotations: Mapping[str, str | None] | None = None,
    labels: Mapping[str, str | None] | None = None,
    resource_version: str | None = None,
) -> dict[str, Any]:
    """The merge patch body `{"metadata": {...}}` that sets/removes these keys.

    A `None` value removes the key; `resource_version` becomes the patch's precondition.
    `Invalid` names a key whose value is not a string.
    """
    meta: dict[str, Any] = {}
    if (checked := _checked("annotations", annotations)) is not None:
        meta["annotations"] = checked
    if (checked := _checked("labels", labels)) is not None:
        meta["labels"] = checked
    if resource_version is not None:
        if not isinstance(resource_version, str) or not resource_version:
            raise Invalid(f"metadata.resourceVersion: {resource_version!r} is not a version")
        meta["resourceVersion"] = resource_version
    return {"metadata": meta}
