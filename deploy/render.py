#!/usr/bin/env python3
"""Render hami's Kubernetes manifests (needs only Python >= 3.11 and PyYAML).

    python deploy/render.py                      # one YAML stream on stdout, default values
    python deploy/render.py --vendors nvidia,ascend --namespace gpu-sharing \\
        --image registry.example.com/hami:0.1.0 --kube-scheduler-version v1.33.2 \\
        | kubectl apply -f -
    python deploy/render.py --write              # regenerate deploy/kustomize/ (committed)
    python deploy/render.py --check              # exit 1 when deploy/kustomize/ is stale

What it renders: the namespace; the scheduler Deployment (a stock kube-scheduler plus the hami
extender/webhook sidecar, leader election through Leases, the webhook TLS secret mounted), its
Service and MutatingWebhookConfiguration; a certificate job (kube-webhook-certgen) that creates
the TLS secret and writes the webhook's caBundle; least-privilege RBAC for each of them; the
device config ConfigMap (`device-config.yaml`, HAMi's keys); one device-plugin DaemonSet per
vendor, on the nodes labelled for that vendor.

The KubeSchedulerConfiguration comes from `deploy/scheduler-config.yaml` (written by
`hami scheduler print-config`, which lists every installed vendor's resources); the fields that
depend on this deployment (scheduler name, extender URL, leader-election namespace) are set here.

This script imports nothing from hami, so it runs wherever Python and PyYAML do.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DEVICE_PLUGIN_DIR",
    "EXTENDER_PORT",
    "VENDORS",
    "RenderError",
    "Values",
    "VendorDeploy",
    "all_objects",
    "device_config_text",
    "device_plugin_objects",
    "dump_stream",
    "kustomize_tree",
    "load_scheduler_config",
    "main",
    "scheduler_objects",
]

HERE = Path(__file__).resolve().parent
VERSION = "0.1.0"
"""hami's version; the default image tag."""

EXTENDER_PORT = 8443
"""The extender/webhook's HTTPS port inside the pod (unprivileged, so it runs as non-root)."""

DEVICE_PLUGIN_DIR = "/var/lib/kubelet/device-plugins"
"""The kubelet's device-plugin directory: its registration socket and the plugins' sockets."""

HOOK_PATH = "/usr/local"
"""HAMi's HOOK_PATH: HAMi-core lives in `<HOOK_PATH>/vgpu` on every NVIDIA node."""

CONFIG_DIR = "/etc/hami"
TLS_DIR = "/etc/hami/tls"
SCHEDULER_CONFIG_DIR = "/etc/kube-scheduler"
NONROOT = 65532
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class RenderError(Exception):
    """The values or the scheduler configuration cannot be rendered; the message says which."""


@dataclass(frozen=True)
class HostPath:
    """A host directory or file the device plugin mounts at the same path."""

    path: str
    read_only: bool = True
    type: str = "Directory"
    name: str = ""

    def volume_name(self) -> str:
        """A volume name derived from the path (`/usr/local/vgpu` → `host-usr-local-vgpu`)."""
        if self.name:
            return self.name
        slug = re.sub(r"[^a-z0-9]+", "-", self.path.lower()).strip("-")
        return f"host-{slug}"[:63].rstrip("-")


@dataclass(frozen=True)
class VendorDeploy:
    """How one vendor's device plugin runs: which nodes, which host paths, which env."""

    node_selector: Mapping[str, str]
    host_paths: tuple[HostPath, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, str], ...] = ()
    installs_hami_core: bool = False
    note: str = ""


_PATH = "/opt/hami/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

