"""NVIDIA's additions to the webhook's admission defaults (pure; hami-protocol.md §7.4).

On top of the generic rule (default count, exclusive cores, percentage range):

- `nvidia.com/priority` → env `CUDA_TASK_PRIORITY`. HAMi-core knows two levels: `0` (high,
  e.g. online inference) and `1` (low, the default when unset); any other value is refused.
- `gpuCorePolicy` other than `default` → env `GPU_CORE_UTILIZATION_POLICY` on GPU containers.
- `runtimeClassName` from the config is set on pods that use NVIDIA GPUs and name none.
- `overwriteEnv` → `NVIDIA_VISIBLE_DEVICES=none` on containers that use no NVIDIA GPU, so a
  CUDA base image does not see every GPU of the node through the runtime's default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hami_core.errors import AdmissionDenied, RequestError
from hami_core.model import Mutation, VendorSpec
from hami_core.scheduling.requests import resource_value
from hami_nvidia.settings import NvidiaSettings
from hami_nvidia.spec import ENV_CORE_POLICY, ENV_TASK_PRIORITY, ENV_VISIBLE_DEVICES

__all__ = ["PRIORITIES", "nvidia_mutation", "task_priority"]

PRIORITIES = {0: "high", 1: "low"}
"""The task priorities HAMi-core implements."""


def task_priority(spec: VendorSpec, container: Mapping[str, Any]) -> int | None:
    """The container's `nvidia.com/priority` (limits, else requests), or None when unset.

    Raises `AdmissionDenied` naming the container and the value unless it is 0 or 1.
    """
    resource = spec.resources.priority
    name = str(container.get("name") or "")
    try:
        value = resource_value(spec, container, resource)
    except RequestError as exc:
        raise AdmissionDenied(str(exc)) from None
    if value is None:
        return None
    if value not in (0, 1):
        raise AdmissionDenied(
            f"container {name!r}: {resource}: {value} is not a priority; use 0 (high) or 1 (low)"
        )
    return int(value)


def nvidia_mutation(
    spec: VendorSpec,
    container: Mapping[str, Any],
    generic: Mutation,
    settings: NvidiaSettings,
) -> Mutation:
    """The generic mutation of one container with NVIDIA's env and runtime class added."""
    env = dict(generic.env)
    priority = task_priority(spec, container)
    if priority is not None:
        env[ENV_TASK_PRIORITY] = str(priority)
    runtime_class = generic.runtime_class_name
    if generic.uses_vendor:
        if settings.gpu_core_policy != "default":
            env[ENV_CORE_POLICY] = settings.gpu_core_policy
        if settings.runtime_class_name and runtime_class is None:
            runtime_class = settings.runtime_class_name
    elif settings.overwrite_env:
        env[ENV_VISIBLE_DEVICES] = "none"
    return generic.model_copy(update={"env": env, "runtime_class_name": runtime_class})
