"""The vendor contract: every hook a hardware vendor's plugin may implement.

Vendors are pluggy plugins found through the entry-point group `hami.vendors`. Hooks that concern
one vendor receive that vendor's `VendorSpec` (or an object that names it) and are `firstresult`:
an implementation returns `None` for anything that is not its own, and the first non-`None`
answer wins. hami registers generic implementations of the splittable hooks with `trylast`
(`hami_core.generic`), so a vendor whose cards share like NVIDIA's needs only `hami_vendor`,
`hami_discover` and `hami_mount`; anything else it implements overrides the generic rule.

Every hook below says who calls it, when, with what, and what it returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hami_core import hookspec
from hami_core.model import (
    ContainerAllocation,
    ContainerDevice,
    ContainerRequest,
    ContainerRuntimeSpec,
    Device,
    DeviceInfo,
    DeviceUsage,
    FitContext,
    FitResult,
    Mutation,
    NodeView,
    PodView,
    VendorSpec,
)

HOOK_NAMES = (
    "hami_vendor",
    "hami_discover",
    "hami_split",
    "hami_annotate",
    "hami_advertise",
    "hami_read_node",
    "hami_request",
    "hami_mutate",
    "hami_allocate",
    "hami_pod_annotations",
    "hami_score_node",
    "hami_mount",
)
"""Every hook of the contract, in the order a pod meets them."""


@hookspec
def hami_vendor() -> VendorSpec | Sequence[VendorSpec]:  # type: ignore[empty-body]
    """Describe the vendor(s) this plugin provides.

    Called by: every hami process once, when the registry loads plugins.
    Returns: one `VendorSpec`, or several when one distribution serves several chips (Ascend).
    Keys and resource names must be unique across all installed vendors.
    """


@hookspec(firstresult=True)
def hami_discover(spec: VendorSpec, config: Mapping[str, Any]) -> list[Device] | None:
    """Find this vendor's physical cards on the node, with their health.

    Called by: the node agent every register period, and `hami discover`.
    With: the vendor's spec and the whole device config (read your own section).
    Returns: the cards (possibly empty), or `None` if `spec` is not yours. Raise
    `hami_core.model.VendorUnavailable` when your library or tool is absent on this node.
    """


@hookspec(firstresult=True)
def hami_split(spec: VendorSpec, device: Device, config: Mapping[str, Any]) -> DeviceInfo | None:
    """Say how one physical card is offered to the scheduler.

    Called by: the node agent, for each discovered card, before registering.
    Returns: the card's `DeviceInfo` (split count, scaled memory and cores, type string), or
    `None` if `spec` is not yours. Generic rule: `deviceSplitCount` (default the spec's
    `default_split`), `deviceMemoryScaling`, `deviceCoreScaling` from the vendor's config section.
    """


@hookspec(firstresult=True)
def hami_annotate(
    spec: VendorSpec, devices: Sequence[DeviceInfo], config: Mapping[str, Any]
) -> dict[str, str] | None:
    """Render the node's register annotations for these cards.

    Called by: the node agent, which merge-patches the node only when the result changed.
    Returns: annotation key → value (e.g. `{"hami.io/node-nvidia-register": "[...]"}`; empty for
    vendors that register through capacity), or `None` if `spec` is not yours.
    """


@hookspec(firstresult=True)
def hami_advertise(spec: VendorSpec, resource: str, device: DeviceInfo) -> int | None:
    """Say how many kubelet devices one card offers under one advertised resource name.

    Called by: the device plugin's `ListAndWatch` for every resource in `spec.advertised`, and
    `hami simulate` to fill a node's capacity the way kubelet would.
    Returns: the number of kubelet device IDs to advertise for this card (the count resource
    uses `<uuid>-<k>`, memory units `<uuid>-memory-<i>`, core units `<uuid>-core-<i>`; generic: the
    split count, `device.count`; e.g. Cambricon offers 100 `vcore` units and memory/256
    `vmemory` units per card), or `None` to let the generic rule answer.
    """


@hookspec(firstresult=True)
def hami_read_node(
    spec: VendorSpec, node: NodeView, config: Mapping[str, Any]
) -> list[DeviceInfo] | None:
    """Read back the cards a node offers for this vendor, as the scheduler sees them.

    Called by: the scheduler's register loop and cache when a node's annotations or capacity
    change (never per filter), and by `hami simulate` for snapshots.
    Returns: the cards (empty when the node has none of this vendor), or `None` if `spec` is not
    yours. Raise `hami_core.protocol.ProtocolError` naming the annotation when it is malformed.
    """


@hookspec(firstresult=True)
def hami_request(
    spec: VendorSpec,
    container: Mapping[str, Any],
    index: int,
    init: bool,
    pod: PodView,
    config: Mapping[str, Any],
) -> ContainerRequest | None:
    """Turn one container's resource limits (falling back to requests) into a request.

    Called by: the scheduler for every init and app container of a pod being filtered.
    With: the JSON-shaped container, its index in init-then-app order, whether it is an init
    container, the pod and the device config.
    Returns: a `ContainerRequest` (count 0 means "asks nothing of this vendor"), or `None` to
    let the generic rule answer. Raise `hami_core.errors.RequestError` for a bad quantity.
    The answer must follow from the container, `index`, `init`, the config and the pod's
    namespace, labels and annotations (not its name or uid): the scheduler memoises it per
    pod shape, so the replicas of a workload are read once.
    """


@hookspec(firstresult=True)
def hami_mutate(
    spec: VendorSpec,
    container: Mapping[str, Any],
    pod: Mapping[str, Any],
    config: Mapping[str, Any],
) -> Mutation | None:
    """Apply the vendor's admission defaults to one container.

    Called by: the mutating webhook for every init and app container of a pod being created.
    Returns: the `Mutation` to apply (limits to set, env to add, pod annotations; an empty
    mutation when nothing changes), or `None` to let the generic rule answer. Raise
    `hami_core.errors.AdmissionDenied` to refuse the pod with a message.
    """


@hookspec(firstresult=True)
def hami_allocate(
    spec: VendorSpec,
    request: ContainerRequest,
    devices: Sequence[DeviceUsage],
    context: FitContext,
) -> FitResult | None:
    """Choose the cards and the exact share of each for one container's request.

    Called by: the scheduler's fit loop, per node and container, with this vendor's cards on the
    node already ordered by the GPU policy (the end of the list is tried first) and carrying the
    usage so far (earlier containers of the same pod included).
    Returns: a `FitResult` — the chosen `ContainerDevice`s, or HAMi-style reason counts — or
    `None` if `spec` is not yours. Must not modify `devices`. Vendor fit rules live here
    (templates, core groups, exclusivity, pins, NUMA, topology). The answer must follow from the
    arguments, the node object and the pod's namespace, labels and annotations (not its name or
    uid): the scheduler keeps a node's answer for a pod shape until the node changes.
    """


@hookspec(firstresult=True)
def hami_pod_annotations(
    spec: VendorSpec,
    containers: Sequence[Sequence[ContainerDevice]],
    context: FitContext,
) -> dict[str, str] | None:
    """Render the pod annotations that carry this vendor's decision to the node.

    Called by: the scheduler after choosing a node, once per vendor the pod uses.
    With: one device list per container (init first, empty for containers without a request).
    Returns: annotation key → value (generic: the to-allocate and allocated keys), or `None`
    to let the generic rule answer.
    """


@hookspec(firstresult=True)
def hami_score_node(
    spec: VendorSpec,
    devices: Sequence[DeviceUsage],
    containers: Sequence[Sequence[ContainerDevice]],
    context: FitContext,
) -> float | None:
    """Add a vendor-specific term to a node's score for a pod that fits there.

    Called by: the scheduler for each fitting node, after fit, with the node's cards (usage
    before this pod) and the pod's chosen devices of this vendor.
    Returns: a number added to the node score (higher is preferred under binpack, and the
    scheduler flips it under spread), or `None` to let the generic rule (0) answer. Kept with
    the node's fit until the node changes, as `hami_allocate`'s answer is.
    """


@hookspec(firstresult=True)
def hami_mount(allocation: ContainerAllocation) -> ContainerRuntimeSpec | None:
    """Tell kubelet how to give one container its assigned cards.

    Called by: the device plugin's `Allocate`, once per container, after it found the pod and
    popped that container's devices.
    Returns: env, mounts, device nodes, CDI names and annotations for the container
    (`runtime` vendors name the devices for their container runtime; `builtin` vendors list
    device nodes), or `None` if `allocation.vendor` is not yours.
    """