VENDORS: Mapping[str, VendorDeploy] = {
    "nvidia": VendorDeploy(
        node_selector={"gpu": "on"},
        host_paths=(
            HostPath(f"{HOOK_PATH}/vgpu", read_only=False, type="DirectoryOrCreate"),
            HostPath("/tmp/vgpulock", read_only=False, type="DirectoryOrCreate"),
        ),
        env={
            "HOOK_PATH": HOOK_PATH,
            "NVIDIA_VISIBLE_DEVICES": "all",
            "NVIDIA_DRIVER_CAPABILITIES": "utility",
        },
        tolerations=({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},),
        installs_hami_core=True,
        note="NVML comes from the NVIDIA container runtime (default runtime or runtimeClass).",
    ),
    "ascend": VendorDeploy(
        node_selector={"ascend": "on"},
        host_paths=(
            HostPath("/usr/local/Ascend/driver"),
            HostPath("/etc/ascend_install.info", type="File"),
        ),
        env={
            "LD_LIBRARY_PATH": "/usr/local/Ascend/driver/lib64:"
            "/usr/local/Ascend/driver/lib64/common:/usr/local/Ascend/driver/lib64/driver",
        },
        note="npu-smi is found under /usr/local/Ascend/driver/tools.",
    ),
    "hygon": VendorDeploy(
        node_selector={"dcu": "on"},
        host_paths=(
            HostPath("/opt/hyhal"),
            HostPath(f"{HOOK_PATH}/vgpu/dcu", read_only=False, type="DirectoryOrCreate"),
            HostPath("/etc/vdev", read_only=False, type="DirectoryOrCreate"),
        ),
        env={"PATH": f"{_PATH}:/opt/hyhal/bin"},
        note="hy-smi is found under /opt/hyhal/bin.",
    ),
    "cambricon": VendorDeploy(
        node_selector={"mlu": "on"},
        host_paths=(HostPath("/usr/bin/cnmon", type="File"),),
        note="cnmon is mounted from the host.",
    ),
    "iluvatar": VendorDeploy(
        node_selector={"iluvatar": "on"},
        host_paths=(HostPath("/usr/local/corex"),),
        env={
            "PATH": f"{_PATH}:/usr/local/corex/bin",
            "LD_LIBRARY_PATH": "/usr/local/corex/lib64",
        },
        note="ixsmi is found under /usr/local/corex/bin.",
    ),
    "metax": VendorDeploy(
        node_selector={"metax": "on"},
        note="mx-smi must be reachable on PATH inside the container (mount it from the host).",
    ),
    "mthreads": VendorDeploy(
        node_selector={"mthreads": "on"},
        note="mthreads-gmi / MTML must be reachable inside the container (mount them).",
    ),
}
"""Every vendor distribution under vendors/ and how its device plugin is deployed."""


@dataclass(frozen=True)
class Values:
    """Everything a deployment can change; the defaults are what deploy/kustomize/ holds."""

    namespace: str = "hami-system"
    image: str = f"hami:{VERSION}"
    image_pull_policy: str = "IfNotPresent"
    kube_scheduler_image: str = "registry.k8s.io/kube-scheduler:v1.36.0"
    certgen_image: str = "registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.5.3"
    scheduler_name: str = "hami-scheduler"
    scheduler_replicas: int = 1
    webhook_failure_policy: str = "Ignore"
    log_level: str = "INFO"
    vendors: tuple[str, ...] = tuple(VENDORS)
    nvidia_runtime_class: str = ""

    def __post_init__(self) -> None:
        for name in ("namespace", "scheduler_name"):
            value = getattr(self, name)
            if not _NAME.fullmatch(value) or len(value) > 63:
                raise RenderError(f"{name}: {value!r} is not a DNS label")
        if self.webhook_failure_policy not in ("Ignore", "Fail"):
            raise RenderError(
                f"webhook_failure_policy: expected Ignore or Fail, got "
                f"{self.webhook_failure_policy!r}"
            )
        if self.image_pull_policy not in ("Always", "IfNotPresent", "Never"):
            raise RenderError(f"image_pull_policy: {self.image_pull_policy!r} is not valid")
        if self.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise RenderError(f"log_level: {self.log_level!r} is not DEBUG/INFO/WARNING/ERROR")
        if self.scheduler_replicas < 1:
            raise RenderError(f"scheduler_replicas: must be >= 1, got {self.scheduler_replicas}")
        unknown = [v for v in self.vendors if v not in VENDORS]
        if unknown:
            raise RenderError(
                f"vendors: unknown {', '.join(unknown)} (known: {', '.join(VENDORS)})"
            )
        if self.nvidia_runtime_class and not _NAME.fullmatch(self.nvidia_runtime_class):
            raise RenderError(f"nvidia_runtime_class: {self.nvidia_runtime_class!r} is invalid")
        for name in ("image", "kube_scheduler_image", "certgen_image"):
            if not getattr(self, name) or any(c.isspace() for c in getattr(self, name)):
                raise RenderError(f"{name}: {getattr(self, name)!r} is not an image reference")


# ---------------------------------------------------------------------------- helpers

Obj = dict[str, Any]


def _labels(component: str, **extra: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "hami",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "hami",
        "app.kubernetes.io/version": VERSION,
        **extra,
    }


