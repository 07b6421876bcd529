"""`NodeAgent`: discover → split → annotate → register, on a timer and on demand.

Each `refresh()` asks every installed vendor for its cards (`hami_discover`), offers each card
(`hami_split`), renders the node's register annotations (`hami_annotate`) and merge-patches the
node with the keys whose value changed since the last successful patch; every `interval` seconds
(30 s default) it compares against the node itself instead, so an annotation removed by someone
else comes back. The same pass hands the cards to the `PluginManager`, so a health change reaches
the kubelet's `ListAndWatch` and the annotation in one pass; passes run every `health_interval`
seconds (5 s default) and `refresh()` may be called at any time.

A card seen before and missing now stays listed as unhealthy (the kubelet keeps its pods'
accounting; the scheduler stops placing pods on it). A vendor whose library or tool is absent
(`VendorUnavailable`) or whose hooks fail is logged and skipped; the others carry on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hami_core.config import vendor_section
from hami_core.deviceplugin.manager import PluginManager
from hami_core.k8s.cluster import Cluster, ClusterError
from hami_core.model import Device, DeviceInfo, VendorSpec, VendorUnavailable
from hami_core.plugins import VendorRegistry

__all__ = ["NodeAgent", "VendorState", "discover_vendor"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VendorState:
    """What one pass found for one vendor.

    `devices` are the physical cards (missing ones marked unhealthy), `infos` how each is offered,
    `annotations` the register annotations; `unavailable` or `error` say why a vendor was skipped.
    """

    spec: VendorSpec
    devices: tuple[Device, ...] = ()
    infos: tuple[DeviceInfo, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    unavailable: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the vendor answered (it may still have no cards)."""
        return self.unavailable is None and self.error is None


def discover_vendor(
    registry: VendorRegistry, spec: VendorSpec, config: Mapping[str, Any]
) -> VendorState:
    """Discover and split one vendor's cards; never raises (failures land in the state)."""
    hook = registry.hook
    try:
        found = hook.hami_discover(spec=spec, config=config)
    except VendorUnavailable as exc:
        return VendorState(spec, unavailable=exc.why)
    except Exception as exc:
        return VendorState(spec, error=f"hami_discover: {type(exc).__name__}: {exc}")
    if found is None:
        return VendorState(spec, unavailable="no plugin discovers this vendor's devices")
    devices = tuple(found)
    try:
        infos: list[DeviceInfo] = []
        for device in devices:
            info = hook.hami_split(spec=spec, device=device, config=config)
            if info is None:
                raise ValueError(f"no hami_split answer for card {device.uuid}")
            infos.append(info)
    except Exception as exc:
        return VendorState(spec, devices, error=f"hami_split: {type(exc).__name__}: {exc}")
    return VendorState(spec, devices, tuple(infos))


