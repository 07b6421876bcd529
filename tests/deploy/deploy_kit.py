"""Reading hami's deployment the way the cluster will: kustomize trees, objects, RBAC rules.

`render` is `deploy/render.py` loaded as a module. `load_kustomization` follows `resources:`
exactly as `kubectl apply -k` does for the plain kustomizations render.py writes (it refuses
any other kustomize feature, so what it reads is what kubectl applies). `Rbac` evaluates the
rendered Roles and bindings for one service account, as the apiserver's RBAC authorizer would.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUSTOMIZE = DEPLOY / "kustomize"
Obj = dict[str, Any]


def _load_render() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hami_deploy_render", DEPLOY / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


render = _load_render()


def load_kustomization(directory: Path) -> list[Obj]:
    """The objects `kubectl apply -k <directory>` applies, in order."""
    doc = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    assert set(doc) <= {"apiVersion", "kind", "resources"}, f"{directory}: {sorted(doc)}"
    assert doc["kind"] == "Kustomization"
    objects: list[Obj] = []
    for entry in doc["resources"]:
        path = (directory / entry).resolve()
        if path.is_dir():
            objects.extend(load_kustomization(path))
        else:
            text = path.read_text(encoding="utf-8")
            objects.extend(d for d in yaml.safe_load_all(text) if d is not None)
    return objects


VENDOR_DIRS = sorted(p.name.removeprefix("hami-") for p in (ROOT / "vendors").glob("hami-*"))
"""Every vendor distribution in the source tree."""


def find(objects: Iterable[Obj], kind: str, name: str) -> Obj:
    """The one object of this kind and name."""
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: found {len(found)}"
    return found[0]


def containers(workload: Obj) -> dict[str, Obj]:
    """A Deployment's or DaemonSet's containers by name."""
    return {c["name"]: c for c in workload["spec"]["template"]["spec"]["containers"]}


def volumes(workload: Obj) -> dict[str, Obj]:
    """A workload's volumes by name."""
    return {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}


def env(container: Obj) -> dict[str, Any]:
    """A container's env: the value, or the `valueFrom` mapping."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def flag(args: list[str], name: str) -> str:
    """The value of `--name=value` in an argument list."""
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    assert len(values) == 1, f"--{name}: {values}"
    return values[0]


# ---------------------------------------------------------------- RBAC


@dataclass(frozen=True, order=True)
class Access:
    """One API request as the RBAC authorizer sees it."""

    group: str
    resource: str
    subresource: str
    verb: str
    namespace: str | None
    name: str | None = None

    @property
    def full_resource(self) -> str:
        """`pods/binding` style: the resource with its subresource."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def access_of(method: str, path: str, query: dict[str, str]) -> Access:
    """The RBAC attributes of one HTTP request to the apiserver."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    else:
        raise AssertionError(f"not a resource path: {path}")
    namespace = None
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else ""
    if method == "GET":
        if name is None:
            verb = "watch" if query.get("watch") in ("true", "1") else "list"
        else:
            verb = "get"
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]
    return Access(group, resource, sub, verb, namespace, name)


@dataclass(frozen=True)
class Grant:
    """One rule reachable by a service account, and where it applies."""

    role: str
    rule: Obj
    namespace: str | None  # None: every namespace (a ClusterRole through a ClusterRoleBinding)

    def allows(self, access: Access) -> bool:
        """Whether this rule admits the request."""
        rule = self.rule
        if self.namespace is not None and access.namespace != self.namespace:
            return False
        if access.group not in rule.get("apiGroups", []) and "*" not in rule.get("apiGroups", []):
            return False
        resources = rule.get("resources", [])
        if access.full_resource not in resources and "*" not in resources:
            return False
        if access.verb not in rule.get("verbs", []) and "*" not in rule.get("verbs", []):
            return False
        names = rule.get("resourceNames")
        return not names or access.name in names

    def triples(self) -> Iterator[tuple[str, str, str]]:
        """Every (apiGroup, resource, verb) the rule grants."""
        for group in self.rule.get("apiGroups", []):
            for resource in self.rule.get("resources", []):
                for verb in self.rule.get("verbs", []):
                    yield group, resource, verb


class Rbac:
    """The rendered RBAC objects, read for one service account."""

    def __init__(self, objects: Iterable[Obj]) -> None:
        self.objects = [o for o in objects if o["apiVersion"].startswith("rbac.authorization")]

    def _roles(self) -> dict[tuple[str, str | None, str], Obj]:
        out = {}
        for o in self.objects:
            if o["kind"] in ("Role", "ClusterRole"):
                out[(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])] = o
        return out

    def bindings_of(self, account: str, namespace: str) -> list[Obj]:
        """The (Cluster)RoleBindings naming this service account."""
        wanted = {"kind": "ServiceAccount", "name": account, "namespace": namespace}
        return [
            o
            for o in self.objects
            if o["kind"] in ("RoleBinding", "ClusterRoleBinding")
            and any(s == wanted for s in o.get("subjects", []))
        ]

    def external_roles(self, account: str, namespace: str) -> set[str]:
        """Roles bound to the account that these manifests do not define (built-in ones)."""
        roles = self._roles()
        out = set()
        for b in self.bindings_of(account, namespace):
            ref = b["roleRef"]
            ns = None if ref["kind"] == "ClusterRole" else b["metadata"]["namespace"]
            if (ref["kind"], ns, ref["name"]) not in roles:
                out.add(f"{ref['kind']}/{ref['name']}")
        return out

    def grants(self, account: str, namespace: str) -> list[Grant]:
        """Every rule of a role these manifests define that is bound to the account."""
        roles = self._roles()
        out: list[Grant] = []
        for b in self.bindings_of(account, namespace):
            ref = b["roleRef"]
            where = None if b["kind"] == "ClusterRoleBinding" else b["metadata"]["namespace"]
            role_ns = None if ref["kind"] == "ClusterRole" else b["metadata"]["namespace"]
            role = roles.get((ref["kind"], role_ns, ref["name"]))
            if role is None:
                continue
            out.extend(Grant(ref["name"], rule, where) for rule in role.get("rules", []))
        return out


DEFAULT = load_kustomization(KUSTOMIZE)
"""What `kubectl apply -k deploy/kustomize` applies: the base and the NVIDIA device plugin."""

EVERY_VENDOR = load_kustomization(KUSTOMIZE / "base") + [
    obj for v in VENDOR_DIRS for obj in load_kustomization(KUSTOMIZE / "device-plugin" / v)
]
"""The base and every vendor's device plugin."""