def _selector(component: str, **extra: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "hami", "app.kubernetes.io/component": component, **extra}


def _meta(name: str, component: str, namespace: str | None = None, **extra: str) -> Obj:
    meta: Obj = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = _labels(component, **extra)
    return meta


def _rule(group: str, resources: Sequence[str], verbs: Sequence[str], **extra: Any) -> Obj:
    return {"apiGroups": [group], "resources": list(resources), "verbs": list(verbs), **extra}


def _binding(
    kind: str,
    name: str,
    component: str,
    role_kind: str,
    role: str,
    account: str,
    account_namespace: str,
    namespace: str | None = None,
) -> Obj:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": _meta(name, component, namespace),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": account_namespace}],
    }


def _service_account(name: str, component: str, namespace: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(name, component, namespace),
    }


def _field_env(name: str, path: str) -> Obj:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


_RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "runAsUser": NONROOT,
    "runAsGroup": NONROOT,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _restricted() -> Obj:
    return copy.deepcopy(_RESTRICTED)


# ---------------------------------------------------------------------------- RBAC rules

SCHEDULER_CLUSTER_RULES: tuple[Obj, ...] = (
    _rule("", ["nodes"], ["get", "list", "watch", "patch"]),
    _rule("", ["pods"], ["get", "list", "watch", "patch"]),
    _rule("", ["pods/binding"], ["create"]),
    _rule("", ["events"], ["create"]),
)
"""What `hami scheduler` does cluster-wide: watch nodes and pods (list + watch), read a pod
before bind, patch node annotations (handshake, node lock) and pod annotations (decision, bind
phase), create the Binding and Events. tests/deploy/test_rbac.py derives the same set from the
code's API calls."""

SCHEDULER_LEASE_RULES: tuple[Obj, ...] = (
    _rule("coordination.k8s.io", ["leases"], ["get", "create", "update"]),
)
"""Leader election (the extender's Lease and kube-scheduler's), in the deployment's namespace."""

DEVICE_PLUGIN_RULES: tuple[Obj, ...] = (
    _rule("", ["nodes"], ["get", "patch"]),
    _rule("", ["pods"], ["list", "patch"]),
)
"""What `hami device-plugin` does: read and annotate its node (register, node lock release),
list the pods bound to its node and patch their annotations (bind phase)."""

KUBE_SCHEDULER_ROLES = ("system:kube-scheduler", "system:volume-scheduler")
"""Built-in ClusterRoles a second kube-scheduler needs (Kubernetes' multiple-schedulers guide)."""


# ---------------------------------------------------------------------------- scheduler


def load_scheduler_config(path: Path) -> Obj:
    """The KubeSchedulerConfiguration written by `hami scheduler print-config`."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RenderError(
            f"{path}: cannot read the scheduler configuration ({exc.strerror}); generate it "
            "with 'hami scheduler print-config > deploy/scheduler-config.yaml'"
        ) from None
    except yaml.YAMLError as exc:
        raise RenderError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "KubeSchedulerConfiguration":
        raise RenderError(f"{path}: expected a KubeSchedulerConfiguration")
    extenders = doc.get("extenders")
    if not isinstance(extenders, list) or len(extenders) != 1 or not isinstance(extenders[0], dict):
        raise RenderError(f"{path}: expected exactly one extender (hami's)")
    return doc


def deployed_scheduler_config(values: Values, base: Mapping[str, Any]) -> Obj:
    """`base` with the deployment's scheduler name, extender URL and leader election."""
    config = copy.deepcopy(dict(base))
    config["leaderElection"] = {
        "leaderElect": True,
        "resourceName": values.scheduler_name,
        "resourceNamespace": values.namespace,
    }
    config["profiles"] = [{"schedulerName": values.scheduler_name}]
    extender = config["extenders"][0]
    extender["urlPrefix"] = f"https://127.0.0.1:{EXTENDER_PORT}"
    extender["enableHTTPS"] = True
    extender["tlsConfig"] = {"insecure": True}
    return config


