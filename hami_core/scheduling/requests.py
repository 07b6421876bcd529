"""Container requests: what a container asks of a vendor, read from its resource limits.

`generic_request` is HAMi's `GenerateResourceRequests` (reference §4) generalised over a
`VendorSpec`; `pod_requests` asks every installed vendor about every container of a pod.

Rules of `generic_request`, in order:

1. Each resource is read from `resources.limits`, falling back to `resources.requests`. Every
   value must be a non-negative whole quantity; anything else is a `RequestError` naming the
   container and the resource (HAMi silently drops such requests; hami says why).
2. No count: the container asks nothing, unless it names memory, memory percentage or cores and
   the default count (`defaultGPUNum` in the vendor's config section, else
   `spec.default_count`) is above 0 — then it asks for the default count. Count 0 asks nothing.
3. `spec.whole_card_only`: memory, percentage or cores is a `RequestError`; the request is
   whole cards (100 % of memory, `spec.core_units` cores).
4. `spec.memory_values`: a memory value (in memory units) outside the list is a `RequestError`
   listing the allowed values.
5. Memory MiB = value * `spec.memory_unit_mib` * `memoryFactor` (section, default 1).
6. Percentage must lie in 0..100 (`RequestError` otherwise); 0 means "not given", as in HAMi.
7. Neither memory nor percentage: `defaultMemory` MiB (section, else `spec.default_memory_mib`)
   when above 0, else 100 %.
8. Cores: the value given, else `defaultCores` (section, else `spec.default_cores`).
9. `spec.multi_device == "whole"` and count > 1: each card is taken whole (100 %, all cores).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from hami_core.errors import ConfigError, HamiError, RequestError
from hami_core.model import ContainerRequest, PodView, VendorSpec
from hami_core.quantity import QuantityError, parse_quantity

if TYPE_CHECKING:
    from hami_core.plugins import VendorRegistry

__all__ = [
    "MAX_MEMORY_MIB",
    "PodShapeError",
    "RequestMemo",
    "container_list",
    "generic_request",
    "pod_requests",
    "resource_value",
    "section_int",
]

log = logging.getLogger(__name__)

MAX_MEMORY_MIB = 2**31 - 1
"""The largest memory a request may name, in MiB (HAMi stores it as int32)."""


class PodShapeError(RequestError):
    """The pod object itself is malformed (e.g. `spec.containers` is not a list)."""

    def __init__(self, field: str, problem: str) -> None:
        HamiError.__init__(self, f"{field}: {problem}")
        self.vendor = ""
        self.container = ""
        self.resource = field
        self.problem = problem


def section_int(section: Mapping[str, Any], key: str, default: int, *, minimum: int = 0) -> int:
    """An integer setting of a vendor's config section, `default` when absent.

    Raises `ConfigError` naming the key when the value is not a whole number >= `minimum`.
    """
    value = section.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{key}: expected a whole number, got {value!r}")
    try:
        number = parse_quantity(value)
    except QuantityError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    if number != number.to_integral_value() or number < minimum:
        raise ConfigError(f"{key}: expected a whole number >= {minimum}, got {value!r}")
    return int(number)


def _resources(container: Mapping[str, Any], name: str) -> tuple[Mapping[str, Any], ...]:
    resources = container.get("resources") or {}
    if not isinstance(resources, Mapping):
        raise PodShapeError(f"container {name!r}: resources", "expected a mapping")
    out: list[Mapping[str, Any]] = []
    for part in ("limits", "requests"):
        values = resources.get(part) or {}
        if not isinstance(values, Mapping):
            raise PodShapeError(f"container {name!r}: resources.{part}", "expected a mapping")
        out.append(values)
    return tuple(out)


def resource_value(
    spec: VendorSpec, container: Mapping[str, Any], resource: str | None
) -> Decimal | None:
    """The exact value of `resource` in the container's limits, else its requests, else None.

    Raises `RequestError` naming the container and resource when the value is not a quantity.
    """
    if resource is None:
        return None
    name = str(container.get("name") or "")
    limits, requests = _resources(container, name)
    raw = limits.get(resource)
    if raw is None:
        raw = requests.get(resource)
    if raw is None:
        return None
    try:
        return parse_quantity(raw)
    except QuantityError as exc:
        raise RequestError(
            vendor=spec.key, container=name, resource=resource, problem=str(exc)
        ) from None


def _whole(spec: VendorSpec, container: Mapping[str, Any], resource: str | None) -> int | None:
    value = resource_value(spec, container, resource)
    if value is None or resource is None:
        return None
    name = str(container.get("name") or "")
    if value != value.to_integral_value():
        raise RequestError(
            vendor=spec.key,
            container=name,
            resource=resource,
            problem=f"expected a whole number, got {value}",
        )
    if value < 0:
        raise RequestError(
            vendor=spec.key,
            container=name,
            resource=resource,
            problem=f"must not be negative, got {value}",
        )
    return int(value)


def generic_request(
    spec: VendorSpec,
    container: Mapping[str, Any],
    index: int,
    init: bool,
    section: Mapping[str, Any],
) -> ContainerRequest:
    """What `container` asks of `spec`'s vendor under HAMi's rules (module docstring).

    `section` is the vendor's own part of the device config. Returns a request with count 0
    when the container asks nothing of this vendor; raises `RequestError` for a bad value.
    """
    name = str(container.get("name") or "")
    res = spec.resources
    count = _whole(spec, container, res.count)
    memory = _whole(spec, container, res.memory)
    percent = _whole(spec, container, res.memory_percentage)
    cores = _whole(spec, container, res.cores)

    def empty() -> ContainerRequest:  # built unvalidated: every field is known good
        return ContainerRequest.model_construct(
            vendor=spec.key, container=name, container_index=index, init=init, count=0
        )

    if count is None:
        default_count = section_int(section, "defaultGPUNum", spec.default_count)
        if default_count == 0 or (memory is None and percent is None and cores is None):
            return empty()
        count = default_count
    if count == 0:
        return empty()

    def refuse(resource: str, problem: str) -> RequestError:
        return RequestError(vendor=spec.key, container=name, resource=resource, problem=problem)

    if spec.whole_card_only:
        for resource, value in (
            (res.memory, memory),
            (res.memory_percentage, percent),
            (res.cores, cores),
        ):
            if value is not None and resource is not None:
                raise refuse(
                    resource,
                    f"{spec.display_name or spec.key} cards are allocated whole; "
                    f"ask only for {res.count}",
                )
        return _whole_cards(spec, name, index, init, count)

    if percent is not None and percent > 100 and res.memory_percentage is not None:
        raise refuse(res.memory_percentage, f"must be between 0 and 100, got {percent}")
    if memory is not None and spec.memory_values and memory not in spec.memory_values:
        allowed = ", ".join(str(v) for v in spec.memory_values)
        raise refuse(str(res.memory), f"{memory} is not allowed; use one of {allowed}")

    factor = section_int(section, "memoryFactor", 1, minimum=1)
    memory_mib = (memory or 0) * spec.memory_unit_mib * factor
    if memory_mib > MAX_MEMORY_MIB:
        raise refuse(
            str(res.memory), f"{memory_mib} MiB is more than the {MAX_MEMORY_MIB} MiB limit"
        )
    memory_percent = percent or None
    if memory_mib == 0 and memory_percent is None:
        default_memory = section_int(section, "defaultMemory", spec.default_memory_mib)
        if default_memory > 0:
            memory_mib = default_memory
        else:
            memory_percent = 100
    if cores is None:
        cores = section_int(section, "defaultCores", spec.default_cores)

    if spec.multi_device == "whole" and count > 1:
        return _whole_cards(spec, name, index, init, count)
    return ContainerRequest(
        vendor=spec.key,
        container=name,
        container_index=index,
        init=init,
        count=count,
        memory_mib=memory_mib,
        memory_percent=memory_percent,
        cores=cores,
    )


def _whole_cards(
    spec: VendorSpec, name: str, index: int, init: bool, count: int
) -> ContainerRequest:
    return ContainerRequest(
        vendor=spec.key,
        container=name,
        container_index=index,
        init=init,
        count=count,
        memory_percent=100,
        cores=spec.core_units,
    )


def container_list(pod: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], bool]]:
    """The pod's containers as `(container, is_init)`, init containers first, then app.

    Raises `PodShapeError` when the pod, its spec or a container list is malformed.
    """
    if not isinstance(pod, Mapping):
        raise PodShapeError("pod", f"expected an object, got {type(pod).__name__}")
    meta = pod.get("metadata")
    if meta is not None and not isinstance(meta, Mapping):
        raise PodShapeError("metadata", "expected an object")
    if isinstance(meta, Mapping):
        for part in ("annotations", "labels"):
            values = meta.get(part)
            if values is not None and not isinstance(values, Mapping):
                raise PodShapeError(f"metadata.{part}", "expected an object")
    spec = pod.get("spec") or {}
    if not isinstance(spec, Mapping):
        raise PodShapeError("spec", "expected an object")
    out: list[tuple[Mapping[str, Any], bool]] = []
    for key, is_init in (("initContainers", True), ("containers", False)):
        items = spec.get(key) or []
        if not isinstance(items, Sequence) or isinstance(items, str | bytes):
            raise PodShapeError(f"spec.{key}", "expected a list")
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise PodShapeError(f"spec.{key}[{i}]", "expected an object")
            out.append((item, is_init))
    return out


def pod_requests(
    registry: VendorRegistry, pod: Mapping[str, Any], config: Mapping[str, Any]
) -> list[list[ContainerRequest]]:
    """Every container's requests, init containers first, each list holding count > 0 ones.

    Each installed vendor answers through `hami_request`, in vendor-key order. Raises
    `RequestError` (or its `PodShapeError`) for a bad value or a malformed pod.
    """
    containers = container_list(pod)
    view = PodView.from_obj(pod)
    specs = registry.specs()
    hook = registry.hook.hami_request
    out: list[list[ContainerRequest]] = []
    for index, (container, is_init) in enumerate(containers):
        wanted: list[ContainerRequest] = []
        for spec in specs:
            request = hook(
                spec=spec,
                container=container,
                index=index,
                init=is_init,
                pod=view,
                config=config,
            )
            if request is None or request.count <= 0:
                continue
            if request.vendor != spec.key:
                log.warning(
                    "vendor %s answered hami_request with vendor %r; ignored",
                    spec.key,
                    request.vendor,
                )
                continue
            wanted.append(request)
        out.append(wanted)
    return out


_MEMO_ENTRIES = 4096
"""Distinct pod shapes a `RequestMemo` keeps before it starts over."""


class RequestMemo:
    """`pod_requests` memoised per pod shape, for one registry and device config.

    The key is everything `hami_request` reads except the pod's name and uid: its containers
    (init and app, whole), namespace, labels and annotations, leaving out `volatile` keys
    (the scheduler's own decision annotations and labels, which filter writes before bind
    asks again). So the replicas of one workload, and one pod's filter and bind, share an
    answer. Thread-safe; a bad pod raises on every call, as `pod_requests` does.
    """

    def __init__(
        self,
        registry: VendorRegistry,
        config: Mapping[str, Any],
        volatile: frozenset[str] = frozenset(),
    ) -> None:
        self.registry = registry
        self.config = config
        self.volatile = volatile
        self._answers: dict[bytes, list[list[ContainerRequest]]] = {}

    def __call__(self, pod: Mapping[str, Any]) -> list[list[ContainerRequest]]:
        """`pod_requests(registry, pod, config)`, from the memo when the shape was seen."""
        key = self._key(pod)
        if key is None:
            return pod_requests(self.registry, pod, self.config)
        answer = self._answers.get(key)
        if answer is None:
            answer = pod_requests(self.registry, pod, self.config)
            if len(self._answers) >= _MEMO_ENTRIES:
                self._answers.clear()
            self._answers[key] = answer
        return [list(container) for container in answer]

    def _key(self, pod: Mapping[str, Any]) -> bytes | None:
        meta = pod.get("metadata") if isinstance(pod, Mapping) else None
        spec = pod.get("spec") if isinstance(pod, Mapping) else None
        if not isinstance(meta, Mapping) or not isinstance(spec, Mapping):
            return None
        volatile = self.volatile

        def kept(part: str) -> Any:
            values = meta.get(part)
            if not isinstance(values, Mapping):
                return values
            return {k: v for k, v in values.items() if k not in volatile}

        shape = (
            spec.get("initContainers"),
            spec.get("containers"),
            meta.get("namespace"),
            kept("labels"),
            kept("annotations"),
        )
        try:  # keys in the order given: the same pod serialises the same (a reordered
            return orjson.dumps(shape)  # equal pod only misses the memo)
        except (TypeError, orjson.JSONEncodeError):  # not JSON-shaped: no memo
            return None
