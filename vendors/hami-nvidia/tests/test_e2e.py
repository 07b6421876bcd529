"""An NVIDIA node end to end: real nvidia-ml-py over the fake libnvidia-ml.so.1, hami's node
agent and device plugin over gRPC to a fake kubelet, and a two-container pod allocated as
HAMi's NVIDIA device plugin would (see e2e_node.py for the node side)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from hami_core.protocol import decode_node_devices

SCRIPT = Path(__file__).parent / "e2e_node.py"
A100_0 = "GPU-6a1b0c6e-0000-4000-8000-00000000a100"
A100_1 = "GPU-6a1b0c6e-0001-4000-8000-00000000a100"


def run_node(libdir: Path, config: dict[str, Any]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("NODE_NAME", "HOOK_PATH")}
    env["LD_LIBRARY_PATH"] = str(libdir)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), json.dumps(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_two_containers_share_a_card_with_hamis_env_and_mounts(
    fake_libnvml: Path, tmp_path: Path
) -> None:
    hook = tmp_path / "hook"
    (hook / "vgpu").mkdir(parents=True)
    (hook / "vgpu" / "libvgpu.so").write_bytes(b"\x7fELF")
    lock = tmp_path / "vgpulock"
    config = {
        "nvidia": {
            "hookPath": str(hook),
            "vgpuLockPath": str(lock),
            "preConfiguredDeviceMemory": 119808,
            "libCudaLogLevel": "1",
        }
    }
    report = run_node(fake_libnvml, config)

    # registration: three cards, the one with a recurring XID 79 unhealthy everywhere
    cards = decode_node_devices(report["node_annotations"]["hami.io/node-nvidia-register"])
    assert [(c.id, c.count, c.devmem, c.health) for c in cards][:2] == [
        (A100_0, 10, 40960, True),
        (A100_1, 10, 40960, False),
    ]
    assert cards[2].devmem == 119808
    health = {
        uuid: ok for uuid, ok in ((i.rsplit("-", 1)[0], h) for i, h in report["kubelet_devices"])
    }
    assert health == {A100_0: True, A100_1: False, cards[2].id: True}
    assert report["first_card"] == A100_0

    # Allocate, container by container, exactly HAMi's response
    first, second = report["responses"]
    cache = first["envs"].pop("CUDA_DEVICE_MEMORY_SHARED_CACHE")
    assert re.fullmatch(rf"{re.escape(str(hook))}/vgpu/[0-9a-f-]{{36}}\.cache", cache)
    assert first["envs"] == {
        "NVIDIA_VISIBLE_DEVICES": A100_0,
        "CUDA_DEVICE_MEMORY_LIMIT_0": "3000m",
        "CUDA_DEVICE_SM_LIMIT": "30",
        "LIBCUDA_LOG_LEVEL": "1",
    }
    uid = report["pod_uid"]
    assert first["mounts"] == [
        [f"{hook}/vgpu/libvgpu.so", f"{hook}/vgpu/libvgpu.so", True],
        [f"{hook}/vgpu", f"{hook}/vgpu/containers/{uid}_main", False],
        ["/tmp/vgpulock", str(lock), False],
        ["/etc/ld.so.preload", f"{hook}/vgpu/ld.so.preload", True],
    ]
    assert first["devices"] == []  # the NVIDIA runtime adds the device nodes
    assert second["envs"]["CUDA_DEVICE_MEMORY_LIMIT_0"] == "5000m"
    assert second["envs"]["CUDA_DEVICE_MEMORY_SHARED_CACHE"] != cache
    assert "/etc/ld.so.preload" not in [m[0] for m in second["mounts"]]  # CUDA_DISABLE_CONTROL
    assert (hook / "vgpu" / "containers" / f"{uid}_main").is_dir()
    assert (hook / "vgpu" / "containers" / f"{uid}_sidecar").is_dir()

    # the pod is done: bind-phase success, node lock released
    assert report["bind_phase"] == "success" and not report["locked"]


GPU_CHECK = Path(__file__).resolve().parents[3] / "scripts" / "gpu-check"


def test_the_gpu_check_script_passes_on_the_fake_library(
    fake_libnvml: Path, tmp_path: Path
) -> None:
    """`scripts/gpu-check` (the manual check for real GPUs) against the fake library."""
    config = tmp_path / "device-config.yaml"
    config.write_text("nvidia:\n  preConfiguredDeviceMemory: 119808\n")
    env = {k: v for k, v in os.environ.items() if k not in ("NODE_NAME", "HOOK_PATH")}
    env["LD_LIBRARY_PATH"] = str(fake_libnvml)
    done = subprocess.run(
        [sys.executable, str(GPU_CHECK), "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    report = json.loads(done.stdout)
    assert report["problems"] == [] and done.returncode == 0, done.stderr[-4000:]
    discovered = report["discover"]["devices"]
    assert [(d["uuid"], d["health"]) for d in discovered][:2] == [(A100_0, True), (A100_1, False)]
    assert report["allocate"]["card"] == A100_0
    limits = [r["envs"]["CUDA_DEVICE_MEMORY_LIMIT_0"] for r in report["allocate"]["responses"]]
    assert limits == ["3000m", "5000m"]