def scheduler_objects(values: Values, scheduler_config: Mapping[str, Any]) -> list[Obj]:
    """The scheduler's ServiceAccount, RBAC, configuration, Deployment, Service and webhook."""
    ns = values.namespace
    name = "hami-scheduler"
    comp = "scheduler"
    config_text = yaml.safe_dump(
        deployed_scheduler_config(values, scheduler_config), sort_keys=False
    )
    objects: list[Obj] = [
        _service_account(name, comp, ns),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _meta(name, comp),
            "rules": copy.deepcopy(list(SCHEDULER_CLUSTER_RULES)),
        },
        _binding("ClusterRoleBinding", name, comp, "ClusterRole", name, name, ns),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(name, comp, ns),
            "rules": copy.deepcopy(list(SCHEDULER_LEASE_RULES)),
        },
        _binding("RoleBinding", name, comp, "Role", name, name, ns, ns),
    ]
    for role in KUBE_SCHEDULER_ROLES:
        suffix = role.removeprefix("system:")
        objects.append(
            _binding("ClusterRoleBinding", f"{name}-{suffix}", comp, "ClusterRole", role, name, ns)
        )
    objects.append(
        _binding(
            "RoleBinding",
            f"{name}-{ns}-authentication-reader",
            comp,
            "Role",
            "extension-apiserver-authentication-reader",
            name,
            ns,
            "kube-system",
        )
    )
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(f"{name}-config", comp, ns),
            "data": {"config.yaml": config_text},
        }
    )
    objects.append(_scheduler_deployment(values))
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(name, comp, ns),
            "spec": {
                "selector": _selector(comp),
                "ports": [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}],
            },
        }
    )
    objects.append(_webhook(values))
    return objects


