"""Admission defaults for one container: HAMi's webhook step 3 (reference §7.4) generalised.

`generic_mutation` answers, for one vendor and one container:

- `uses_vendor` — the container asks for at least one card (count > 0, given or defaulted).
- count default — no count, but memory, memory percentage or cores given, and the default count
  (`defaultGPUNum` in the vendor's section, else `spec.default_count`) is above 0 → set the
  count limit to that default.
- exclusive default — `spec.exclusive_by_default`, a count present (given or defaulted), no
  cores given, and either no memory at all (neither MiB nor percentage) or percentage == 100 →
  set the cores limit to `spec.core_units`, so the card is the container's alone. (HAMi's
  literal rule also fires for a percentage below 100 with no MiB; that turns a half-card
  request into an exclusive one, so hami does not follow it.)
- a memory percentage outside 0..100, or any of the vendor's values that is not a quantity, is
  refused with `AdmissionDenied` naming the container and resource.

Vendor-specific env, runtime class and priority handling belong to each vendor's own
`hami_mutate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from hami_core.errors import AdmissionDenied, RequestError
from hami_core.model import Mutation, VendorSpec
from hami_core.scheduling.requests import resource_value, section_int

__all__ = ["generic_mutation"]


def _value(spec: VendorSpec, container: Mapping[str, Any], resource: str | None) -> Decimal | None:
    try:
        return resource_value(spec, container, resource)
    except RequestError as exc:
        raise AdmissionDenied(str(exc)) from None


def generic_mutation(
    spec: VendorSpec,
    container: Mapping[str, Any],
    pod: Mapping[str, Any],
    section: Mapping[str, Any],
) -> Mutation:
    """The limits HAMi's webhook would add to `container` for `spec`'s vendor (module doc).

    Raises `AdmissionDenied` for a percentage outside 0..100 or a value that is not a quantity.
    """
    res = spec.resources
    name = str(container.get("name") or "")
    count = _value(spec, container, res.count)
    memory = _value(spec, container, res.memory)
    percent = _value(spec, container, res.memory_percentage)
    cores = _value(spec, container, res.cores)
    if percent is not None and not 0 <= percent <= 100:
        raise AdmissionDenied(
            f"container {name!r}: {res.memory_percentage}: must be between 0 and 100, got {percent}"
        )
    limits: dict[str, str] = {}
    if count is None and (memory is not None or percent is not None or cores is not None):
        default_count = section_int(section, "defaultGPUNum", spec.default_count)
        if default_count > 0:
            limits[res.count] = str(default_count)
            count = Decimal(default_count)
    if count is None or count <= 0:
        return Mutation()
    if (
        spec.exclusive_by_default
        and res.cores is not None
        and cores is None
        and ((memory is None and percent is None) or percent == 100)
    ):
        limits[res.cores] = str(spec.core_units)
    return Mutation(limits=limits, uses_vendor=True)
