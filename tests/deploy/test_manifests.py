"""The manifests a user applies (`kubectl apply -k deploy/kustomize`), read as the cluster will.

Every object is validated against the Kubernetes OpenAPI schemas bundled with
`kubernetes-validate` (strict: unknown fields fail) for the newest bundled version and for the
oldest version the install guide supports; the pieces that must agree with each other (ports,
names, TLS files, scheduler name, flags the `hami` command accepts) are checked together.
"""

from __future__ import annotations

import copy
import io
import tomllib
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_kit import (
    DEFAULT,
    EVERY_VENDOR,
    KUSTOMIZE,
    ROOT,
    VENDOR_DIRS,
    Obj,
    containers,
    env,
    find,
    flag,
    render,
    volumes,
)

from hami_core.cli import build_parser
from hami_core.config import load_device_config

NEWEST = kubernetes_validate.latest_version()
OLDEST = "1.30"
"""The oldest Kubernetes docs/install.md supports; the manifests must be valid there too."""


def ident(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{obj['kind']}/{meta.get('namespace', '')}/{meta['name']}"


# ---------------------------------------------------------------- the files themselves


def test_committed_tree_is_what_render_writes() -> None:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = render.main(["--check"])
    assert code == 0, err.getvalue() + out.getvalue()


def test_a_stale_tree_is_reported(tmp_path: Path) -> None:
    stale = tmp_path / "kustomize"
    for path in KUSTOMIZE.rglob("*.yaml"):
        target = stale / path.relative_to(KUSTOMIZE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (stale / "base" / "namespace.yaml").write_text("# edited by hand\n", encoding="utf-8")
    (stale / "base" / "extra.yaml").write_text("{}\n", encoding="utf-8")
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        code = render.main(["--check", "--out", str(stale)])
    assert code == 1
    assert "base/namespace.yaml" in err.getvalue()
    assert "base/extra.yaml: not rendered any more" in err.getvalue()


@pytest.mark.parametrize("version", [NEWEST, OLDEST])
def test_every_object_is_valid_kubernetes(version: str) -> None:
    for obj in EVERY_VENDOR:
        kubernetes_validate.validate(obj, version, strict=True)


def test_validation_catches_a_misspelled_field() -> None:
    deployment = copy.deepcopy(find(DEFAULT, "Deployment", "hami-scheduler"))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, NEWEST, strict=True)


def test_no_object_is_defined_twice_and_the_default_install_is_base_plus_nvidia() -> None:
    counts = Counter(ident(o) for o in EVERY_VENDOR)
    assert [k for k, n in counts.items() if n > 1] == []
    daemonsets = {o["metadata"]["name"] for o in DEFAULT if o["kind"] == "DaemonSet"}
    assert daemonsets == {"hami-device-plugin-nvidia"}
    assert find(DEFAULT, "Deployment", "hami-scheduler")


def test_there_is_a_device_plugin_for_every_vendor_distribution() -> None:
    assert sorted(render.VENDORS) == VENDOR_DIRS
    names = {o["metadata"]["name"] for o in EVERY_VENDOR if o["kind"] == "DaemonSet"}
    assert names == {f"hami-device-plugin-{v}" for v in VENDOR_DIRS}


# ---------------------------------------------------------------- scheduler and webhook


def scheduler_configuration() -> dict[str, Any]:
    config_map = find(DEFAULT, "ConfigMap", "hami-scheduler-config")
    config: dict[str, Any] = yaml.safe_load(config_map["data"]["config.yaml"])
    return config


def extender() -> Obj:
    return containers(find(DEFAULT, "Deployment", "hami-scheduler"))["extender"]


def test_kube_scheduler_reaches_the_extender_over_https_on_its_port() -> None:
    config = scheduler_configuration()
    (stanza,) = config["extenders"]
    port = extender()["ports"][0]["containerPort"]
    assert stanza["urlPrefix"] == f"https://127.0.0.1:{port}"
    assert stanza["enableHTTPS"] is True
    assert stanza["filterVerb"] == "filter"
    assert stanza["bindVerb"] == "bind"
    assert stanza["nodeCacheCapable"] is True
    assert flag(extender()["args"], "bind-address") == f"0.0.0.0:{port}"


def test_kube_scheduler_configuration_uses_only_known_fields() -> None:
    """kube-scheduler decodes its configuration strictly: an unknown field stops it."""
    config = scheduler_configuration()
    assert config["apiVersion"] == "kubescheduler.config.k8s.io/v1"
    assert set(config) <= {
        "apiVersion",
        "kind",
        "leaderElection",
        "clientConnection",
        "parallelism",
        "percentageOfNodesToScore",
        "podInitialBackoffSeconds",
        "podMaxBackoffSeconds",
        "profiles",
        "extenders",
    }
    (stanza,) = config["extenders"]
    assert set(stanza) <= {
        "urlPrefix",
        "filterVerb",
        "preemptVerb",
        "prioritizeVerb",
        "weight",
        "bindVerb",
        "enableHTTPS",
        "tlsConfig",
        "httpTimeout",
        "nodeCacheCapable",
        "managedResources",
        "ignorable",
    }
    for resource in stanza["managedResources"]:
        assert set(resource) <= {"name", "ignoredByScheduler"}


def test_kube_scheduler_manages_every_vendor_resource() -> None:
    names = {r["name"] for r in scheduler_configuration()["extenders"][0]["managedResources"]}
    assert {"nvidia.com/gpu", "nvidia.com/gpumem", "nvidia.com/gpucores"} <= names
    assert "hygon.com/dcunum" in names and "metax-tech.com/gpu" in names


def test_one_scheduler_name_and_one_lease_namespace_everywhere() -> None:
    config = scheduler_configuration()
    deployment = find(DEFAULT, "Deployment", "hami-scheduler")
    namespace = deployment["metadata"]["namespace"]
    name = flag(extender()["args"], "scheduler-name")
    assert [p["schedulerName"] for p in config["profiles"]] == [name]
    assert config["leaderElection"]["leaderElect"] is True
    assert config["leaderElection"]["resourceName"] == name
    assert config["leaderElection"]["resourceNamespace"] == namespace
    assert flag(extender()["args"], "lease-namespace") == namespace


def test_the_extender_serves_tls_from_the_secret_the_certificate_job_writes() -> None:
    deployment = find(DEFAULT, "Deployment", "hami-scheduler")
    args = extender()["args"]
    tls = volumes(deployment)["tls"]["secret"]
    create = find(DEFAULT, "Job", "hami-certgen-create")
    job_args = create["spec"]["template"]["spec"]["containers"][0]["args"]
    assert tls["secretName"] == flag(job_args, "secret-name")
    files = {i["key"]: i["path"] for i in tls["items"]}
    mount = next(m for m in extender()["volumeMounts"] if m["name"] == "tls")
    assert flag(args, "cert-file") == f"{mount['mountPath']}/{files['cert']}"
    assert flag(args, "key-file") == f"{mount['mountPath']}/{files['key']}"
    hosts = flag(job_args, "host").split(",")
    service = find(DEFAULT, "Service", "hami-scheduler")
    assert f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc" in hosts


def test_the_webhook_calls_the_scheduler_service() -> None:
    webhook_config = find(DEFAULT, "MutatingWebhookConfiguration", "hami-webhook")
    (webhook,) = webhook_config["webhooks"]
    service = find(DEFAULT, "Service", "hami-scheduler")
    ref = webhook["clientConfig"]["service"]
    assert (ref["name"], ref["namespace"]) == (
        service["metadata"]["name"],
        service["metadata"]["namespace"],
    )
    (port,) = service["spec"]["ports"]
    assert ref["port"] == port["port"]
    assert ref["path"] == "/webhook"
    assert port["targetPort"] in {p["name"] for p in extender()["ports"]}
    pod_labels = find(DEFAULT, "Deployment", "hami-scheduler")["spec"]["template"]["metadata"]
    assert service["spec"]["selector"].items() <= pod_labels["labels"].items()
    patch = find(DEFAULT, "Job", "hami-certgen-patch")["spec"]["template"]["spec"]
    assert flag(patch["containers"][0]["args"], "webhook-name") == "hami-webhook"


def test_the_webhook_sees_new_pods_except_those_labelled_ignore() -> None:
    (webhook,) = find(DEFAULT, "MutatingWebhookConfiguration", "hami-webhook")["webhooks"]
    assert webhook["rules"] == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CREATE"],
            "resources": ["pods"],
            "scope": "Namespaced",
        }
    ]
    ignore = {"key": "hami.io/webhook", "operator": "NotIn", "values": ["ignore"]}
    assert webhook["objectSelector"]["matchExpressions"] == [ignore]
    assert webhook["namespaceSelector"]["matchExpressions"] == [ignore]
    assert webhook["timeoutSeconds"] == 10
    assert webhook["failurePolicy"] == "Ignore"
    assert webhook["sideEffects"] == "None"
    assert "v1" in webhook["admissionReviewVersions"]


