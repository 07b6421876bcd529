"""Iluvatar's admission rule and card naming, as pure functions.

HAMi's Iluvatar webhook (vendors.md §6.1): a container asking for more than one card gets
`<cw>.vCore = count * 100`, so each card is taken whole (the fit clamps cores to 100 per card),
and every container that asks for cards gets the env `SOL_CONTINER_NAME=<container name>`
(HAMi's spelling).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hami_core.model import Mutation, VendorSpec
from hami_iluvatar.spec import ENV_CONTAINER_NAME

__all__ = ["card_id", "iluvatar_mutation"]


def _has_env(container: Mapping[str, Any], name: str) -> bool:
    env = container.get("env") or []
    if not isinstance(env, list):
        return False
    return any(isinstance(e, Mapping) and e.get("name") == name for e in env)


def iluvatar_mutation(
    spec: VendorSpec, container: Mapping[str, Any], count: int, base: Mutation
) -> Mutation:
    """Add Iluvatar's webhook rules to the generic `base` mutation of a container.

    `count` is the container's card count after defaults (0 = asks for none): above 1, the
    cores limit becomes `count * 100`; any card adds `SOL_CONTINER_NAME` unless already set.
    """
    if count <= 0 or not base.uses_vendor:
        return base
    limits = dict(base.limits)
    if count > 1 and spec.resources.cores is not None:
        limits[spec.resources.cores] = str(count * spec.core_units)
    env = dict(base.env)
    name = str(container.get("name") or "")
    if name and not _has_env(container, ENV_CONTAINER_NAME):
        env[ENV_CONTAINER_NAME] = name
    return base.model_copy(update={"limits": limits, "env": env})


def card_id(bus_id: str) -> str:
    """A stable card identifier from its PCI bus id, usable in HAMi's legacy register text.

    `ixsmi`'s table shows no UUID, so hami names a card `IX-<bus id>` with `:` replaced by `-`
    (`00000000:13:00.0` → `IX-00000000-13-00.0`): the legacy text format cannot carry `:`.
    """
    return "IX-" + bus_id.strip().replace(":", "-")
