"""The cluster to simulate: built from an inventory shorthand or read from a cluster snapshot.

Shorthand (a mapping with `nodes:`): each device entry becomes `count` physical cards
(`hami_core.model.Device`), each card is offered through the vendor's `hami_split`, the node's
register annotations come from `hami_annotate`, and its `status.capacity`/`allocatable` from
`hami_advertise` for every resource the vendor's device plugin serves — what the node agent
and the kubelet would publish. Capacity-registered vendors (`register_format: capacity`) are
also asked, without the generic fallback, about their other resource names (served by the
vendor's own device plugin); an entry's `advertise:` mapping states those numbers explicitly.

Snapshot (`kubectl get nodes,pods -A -o yaml`): Node objects as they are (register
annotations, capacity); pods bound to a node (`spec.nodeName`) are running and count as usage
through their `…-devices-allocated` annotations. A snapshot is a frozen moment, so in-flight
binds are taken as finished: node locks are dropped and bound pods still `Pending` are shown
`Running`. Pods not bound yet are left out (put them in a workload file to schedule them).
"""

from __future__ import annotations

import dataclasses
import difflib
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hami_core.errors import ConfigError
from hami_core.k8s.cluster import Obj
from hami_core.model import Device, DeviceInfo, NodeView, VendorSpec
from hami_core.plugins import VendorRegistry
from hami_core.protocol.keys import NODE_LOCK
from hami_core.quantity import QuantityError, parse_quantity
from hami_core.simulate.documents import Document, describe, read_documents
from hami_core.simulate.errors import InputError

__all__ = ["CardEntry", "Inventory", "NodeEntry", "build_node", "load_inventory"]

_NAME = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
_WIRE_UNSAFE = frozenset(",:;")
_GENERIC_PLUGIN = "hami-generic"
_MIB = Decimal(2**20)


class CardEntry(BaseModel):
    """`count` identical cards of one vendor on a node (one `devices:` entry of the shorthand)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vendor: str = Field(min_length=1, description="hami vendor key (see `hami vendors`)")
    model: str = Field(min_length=1, description="the card's model name, as discovery reports")
    memory: int = Field(gt=0, description="MiB per card (or a quantity such as `80Gi`)")
    cores: int | None = Field(default=None, ge=0, description="core units; default: a whole card")
    count: int = Field(default=1, ge=1, le=4096)
    split: int | None = Field(default=None, ge=1, description="sharers per card (overrides)")
    numa: int = Field(default=0, ge=0)
    uuids: list[str] | None = None
    health: bool = True
    paths: list[str] = Field(default_factory=list, description="device nodes; `{index}` expands")
    advertise: dict[str, int] = Field(
        default_factory=dict, description="kubelet devices per card, by resource name"
    )

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                amount = parse_quantity(value)
            except QuantityError as exc:
                raise ValueError(str(exc)) from None
            has_suffix = not value.strip().replace(".", "", 1).isdigit()
            mib = amount / _MIB if has_suffix else amount
            if mib != mib.to_integral_value():
                raise ValueError(f"{value!r} is not a whole number of MiB")
            return int(mib)
        return value

    @field_validator("uuids")
    @classmethod
    def _uuids(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for i, u in enumerate(value):
            if not u or _WIRE_UNSAFE & set(u):
                raise ValueError(f"uuids[{i}]: {u!r} must be non-empty without ',', ':' or ';'")
        if len(set(value)) != len(value):
            raise ValueError("uuids must be unique")
        return value

    @field_validator("advertise")
    @classmethod
    def _advertise(cls, value: dict[str, int]) -> dict[str, int]:
        for resource, units in value.items():
            if units < 0:
                raise ValueError(f"{resource}: must be >= 0, got {units}")
        return value


class NodeEntry(BaseModel):
    """One node of the shorthand: name, labels, annotations and its cards."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME, description="a Kubernetes node name")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    devices: list[CardEntry] = Field(default_factory=list)


