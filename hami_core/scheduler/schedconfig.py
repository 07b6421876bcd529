"""The `KubeSchedulerConfiguration` that puts a stock kube-scheduler in front of the extender.

`scheduler_configuration` renders what HAMi's chart renders for Kubernetes >= 1.26
(reference kubernetes-interfaces §2.4): a profile named after the scheduler, leader election,
and one extender with `filterVerb: filter`, `bindVerb: bind`, `nodeCacheCapable: true`,
`httpTimeout: 30s`, and `managedResources` generated from the installed vendors — every
resource name a vendor claims, `ignoredByScheduler` where its spec lists the name in
`ignored_by_scheduler` (names no node advertises, such as memory and cores).
"""

from __future__ import annotations

from typing import Any

import yaml

from hami_core.plugins import VendorRegistry

__all__ = ["managed_resources", "render_configuration", "scheduler_configuration"]


def managed_resources(registry: VendorRegistry) -> list[dict[str, Any]]:
    """`[{name, ignoredByScheduler}]` for every resource of every vendor, by vendor key."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for spec in registry.specs():
        for name in spec.resource_names():
            if name in seen:
                continue
            seen.add(name)
            out.append({"name": name, "ignoredByScheduler": name in spec.ignored_by_scheduler})
    return out


def scheduler_configuration(
    registry: VendorRegistry,
    *,
    scheduler_name: str = "hami-scheduler",
    url_prefix: str = "https://127.0.0.1:443",
    http_timeout: str = "30s",
    leader_elect: bool = True,
    lease_namespace: str = "kube-system",
) -> dict[str, Any]:
    """The `kubescheduler.config.k8s.io/v1` configuration (HTTPS when `url_prefix` is https)."""
    https = url_prefix.startswith("https://")
    extender: dict[str, Any] = {
        "urlPrefix": url_prefix.rstrip("/"),
        "filterVerb": "filter",
        "bindVerb": "bind",
        "enableHTTPS": https,
    }
    if https:
        extender["tlsConfig"] = {"insecure": True}
    extender.update(
        {
            "nodeCacheCapable": True,
            "weight": 1,
            "httpTimeout": http_timeout,
            "managedResources": managed_resources(registry),
        }
    )
    return {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "leaderElection": {
            "leaderElect": leader_elect,
            "resourceName": scheduler_name,
            "resourceNamespace": lease_namespace,
        },
        "profiles": [{"schedulerName": scheduler_name}],
        "extenders": [extender],
    }


def render_configuration(configuration: dict[str, Any]) -> str:
    """The configuration as YAML, keys in the order written."""
    text: str = yaml.safe_dump(configuration, sort_keys=False, default_flow_style=False)
    return text