def test_hamis_own_pods_and_namespace_bypass_the_webhook() -> None:
    namespace = find(DEFAULT, "Namespace", "hami-system")
    assert namespace["metadata"]["labels"]["hami.io/webhook"] == "ignore"
    for obj in EVERY_VENDOR:
        if obj["kind"] in ("Deployment", "DaemonSet", "Job"):
            labels = obj["spec"]["template"]["metadata"]["labels"]
            assert labels["hami.io/webhook"] == "ignore", ident(obj)


def test_the_scheduler_pod_runs_as_non_root_with_a_read_only_root() -> None:
    deployment = find(DEFAULT, "Deployment", "hami-scheduler")
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    for container in containers(deployment).values():
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}


def test_the_extender_flags_are_ones_hami_scheduler_accepts() -> None:
    args = build_parser().parse_args(extender()["args"])
    assert args.command == "scheduler"
    assert args.bind_address == ("0.0.0.0", 8443)
    assert args.device_config.endswith("/device-config.yaml")


# ---------------------------------------------------------------- device config


def test_device_config_holds_hamis_keys_and_every_vendor_reads_it(tmp_path: Path) -> None:
    config_map = find(DEFAULT, "ConfigMap", "hami-device-config")
    path = tmp_path / "device-config.yaml"
    path.write_text(config_map["data"]["device-config.yaml"], encoding="utf-8")
    config = load_device_config(path)
    nvidia = config["nvidia"]
    assert nvidia["resourceCountName"] == "nvidia.com/gpu"
    assert nvidia["deviceSplitCount"] == 10
    assert nvidia["libCudaLogLevel"] == 1

    from hami_nvidia.settings import resolve_settings

    settings = resolve_settings(config, {"HOOK_PATH": render.HOOK_PATH})
    assert settings.split_count == 10
    assert settings.hook_path == render.HOOK_PATH


