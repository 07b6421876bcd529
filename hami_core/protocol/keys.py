"""Annotation keys and fixed values shared by every vendor (HAMi v2.8+ names).

Per-vendor keys (register, handshake, to-allocate, allocated, pins) live on each vendor's spec;
`docs/annotations.md` lists them all.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ASSIGNED_NODE",
    "ASSIGNED_TIME",
    "BIND_PHASE",
    "BIND_PHASES",
    "BIND_PHASE_ALLOCATING",
    "BIND_PHASE_FAILED",
    "BIND_PHASE_SUCCESS",
    "BIND_TIME",
    "DEVICE_CORDON",
    "DEVICE_SCORING_WEIGHTS",
    "GPU_SCHEDULER_POLICY",
    "NODE_LOCK",
    "NODE_SCHEDULER_POLICY",
    "NVIDIA_DEVICES_ALLOCATED",
    "NVIDIA_DEVICES_TO_ALLOCATE",
    "NVIDIA_HANDSHAKE",
    "NVIDIA_MIG_ALLOCATIONS",
    "NVIDIA_PAIR_SCORE",
    "NVIDIA_REGISTER",
]

# Pod annotations written by the scheduler's filter.
ASSIGNED_NODE: Final = "hami.io/vgpu-node"
"""Chosen node name (also set as a pod label of the same key)."""
ASSIGNED_TIME: Final = "hami.io/vgpu-time"
"""Unix seconds of the filter decision, decimal string."""

# Pod annotations of the bind / Allocate lifecycle.
BIND_PHASE: Final = "hami.io/bind-phase"
"""`allocating` (scheduler bind), then `success` or `failed` (device plugin)."""
BIND_TIME: Final = "hami.io/bind-time"
"""Unix seconds of the bind, decimal string."""
BIND_PHASE_ALLOCATING: Final = "allocating"
BIND_PHASE_SUCCESS: Final = "success"
BIND_PHASE_FAILED: Final = "failed"
BIND_PHASES: Final = (BIND_PHASE_ALLOCATING, BIND_PHASE_SUCCESS, BIND_PHASE_FAILED)

# Node annotations common to every vendor.
NODE_LOCK: Final = "hami.io/mutex.lock"
"""Node lock `<RFC3339>,<namespace>,<pod>` held from bind until Allocate finishes."""
DEVICE_CORDON: Final = "hami.io/device-cordon"
"""Comma-separated device UUIDs excluded from new allocations."""

# Pod annotations that steer scoring.
NODE_SCHEDULER_POLICY: Final = "hami.io/node-scheduler-policy"
"""`binpack` or `spread`."""
GPU_SCHEDULER_POLICY: Final = "hami.io/gpu-scheduler-policy"
"""`binpack`, `spread`, `topology-aware`, `mutex`, `numa`, or a comma chain of them."""
DEVICE_SCORING_WEIGHTS: Final = "hami.io/device-scoring-weights"
"""`slot=<n>,core=<n>,memory=<n>`."""

# NVIDIA's keys, named here because the core codecs and docs refer to them.
NVIDIA_REGISTER: Final = "hami.io/node-nvidia-register"
NVIDIA_HANDSHAKE: Final = "hami.io/node-handshake"
NVIDIA_PAIR_SCORE: Final = "hami.io/node-nvidia-score"
NVIDIA_DEVICES_TO_ALLOCATE: Final = "hami.io/vgpu-devices-to-allocate"
NVIDIA_DEVICES_ALLOCATED: Final = "hami.io/vgpu-devices-allocated"
NVIDIA_MIG_ALLOCATIONS: Final = "hami.io/vgpu-mig-allocations"
