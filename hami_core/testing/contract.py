"""`VendorContract`: the tests every vendor distribution passes.

A vendor's `tests/test_contract.py` subclasses it and provides one fixture, `contract_case`,
returning a `ContractCase`: the plugin module, a few discovered cards, the device config and some
container requests that should fit. The inherited tests check what DESIGN.md §3 promises: the
spec is well-formed and loads beside the others, hooks answer `None` for a foreign vendor,
register annotations round-trip, fit never takes more than a card has, and `hami_mount` output
is well-formed.

    class TestContract(VendorContract):
        @pytest.fixture
        def contract_case(self) -> ContractCase:
            return ContractCase(plugin=hami_example.plugin, devices=[...], requests=[...])
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest

from hami_core.model import (
    AnnotationKeys,
    ContainerAllocation,
    ContainerDevice,
    ContainerRequest,
    ContainerRuntimeSpec,
    Device,
    DeviceInfo,
    DeviceUsage,
    FitContext,
    NodeView,
    PodView,
    ResourceNames,
    VendorSpec,
)
from hami_core.plugins import VendorRegistry, load_vendors

__all__ = ["ContractCase", "VendorContract"]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

FOREIGN = VendorSpec(
    key="contract-foreign",
    common_word="CONTRACT-FOREIGN",
    resources=ResourceNames(count="contract.example/foreign"),
    annotations=AnnotationKeys(
        node_register="contract.example/register", allocated="contract.example/allocated"
    ),
    register_format="json",
    mounting="runtime",
)
"""A vendor no plugin owns: every vendor must answer `None` for it."""


@dataclass
class ContractCase:
    """What a vendor supplies to the contract tests."""

    plugin: ModuleType | object
    devices: Sequence[Device]
    requests: Sequence[Mapping[str, Any]] = ()
    """Container `resources.limits` mappings that should fit on one of `devices`."""
    config: Mapping[str, Any] = field(default_factory=dict)
    node_name: str = "contract-node"
    node_capacity: Mapping[str, str] = field(default_factory=dict)
    """For vendors that register through node capacity: what the node would advertise."""
    name: str = "vendor-under-test"


class VendorContract:
    """Inherit and provide the `contract_case` fixture; every test here must pass."""

    @pytest.fixture
    def registry(self, contract_case: ContractCase) -> VendorRegistry:
        """A registry holding only the vendor under test (plus hami's generic hooks)."""
        return load_vendors(
            environ={}, entry_points_=[], plugins=[(contract_case.name, contract_case.plugin)]
        )

    @pytest.fixture
    def specs(self, registry: VendorRegistry) -> list[VendorSpec]:
        """The specs the vendor declares."""
        return registry.specs()

    def test_spec_loads_and_is_well_formed(
        self, registry: VendorRegistry, specs: list[VendorSpec]
    ) -> None:
        assert registry.errors == [], registry.errors
        assert specs, "hami_vendor must return at least one VendorSpec"
        for spec in specs:
            assert spec.resources.count in spec.resource_names()
            assert set(spec.advertised) <= set(spec.resource_names()) | set(spec.advertised)
            assert set(spec.ignored_by_scheduler) <= set(spec.resource_names())
            assert spec.annotations.allocated
            for name in spec.resource_names():
                assert "/" in name, f"{name!r} is not a domain-qualified resource name"

    def test_hooks_answer_none_for_a_foreign_vendor(self, contract_case: ContractCase) -> None:
        plugin = contract_case.plugin
        node = NodeView(name="n", annotations={})
        pod = PodView(namespace="ns", name="p", uid="u", annotations={})
        ctx = FitContext(pod=pod, node=node)
        device = Device(vendor=FOREIGN.key, uuid="F-0", index=0, model="F", memory_mib=1)
        request = ContainerRequest(vendor=FOREIGN.key, count=1)
        calls: dict[str, dict[str, Any]] = {
            "hami_discover": {"spec": FOREIGN, "config": {}},
            "hami_split": {"spec": FOREIGN, "device": device, "config": {}},
            "hami_annotate": {"spec": FOREIGN, "devices": [], "config": {}},
            "hami_advertise": {
                "spec": FOREIGN,
                "resource": FOREIGN.resources.count,
                "device": DeviceInfo(id="F-0", count=1, devmem=1, devcore=100, type="F"),
            },
            "hami_read_node": {"spec": FOREIGN, "node": node, "config": {}},
            "hami_allocate": {
                "spec": FOREIGN,
                "request": request,
                "devices": [],
                "context": ctx,
            },
            "hami_pod_annotations": {"spec": FOREIGN, "containers": [[]], "context": ctx},
            "hami_score_node": {
                "spec": FOREIGN,
                "devices": [],
                "containers": [[]],
                "context": ctx,
            },
            "hami_mount": {
                "allocation": ContainerAllocation(
                    vendor=FOREIGN.key,
                    pod_namespace="ns",
                    pod_name="p",
                    pod_uid="u",
                    container="c",
                    devices=(ContainerDevice("F-0", FOREIGN.common_word, 1, 0),),
                )
            },
            "hami_request": {
                "spec": FOREIGN,
                "container": {"name": "c"},
                "index": 0,
                "init": False,
                "pod": pod,
                "config": {},
            },
            "hami_mutate": {"spec": FOREIGN, "container": {"name": "c"}, "pod": {}, "config": {}},
        }
        for hook, kwargs in calls.items():
            impl = getattr(plugin, hook, None)
            if impl is None:
                continue
            assert impl(**kwargs) is None, f"{hook} must return None for a foreign vendor"

    def _infos(
        self, registry: VendorRegistry, case: ContractCase, spec: VendorSpec
    ) -> list[DeviceInfo]:
        infos: list[DeviceInfo] = []
        for device in case.devices:
            if device.vendor != spec.key:
                continue
            info = registry.hook.hami_split(spec=spec, device=device, config=case.config)
            assert isinstance(info, DeviceInfo)
            assert info.count >= 1 and info.devmem >= 0 and info.devcore >= 0
            infos.append(info)
        return infos

    def _node(
        self, registry: VendorRegistry, case: ContractCase, spec: VendorSpec
    ) -> tuple[NodeView, list[DeviceInfo]]:
        infos = self._infos(registry, case, spec)
        annotations = registry.hook.hami_annotate(spec=spec, devices=infos, config=case.config)
        assert isinstance(annotations, dict)
        node = NodeView(
            name=case.node_name,
            annotations=annotations,
            capacity=dict(case.node_capacity),
            allocatable=dict(case.node_capacity),
        )
        return node, infos

    def test_register_annotations_round_trip(
        self, registry: VendorRegistry, contract_case: ContractCase, specs: list[VendorSpec]
    ) -> None:
        seen = 0
        for spec in specs:
            node, infos = self._node(registry, contract_case, spec)
            read = registry.hook.hami_read_node(spec=spec, node=node, config=contract_case.config)
            assert isinstance(read, list)
            if not infos:
                continue
            seen += 1
            if spec.register_format in ("json", "legacy"):
                assert [(d.id, d.count, d.devmem, d.devcore, d.type) for d in read] == [
                    (d.id, d.count, d.devmem, d.devcore, d.type) for d in infos
                ]
            else:
                assert len(read) == len(infos), "capacity-registered cards must read back"
        assert seen, "the contract case has no device of any declared vendor"

    def test_fit_never_exceeds_a_card(
        self, registry: VendorRegistry, contract_case: ContractCase, specs: list[VendorSpec]
    ) -> None:
        assert contract_case.requests, "give at least one request that fits"
        fitted = 0
        for spec in specs:
            node, _ = self._node(registry, contract_case, spec)
            read = registry.hook.hami_read_node(spec=spec, node=node, config=contract_case.config)
            cards = [DeviceUsage.from_info(spec.key, info) for info in read]
            if not cards:
                continue
            pod = PodView(namespace="ns", name="p", uid="u", annotations={})
            ctx = FitContext(pod=pod, node=node, config=contract_case.config)
            for limits in contract_case.requests:
                if not any(name in limits for name in spec.resource_names()):
                    continue
                container = {"name": "c", "resources": {"limits": dict(limits)}}
                request = registry.hook.hami_request(
                    spec=spec,
                    container=container,
                    index=0,
                    init=False,
                    pod=pod,
                    config=contract_case.config,
                )
                assert isinstance(request, ContainerRequest) and request.count > 0
                for _ in range(64):  # place the same request until the node is full
                    result = registry.hook.hami_allocate(
                        spec=spec,
                        request=request,
                        devices=[c.copy() for c in cards],
                        context=ctx,
                    )
                    if not result.ok:
                        assert result.reasons, "a failed fit must say why"
                        break
                    fitted += 1
                    assert len(result.devices) == request.count
                    assert len({d.uuid for d in result.devices}) == len(result.devices)
                    by_id = {c.id: c for c in cards}
                    for share in result.devices:
                        by_id[share.uuid].take(share)
                    for c in cards:
                        assert c.used <= c.count, c
                        assert c.usedmem <= c.totalmem, c
                        assert c.usedcores <= c.totalcore, c
        assert fitted, "no request of the contract case fitted"

    def test_mount_is_well_formed(
        self, registry: VendorRegistry, contract_case: ContractCase, specs: list[VendorSpec]
    ) -> None:
        mounted = 0
        for spec in specs:
            devices = [d for d in contract_case.devices if d.vendor == spec.key]
            if not devices:
                continue
            shares = (ContainerDevice(devices[0].uuid, spec.common_word, 1024, 50),)
            allocation = ContainerAllocation(
                vendor=spec.key,
                pod_namespace="ns",
                pod_name="p",
                pod_uid="0000-uid",
                container="main",
                devices=shares,
                node_devices=tuple(devices),
                kubelet_ids=(f"{devices[0].uuid}-0",),
                config=contract_case.config,
            )
            answer = registry.hook.hami_mount(allocation=allocation)
            assert isinstance(answer, ContainerRuntimeSpec), f"{spec.key}: hami_mount missing"
            mounted += 1
            for name, value in answer.envs.items():
                assert _ENV_NAME.match(name), f"bad env name {name!r}"
                assert isinstance(value, str)
            for m in answer.mounts:
                assert m.container_path.startswith("/") and m.host_path.startswith("/")
            for d in answer.devices:
                assert d.container_path.startswith("/dev/") or d.container_path.startswith("/")
            if spec.mounting == "runtime":
                assert answer.envs or answer.cdi_devices, "a runtime vendor must name devices"
            else:
                assert answer.devices, "a builtin vendor must list device nodes"
        assert mounted, "the contract case has no device to mount"