class _Shorthand(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    nodes: list[NodeEntry]


@dataclass(slots=True)
class Inventory:
    """The cluster to start from: Node objects, the running pods, and each node's physical
    cards by vendor (known for the shorthand only; a snapshot does not carry them)."""

    file: str
    form: Literal["shorthand", "snapshot"]
    nodes: list[Obj] = field(default_factory=list)
    pods: list[Obj] = field(default_factory=list)
    devices: dict[str, dict[str, tuple[Device, ...]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------ shorthand


def _loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _shorthand_error(file: str, data: Mapping[str, Any], exc: ValidationError) -> InputError:
    error = exc.errors()[0]
    loc = list(error["loc"])
    obj = ""
    if len(loc) >= 2 and loc[0] == "nodes" and isinstance(loc[1], int):
        nodes = data.get("nodes")
        entry = nodes[loc[1]] if isinstance(nodes, list) and loc[1] < len(nodes) else None
        name = entry.get("name") if isinstance(entry, Mapping) else None
        obj = f'node "{name}" (nodes[{loc[1]}])' if isinstance(name, str) else f"nodes[{loc[1]}]"
        loc = loc[2:]
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] in ("missing", "extra_forbidden"):
        message = {"missing": "required", "extra_forbidden": "unknown field"}[error["type"]]
    return InputError(file, message, obj=obj, field=_loc(loc) or "nodes")


def _unknown_vendor(registry: VendorRegistry, key: str) -> str:
    installed = sorted(registry.vendors)
    close = difflib.get_close_matches(key, installed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"vendor {key!r} is not installed{hint}; installed: {', '.join(installed) or 'none'}"


def _card_uuid(rng: random.Random, spec: VendorSpec, taken: set[str]) -> str:
    while True:
        value = f"{spec.common_word}-{uuid.UUID(int=rng.getrandbits(128), version=4)}"
        if value not in taken:
            return value


def _advertised_units(
    registry: VendorRegistry, spec: VendorSpec, info: DeviceInfo, explicit: Mapping[str, int]
) -> dict[str, int]:
    """Kubelet devices one card offers per resource: the vendor's device plugin's numbers."""
    units: dict[str, int] = {}
    for resource in spec.advertised:
        answer = registry.hook.hami_advertise(spec=spec, resource=resource, device=info)
        if answer is not None:
            units[resource] = int(answer)
    if spec.register_format == "capacity":
        generic = registry.pm.get_plugin(_GENERIC_PLUGIN)
        own = registry.pm.subset_hook_caller(
            "hami_advertise", remove_plugins=[generic] if generic is not None else []
        )
        for resource in spec.resources.all():
            if resource in units:
                continue
            answer = own(spec=spec, resource=resource, device=info)
            if answer is not None:
                units[resource] = int(answer)
    units.update(explicit)
    return units


def build_node(
    entry: NodeEntry,
    registry: VendorRegistry,
    config: Mapping[str, Any],
    rng: random.Random,
    taken: set[str],
    *,
    file: str = "",
    position: int = 0,
) -> tuple[Obj, dict[str, tuple[Device, ...]]]:
    """The Node object the node agent and kubelet would publish for `entry`, and its cards.

    `taken` holds the card UUIDs already used in the cluster (extended here). Raises
    `InputError` for an unknown vendor, a wrong number of UUIDs or a vendor hook that fails.
    """
    obj = f'node "{entry.name}" (nodes[{position}])'
    by_vendor: dict[str, list[tuple[Device, CardEntry]]] = {}
    for i, card in enumerate(entry.devices):
        where = f"devices[{i}]"
        if card.vendor not in registry.vendors:
            raise InputError(
                file, _unknown_vendor(registry, card.vendor), obj=obj, field=f"{where}.vendor"
            )
        spec = registry.spec(card.vendor)
        if card.uuids is not None and len(card.uuids) != card.count:
            raise InputError(
                file,
                f"{len(card.uuids)} uuids for count {card.count}",
                obj=obj,
                field=f"{where}.uuids",
            )
        cards = by_vendor.setdefault(spec.key, [])
        for k in range(card.count):
            index = len(cards)
            given = card.uuids[k] if card.uuids is not None else None
            if given is not None and given in taken:
                raise InputError(
                    file, f"card uuid {given!r} is used twice", obj=obj, field=f"{where}.uuids"
                )
            card_uuid = given or _card_uuid(rng, spec, taken)
            taken.add(card_uuid)
            try:
                paths = tuple(p.format(index=index) for p in card.paths)
            except (KeyError, IndexError, ValueError) as exc:
                raise InputError(
                    file,
                    f"bad placeholder {exc} (only {{index}} is known)",
                    obj=obj,
                    field=f"{where}.paths",
                ) from None
            device = Device(
                vendor=spec.key,
                uuid=card_uuid,
                index=index,
                model=card.model,
                memory_mib=card.memory,
                cores=spec.core_units if card.cores is None else card.cores,
                numa=card.numa,
                health=card.health,
                paths=paths,
            )
            cards.append((device, card))

    annotations: dict[str, str] = {}
    capacity: dict[str, int] = {}
    allocatable: dict[str, int] = {}
    devices: dict[str, tuple[Device, ...]] = {}
    for key, cards in by_vendor.items():
        spec = registry.spec(key)
        infos: list[DeviceInfo] = []
        try:
            for device, card in cards:
                info = registry.hook.hami_split(spec=spec, device=device, config=config)
                if info is None:
                    raise ValueError(f"no hami_split answer for card {device.uuid}")
                if card.split is not None:
                    info = dataclasses.replace(info, count=card.split)
                infos.append(info)
                for resource, units in _advertised_units(
                    registry, spec, info, card.advertise
                ).items():
                    capacity[resource] = capacity.get(resource, 0) + units
                    allocatable.setdefault(resource, 0)
                    if device.health:
                        allocatable[resource] += units
            annotations.update(registry.hook.hami_annotate(spec=spec, devices=infos, config=config))
        except (InputError, ConfigError):
            raise
        except Exception as exc:
            raise InputError(
                file,
                f"vendor {key} cannot offer these cards: {type(exc).__name__}: {exc}",
                obj=obj,
                field="devices",
            ) from None
        devices[key] = tuple(d for d, _ in cards)
    annotations.update(entry.annotations)
    node: Obj = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": entry.name,
            "labels": {"kubernetes.io/hostname": entry.name, **entry.labels},
            "annotations": annotations,
        },
        "status": {
            "capacity": {k: str(v) for k, v in sorted(capacity.items())},
            "allocatable": {k: str(v) for k, v in sorted(allocatable.items())},
        },
    }
    return node, devices


def _readback_warnings(
    registry: VendorRegistry,
    config: Mapping[str, Any],
    node: Obj,
    devices: Mapping[str, Sequence[Device]],
) -> list[str]:
    """Where the scheduler would not see the cards the inventory lists (a vendor whose node
    capacity hami cannot know, a register hook that does not round-trip)."""
    view = NodeView.from_obj(node)
    out: list[str] = []
    for key, cards in devices.items():
        spec = registry.spec(key)
        try:
            seen = registry.hook.hami_read_node(spec=spec, node=view, config=config) or []
        except Exception as exc:
            out.append(f"node {view.name}: {key}: the scheduler cannot read the cards: {exc}")
            continue
        if len(seen) != len(cards):
            hint = ""
            if spec.register_format == "capacity":
                names = ", ".join(r for r in spec.resources.all() if r not in view.capacity)
                hint = (
                    f" (its cards are read from node capacity; state the kubelet devices per "
                    f"card with `advertise:` for {names})"
                    if names
                    else ""
                )
            out.append(
                f"node {view.name}: {key}: the inventory lists {len(cards)} card(s) but the "
                f"scheduler reads {len(seen)} from the node{hint}"
            )
    return out


def _load_shorthand(
    file: str,
    data: Mapping[str, Any],
    registry: VendorRegistry,
    config: Mapping[str, Any],
    seed: int,
) -> Inventory:
    try:
        parsed = _Shorthand.model_validate(data)
    except ValidationError as exc:
        raise _shorthand_error(file, data, exc) from None
    inventory = Inventory(file=file, form="shorthand")
    rng = random.Random(seed)
    taken: set[str] = set()
    seen: dict[str, int] = {}
    for i, entry in enumerate(parsed.nodes):
        if entry.name in seen:
            raise InputError(
                file,
                f"node name {entry.name!r} is also used by nodes[{seen[entry.name]}]",
                obj=f"nodes[{i}]",
                field="name",
            )
        seen[entry.name] = i
        node, devices = build_node(entry, registry, config, rng, taken, file=file, position=i)
        inventory.nodes.append(node)
        inventory.devices[entry.name] = devices
        inventory.warnings.extend(_readback_warnings(registry, config, node, devices))
    return inventory


# ------------------------------------------------------------------------------ snapshot


def _meta(doc: Document) -> dict[str, Any]:
    meta = doc.obj.get("metadata")
    if not isinstance(meta, dict):
        raise InputError(doc.file, "must be a mapping", obj=describe(doc), field="metadata")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise InputError(doc.file, "required", obj=describe(doc), field="metadata.name")
    for key in ("labels", "annotations"):
        values = meta.get(key)
        if values is None:
            continue
        if not isinstance(values, dict):
            raise InputError(
                doc.file, "must be a mapping", obj=describe(doc), field=f"metadata.{key}"
            )
        for k, v in values.items():
            if not isinstance(v, str):
                raise InputError(
                    doc.file,
                    f"must be a string, got {type(v).__name__}",
                    obj=describe(doc),
                    field=f"metadata.{key}[{k!r}]",
                )
    return meta


def _snapshot_node(doc: Document) -> Obj:
    obj = dict(doc.obj)
    meta = dict(_meta(doc))
    status = obj.get("status")
    if status is not None and not isinstance(status, dict):
        raise InputError(doc.file, "must be a mapping", obj=describe(doc), field="status")
    for part in ("capacity", "allocatable"):
        values = (status or {}).get(part)
        if values is not None and not isinstance(values, dict):
            raise InputError(
                doc.file, "must be a mapping", obj=describe(doc), field=f"status.{part}"
            )
    annotations = dict(meta.get("annotations") or {})
    annotations.pop(NODE_LOCK, None)
    meta["annotations"] = annotations
    meta.pop("resourceVersion", None)
    obj["metadata"] = meta
    return obj


def _snapshot_pod(doc: Document) -> Obj | None:
    obj = dict(doc.obj)
    meta = dict(_meta(doc))
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise InputError(doc.file, "must be a mapping", obj=describe(doc), field="spec")
    containers = spec.get("containers")
    if not isinstance(containers, list) or not all(isinstance(c, dict) for c in containers):
        raise InputError(
            doc.file, "must be a list of containers", obj=describe(doc), field="spec.containers"
        )
    if not spec.get("nodeName"):
        return None
    meta.pop("resourceVersion", None)
    meta.setdefault("namespace", "default")
    obj["metadata"] = meta
    status = dict(obj.get("status") or {})
    if status.get("phase", "Pending") == "Pending":
        status["phase"] = "Running"
    obj["status"] = status
    return obj


def _load_snapshot(file: str, docs: list[Document]) -> Inventory:
    inventory = Inventory(file=file, form="snapshot")
    names: set[str] = set()
    pods: set[tuple[str, str]] = set()
    pending: list[str] = []
    ignored: dict[str, int] = {}
    for doc in docs:
        if not isinstance(doc.obj, Mapping):
            raise InputError(
                file, f"expected a Kubernetes object, got {type(doc.obj).__name__}", obj=doc.where
            )
        kind = doc.obj.get("kind")
        if kind == "Node":
            node = _snapshot_node(doc)
            name = node["metadata"]["name"]
            if name in names:
                raise InputError(file, "the node appears twice", obj=describe(doc))
            names.add(name)
            inventory.nodes.append(node)
        elif kind == "Pod":
            pod = _snapshot_pod(doc)
            if pod is None:
                pending.append(describe(doc))
                continue
            key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
            if key in pods:
                raise InputError(file, "the pod appears twice", obj=describe(doc))
            pods.add(key)
            inventory.pods.append(pod)
        elif isinstance(kind, str) and kind:
            ignored[kind] = ignored.get(kind, 0) + 1
        else:
            raise InputError(
                file,
                "required (a snapshot holds Node and Pod objects)",
                obj=describe(doc),
                field="kind",
            )
    if not inventory.nodes:
        raise InputError(file, "the snapshot holds no Node objects")
    if pending:
        inventory.warnings.append(
            f"{file}: {len(pending)} pod(s) not bound to a node are left out "
            f"(schedule them from a workload file): {', '.join(pending[:5])}"
            + (" ..." if len(pending) > 5 else "")
        )
    if ignored:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(ignored.items()))
        inventory.warnings.append(f"{file}: ignored objects other than Node and Pod: {kinds}")
    return inventory


# ------------------------------------------------------------------------------ entry point


def load_inventory(
    path: str,
    registry: VendorRegistry,
    config: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
) -> Inventory:
    """Read an inventory file in either form (module docstring).

    `seed` drives the card UUIDs generated for shorthand entries without `uuids`. Raises
    `InputError` naming the file, object and field of the first problem found.
    """
    config = config or {}
    docs = read_documents(path)
    if not docs:
        raise InputError(path, "the file is empty")
    first = docs[0].obj
    if len(docs) == 1 and isinstance(first, Mapping) and "nodes" in first and "kind" not in first:
        return _load_shorthand(path, first, registry, config, seed)
    if len(docs) == 1 and isinstance(first, Mapping) and "kind" not in first:
        raise InputError(
            path,
            "expected an inventory (a mapping with `nodes:`) or a cluster snapshot "
            "(Node and Pod objects, as `kubectl get nodes,pods -A -o yaml` prints them)",
        )
    return _load_snapshot(path, docs)
