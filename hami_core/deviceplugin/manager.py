"""`PluginManager`: every device plugin of this node, kept registered with the kubelet.

It creates one `PluginServer` per (vendor, advertised resource name) the first time the node
agent publishes devices for that vendor, each listing as many devices per card as the vendor's
`hami_advertise` says for that resource, and from then on watches the device-plugin directory:
when the kubelet's socket comes back (the kubelet restarted) every plugin registers again; when a
plugin's own socket disappears (a new kubelet deletes every socket at start) that plugin serves a
fresh socket first and then registers. A watch pass runs every `poll` seconds (0.5 s default), so
re-registration happens within a second or two of the kubelet being back. A replaced server
keeps answering its in-flight calls, and registering waits for an `Allocate` in progress to
answer (the kubelet drops its old connection when a plugin registers again).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from hami_core.deviceplugin.allocate import Allocator
from hami_core.deviceplugin.board import DeviceBoard
from hami_core.deviceplugin.devices import (
    KUBELET_DEVICE_LIMIT,
    KubeletDevice,
    kubelet_devices,
    resource_kind,
)
from hami_core.deviceplugin.server import (
    DevicePluginService,
    PluginServer,
    RegistrationFailed,
    socket_identity,
)
from hami_core.model import DeviceInfo, VendorSpec

__all__ = ["DEFAULT_KUBELET_SOCKET", "DEFAULT_PLUGIN_DIR", "PluginManager"]

log = logging.getLogger(__name__)

DEFAULT_PLUGIN_DIR = "/var/lib/kubelet/device-plugins/"
"""The kubelet's device-plugin directory (`DevicePluginPath`)."""

DEFAULT_KUBELET_SOCKET = DEFAULT_PLUGIN_DIR + "kubelet.sock"
"""The kubelet's registration socket (`KubeletSocket`)."""