def _scheduler_deployment(values: Values) -> Obj:
    ns = values.namespace
    comp = "scheduler"
    https_probe = {"port": "https", "scheme": "HTTPS"}
    extender = {
        "name": "extender",
        "image": values.image,
        "imagePullPolicy": values.image_pull_policy,
        "args": [
            f"--log-level={values.log_level}",
            "scheduler",
            f"--bind-address=0.0.0.0:{EXTENDER_PORT}",
            f"--cert-file={TLS_DIR}/tls.crt",
            f"--key-file={TLS_DIR}/tls.key",
            f"--scheduler-name={values.scheduler_name}",
            f"--device-config={CONFIG_DIR}/config/device-config.yaml",
            f"--lease-namespace={ns}",
        ],
        "env": [
            _field_env("POD_NAME", "metadata.name"),
            _field_env("POD_NAMESPACE", "metadata.namespace"),
        ],
        "ports": [{"name": "https", "containerPort": EXTENDER_PORT, "protocol": "TCP"}],
        "livenessProbe": {
            "httpGet": {"path": "/healthz", **https_probe},
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "readinessProbe": {"httpGet": {"path": "/readyz", **https_probe}, "periodSeconds": 5},
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"memory": "1Gi"},
        },
        "securityContext": _restricted(),
        "volumeMounts": [
            {"name": "tls", "mountPath": TLS_DIR, "readOnly": True},
            # a directory mount (not subPath), so ConfigMap updates reach the file
            {"name": "device-config", "mountPath": CONFIG_DIR + "/config", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    kube_scheduler = {
        "name": "kube-scheduler",
        "image": values.kube_scheduler_image,
        "imagePullPolicy": "IfNotPresent",
        "command": [
            "kube-scheduler",
            f"--config={SCHEDULER_CONFIG_DIR}/config.yaml",
            "--v=2",
        ],
        "ports": [{"name": "kube-scheduler", "containerPort": 10259, "protocol": "TCP"}],
        "livenessProbe": {
            "httpGet": {"path": "/livez", "port": 10259, "scheme": "HTTPS"},
            "initialDelaySeconds": 15,
            "periodSeconds": 10,
        },
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 10259, "scheme": "HTTPS"}},
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "512Mi"},
        },
        "securityContext": _restricted(),
        "volumeMounts": [
            {"name": "scheduler-config", "mountPath": SCHEDULER_CONFIG_DIR, "readOnly": True}
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta("hami-scheduler", comp, ns),
        "spec": {
            "replicas": values.scheduler_replicas,
            "selector": {"matchLabels": _selector(comp)},
            "template": {
                "metadata": {"labels": {**_labels(comp), "hami.io/webhook": "ignore"}},
                "spec": {
                    "serviceAccountName": "hami-scheduler",
                    "securityContext": {
                        "runAsNonRoot": True,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [kube_scheduler, extender],
                    "volumes": [
                        {
                            "name": "tls",
                            "secret": {
                                "secretName": "hami-scheduler-tls",
                                "items": [
                                    {"key": "cert", "path": "tls.crt"},
                                    {"key": "key", "path": "tls.key"},
                                ],
                            },
                        },
                        {"name": "device-config", "configMap": {"name": "hami-device-config"}},
                        {
                            "name": "scheduler-config",
                            "configMap": {"name": "hami-scheduler-config"},
                        },
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def _webhook(values: Values) -> Obj:
    not_ignored = {
        "matchExpressions": [{"key": "hami.io/webhook", "operator": "NotIn", "values": ["ignore"]}]
    }
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": _meta("hami-webhook", "scheduler"),
        "webhooks": [
            {
                "name": "vgpu.hami.io",
                "admissionReviewVersions": ["v1", "v1beta1"],
                "clientConfig": {
                    "service": {
                        "name": "hami-scheduler",
                        "namespace": values.namespace,
                        "path": "/webhook",
                        "port": 443,
                    }
                },
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                        "scope": "Namespaced",
                    }
                ],
                "failurePolicy": values.webhook_failure_policy,
                "matchPolicy": "Equivalent",
                "sideEffects": "None",
                "timeoutSeconds": 10,
                "reinvocationPolicy": "Never",
                "namespaceSelector": copy.deepcopy(not_ignored),
                "objectSelector": copy.deepcopy(not_ignored),
            }
        ],
    }


# ---------------------------------------------------------------------------- certificates


def certgen_objects(values: Values) -> list[Obj]:
    """The jobs that create the webhook's TLS secret and write its caBundle, with their RBAC."""
    ns = values.namespace
    name = "hami-certgen"
    comp = "certgen"
    secret = "hami-scheduler-tls"

    def job(suffix: str, args: list[str]) -> Obj:
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": _meta(f"{name}-{suffix}", comp, ns),
            "spec": {
                "backoffLimit": 20,
                "ttlSecondsAfterFinished": 600,
                "template": {
                    "metadata": {"labels": {**_labels(comp), "hami.io/webhook": "ignore"}},
                    "spec": {
                        "serviceAccountName": name,
                        "restartPolicy": "OnFailure",
                        "securityContext": {
                            "runAsNonRoot": True,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": suffix,
                                "image": values.certgen_image,
                                "imagePullPolicy": "IfNotPresent",
                                "args": args,
                                "securityContext": _restricted(),
                            }
                        ],
                    },
                },
            },
        }

    return [
        _service_account(name, comp, ns),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(name, comp, ns),
            "rules": [_rule("", ["secrets"], ["get", "create"])],
        },
        _binding("RoleBinding", name, comp, "Role", name, name, ns, ns),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _meta(name, comp),
            "rules": [
                _rule(
                    "admissionregistration.k8s.io",
                    ["mutatingwebhookconfigurations"],
                    ["get", "update"],
                    resourceNames=["hami-webhook"],
                )
            ],
        },
        _binding("ClusterRoleBinding", name, comp, "ClusterRole", name, name, ns),
        job(
            "create",
            [
                "create",
                f"--host=hami-scheduler,hami-scheduler.{ns}.svc",
                f"--namespace={ns}",
                f"--secret-name={secret}",
            ],
        ),
        job(
            "patch",
            [
                "patch",
                "--webhook-name=hami-webhook",
                f"--namespace={ns}",
                f"--secret-name={secret}",
                "--patch-mutating=true",
                "--patch-validating=false",
            ],
        ),
    ]


# ---------------------------------------------------------------------------- device config

DEVICE_CONFIG = """\
# hami's device config: HAMi's device-config.yaml keys, one section per vendor.
# Read by the scheduler (--device-config) and every device plugin (--config).
# A vendor without a section uses its defaults; see each vendors/hami-<vendor>/README.md.
nvidia:
  # HAMi's resource names (this is what HAMi's chart writes; hami-nvidia serves these names)
  resourceCountName: nvidia.com/gpu
  resourceMemoryName: nvidia.com/gpumem
  resourceMemoryPercentageName: nvidia.com/gpumem-percentage
  resourceCoreName: nvidia.com/gpucores
  resourcePriorityName: nvidia.com/priority
  # admission defaults
  overwriteEnv: false
  defaultMemory: 0
  defaultCores: 0
  defaultGPUNum: 1
  # how each card is offered
  deviceSplitCount: 10
  deviceMemoryScaling: 1
  deviceCoreScaling: 1
  # HAMi-core: 0 errors only, 1 warnings (HAMi's default), 3 info, 4 debug
  libCudaLogLevel: 1
  gpuCorePolicy: default
  disableCoreLimit: false
  runtimeClassName: ""
"""


