"""hami hooks for the example accelerator: spec, discovery and mounting."""

from hami_core import hookimpl
from hami_core.model import (
    AnnotationKeys,
    ContainerAllocation,
    ContainerRuntimeSpec,
    Device,
    ResourceNames,
    VendorSpec,
    VendorUnavailable,
)
from hami_example import binding

SPEC = VendorSpec(
    key="example",
    common_word="EXAMPLE",
    resources=ResourceNames(
        count="example.com/xpu", memory="example.com/xpu-memory", cores="example.com/xpu-cores"
    ),
    advertised=("example.com/xpu",),
    ignored_by_scheduler=("example.com/xpu", "example.com/xpu-memory", "example.com/xpu-cores"),
    annotations=AnnotationKeys(
        node_register="hami.io/node-example-register",
        handshake="hami.io/node-handshake-example",
        to_allocate="hami.io/example-devices-to-allocate",
        allocated="hami.io/example-devices-allocated",
    ),
    register_format="json",
    mounting="runtime",
)


@hookimpl
def hami_vendor() -> VendorSpec:
    return SPEC


@hookimpl
def hami_discover(spec: VendorSpec, config: object) -> list[Device] | None:
    if spec.key != SPEC.key:
        return None
    cards = binding.read_cards()
    if cards is None:
        raise VendorUnavailable(spec.key, "HAMI_EXAMPLE_DEVICES is not set")
    return [Device(vendor=spec.key, index=i, **card) for i, card in enumerate(cards)]


@hookimpl
def hami_mount(allocation: ContainerAllocation) -> ContainerRuntimeSpec | None:
    if allocation.vendor != SPEC.key:
        return None
    envs = {f"EXAMPLE_MEMORY_LIMIT_{i}": f"{d.usedmem}m" for i, d in enumerate(allocation.devices)}
    envs["EXAMPLE_VISIBLE_DEVICES"] = ",".join(d.uuid for d in allocation.devices)
    return ContainerRuntimeSpec(envs=envs)
