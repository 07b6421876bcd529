"""Load vendor plugins from the `hami.vendors` entry-point group into a `VendorRegistry`.

Each call builds a fresh pluggy plugin manager: there is no module-level registry. A vendor that
fails to import (or whose `hami_vendor` raises or returns garbage) is reported with its error and
the others still load. Two vendors claiming the same key or resource name is a `VendorConflict`
naming both distributions.

Environment:
- `HAMI_VENDORS`: comma list; when set, only these vendors load (entry-point names or vendor keys).
- `HAMI_DISABLED_VENDORS`: comma list of vendors never loaded.

A spec marked `opt_in` (an alternative protocol such as Volcano's) loads only when
`HAMI_VENDORS` names its key.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any

import pluggy

from hami_core import PROJECT_NAME, hookspecs
from hami_core.errors import VendorConflict
from hami_core.model import VendorSpec

__all__ = [
    "ENTRY_POINT_GROUP",
    "LoadedVendor",
    "VendorLoadError",
    "VendorRegistry",
    "load_vendors",
]

ENTRY_POINT_GROUP = "hami.vendors"
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoadedVendor:
    """A vendor that loaded: its spec and where it came from."""

    spec: VendorSpec
    plugin: str
    distribution: str
    version: str


@dataclass(frozen=True, slots=True)
class VendorLoadError:
    """A plugin that could not be loaded, with the error as text."""

    plugin: str
    distribution: str
    version: str
    error: str


@dataclass(slots=True)
class VendorRegistry:
    """The loaded vendors, their plugin manager, and the plugins that failed."""

    pm: pluggy.PluginManager
    vendors: dict[str, LoadedVendor] = field(default_factory=dict)
    errors: list[VendorLoadError] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    _by_resource: dict[str, str] = field(default_factory=dict)

    @property
    def hook(self) -> Any:
        """The pluggy hook relay: `registry.hook.hami_mount(allocation=...)`."""
        return self.pm.hook

    def specs(self) -> list[VendorSpec]:
        """Every loaded vendor's spec, sorted by key."""
        return [self.vendors[k].spec for k in sorted(self.vendors)]

    def spec(self, key: str) -> VendorSpec:
        """The spec of vendor `key`; `KeyError` naming the installed keys otherwise."""
        try:
            return self.vendors[key].spec
        except KeyError:
            raise KeyError(
                f"vendor {key!r} is not installed (installed: {', '.join(sorted(self.vendors))})"
            ) from None

    def by_common_word(self, word: str) -> VendorSpec | None:
        """The vendor whose HAMi common word is `word`, if any."""
        for v in self.vendors.values():
            if v.spec.common_word == word:
                return v.spec
        return None

    def vendor_for_resource(self, resource: str) -> VendorSpec | None:
        """The vendor that claims this resource name, if any."""
        key = self._by_resource.get(resource)
        return self.vendors[key].spec if key else None

    def resource_names(self) -> list[str]:
        """Every resource name claimed by a loaded vendor, sorted."""
        return sorted(self._by_resource)


def _names(value: str | None) -> set[str]:
    return {p.strip() for p in (value or "").split(",") if p.strip()}


def _plugin_allowed(name: str, allow: set[str]) -> bool:
    """A plugin loads when the allow list is empty, names it, or names one of its vendor keys
    (keys of multi-vendor plugins start with the plugin name: `ascend910b3`, `nvidia-volcano`)."""
    return not allow or any(item.startswith(name) for item in allow)


