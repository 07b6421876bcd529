"""The real `nvidia-ml-py` against a tiny C `libnvidia-ml.so.1` (tests/data/fake_nvml.c).

`pynvml` finds the library the way it does on a node, through the dynamic loader
(`CDLL("libnvidia-ml.so.1")`), so each check runs in a fresh interpreter with
`LD_LIBRARY_PATH` pointing at the compiled fake. This checks what a Python fake cannot: symbol
names (`_v2`, `_v3`), struct layouts, error codes and event data as ctypes sees them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SCRIPT = """
import json, sys
from hami_core.plugins import load_vendors
from hami_nvidia import plugin

config = json.loads(sys.argv[1])
registry = load_vendors(environ={}, entry_points_=[], plugins=[("nvidia", plugin)])
spec = registry.spec("nvidia")
devices = registry.hook.hami_discover(spec=spec, config=config)
infos = [registry.hook.hami_split(spec=spec, device=d, config=config) for d in devices]
annotations = registry.hook.hami_annotate(spec=spec, devices=infos, config=config)
print(json.dumps({
    "devices": [d.model_dump(mode="json") for d in devices],
    "annotations": annotations,
}))
"""

A100_0 = "GPU-6a1b0c6e-0000-4000-8000-00000000a100"
A100_1 = "GPU-6a1b0c6e-0001-4000-8000-00000000a100"
GB10 = "GPU-6a1b0c6e-0002-4000-8000-0000000000b1"


def discover(libdir: Path | None, config: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "NODE_NAME")}
    if libdir is not None:
        env["LD_LIBRARY_PATH"] = str(libdir)
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_real_pynvml_discovers_the_fake_library(fake_libnvml: Path) -> None:
    config = {
        "nvidia": {"preConfiguredDeviceMemory": 119808, "enableTopologyScore": True},
    }
    done = discover(fake_libnvml, config)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    devices = {d["uuid"]: d for d in out["devices"]}
    assert list(devices) == [A100_0, A100_1, GB10]
    assert devices[A100_0]["model"] == "NVIDIA A100-SXM4-40GB"
    assert devices[A100_0]["memory_mib"] == 40960
    assert devices[A100_0]["extras"]["busId"] == "0000:07:00.0"
    assert devices[GB10]["memory_mib"] == 119808  # NOT_SUPPORTED → preConfiguredDeviceMemory
    # XID 13 on GPU 0 is an application error; XID 79 on GPU 1 is not.
    assert [d["health"] for d in devices.values()] == [True, False, True]
    assert devices[A100_1]["extras"]["problem"] == "XID 79"
    assert devices[A100_0]["extras"]["links"][A100_1] == ["single-switch", "nvlink:2"]

    register = out["annotations"]["hami.io/node-nvidia-register"]
    assert register == (
        f'[{{"id":"{A100_0}","count":10,"devmem":40960,"devcore":100,'
        '"type":"NVIDIA A100-SXM4-40GB","mode":"hami-core","health":true},'
        f'{{"id":"{A100_1}","index":1,"count":10,"devmem":40960,"devcore":100,'
        '"type":"NVIDIA A100-SXM4-40GB","mode":"hami-core"},'
        f'{{"id":"{GB10}","index":2,"count":10,"devmem":119808,"devcore":100,'
        '"type":"NVIDIA GB10","mode":"hami-core","health":true}]'
    )
    scores = json.loads(out["annotations"]["hami.io/node-nvidia-score"])
    assert scores[0] == {"uuid": A100_0, "score": {A100_1: 250, GB10: 10}}


def test_without_the_library_nvidia_is_unavailable(tmp_path: Path) -> None:
    done = discover(tmp_path, {})
    assert done.returncode != 0
    assert "VendorUnavailable" in done.stderr
    assert "libnvidia-ml.so.1 was not found" in done.stderr
