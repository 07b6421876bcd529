"""The three patch formats, as pure functions."""

from __future__ import annotations

from typing import Any

import pytest

from hami_core.k8s import Invalid
from hami_core.k8s.patch import (
    copy_json,
    json_patch,
    merge_patch,
    merge_patch_shared,
    metadata_patch,
    strategic_merge_patch,
)


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [  # RFC 7386 appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_follows_rfc_7386(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


def test_patches_do_not_modify_their_inputs() -> None:
    target = {"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "c"}]}}
    patch = {"metadata": {"labels": {"a": None}}}

    merge_patch(target, patch)
    strategic_merge_patch(target, {"spec": {"containers": [{"name": "c", "image": "x"}]}})
    json_patch(target, [{"op": "remove", "path": "/metadata/labels/a"}])

    assert target == {"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "c"}]}}
    assert patch == {"metadata": {"labels": {"a": None}}}


def test_strategic_merge_uses_merge_keys_and_replaces_other_lists() -> None:
    pod = {
        "metadata": {"finalizers": ["a"]},
        "spec": {
            "containers": [{"name": "a", "args": ["1"]}, {"name": "b"}],
            "tolerations": [{"key": "x"}],
        },
        "status": {"conditions": [{"type": "Ready", "status": "False"}]},
    }
    patch = {
        "metadata": {"finalizers": ["b"]},
        "spec": {"containers": [{"name": "a", "args": ["2"]}], "tolerations": [{"key": "y"}]},
        "status": {"conditions": [{"type": "PodScheduled", "status": "True"}]},
    }

    result = strategic_merge_patch(pod, patch)

    assert result["metadata"]["finalizers"] == ["a", "b"]
    assert result["spec"]["containers"] == [{"name": "a", "args": ["2"]}, {"name": "b"}]
    assert result["spec"]["tolerations"] == [{"key": "y"}]
    assert [c["type"] for c in result["status"]["conditions"]] == ["Ready", "PodScheduled"]


def test_strategic_merge_refuses_directives_and_keyless_items() -> None:
    with pytest.raises(Invalid, match=r"directive '\$retainKeys'"):
        strategic_merge_patch({}, {"spec": {"$retainKeys": ["a"]}})
    with pytest.raises(Invalid, match="every item of 'containers' needs its 'name'"):
        strategic_merge_patch({"containers": []}, {"containers": [{"image": "x"}]})


def test_json_patch_errors_name_the_problem() -> None:
    with pytest.raises(Invalid, match="json patch"):
        json_patch({"a": 1}, [{"op": "remove", "path": "/b"}])
    with pytest.raises(Invalid, match="JSON array"):
        json_patch({"a": 1}, {"op": "remove"})
    with pytest.raises(Invalid, match="json patch"):
        json_patch({"a": 1}, [{"path": "/a"}])


def test_metadata_patch_builds_the_merge_patch_body() -> None:
    body = metadata_patch(annotations={"a": "1", "b": None}, labels={}, resource_version="7")

    assert body == {
        "metadata": {"annotations": {"a": "1", "b": None}, "labels": {}, "resourceVersion": "7"}
    }
    assert metadata_patch() == {"metadata": {}}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"annotations": {"a": 1}}, r"metadata.annotations\['a'\]: value must be a string"),
        ({"labels": {"": "x"}}, r"metadata.labels: key '' must be a non-empty string"),
        ({"labels": ["a"]}, "metadata.labels: expected a mapping"),
        ({"resource_version": ""}, "metadata.resourceVersion"),
    ],
)
def test_metadata_patch_refuses_bad_values(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(Invalid, match=message):
        metadata_patch(**kwargs)


def test_copy_json_copies_deeply_and_keeps_what_json_cannot_hold() -> None:
    value: dict[Any, Any] = {"a": [{"b": 1}], "big": 1 << 70, 3: "int key"}
    copied = copy_json(value)
    assert copied == value
    assert copied["a"] is not value["a"]
    assert copied["a"][0] is not value["a"][0]
    plain = {"metadata": {"annotations": {"k": "v"}}, "items": [1, 2.5, None, True]}
    again = copy_json(plain)
    assert again == plain and again["metadata"] is not plain["metadata"]
    assert copy_json("text") == "text"


def test_a_shared_merge_patch_copies_only_what_it_changes() -> None:
    target: dict[str, Any] = {
        "metadata": {"annotations": {"a": "1"}, "labels": {"x": "y"}},
        "spec": {"n": [1]},
    }
    patch: dict[str, Any] = {
        "metadata": {"annotations": {"b": "2", "a": None}},
        "status": {"phase": "Running"},
    }
    result = merge_patch_shared(target, patch)
    assert result == merge_patch(target, patch)
    assert result["spec"] is target["spec"]  # untouched parts are shared
    assert result["metadata"]["labels"] is target["metadata"]["labels"]
    assert target["metadata"]["annotations"] == {"a": "1"}  # the target is left alone
    result["status"]["phase"] = "Failed"
    assert patch["status"]["phase"] == "Running"  # the patch's values are copied