def device_config_text() -> str:
    """The `device-config.yaml` the ConfigMap holds."""
    return DEVICE_CONFIG


def device_config_objects(values: Values) -> list[Obj]:
    """The ConfigMap shared by the scheduler and the device plugins."""
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("hami-device-config", "device-config", values.namespace),
            "data": {"device-config.yaml": device_config_text()},
        }
    ]


# ---------------------------------------------------------------------------- device plugins


def device_plugin_rbac_objects(values: Values) -> list[Obj]:
    """The device plugins' ServiceAccount and cluster role (shared by every vendor)."""
    ns = values.namespace
    name = "hami-device-plugin"
    comp = "device-plugin"
    return [
        _service_account(name, comp, ns),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _meta(name, comp),
            "rules": copy.deepcopy(list(DEVICE_PLUGIN_RULES)),
        },
        _binding("ClusterRoleBinding", name, comp, "ClusterRole", name, name, ns),
    ]


_INSTALL_HAMI_CORE = """\
set -eu
dir="$HOOK_PATH/vgpu"
mkdir -p "$dir/containers"
if [ ! -f /opt/hami-core/libvgpu.so ]; then
  echo "this image carries no HAMi-core; install $dir/libvgpu.so on the node yourself" >&2
  exit 0
fi
# copy, then rename: containers that already map the library keep their copy intact
cp /opt/hami-core/libvgpu.so "$dir/.libvgpu.so.new"
mv -f "$dir/.libvgpu.so.new" "$dir/libvgpu.so"
echo "$dir/libvgpu.so" > "$dir/.ld.so.preload.new"
mv -f "$dir/.ld.so.preload.new" "$dir/ld.so.preload"
echo "HAMi-core installed in $dir"
"""


def device_plugin_objects(values: Values, vendor: str) -> list[Obj]:
    """One vendor's device-plugin DaemonSet."""
    if vendor not in VENDORS:
        raise RenderError(f"unknown vendor {vendor!r} (known: {', '.join(VENDORS)})")
    deploy = VENDORS[vendor]
    comp = "device-plugin"
    name = f"hami-device-plugin-{vendor}"
    paths = (
        HostPath(DEVICE_PLUGIN_DIR, read_only=False, name="device-plugins"),
        HostPath("/dev", read_only=False, name="dev"),
        *deploy.host_paths,
    )
    mounts: list[Obj] = [
        {"name": p.volume_name(), "mountPath": p.path, "readOnly": p.read_only} for p in paths
    ]
    mounts.append({"name": "device-config", "mountPath": CONFIG_DIR + "/config", "readOnly": True})
    volumes: list[Obj] = [
        {"name": p.volume_name(), "hostPath": {"path": p.path, "type": p.type}} for p in paths
    ]
    volumes.append({"name": "device-config", "configMap": {"name": "hami-device-config"}})
    env: list[Obj] = [
        _field_env("NODE_NAME", "spec.nodeName"),
        {"name": "HAMI_VENDORS", "value": vendor},
    ]
    env.extend({"name": k, "value": v} for k, v in deploy.env.items())
    container = {
        "name": "device-plugin",
        "image": values.image,
        "imagePullPolicy": values.image_pull_policy,
        "args": [
            f"--log-level={values.log_level}",
            "device-plugin",
            f"--plugin-dir={DEVICE_PLUGIN_DIR}",
            f"--config={CONFIG_DIR}/config/device-config.yaml",
        ],
        "env": env,
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": {"privileged": True, "runAsUser": 0, "runAsNonRoot": False},
        "volumeMounts": mounts,
    }
    spec: Obj = {
        "serviceAccountName": "hami-device-plugin",
        "priorityClassName": "system-node-critical",
        "nodeSelector": dict(deploy.node_selector),
    }
    if deploy.tolerations:
        spec["tolerations"] = [dict(t) for t in deploy.tolerations]
    if vendor == "nvidia" and values.nvidia_runtime_class:
        spec["runtimeClassName"] = values.nvidia_runtime_class
    if deploy.installs_hami_core:
        hook = next(p for p in deploy.host_paths if p.path == f"{HOOK_PATH}/vgpu")
        spec["initContainers"] = [
            {
                "name": "install-hami-core",
                "image": values.image,
                "imagePullPolicy": values.image_pull_policy,
                "command": ["/bin/sh", "-c", _INSTALL_HAMI_CORE],
                "env": [{"name": "HOOK_PATH", "value": HOOK_PATH}],
                "securityContext": {"runAsUser": 0, "runAsNonRoot": False},
                "volumeMounts": [
                    {"name": hook.volume_name(), "mountPath": hook.path, "readOnly": False}
                ],
            }
        ]
    spec["containers"] = [container]
    spec["volumes"] = volumes
    selector = _selector(comp, **{"hami.io/vendor": vendor})
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": _meta(name, comp, values.namespace, **{"hami.io/vendor": vendor}),
            "spec": {
                "selector": {"matchLabels": selector},
                "updateStrategy": {"type": "RollingUpdate"},
                "template": {
                    "metadata": {
                        "labels": {
                            **_labels(comp, **{"hami.io/vendor": vendor}),
                            "hami.io/webhook": "ignore",
                        }
                    },
                    "spec": spec,
                },
            },
        }
    ]


