"""The Kubernetes resources hami stores and serves, and where each lives in the API."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from hami_core.k8s.cluster import NotFound

__all__ = ["RESOURCES", "ResourceInfo", "resource_info"]

_META_FIELDS = frozenset({"metadata.name", "metadata.namespace"})


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    """One resource: its plural (the URL segment), kind, apiVersion and scope."""

    plural: str
    kind: str
    api_version: str
    namespaced: bool
    field_labels: frozenset[str]
    """The fields a `fieldSelector` may name for this resource."""
    has_status: bool = False
    """Whether `.status` is written only through the `status` subresource."""

    @property
    def group(self) -> str:
        """The API group (`""` for core)."""
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        """The API version within the group (`v1`)."""
        return self.api_version.rpartition("/")[2]

    @property
    def list_kind(self) -> str:
        """The kind of a list of these (`PodList`)."""
        return f"{self.kind}List"


RESOURCES = MappingProxyType(
    {
        "nodes": ResourceInfo(
            "nodes",
            "Node",
            "v1",
            namespaced=False,
            field_labels=_META_FIELDS | {"spec.unschedulable"},
            has_status=True,
        ),
        "pods": ResourceInfo(
            "pods",
            "Pod",
            "v1",
            namespaced=True,
            field_labels=_META_FIELDS
            | {
                "spec.nodeName",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.restartPolicy",
                "status.phase",
                "status.podIP",
                "status.nominatedNodeName",
            },
            has_status=True,
        ),
        "events": ResourceInfo(
            "events",
            "Event",
            "v1",
            namespaced=True,
            field_labels=_META_FIELDS
            | {
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            },
        ),
        "configmaps": ResourceInfo("configmaps", "ConfigMap", "v1", True, _META_FIELDS),
        "leases": ResourceInfo("leases", "Lease", "coordination.k8s.io/v1", True, _META_FIELDS),
    }
)
"""Every resource the in-memory cluster and the fake apiserver know, by plural."""


def resource_info(plural: str) -> ResourceInfo:
    """The resource named `plural`, or `NotFound` naming the unknown resource."""
    try:
        return RESOURCES[plural]
    except KeyError:
        known = ", ".join(sorted(RESOURCES))
        raise NotFound(f"unknown resource {plural!r} (known: {known})", status=404) from None