class PluginManager:
    """The node's device plugins: created on demand, served, registered, re-registered."""

    def __init__(
        self,
        allocator: Allocator,
        *,
        plugin_dir: str | os.PathLike[str] = DEFAULT_PLUGIN_DIR,
        kubelet_socket: str | os.PathLike[str] | None = None,
        poll: float = 0.5,
        grace: float = 5.0,
    ) -> None:
        self.allocator = allocator
        self.plugin_dir = Path(plugin_dir)
        self.kubelet_socket = (
            Path(kubelet_socket) if kubelet_socket is not None else self.plugin_dir / "kubelet.sock"
        )
        self.poll = poll
        self.grace = grace
        self._servers: dict[str, PluginServer] = {}
        self._lock = threading.RLock()
        self._kubelet: tuple[int, int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned: set[str] = set()
        self._listed: dict[str, tuple[tuple[object, ...], tuple[KubeletDevice, ...]]] = {}
        self._too_many: set[str] = set()
        self._bad: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------ devices

    def publish(
        self,
        spec: VendorSpec,
        devices: Sequence[DeviceInfo],
        *,
        numa: bool = False,
        preferred_allocation: bool = False,
    ) -> None:
        """Offer these cards under each of the vendor's advertised resource names (starting
        and registering the plugins on first use); open `ListAndWatch` streams get the list.

        `preferred_allocation` is offered on the count resource only (a unit resource's IDs say
        nothing about which card a container gets)."""
        with self._lock:
            for resource in spec.advertised:
                listed, changed = self._listing(spec, resource, devices, numa)
                server = self._servers.get(resource)
                if server is None:
                    service = DevicePluginService(
                        spec,
                        resource,
                        DeviceBoard(listed),
                        self.allocator,
                        preferred_allocation=(
                            preferred_allocation and resource == spec.resources.count
                        ),
                    )
                    server = PluginServer(
                        service, self.plugin_dir, self.kubelet_socket, grace=self.grace
                    )
                    server.start()
                    self._servers[resource] = server
                    self._register(server)
                elif changed:
                    server.service.board.publish(listed)

    def _advertised(self, spec: VendorSpec, resource: str, info: DeviceInfo) -> int:
        """How many devices one card offers under `resource`; 0 (logged) on a bad answer."""
        try:
            answer = self.allocator.registry.hook.hami_advertise(
                spec=spec, resource=resource, device=info
            )
        except Exception as exc:  # a vendor bug must not stop the other cards
            self._warn_once(resource, info.id, f"hami_advertise failed: {exc}")
            return 0
        if answer is None:
            return info.count
        if isinstance(answer, bool) or not isinstance(answer, int) or answer < 0:
            self._warn_once(resource, info.id, f"hami_advertise answered {answer!r}, not a count")
            return 0
        return answer

    def _warn_once(self, resource: str, card: str, problem: str) -> None:
        if (resource, card) not in self._bad:
            self._bad.add((resource, card))
            log.warning("%s: card %s: %s; offering none of it", resource, card, problem)

    def _listing(
        self, spec: VendorSpec, resource: str, devices: Sequence[DeviceInfo], numa: bool
    ) -> tuple[tuple[KubeletDevice, ...], bool]:
        """The kubelet device list for `resource`, and whether it changed since last time
        (rebuilt only when a card, its count, health or NUMA node changed)."""
        counts = [self._advertised(spec, resource, info) for info in devices]
        key = tuple(
            (info.id, n, info.health, info.numa if numa else None)
            for info, n in zip(devices, counts, strict=True)
        )
        cached = self._listed.get(resource)
        if cached is not None and cached[0] == key:
            return cached[1], False
        listed = kubelet_devices(
            devices, numa=numa, counts=counts, kind=resource_kind(spec, resource)
        )
        if len(listed) > KUBELET_DEVICE_LIMIT and resource not in self._too_many:
            self._too_many.add(resource)
            log.warning(
                "%s: %d devices exceed what one ListAndWatch message to the kubelet can carry "
                "(about %d); the kubelet will drop the list — offer coarser units",
                resource,
                len(listed),
                KUBELET_DEVICE_LIMIT,
            )
        self._listed[resource] = (key, listed)
        return listed, True

    def resources(self) -> list[str]:
        """The resource names served, sorted."""
        with self._lock:
            return sorted(self._servers)

    def server(self, resource: str) -> PluginServer:
        """The plugin serving `resource` (`KeyError` when none)."""
        with self._lock:
            return self._servers[resource]

    # ------------------------------------------------------------------ registration

    def _register(self, server: PluginServer) -> None:
        if socket_identity(self.kubelet_socket) is None:
            return
        try:
            # a re-registration makes the kubelet drop its old connection: let any in-flight
            # Allocate answer on it first
            with self.allocator.serialized():
                server.register()
            self._warned.discard(server.resource)
        except RegistrationFailed as exc:
            if server.resource not in self._warned:
                log.warning("%s (will retry)", exc)
                self._warned.add(server.resource)

    def check(self) -> None:
        """One watch pass: re-serve deleted sockets, re-register after a kubelet restart, and
        retry registrations that failed."""
        kubelet = socket_identity(self.kubelet_socket)
        with self._lock:
            restarted = kubelet is not None and kubelet != self._kubelet
            if restarted and self._kubelet is not None:
                log.info("kubelet socket %s is new: registering again", self.kubelet_socket)
            self._kubelet = kubelet
            for server in self._servers.values():
                if not server.serving():
                    log.info("socket %s is gone: serving it again", server.socket_path)
                    server.restart()
                elif restarted:
                    server.registered = False
                if not server.registered:
                    self._register(server)

    def start(self) -> None:
        """Watch in a background thread until `stop()`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._kubelet = socket_identity(self.kubelet_socket)
        self._thread = threading.Thread(target=self._run, name="device-plugin-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.check()
            except Exception:  # the watch must outlive any one failure
                log.exception("device plugin watch pass failed")

    def stop(self) -> None:
        """Stop watching and stop every plugin server (their sockets are removed)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)
        with self._lock:
            servers = list(self._servers.values())
            self._servers.clear()
            self._listed.clear()
        for server in servers:
            server.service.board.close()
            server.stop(grace=1.0)
