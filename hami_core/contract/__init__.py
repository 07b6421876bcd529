"""HAMi-core's container contract: what a container needs so HAMi-core limits its GPU slice.

Pure functions from plain values (a container's GPU shares, which container, the settings) to
the container edits (env, mounts, device nodes) in two dialects:

- `hami_edits`: what HAMi's NVIDIA device plugin returns from `Allocate` (per-card
  `CUDA_DEVICE_MEMORY_LIMIT_<i>=<MiB>m`, `/etc/ld.so.preload`, the per-container cache dir).
- `koordinator_edits` (+ `koordinator_pod_metadata`): what Koordinator's koordlet injects for
  pods labelled `koordinator.sh/gpu-isolation-provider: HAMi-core` (one byte-valued
  `CUDA_DEVICE_MEMORY_LIMIT`, `LD_PRELOAD`, device nodes by minor number).

Golden vectors any language can check live in `tests/contract/golden/`; `docs/koordinator.md`
describes the contract. Nothing here imports a vendor, the Kubernetes client or gRPC.
"""

from __future__ import annotations

from hami_core.contract.hami import hami_edits
from hami_core.contract.koordinator import (
    DEVICE_ALLOCATED,
    ISOLATION_PROVIDER,
    ISOLATION_PROVIDER_HAMI_CORE,
    KoordinatorGpu,
    decode_device_allocated,
    encode_device_allocated,
    koordinator_edits,
    koordinator_pod_metadata,
    memory_ratio,
    shares_from_device_allocated,
)
from hami_core.contract.model import (
    ContainerTarget,
    ContractError,
    GpuShare,
    HamiCoreSettings,
    PodMetadata,
    edits_json,
    settings_from_device_config,
)
from hami_core.contract.units import format_limit_mib, parse_limit

__all__ = [
    "DEVICE_ALLOCATED",
    "ISOLATION_PROVIDER",
    "ISOLATION_PROVIDER_HAMI_CORE",
    "ContainerTarget",
    "ContractError",
    "GpuShare",
    "HamiCoreSettings",
    "KoordinatorGpu",
    "PodMetadata",
    "decode_device_allocated",
    "edits_json",
    "encode_device_allocated",
    "format_limit_mib",
    "hami_edits",
    "koordinator_edits",
    "koordinator_pod_metadata",
    "memory_ratio",
    "parse_limit",
    "settings_from_device_config",
    "shares_from_device_allocated",
]
