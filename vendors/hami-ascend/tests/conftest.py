"""Shared fixtures: a registry holding only hami-ascend (plus hami's generic hooks), and a
factory for a node's NPUs as the scheduler reads them back from their registration."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hami_ascend import plugin

from hami_core.model import Device, DeviceUsage, NodeView, VendorSpec
from hami_core.plugins import VendorRegistry, load_vendors


@pytest.fixture(scope="session")
def registry() -> VendorRegistry:
    """hami-ascend loaded the way hami loads it, beside hami's generic hooks."""
    loaded = load_vendors(environ={}, entry_points_=[], plugins=[("ascend", plugin)])
    assert loaded.errors == []
    return loaded


@pytest.fixture(scope="session")
def spec(registry: VendorRegistry) -> Callable[[str], VendorSpec]:
    """Look a chip's spec up by vendor key (`ascend910b3`)."""
    return registry.spec


NodeCards = Callable[..., tuple[NodeView, list[DeviceUsage]]]


@pytest.fixture
def node_cards(registry: VendorRegistry) -> NodeCards:
    """`node_cards(spec, n, config={}, node_annotations={})`: `n` healthy NPUs of the chip,
    split and registered by the plugin, then read back as the scheduler's cards."""

    def make(
        spec: VendorSpec,
        n: int,
        config: Mapping[str, Any] | None = None,
        node_annotations: Mapping[str, str] | None = None,
    ) -> tuple[NodeView, list[DeviceUsage]]:
        cfg = config or {}
        infos = [
            registry.hook.hami_split(
                spec=spec,
                device=Device(
                    vendor=spec.key,
                    uuid=f"{spec.key}-npu-{i}",
                    index=i,
                    model=spec.common_word,
                    memory_mib=65536,
                    extras={"phy_id": i},
                ),
                config=cfg,
            )
            for i in range(n)
        ]
        annotations = registry.hook.hami_annotate(spec=spec, devices=infos, config=cfg)
        node = NodeView(name="node-a", annotations={**annotations, **(node_annotations or {})})
        read = registry.hook.hami_read_node(spec=spec, node=node, config=cfg)
        return node, [DeviceUsage.from_info(spec.key, info) for info in read]

    return make