def test_device_config_is_mounted_where_both_services_read_it() -> None:
    pairs = [(extender(), flag(extender()["args"], "device-config"))]
    for obj in EVERY_VENDOR:
        if obj["kind"] == "DaemonSet":
            container = containers(obj)["device-plugin"]
            pairs.append((container, flag(container["args"], "config")))
    for container, path in pairs:
        mount = next(m for m in container["volumeMounts"] if m["name"] == "device-config")
        assert path == f"{mount['mountPath']}/device-config.yaml"
        assert "subPath" not in mount  # ConfigMap updates reach the file


# ---------------------------------------------------------------- device plugins


@pytest.mark.parametrize("vendor", VENDOR_DIRS)
def test_device_plugin_daemonset(vendor: str) -> None:
    daemonset = find(EVERY_VENDOR, "DaemonSet", f"hami-device-plugin-{vendor}")
    spec = daemonset["spec"]["template"]["spec"]
    container = containers(daemonset)["device-plugin"]
    variables = env(container)
    assert variables["HAMI_VENDORS"] == vendor
    assert variables["NODE_NAME"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert spec["nodeSelector"] == dict(render.VENDORS[vendor].node_selector)
    assert spec["serviceAccountName"] == "hami-device-plugin"
    args = build_parser().parse_args(container["args"])
    assert args.command == "device-plugin"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    host = {
        name: v["hostPath"]["path"] for name, v in volumes(daemonset).items() if "hostPath" in v
    }
    assert host[mounts[args.plugin_dir]] == "/var/lib/kubelet/device-plugins"
    assert host[mounts["/dev"]] == "/dev"


def test_nvidia_device_plugin_shares_hami_core_paths_with_the_vendor() -> None:
    from hami_nvidia.settings import DEFAULT_HOOK_PATH, NvidiaSettings

    daemonset = find(DEFAULT, "DaemonSet", "hami-device-plugin-nvidia")
    container = containers(daemonset)["device-plugin"]
    assert env(container)["HOOK_PATH"] == DEFAULT_HOOK_PATH
    mounted = {m["mountPath"] for m in container["volumeMounts"]}
    assert f"{DEFAULT_HOOK_PATH}/vgpu" in mounted
    assert NvidiaSettings().lock_dir in mounted
    (init,) = daemonset["spec"]["template"]["spec"]["initContainers"]
    assert env(init)["HOOK_PATH"] == DEFAULT_HOOK_PATH
    assert "/opt/hami-core/libvgpu.so" in init["command"][-1]


# ---------------------------------------------------------------- other values


def render_stream(*argv: str) -> list[Obj]:
    out = io.StringIO()
    with redirect_stdout(out):
        assert render.main(list(argv)) == 0
    return [d for d in yaml.safe_load_all(out.getvalue()) if d is not None]


def test_render_with_another_namespace_and_vendor_set() -> None:
    objects = render_stream(
        "--namespace=gpu-sharing",
        "--vendors=nvidia,hygon",
        "--image=registry.example.com/hami:0.1.0",
        "--kube-scheduler-version=v1.33.2",
        "--webhook-failure-policy=Fail",
        "--nvidia-runtime-class=nvidia",
    )
    for obj in objects:
        kubernetes_validate.validate(obj, NEWEST, strict=True)
        ns = obj["metadata"].get("namespace")
        if (
            ns is not None
            and obj["metadata"]["name"] != "hami-scheduler-gpu-sharing-authentication-reader"
        ):
            assert ns == "gpu-sharing", ident(obj)
        for subject in obj.get("subjects", []):
            assert subject["namespace"] == "gpu-sharing"
    assert {o["metadata"]["name"] for o in objects if o["kind"] == "DaemonSet"} == {
        "hami-device-plugin-nvidia",
        "hami-device-plugin-hygon",
    }
    deployment = find(objects, "Deployment", "hami-scheduler")
    images = {c["image"] for c in containers(deployment).values()}
    assert images == {"registry.example.com/hami:0.1.0", "registry.k8s.io/kube-scheduler:v1.33.2"}
    (webhook,) = find(objects, "MutatingWebhookConfiguration", "hami-webhook")["webhooks"]
    assert webhook["failurePolicy"] == "Fail"
    assert webhook["clientConfig"]["service"]["namespace"] == "gpu-sharing"
    nvidia = find(objects, "DaemonSet", "hami-device-plugin-nvidia")
    assert nvidia["spec"]["template"]["spec"]["runtimeClassName"] == "nvidia"
    config = yaml.safe_load(
        find(objects, "ConfigMap", "hami-scheduler-config")["data"]["config.yaml"]
    )
    assert config["leaderElection"]["resourceNamespace"] == "gpu-sharing"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--vendors=nvidia,quantum"], "vendors: unknown quantum"),
        (["--vendors=,"], "name at least one vendor"),
        (["--namespace=Bad_Name"], "namespace"),
        (["--kube-scheduler-version=1.33"], "expected vX.Y.Z"),
        (["--scheduler-replicas=0"], "scheduler_replicas"),
        (["--write", "--namespace=other"], "render the defaults"),
        (["--scheduler-config=/nonexistent/scheduler-config.yaml"], "print-config"),
    ],
)
def test_bad_values_are_refused_with_a_message(argv: list[str], message: str) -> None:
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        assert render.main(argv) == 2
    assert message in err.getvalue()


def test_a_scheduler_config_that_is_not_one_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "scheduler-config.yaml"
    bad.write_text("kind: ConfigMap\n", encoding="utf-8")
    with pytest.raises(render.RenderError, match="expected a KubeSchedulerConfiguration"):
        render.load_scheduler_config(bad)
    bad.write_text("kind: KubeSchedulerConfiguration\nextenders: []\n", encoding="utf-8")
    with pytest.raises(render.RenderError, match="exactly one extender"):
        render.load_scheduler_config(bad)


def test_image_version_follows_the_project_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert version["version"] == render.VERSION
    assert render.Values().image.endswith(f":{version['version']}")
