"""RBAC covers exactly the API calls hami makes, no more.

How the calls are found, honestly: the `Cluster` methods each service's code uses are read from
its source (every module of `hami_core/scheduler` or `hami_core/deviceplugin`, and every hami
module they import, transitively); each of those methods is then run through `KubeCluster` (the
real `kubernetes` client) against `FakeApiServer`, whose request log gives the HTTP method and
path actually sent. Each request becomes RBAC attributes (apiGroup, resource, subresource,
verb, namespace) and must be allowed by the Roles the manifests bind to that service's
ServiceAccount; every verb those Roles grant must be used by some request.
"""

from __future__ import annotations

import ast
import copy
import functools
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from deploy_kit import (
    DEFAULT,
    ROOT,
    Access,
    Obj,
    Rbac,
    access_of,
    containers,
    find,
    flag,
)

from hami_core.k8s.cluster import Cluster
from hami_core.k8s.kube import KubeCluster
from hami_core.testing import FakeApiServer

CORE = ROOT / "hami_core"
NODE = "gpu-node-1"
POD_NAMESPACE = "team-a"
METHODS = frozenset(
    name
    for name, member in inspect.getmembers(Cluster, inspect.isfunction)
    if not name.startswith("_")
)
SCHEDULER = ("hami-scheduler", "hami-system")
DEVICE_PLUGIN = ("hami-device-plugin", "hami-system")


# ---------------------------------------------------------------- which methods the code uses


def _module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _outside(module: str) -> bool:
    """The cluster adapters and the test kit implement `Cluster`; they are not its users."""
    return not module.startswith("hami_core") or module.startswith(
        ("hami_core.k8s", "hami_core.testing")
    )


@functools.cache
def _parsed(module: str) -> ast.Module | None:
    path = _module_file(module)
    return None if path is None else ast.parse(path.read_text(encoding="utf-8"))


