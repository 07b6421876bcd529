"""The pods to schedule, in order: Pod manifests, and workloads expanded to their replica pods.

A Deployment, ReplicaSet or StatefulSet becomes `spec.replicas` pods (default 1) and a Job
`spec.parallelism` pods (default 1, at most `spec.completions`), each named `<name>-<i>` from
`spec.template` (its labels and annotations included). Pods keep the order of the files and of
the objects inside them; a workload's replicas come one after another.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hami_core.k8s.cluster import Obj
from hami_core.simulate.documents import Document, describe, read_documents
from hami_core.simulate.errors import InputError

__all__ = ["REPLICATED_KINDS", "WorkloadPod", "expand", "load_workloads"]

REPLICATED_KINDS = ("Deployment", "ReplicaSet", "StatefulSet", "Job")
"""The kinds expanded into replica pods (besides `Pod` itself)."""


@dataclass(frozen=True, slots=True)
class WorkloadPod:
    """One pod to schedule and where it came from (`file: Deployment "ns/name" (document 2)`)."""

    pod: Obj
    source: str


def _count(doc: Document, spec: Mapping[str, Any], key: str, default: int) -> int:
    value = spec.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(
            doc.file,
            f"must be a whole number >= 0, got {value!r}",
            obj=describe(doc),
            field=f"spec.{key}",
        )
    return value


def _check_pod_spec(doc: Document, spec: Any, field: str) -> None:
    if not isinstance(spec, Mapping):
        raise InputError(doc.file, "must be a mapping", obj=describe(doc), field=field)
    for part in ("initContainers", "containers"):
        items = spec.get(part)
        if items is None and part == "initContainers":
            continue
        if not isinstance(items, list):
            raise InputError(
                doc.file, "must be a list of containers", obj=describe(doc), field=f"{field}.{part}"
            )
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise InputError(
                    doc.file, "must be a mapping", obj=describe(doc), field=f"{field}.{part}[{i}]"
                )
            name = item.get("name")
            if not isinstance(name, str) or not name:
                raise InputError(
                    doc.file, "required", obj=describe(doc), field=f"{field}.{part}[{i}].name"
                )


def _string_map(doc: Document, meta: Mapping[str, Any], key: str, field: str) -> dict[str, str]:
    values = meta.get(key)
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise InputError(doc.file, "must be a mapping", obj=describe(doc), field=f"{field}.{key}")
    for k, v in values.items():
        if not isinstance(v, str):
            raise InputError(
                doc.file,
                f"must be a string, got {type(v).__name__} (quote it)",
                obj=describe(doc),
                field=f"{field}.{key}[{k!r}]",
            )
    return dict(values)


def _metadata(doc: Document) -> tuple[str, str, Mapping[str, Any]]:
    meta = doc.obj.get("metadata")
    if not isinstance(meta, Mapping):
        raise InputError(doc.file, "required", obj=describe(doc), field="metadata")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise InputError(doc.file, "required", obj=describe(doc), field="metadata.name")
    namespace = meta.get("namespace") or "default"
    if not isinstance(namespace, str):
        raise InputError(
            doc.file, "must be a string", obj=describe(doc), field="metadata.namespace"
        )
    return name, namespace, meta


def _pod(doc: Document) -> Obj:
    _, namespace, meta = _metadata(doc)
    _string_map(doc, meta, "labels", "metadata")
    _string_map(doc, meta, "annotations", "metadata")
    _check_pod_spec(doc, doc.obj.get("spec"), "spec")
    pod = copy.deepcopy(dict(doc.obj))
    pod["metadata"] = {
        k: v
        for k, v in pod["metadata"].items()
        if k not in ("resourceVersion", "uid", "creationTimestamp")
    }
    pod["metadata"]["namespace"] = namespace
    pod["apiVersion"], pod["kind"] = "v1", "Pod"
    pod.pop("status", None)
    return pod


def _replicas(doc: Document) -> Iterator[Obj]:
    name, namespace, _ = _metadata(doc)
    spec = doc.obj.get("spec")
    if not isinstance(spec, Mapping):
        raise InputError(doc.file, "required", obj=describe(doc), field="spec")
    if doc.obj.get("kind") == "Job":
        count = _count(doc, spec, "parallelism", 1)
        if spec.get("completions") is not None:
            count = min(count, _count(doc, spec, "completions", 1))
    else:
        count = _count(doc, spec, "replicas", 1)
    template = spec.get("template")
    if not isinstance(template, Mapping):
        raise InputError(doc.file, "required", obj=describe(doc), field="spec.template")
    tmeta = template.get("metadata") or {}
    if not isinstance(tmeta, Mapping):
        raise InputError(
            doc.file, "must be a mapping", obj=describe(doc), field="spec.template.metadata"
        )
    labels = _string_map(doc, tmeta, "labels", "spec.template.metadata")
    annotations = _string_map(doc, tmeta, "annotations", "spec.template.metadata")
    _check_pod_spec(doc, template.get("spec"), "spec.template.spec")
    for i in range(count):
        yield {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{name}-{i}",
                "namespace": namespace,
                "labels": dict(labels),
                "annotations": dict(annotations),
            },
            "spec": copy.deepcopy(dict(template["spec"])),
        }


def expand(doc: Document) -> list[Obj]:
    """The pods one workload object stands for (module docstring).

    Raises `InputError` naming the object and field for an unsupported kind or a malformed
    manifest.
    """
    if not isinstance(doc.obj, Mapping):
        raise InputError(
            doc.file, f"expected a Kubernetes object, got {type(doc.obj).__name__}", obj=doc.where
        )
    kind = doc.obj.get("kind")
    if kind == "Pod":
        return [_pod(doc)]
    if kind in REPLICATED_KINDS:
        return list(_replicas(doc))
    supported = ", ".join(("Pod", *REPLICATED_KINDS))
    shown = "required" if not kind else f"{kind!r} is not supported"
    raise InputError(doc.file, f"{shown} (supported: {supported})", obj=describe(doc), field="kind")


def load_workloads(paths: Sequence[str]) -> list[WorkloadPod]:
    """Every pod of every workload file, in order. Raises `InputError` for the first problem,
    including two pods with the same namespace and name."""
    out: list[WorkloadPod] = []
    seen: dict[tuple[str, str], str] = {}
    for path in paths:
        for doc in read_documents(path):
            source = f"{path}: {describe(doc)}"
            for pod in expand(doc):
                meta = pod["metadata"]
                key = (meta["namespace"], meta["name"])
                if key in seen:
                    raise InputError(
                        path,
                        f"pod {key[0]}/{key[1]} is also made by {seen[key]}",
                        obj=describe(doc),
                        field="metadata.name",
                    )
                seen[key] = source
                out.append(WorkloadPod(pod, source))
    return out
