"""`/webhook` as the apiserver calls it: AdmissionReview v1 and v1beta1 in, a JSON patch out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from extender_kit import (
    ALLOCATED,
    GPU,
    GPUCORES,
    GPUMEM,
    PRIORITY,
    Apiserver,
    fast_settings,
    running_scheduler,
    user_pod,
)

from hami_core.k8s.memory import MemoryCluster
from hami_core.plugins import VendorRegistry
from hami_core.protocol.keys import ASSIGNED_NODE, BIND_PHASE, GPU_SCHEDULER_POLICY

Obj = dict[str, Any]
Admit = Callable[..., tuple[Obj, Obj]]


@pytest.fixture
def webhook(cluster: MemoryCluster, registry: VendorRegistry) -> Iterator[Callable[..., Admit]]:
    """`webhook(**settings)` → an `admit(pod, ...)` function against a scheduler so configured."""
    stack: list[Any] = []

    def make(**settings: Any) -> Admit:
        running = running_scheduler(cluster, registry, fast_settings(**settings))
        _service, url = running.__enter__()
        http = httpx.Client(base_url=url)
        stack.append((running, http))
        return Apiserver(http).admit

    yield make
    for running, http in reversed(stack):
        http.close()
        running.__exit__(None, None, None)


def container(pod: Obj, index: int = 0) -> Obj:
    """The pod's `index`-th app container."""
    result: Obj = pod["spec"]["containers"][index]
    return result


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_both_versions_set_the_scheduler_and_exclusive_cores(
    webhook: Callable[..., Admit], version: str
) -> None:
    admit = webhook()
    response, pod = admit(user_pod("whole", {GPU: "1"}), version=version)
    assert response["allowed"] is True
    assert pod["spec"]["schedulerName"] == "hami-scheduler"
    # a count-only request takes the whole card's cores, as HAMi's webhook defaults it
    assert container(pod)["resources"]["limits"] == {GPU: "1", GPUCORES: "100"}


def test_vendor_defaults_fill_in_count_and_priority_env(webhook: Callable[..., Admit]) -> None:
    admit = webhook()
    limits = {GPUMEM: "3000", PRIORITY: "1"}
    pod = user_pod("prio", limits)
    container(pod)["resources"]["requests"] = {GPUMEM: "3000", PRIORITY: "1"}
    container(pod)["env"] = [{"name": "KEEP", "value": "me"}]
    response, mutated = admit(pod)
    assert response["allowed"] is True
    resources = container(mutated)["resources"]
    assert resources["limits"] == {GPUMEM: "3000", PRIORITY: "1", GPU: "1"}
    assert resources["requests"] == {GPUMEM: "3000", PRIORITY: "1", GPU: "1"}
    assert container(mutated)["env"] == [
        {"name": "KEEP", "value": "me"},
        {"name": "CUDA_TASK_PRIORITY", "value": "1"},
    ]


def test_pods_without_devices_are_left_alone(webhook: Callable[..., Admit]) -> None:
    admit = webhook()
    response, pod = admit(user_pod("web", {"cpu": "1"}))
    assert response == {"uid": response["uid"], "allowed": True}
    assert "schedulerName" not in pod["spec"]


def test_forged_decisions_are_refused(webhook: Callable[..., Admit]) -> None:
    admit = webhook()
    for notes, labels, named in (
        ({ASSIGNED_NODE: "node-a"}, None, "annotation hami.io/vgpu-node"),
        ({ALLOCATED: "GPU-x,TGPU,1000,0:;"}, None, f"annotation {ALLOCATED}"),
        ({BIND_PHASE: "success"}, None, "annotation hami.io/bind-phase"),
        (None, {ASSIGNED_NODE: "node-a"}, "label hami.io/vgpu-node"),
    ):
        pod = user_pod("sneaky", {GPU: "1"}, annotations=notes, labels=labels)
        response, _ = admit(pod)
        assert response["allowed"] is False
        assert response["status"]["code"] == 403
        assert response["status"]["message"].startswith(named)
        assert "only the hami scheduler may set" in response["status"]["message"]
        assert "patch" not in response
    # the pod-level knobs users are meant to set are not decisions
    response, _ = admit(user_pod("ok", {GPU: "1"}, annotations={GPU_SCHEDULER_POLICY: "binpack"}))
    assert response["allowed"] is True


def test_forged_decisions_can_be_stripped_instead(webhook: Callable[..., Admit]) -> None:
    admit = webhook(strip_forged_annotations=True)
    pod = user_pod(
        "sneaky",
        {GPU: "1"},
        annotations={ALLOCATED: "GPU-x,TGPU,1000,0:;", "team": "a"},
        labels={ASSIGNED_NODE: "node-a", "app": "x"},
    )
    response, mutated = admit(pod)
    assert response["allowed"] is True
    assert mutated["metadata"]["annotations"] == {"team": "a"}
    assert mutated["metadata"]["labels"] == {"app": "x"}
    assert response["warnings"] == [
        f"removed annotation {ALLOCATED}, label hami.io/vgpu-node: "
        "only the hami scheduler may set these"
    ]


def test_refusals(webhook: Callable[..., Admit]) -> None:
    admit = webhook()
    cases = [
        (user_pod("priv", {GPU: "1"}, privileged=True), "container main is privileged"),
        (user_pod("pinned", {GPU: "1"}, nodeName="node-a"), "pod has node assigned"),
        (
            user_pod("pct", {GPU: "1", "hami.test/gpumem-percentage": "150"}),
            "container 'main': hami.test/gpumem-percentage: must be between 0 and 100, got 150",
        ),
        ({"metadata": {"name": "empty"}, "spec": {"containers": []}}, "pod has no containers"),
    ]
    for pod, message in cases:
        response, _ = admit(pod)
        assert response["allowed"] is False, message
        assert response["status"]["message"] == message
    # a privileged container in a pod that uses no device is none of hami's business
    response, _ = admit(user_pod("tools", {"cpu": "1"}, privileged=True))
    assert response["allowed"] is True


def test_scheduler_name_rules(webhook: Callable[..., Admit]) -> None:
    admit = webhook()
    response, pod = admit(user_pod("other", {GPU: "1"}, schedulerName="volcano"))
    assert response["allowed"] is True and "patch" not in response
    assert pod["spec"]["schedulerName"] == "volcano"
    response, pod = admit(user_pod("dflt", {GPU: "1"}, schedulerName="default-scheduler"))
    assert pod["spec"]["schedulerName"] == "hami-scheduler"

    keep = webhook(force_overwrite_default_scheduler=False)
    response, pod = keep(user_pod("dflt", {GPU: "1"}, schedulerName="default-scheduler"))
    assert response["allowed"] is True and "patch" not in response


def test_only_pod_creation_is_reviewed(webhook: Callable[..., Admit]) -> None:
    admit = webhook()
    forged = user_pod("old", {GPU: "1"}, annotations={ASSIGNED_NODE: "node-a"})
    response, _ = admit(forged, operation="UPDATE")
    assert response["allowed"] is True and "patch" not in response
