"""Workload files: pods in order, workloads expanded into their replica pods."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hami_core.simulate import InputError, load_workloads

TEMPLATE = {
    "metadata": {"labels": {"app": "x"}, "annotations": {"nvidia.com/use-gputype": "A100"}},
    "spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": 1}}}]},
}


def write(tmp_path: Path, *docs: Any, name: str = "workload.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


def workload(kind: str, name: str, spec: dict[str, Any], namespace: str = "ml") -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1" if kind == "Job" else "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {**spec, "template": TEMPLATE},
    }


def test_workloads_expand_into_named_replicas_in_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "first"},
            "spec": {"containers": [{"name": "c"}]},
        },
        workload("Deployment", "web", {"replicas": 2}),
        workload("StatefulSet", "db", {"replicas": 3}),
        workload("ReplicaSet", "rs", {}),
        workload("Job", "batch", {"parallelism": 4, "completions": 2}),
    )
    pods = load_workloads([path])
    assert [(p.pod["metadata"]["namespace"], p.pod["metadata"]["name"]) for p in pods] == [
        ("default", "first"),
        ("ml", "web-0"),
        ("ml", "web-1"),
        ("ml", "db-0"),
        ("ml", "db-1"),
        ("ml", "db-2"),
        ("ml", "rs-0"),
        ("ml", "batch-0"),
        ("ml", "batch-1"),
    ]
    replica = pods[1].pod
    assert (replica["apiVersion"], replica["kind"]) == ("v1", "Pod")
    assert replica["metadata"]["labels"] == {"app": "x"}
    assert replica["metadata"]["annotations"] == {"nvidia.com/use-gputype": "A100"}
    assert replica["spec"] == TEMPLATE["spec"]
    assert replica["spec"] is not pods[2].pod["spec"]
    assert pods[1].source == f'{path}: Deployment "ml/web" (document 2)'


def test_files_are_read_in_the_order_given(tmp_path: Path) -> None:
    a = write(tmp_path, workload("Deployment", "a", {"replicas": 1}), name="a.yaml")
    b = write(tmp_path, workload("Deployment", "b", {"replicas": 1}), name="b.yaml")
    assert [p.pod["metadata"]["name"] for p in load_workloads([b, a])] == ["b-0", "a-0"]


def test_a_list_of_pods_is_flattened(tmp_path: Path) -> None:
    path = tmp_path / "pods.json"
    pod = {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}
    path.write_text(
        '{"apiVersion": "v1", "kind": "List", "items": ['
        + ",".join(json.dumps({**pod, "metadata": {"name": f"p{i}"}}) for i in range(3))
        + "]}"
    )
    assert [p.pod["metadata"]["name"] for p in load_workloads([str(path)])] == ["p0", "p1", "p2"]


@pytest.mark.parametrize(
    ("doc", "obj", "field", "problem"),
    [
        (
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}},
            'Service "s" (document 1)',
            "kind",
            "'Service' is not supported",
        ),
        (
            {"apiVersion": "v1", "metadata": {"name": "s"}},
            'object "s" (document 1)',
            "kind",
            "required",
        ),
        ({"kind": "Pod", "metadata": {}}, "Pod (document 1)", "metadata.name", "required"),
        (
            {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": "c"}},
            'Pod "p" (document 1)',
            "spec.containers",
            "must be a list of containers",
        ),
        (
            {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"image": "x"}]}},
            'Pod "p" (document 1)',
            "spec.containers[0].name",
            "required",
        ),
        (
            {
                "kind": "Pod",
                "metadata": {"name": "p", "annotations": {"a": 1}},
                "spec": {"containers": [{"name": "c"}]},
            },
            'Pod "p" (document 1)',
            "metadata.annotations['a']",
            "must be a string",
        ),
        (
            {
                "kind": "Deployment",
                "metadata": {"name": "d"},
                "spec": {"replicas": -1, "template": TEMPLATE},
            },
            'Deployment "d" (document 1)',
            "spec.replicas",
            "whole number >= 0",
        ),
        (
            {"kind": "Job", "metadata": {"name": "j"}, "spec": {}},
            'Job "j" (document 1)',
            "spec.template",
            "required",
        ),
    ],
)
def test_bad_manifests_name_file_object_and_field(
    tmp_path: Path, doc: dict[str, Any], obj: str, field: str, problem: str
) -> None:
    path = write(tmp_path, doc)
    with pytest.raises(InputError) as caught:
        load_workloads([path])
    assert (caught.value.file, caught.value.obj, caught.value.field) == (path, obj, field)
    assert problem in caught.value.problem


def test_two_pods_with_one_name_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        workload("Deployment", "web", {"replicas": 2}),
        {
            "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "ml"},
            "spec": {"containers": [{"name": "c"}]},
        },
    )
    with pytest.raises(
        InputError,
        match=r'Pod "ml/web-1" \(document 2\): metadata.name: pod '
        r"ml/web-1 is also made by .*Deployment \"ml/web\"",
    ):
        load_workloads([path])


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("kind: Pod\nmetadata: {name: [unclosed\n", "not valid YAML"),
        ("\x00\x01binary", "not valid YAML"),
    ],
)
def test_unreadable_files_are_named(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(InputError, match=rf"^{path}: {problem}"):
        load_workloads([str(path)])


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.yaml: no such file$"):
        load_workloads([str(tmp_path / "nope.yaml")])
