"""The NVIDIA spec speaks HAMi's names, and the installed distribution is found by hami."""

from __future__ import annotations

from hami_nvidia.spec import SPEC

from hami_core.plugins import load_vendors
from hami_core.protocol import keys
from hami_core.scheduling.pins import mode_key, numa_bind_key


def test_resources_and_annotations_are_hamis() -> None:
    assert SPEC.resources.all() == (
        "nvidia.com/gpu",
        "nvidia.com/gpumem",
        "nvidia.com/gpumem-percentage",
        "nvidia.com/gpucores",
        "nvidia.com/priority",
    )
    assert SPEC.advertised == ("nvidia.com/gpu",)
    assert set(SPEC.ignored_by_scheduler) == set(SPEC.resources.all())
    a = SPEC.annotations
    assert (a.node_register, a.handshake, a.pair_scores) == (
        keys.NVIDIA_REGISTER,
        keys.NVIDIA_HANDSHAKE,
        keys.NVIDIA_PAIR_SCORE,
    )
    assert (a.to_allocate, a.allocated) == (
        keys.NVIDIA_DEVICES_TO_ALLOCATE,
        keys.NVIDIA_DEVICES_ALLOCATED,
    )
    assert (numa_bind_key(SPEC), mode_key(SPEC)) == ("nvidia.com/numa-bind", "nvidia.com/vgpu-mode")
    assert SPEC.common_word == "NVIDIA" and SPEC.exclusive_by_default
    assert (SPEC.register_format, SPEC.mounting, SPEC.default_split) == ("json", "runtime", 10)


def test_the_installed_distribution_is_found_through_its_entry_point() -> None:
    registry = load_vendors(environ={"HAMI_VENDORS": "nvidia"})
    loaded = registry.vendors["nvidia"]
    assert (loaded.distribution, loaded.plugin, loaded.spec.key) == (
        "hami-nvidia",
        "nvidia",
        "nvidia",
    )
    assert registry.errors == []
