"""Resolving a node's NVIDIA settings from HAMi's device config keys and per-node overrides."""

from __future__ import annotations

from typing import Any

import pytest
from hami_nvidia.settings import NvidiaSettings, resolve_settings

from hami_core.errors import ConfigError


def test_defaults_are_hamis_chart_values() -> None:
    s = resolve_settings({}, {})
    assert s == NvidiaSettings()
    assert (s.split_count, s.memory_scaling, s.core_scaling) == (10, 1.0, 1.0)
    assert s.hook_path == "/usr/local" and s.operating_mode == "hami-core"
    assert not s.topology_score


def test_the_nvidia_section_uses_hamis_keys() -> None:
    config = {
        "nvidia": {
            "deviceSplitCount": 4,
            "deviceMemoryScaling": 1.5,
            "deviceCoreScaling": "2",
            "preConfiguredDeviceMemory": 98304,
            "libCudaLogLevel": 3,
            "disableCoreLimit": True,
            "gpuCorePolicy": "force",
            "runtimeClassName": "nvidia",
            "overwriteEnv": "true",
            "hookPath": "/opt/hami/",
            "enableTopologyScore": True,
        }
    }
    s = resolve_settings(config, {})
    assert (s.split_count, s.memory_scaling, s.core_scaling) == (4, 1.5, 2.0)
    assert s.preconfigured_memory_mib == 98304 and s.libcuda_log_level == "3"
    assert s.disable_core_limit and s.gpu_core_policy == "force"
    assert s.runtime_class_name == "nvidia" and s.overwrite_env
    assert s.hook_path == "/opt/hami" and s.topology_score


def test_environment_is_read_like_hamis_device_plugin_and_config_wins() -> None:
    env = {"HOOK_PATH": "/host/hook", "ENABLE_TOPOLOGY_SCORE": "true", "NODE_NAME": "gpu-1"}
    s = resolve_settings({}, env)
    assert (s.hook_path, s.topology_score, s.node_name) == ("/host/hook", True, "gpu-1")
    s = resolve_settings({"nodeName": "gpu-2", "nvidia": {"hookPath": "/cfg"}}, env)
    assert (s.hook_path, s.node_name) == ("/cfg", "gpu-2")


NODECONFIG: list[dict[str, Any]] = [
    {
        "name": "gpu-1",
        "operatingmode": "mps",
        "devicesplitcount": 3,
        "devicememoryscaling": 0,
        "preconfigureddevicememory": 0,
        "libcudaloglevel": "",
        "filterdevices": {"uuid": ["GPU-bad", " "], "index": [3]},
    },
    {"name": "gpu-2", "devicesplitcount": 7},
]


@pytest.mark.parametrize("where", ["top", "section"])
def test_the_node_entry_overrides_non_zero_fields_only(where: str) -> None:
    section: dict[str, Any] = {"deviceSplitCount": 5, "deviceMemoryScaling": 2}
    config: dict[str, Any] = {"nvidia": section}
    if where == "top":
        config["nodeconfig"] = NODECONFIG
    else:
        section["nodeconfig"] = NODECONFIG
    s = resolve_settings(config, {"NODE_NAME": "gpu-1"})
    assert s.split_count == 3 and s.operating_mode == "mps"
    assert s.memory_scaling == 2.0  # a zero in the node entry does not override (mergo)
    assert s.filter_uuids == {"GPU-bad"} and s.filter_indices == {3}
    assert s.filtered("GPU-bad", 0) and s.filtered("GPU-ok", 3) and not s.filtered("GPU-ok", 0)
    other = resolve_settings(config, {"NODE_NAME": "gpu-9"})
    assert other.split_count == 5 and other.filter_uuids == frozenset()


@pytest.mark.parametrize(
    ("config", "names"),
    [
        ({"nvidia": {"deviceSplitCount": 0}}, "nvidia.deviceSplitCount"),
        ({"nvidia": {"deviceSplitCount": 2.5}}, "nvidia.deviceSplitCount"),
        ({"nvidia": {"deviceMemoryScaling": -1}}, "nvidia.deviceMemoryScaling"),
        ({"nvidia": {"deviceCoreScaling": True}}, "nvidia.deviceCoreScaling"),
        ({"nvidia": {"gpuCorePolicy": "sometimes"}}, "nvidia.gpuCorePolicy"),
        ({"nvidia": {"overwriteEnv": "yes"}}, "nvidia.overwriteEnv"),
        ({"nvidia": {"hookPath": "relative/dir"}}, "nvidia.hookPath"),
        ({"nvidia": ["not", "a", "mapping"]}, "nvidia"),
        ({"nodeconfig": {"name": "x"}}, "nodeconfig"),
        ({"nodeconfig": [{"name": "n", "operatingmode": "turbo"}]}, r"nodeconfig\[0\]"),
        ({"nodeconfig": [{"name": "n", "filterdevices": {"index": ["a"]}}]}, "filterdevices"),
    ],
)
def test_bad_values_name_the_key(config: dict[str, Any], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        resolve_settings(config, {"NODE_NAME": "n"})