def _imports(tree: ast.Module) -> dict[str, tuple[str, str | None]]:
    """Local name → (hami module, name in it; None when the name is the module itself)."""
    table: dict[str, tuple[str, str | None]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                local = alias.asname or alias.name
                submodule = f"{node.module}.{alias.name}"
                if _module_file(submodule) is not None:
                    table[local] = (submodule, None)
                else:
                    table[local] = (node.module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                table[(alias.asname or alias.name).split(".")[0]] = (alias.name, None)
    return table


def _definitions(tree: ast.Module) -> dict[str, ast.AST]:
    return {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }


@functools.cache
def used_methods(package: str) -> frozenset[str]:
    """The `Cluster` methods the component's code can reach (called or passed around).

    Every module of the component's package counts whole; of other hami modules, only the
    functions and classes the component reaches through imports and calls.
    """
    root = ROOT / package.replace(".", "/")
    todo: list[tuple[str, str | None]] = [
        (".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"), None)
        for p in root.rglob("*.py")
        if "api" not in p.relative_to(ROOT).parts  # generated gRPC stubs
    ]
    seen: set[tuple[str, str | None]] = set()
    used: set[str] = set()
    while todo:
        module, name = todo.pop()
        if (module, name) in seen or _outside(module):
            continue
        seen.add((module, name))
        tree = _parsed(module)
        if tree is None:
            continue
        imports = _imports(tree)
        definitions = _definitions(tree)
        if name is None:
            nodes: list[ast.AST] = [tree]
        elif name in definitions:
            nodes = [definitions[name]]
        else:
            if name in imports:  # a re-export
                todo.append(imports[name])
            continue
        for top in nodes:
            for node in ast.walk(top):
                if isinstance(node, ast.Attribute) and node.attr in METHODS:
                    used.add(node.attr)
                elif isinstance(node, ast.Name):
                    if node.id in definitions and top is not tree:
                        todo.append((module, node.id))
                    elif node.id in imports:
                        todo.append(imports[node.id])
    return frozenset(used)


# ---------------------------------------------------------------- what those methods send


def lease_namespace() -> str:
    return flag(
        containers(find(DEFAULT, "Deployment", "hami-scheduler"))["extender"]["args"],
        "lease-namespace",
    )


def _drivers(lease_ns: str) -> dict[str, Callable[[KubeCluster], object]]:
    lease = {"metadata": {"name": "hami-scheduler-extender"}, "spec": {"holderIdentity": "a"}}

    def watch(stream_of: Callable[[], Iterator[object]]) -> None:
        for _ in stream_of():
            pass

    def replace(kube: KubeCluster) -> object:
        current = kube.get_lease(lease_ns, "hami-scheduler-extender")
        return kube.replace_lease(lease_ns, current)

    return {
        "get_node": lambda k: k.get_node(NODE),
        "list_nodes": lambda k: k.list_nodes(),
        "get_pod": lambda k: k.get_pod(POD_NAMESPACE, "train-0"),
        "list_pods": lambda k: k.list_pods(node_name=NODE),
        "patch_node_metadata": lambda k: k.patch_node_metadata(NODE, annotations={"a": "1"}),
        "patch_pod_metadata": lambda k: k.patch_pod_metadata(
            POD_NAMESPACE, "train-0", annotations={"a": "1"}
        ),
        "bind_pod": lambda k: k.bind_pod(POD_NAMESPACE, "train-0", None, NODE),
        "watch_nodes": lambda k: watch(lambda: k.watch_nodes(timeout=0.2)),
        "watch_pods": lambda k: watch(lambda: k.watch_pods(timeout=0.2)),
        "create_lease": lambda k: k.create_lease(lease_ns, copy.deepcopy(lease)),
        "get_lease": lambda k: k.get_lease(lease_ns, "hami-scheduler-extender"),
        "replace_lease": replace,
        "create_event": lambda k: k.create_event(
            POD_NAMESPACE,
            {"involvedObject": {"kind": "Pod", "name": "train-0"}, "reason": "x", "type": "Normal"},
        ),
    }


def accesses(methods: frozenset[str]) -> dict[Access, str]:
    """The RBAC attributes of every request these methods send (→ the method that sent it)."""
    drivers = _drivers(lease_namespace())
    assert methods <= set(drivers), f"no driver for {sorted(methods - set(drivers))}"
    assert set(drivers) == METHODS, "a Cluster method has no driver in this test"
    found: dict[Access, str] = {}
    with FakeApiServer() as server:
        server.state.add_node({"metadata": {"name": NODE}})
        server.state.add_pod(
            {"metadata": {"name": "train-0", "namespace": POD_NAMESPACE}, "spec": {}}
        )
        order = ["create_lease", *sorted(m for m in methods if m != "create_lease")]
        with server.kube_cluster() as kube:
            for method in (m for m in order if m in methods or m == "create_lease"):
                before = len(server.requests)
                drivers[method](kube)
                sent = server.requests[before:]
                assert sent, f"{method} sent no request"
                if method == "create_lease" and method not in methods:
                    continue  # only arranged the Lease for get/replace
                for request in sent:
                    access = access_of(request.method, request.path, dict(request.query))
                    found.setdefault(access, method)
    return found


# ---------------------------------------------------------------- the checks


def uncovered(rbac: Rbac, account: tuple[str, str], used: dict[Access, str]) -> list[str]:
    """Requests the account's roles do not allow."""
    grants = rbac.grants(*account)
    return sorted(
        f"{method}: {a.verb} {a.group or 'core'}/{a.full_resource} in {a.namespace or 'cluster'}"
        for a, method in used.items()
        if not any(g.allows(a) for g in grants)
    )


def unused(rbac: Rbac, account: tuple[str, str], used: dict[Access, str]) -> list[str]:
    """Verbs the account's roles grant that no request uses."""
    sent = {(a.group, a.full_resource, a.verb) for a in used}
    return sorted(
        f"{g.role}: {verb} {group or 'core'}/{resource}"
        for g in rbac.grants(*account)
        for group, resource, verb in g.triples()
        if (group, resource, verb) not in sent
    )


@pytest.fixture(scope="module")
def scheduler_calls() -> dict[Access, str]:
    return accesses(used_methods("hami_core.scheduler"))


@pytest.fixture(scope="module")
def device_plugin_calls() -> dict[Access, str]:
    return accesses(used_methods("hami_core.deviceplugin"))


def test_the_scheduler_uses_leases_and_binds_the_device_plugin_does_neither() -> None:
    scheduler = used_methods("hami_core.scheduler")
    plugin = used_methods("hami_core.deviceplugin")
    assert {"bind_pod", "get_lease", "watch_pods", "patch_node_metadata"} <= scheduler
    assert {"patch_pod_metadata", "list_pods", "patch_node_metadata"} <= plugin
    assert not plugin & {"bind_pod", "get_lease", "create_lease", "replace_lease"}


def test_scheduler_rbac_allows_every_call_and_nothing_else(
    scheduler_calls: dict[Access, str],
) -> None:
    rbac = Rbac(DEFAULT)
    assert uncovered(rbac, SCHEDULER, scheduler_calls) == []
    assert unused(rbac, SCHEDULER, scheduler_calls) == []


def test_device_plugin_rbac_allows_every_call_and_nothing_else(
    device_plugin_calls: dict[Access, str],
) -> None:
    rbac = Rbac(DEFAULT)
    assert uncovered(rbac, DEVICE_PLUGIN, device_plugin_calls) == []
    assert unused(rbac, DEVICE_PLUGIN, device_plugin_calls) == []


def test_a_missing_or_extra_verb_is_caught(scheduler_calls: dict[Access, str]) -> None:
    objects = copy.deepcopy(DEFAULT)
    role = find(objects, "ClusterRole", "hami-scheduler")
    nodes = next(r for r in role["rules"] if r["resources"] == ["nodes"])
    nodes["verbs"].remove("patch")
    nodes["verbs"].append("delete")
    rbac = Rbac(objects)
    assert any(
        "patch_node_metadata: patch core/nodes" in p
        for p in uncovered(rbac, SCHEDULER, scheduler_calls)
    )
    assert unused(rbac, SCHEDULER, scheduler_calls) == ["hami-scheduler: delete core/nodes"]


def test_a_role_in_the_wrong_namespace_does_not_count(scheduler_calls: dict[Access, str]) -> None:
    objects: list[Obj] = copy.deepcopy(DEFAULT)
    for kind in ("Role", "RoleBinding"):
        find(objects, kind, "hami-scheduler")["metadata"]["namespace"] = "elsewhere"
    problems = uncovered(Rbac(objects), SCHEDULER, scheduler_calls)
    assert problems and all("leases" in p for p in problems)


def test_only_kube_schedulers_own_roles_come_from_outside() -> None:
    rbac = Rbac(DEFAULT)
    assert rbac.external_roles(*SCHEDULER) == {
        "ClusterRole/system:kube-scheduler",
        "ClusterRole/system:volume-scheduler",
        "Role/extension-apiserver-authentication-reader",
    }
    assert rbac.external_roles(*DEVICE_PLUGIN) == set()


def test_no_wildcards_and_no_secrets_for_the_services() -> None:
    rbac = Rbac(DEFAULT)
    for account in (SCHEDULER, DEVICE_PLUGIN):
        for grant in rbac.grants(*account):
            for group, resource, verb in grant.triples():
                assert "*" not in (group, resource, verb)
                assert resource != "secrets"


def test_the_certificate_job_may_touch_only_its_secret_namespace_and_webhook() -> None:
    rbac = Rbac(DEFAULT)
    grants = rbac.grants("hami-certgen", "hami-system")
    assert {(g.namespace, t) for g in grants for t in g.triples()} == {
        ("hami-system", ("", "secrets", "get")),
        ("hami-system", ("", "secrets", "create")),
        (None, ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "get")),
        (None, ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "update")),
    }
    webhook = next(g for g in grants if g.namespace is None)
    assert webhook.rule["resourceNames"] == ["hami-webhook"]