def _dist_of(ep: EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return ("unknown", "")
    return (str(dist.metadata["Name"] or dist.name), str(dist.version))


def load_vendors(
    *,
    environ: Mapping[str, str] | None = None,
    entry_points_: Iterable[EntryPoint] | None = None,
    plugins: Sequence[tuple[str, ModuleType | object]] = (),
    generic: bool = True,
) -> VendorRegistry:
    """Load every installed vendor (plus `plugins`, as `(name, module)`) into a new registry.

    `environ` defaults to `os.environ`; `entry_points_` to the installed `hami.vendors` group.
    Raises `VendorConflict` when two vendors claim the same key or resource name.
    """
    env = os.environ if environ is None else environ
    allow = _names(env.get("HAMI_VENDORS"))
    deny = _names(env.get("HAMI_DISABLED_VENDORS"))

    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    registry = VendorRegistry(pm=pm)
    if generic:
        from hami_core import generic as generic_impl

        pm.register(generic_impl, name="hami-generic")

    eps = list(entry_points(group=ENTRY_POINT_GROUP) if entry_points_ is None else entry_points_)
    candidates: list[tuple[str, str, str, Any]] = []
    for ep in sorted(eps, key=lambda e: e.name):
        dist, ver = _dist_of(ep)
        if not _plugin_allowed(ep.name, allow) or ep.name in deny:
            registry.disabled.append(ep.name)
            continue
        try:
            obj = ep.load()
        except Exception as exc:  # a broken vendor must not stop the others
            log.warning("vendor %s (%s) failed to import: %s", ep.name, dist, exc)
            registry.errors.append(VendorLoadError(ep.name, dist, ver, _describe(exc)))
            continue
        candidates.append((ep.name, dist, ver, obj))
    for name, obj in plugins:
        if not _plugin_allowed(name, allow) or name in deny:
            registry.disabled.append(name)
            continue
        candidates.append((name, getattr(obj, "__name__", name), "", obj))

    for name, dist, ver, obj in candidates:
        _register(registry, name, dist, ver, obj, allow, deny)
    return registry


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _register(
    registry: VendorRegistry,
    name: str,
    dist: str,
    ver: str,
    obj: Any,
    allow: set[str],
    deny: set[str],
) -> None:
    pm = registry.pm
    try:
        pm.register(obj, name=name)
    except Exception as exc:
        registry.errors.append(VendorLoadError(name, dist, ver, _describe(exc)))
        return
    impl = getattr(obj, "hami_vendor", None)
    try:
        answer = impl() if impl is not None else None
        specs = _as_specs(answer)
    except Exception as exc:
        pm.unregister(obj)
        registry.errors.append(VendorLoadError(name, dist, ver, f"hami_vendor: {_describe(exc)}"))
        return
    if not specs:
        pm.unregister(obj)
        registry.errors.append(
            VendorLoadError(name, dist, ver, "hami_vendor returned no VendorSpec")
        )
        return
    for spec in specs:
        if (
            (allow and name not in allow and spec.key not in allow)
            or spec.key in deny
            or (spec.opt_in and spec.key not in allow)
        ):
            registry.disabled.append(spec.key)
            continue
        spec = spec.model_copy(update={"distribution": dist}) if not spec.distribution else spec
        if spec.key in registry.vendors:
            other = registry.vendors[spec.key]
            raise VendorConflict(
                f"vendor key {spec.key!r} is claimed by both {other.distribution} and {dist}"
            )
        for res in spec.resource_names():
            owner = registry._by_resource.get(res)
            if owner is not None and owner != spec.key:
                raise VendorConflict(
                    f"resource {res!r} is claimed by both "
                    f"{registry.vendors[owner].distribution} (vendor {owner!r}) and {dist} "
                    f"(vendor {spec.key!r})"
                )
        for res in spec.resource_names():
            registry._by_resource[res] = spec.key
        registry.vendors[spec.key] = LoadedVendor(spec, name, dist, ver)


def _as_specs(answer: Any) -> list[VendorSpec]:
    if answer is None:
        return []
    if isinstance(answer, VendorSpec):
        return [answer]
    if isinstance(answer, Sequence) and not isinstance(answer, str | bytes):
        specs = list(answer)
        for s in specs:
            if not isinstance(s, VendorSpec):
                raise TypeError(f"expected VendorSpec, got {type(s).__name__}")
        return specs
    raise TypeError(f"expected VendorSpec or a sequence of them, got {type(answer).__name__}")