class NodeAgent:
    """Keeps the node's register annotations and device plugins in step with its cards.

    Hooks get the device config with `nodeName` set to `node_name` (for per-node settings).
    """

    def __init__(
        self,
        cluster: Cluster,
        registry: VendorRegistry,
        node_name: str,
        *,
        config: Mapping[str, Any] | None = None,
        plugins: PluginManager | None = None,
        interval: float = 30.0,
        health_interval: float = 5.0,
    ) -> None:
        self.cluster = cluster
        self.registry = registry
        self.node_name = node_name
        self.config: Mapping[str, Any] = {**dict(config or {}), "nodeName": node_name}
        self.plugins = plugins
        self.interval = interval
        self.health_interval = min(health_interval, interval)
        self._lock = threading.Lock()  # one pass at a time; readers use the last `_states`
        self._known: dict[str, dict[str, Device]] = {}
        self._patched: dict[str, str] = {}
        self._states: dict[str, VendorState] = {}
        self._reported: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def devices(self, vendor: str) -> tuple[Device, ...]:
        """The vendor's cards as of the last pass (missing ones marked unhealthy); never waits
        for a pass in progress."""
        state = self._states.get(vendor)
        return state.devices if state is not None else ()

    def states(self) -> dict[str, VendorState]:
        """The last pass's result per vendor key."""
        return dict(self._states)

    def _note(self, key: str, message: str | None) -> None:
        if message is None:
            self._reported.pop(key, None)
        elif self._reported.get(key) != message:
            self._reported[key] = message
            log.warning("vendor %s skipped: %s", key, message)

    def _with_missing(self, state: VendorState) -> VendorState:
        known = self._known.setdefault(state.spec.key, {})
        seen = {d.uuid for d in state.devices}
        missing = [
            d.model_copy(update={"health": False}) for u, d in known.items() if u not in seen
        ]
        for d in state.devices:
            known[d.uuid] = d
        if not missing:
            return state
        extra: list[DeviceInfo] = []
        for d in missing:
            try:
                info = self.registry.hook.hami_split(spec=state.spec, device=d, config=self.config)
            except Exception as exc:
                log.warning("vendor %s: cannot offer missing card %s: %s", d.vendor, d.uuid, exc)
                continue
            if info is not None:
                extra.append(info)
        devices = tuple(sorted((*state.devices, *missing), key=lambda d: (d.index, d.uuid)))
        order = {d.uuid: i for i, d in enumerate(devices)}
        infos = tuple(sorted((*state.infos, *extra), key=lambda i: order.get(i.id, len(order))))
        return VendorState(state.spec, devices, infos)

    def _annotate(self, state: VendorState) -> VendorState:
        try:
            answer = self.registry.hook.hami_annotate(
                spec=state.spec, devices=list(state.infos), config=self.config
            )
        except Exception as exc:
            return VendorState(
                state.spec, state.devices, state.infos, error=f"hami_annotate: {exc}"
            )
        return VendorState(state.spec, state.devices, state.infos, dict(answer or {}))

    def refresh(self, *, verify: bool = False) -> dict[str, VendorState]:
        """One pass over every vendor; with `verify`, compare against the node object itself.

        Returns the state per vendor. Apiserver failures are logged and retried next pass.
        """
        with self._lock:
            states: dict[str, VendorState] = {}
            desired: dict[str, str] = {}
            for spec in self.registry.specs():
                state = discover_vendor(self.registry, spec, self.config)
                if state.ok:
                    state = self._with_missing(state)
                    if state.devices:
                        state = self._annotate(state)
                self._note(spec.key, state.unavailable or state.error)
                states[spec.key] = state
                if not state.ok or not state.devices:
                    continue
                desired.update(state.annotations)
                self._publish(state)
            self._states = states
            self._patch(desired, verify)
            return dict(states)

    def _publish(self, state: VendorState) -> None:
        if self.plugins is None or not state.spec.advertised:
            return
        try:
            section = vendor_section(state.spec, self.config)
            self.plugins.publish(
                state.spec,
                state.infos,
                numa=bool(section.get("enableNumaTopology", False)),
                preferred_allocation=bool(section.get("enableGetPreferredAllocation", False)),
            )
        except Exception:
            log.exception("cannot serve %s devices to the kubelet", state.spec.key)

    def _patch(self, desired: Mapping[str, str], verify: bool) -> None:
        try:
            if verify:
                node = self.cluster.get_node(self.node_name)
                current = dict((node.get("metadata") or {}).get("annotations") or {})
            else:
                current = self._patched
            changes = {k: v for k, v in desired.items() if current.get(k) != v}
            if changes:
                self.cluster.patch_node_metadata(self.node_name, annotations=changes)
                log.info("node %s: registered %s", self.node_name, ", ".join(sorted(changes)))
            self._patched.update(desired)
        except ClusterError as exc:
            log.warning("node %s: cannot update register annotations: %s", self.node_name, exc)

    def run(self, stop: threading.Event) -> None:
        """Run passes until `stop` is set: every `health_interval` s, verifying every
        `interval` s."""
        next_verify = 0.0
        while not stop.is_set():
            now = time.monotonic()
            verify = now >= next_verify
            try:
                self.refresh(verify=verify)
            except Exception:  # the loop must outlive any one failure
                log.exception("node agent pass failed")
            if verify:
                next_verify = now + self.interval
            stop.wait(self.health_interval)

    def start(self) -> None:
        """Run in a background thread until `stop()`."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self.run, args=(self._stop,), name="node-agent", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the background thread."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=10)