# ---------------------------------------------------------------------------- assembly


def namespace_objects(values: Values) -> list[Obj]:
    """The namespace, labelled so the webhook never sees hami's own pods."""
    meta = _meta(values.namespace, "namespace")
    meta["labels"]["hami.io/webhook"] = "ignore"
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": meta}]


def base_files(values: Values, scheduler_config: Mapping[str, Any]) -> dict[str, list[Obj]]:
    """The objects of the base, by file name."""
    return {
        "namespace.yaml": namespace_objects(values),
        "scheduler.yaml": scheduler_objects(values, scheduler_config),
        "certgen.yaml": certgen_objects(values),
        "device-config.yaml": device_config_objects(values),
        "device-plugin-rbac.yaml": device_plugin_rbac_objects(values),
    }


def all_objects(values: Values, scheduler_config: Mapping[str, Any]) -> list[Obj]:
    """Every object of a deployment with these values, in apply order."""
    objects = [obj for objs in base_files(values, scheduler_config).values() for obj in objs]
    for vendor in values.vendors:
        objects.extend(device_plugin_objects(values, vendor))
    return objects


class _Dumper(yaml.SafeDumper):
    """Block scalars for multi-line strings, so embedded files stay readable."""


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data and not data.startswith(" ") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_representer)

_HEADER = (
    "# Generated by deploy/render.py; do not edit. Regenerate: python deploy/render.py --write\n"
)


def dump_stream(objects: Iterable[Obj]) -> str:
    """Objects as one YAML stream (`---` between documents)."""
    docs = [
        yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)
        for obj in objects
    ]
    return "---\n".join(docs)


def _kustomization(resources: Sequence[str]) -> str:
    doc = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": list(resources),
    }
    return yaml.safe_dump(doc, sort_keys=False)


def kustomize_tree(values: Values, scheduler_config: Mapping[str, Any]) -> dict[str, str]:
    """The files of deploy/kustomize/ (relative path → text) for these values.

    `kubectl apply -k deploy/kustomize` installs the base and the NVIDIA device plugin;
    `kubectl apply -k deploy/kustomize/device-plugin/<vendor>` adds another vendor's.
    """
    files: dict[str, str] = {}
    base = base_files(values, scheduler_config)
    for filename, objects in base.items():
        files[f"base/{filename}"] = _HEADER + dump_stream(objects)
    files["base/kustomization.yaml"] = _HEADER + _kustomization(list(base))
    for vendor in values.vendors:
        files[f"device-plugin/{vendor}/daemonset.yaml"] = _HEADER + dump_stream(
            device_plugin_objects(values, vendor)
        )
        files[f"device-plugin/{vendor}/kustomization.yaml"] = _HEADER + _kustomization(
            ["daemonset.yaml"]
        )
    default_vendor = "nvidia" if "nvidia" in values.vendors else values.vendors[0]
    files["kustomization.yaml"] = _HEADER + _kustomization(
        ["base", f"device-plugin/{default_vendor}"]
    )
    return files


def _write(tree: Mapping[str, str], root: Path) -> None:
    for rel, text in tree.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _stale(tree: Mapping[str, str], root: Path) -> list[str]:
    problems = []
    for rel, text in sorted(tree.items()):
        path = root / rel
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current != text:
            diff = difflib.unified_diff(
                current.splitlines(keepends=True),
                text.splitlines(keepends=True),
                f"{rel} (on disk)",
                f"{rel} (rendered)",
                n=1,
            )
            problems.append("".join(diff) or f"{rel}: missing\n")
    extra = {
        str(p.relative_to(root))
        for p in root.rglob("*.yaml")
        if str(p.relative_to(root)) not in tree
    }
    problems.extend(f"{rel}: not rendered any more; delete it\n" for rel in sorted(extra))
    return problems


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="render.py",
        description="Render hami's Kubernetes manifests (see the module docstring).",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="regenerate deploy/kustomize/")
    mode.add_argument("--check", action="store_true", help="fail when deploy/kustomize/ is stale")
    defaults = Values()
    parser.add_argument("--namespace", default=defaults.namespace)
    parser.add_argument("--image", default=defaults.image, help="hami's image")
    parser.add_argument("--image-pull-policy", default=defaults.image_pull_policy)
    parser.add_argument(
        "--kube-scheduler-version",
        default=None,
        help="your cluster's version, e.g. v1.33.2 (kube-scheduler must not be newer)",
    )
    parser.add_argument("--kube-scheduler-image", default=None, help="a full image reference")
    parser.add_argument("--certgen-image", default=defaults.certgen_image)
    parser.add_argument("--scheduler-name", default=defaults.scheduler_name)
    parser.add_argument("--scheduler-replicas", type=int, default=defaults.scheduler_replicas)
    parser.add_argument(
        "--webhook-failure-policy",
        default=defaults.webhook_failure_policy,
        choices=["Ignore", "Fail"],
    )
    parser.add_argument(
        "--log-level", default=defaults.log_level, choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    parser.add_argument(
        "--vendors",
        default=",".join(defaults.vendors),
        help=f"comma list of device plugins to deploy (default: all: {','.join(VENDORS)})",
    )
    parser.add_argument(
        "--nvidia-runtime-class",
        default="",
        help="runtimeClassName for the NVIDIA device plugin (e.g. nvidia) when the NVIDIA "
        "runtime is not the node's default",
    )
    parser.add_argument(
        "--scheduler-config",
        type=Path,
        default=HERE / "scheduler-config.yaml",
        help="the KubeSchedulerConfiguration from 'hami scheduler print-config'",
    )
    parser.add_argument("--out", type=Path, default=HERE / "kustomize", help=argparse.SUPPRESS)
    return parser


def values_from(args: argparse.Namespace) -> Values:
    """The `Values` the parsed command line describes (`RenderError` if invalid)."""
    image = args.kube_scheduler_image
    if image is None and args.kube_scheduler_version:
        version = args.kube_scheduler_version
        if not re.fullmatch(r"v\d+\.\d+\.\d+", version):
            raise RenderError(f"--kube-scheduler-version: expected vX.Y.Z, got {version!r}")
        image = f"registry.k8s.io/kube-scheduler:{version}"
    vendors = tuple(v.strip() for v in args.vendors.split(",") if v.strip())
    if not vendors:
        raise RenderError("--vendors: name at least one vendor")
    values = Values(
        namespace=args.namespace,
        image=args.image,
        image_pull_policy=args.image_pull_policy,
        certgen_image=args.certgen_image,
        scheduler_name=args.scheduler_name,
        scheduler_replicas=args.scheduler_replicas,
        webhook_failure_policy=args.webhook_failure_policy,
        log_level=args.log_level,
        vendors=vendors,
        nvidia_runtime_class=args.nvidia_runtime_class,
    )
    return replace(values, kube_scheduler_image=image) if image else values


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; 0 on success, 1 when --check finds stale files, 2 on bad input."""
    args = _parser().parse_args(argv)
    try:
        values = values_from(args)
        if (args.write or args.check) and values != Values():
            raise RenderError("--write and --check render the defaults; drop the other options")
        config = load_scheduler_config(args.scheduler_config)
        if args.write or args.check:
            tree = kustomize_tree(values, config)
        else:
            sys.stdout.write(_HEADER + dump_stream(all_objects(values, config)))
            return 0
    except RenderError as exc:
        print(f"render.py: {exc}", file=sys.stderr)
        return 2
    if args.write:
        _write(tree, args.out)
        return 0
    problems = _stale(tree, args.out)
    for problem in problems:
        sys.stderr.write(problem)
    if problems:
        print("render.py: deploy/kustomize/ is stale; run python deploy/render.py --write")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
