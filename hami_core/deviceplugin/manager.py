"""`PluginManager`: every device plugin of this node, kept registered with the kubelet.

It creates one `PluginServer` per (vendor, advertised resource name) the first time the node
agent publishes devices for that vendor, and from then on watches the device-plugin directory:
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
from hami_core.deviceplugin.devices import kubelet_devices
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
        and registering the plugins on first use); open `ListAndWatch` streams get the list."""
        listed = kubelet_devices(devices, numa=numa)
        with self._lock:
            for resource in spec.advertised:
                server = self._servers.get(resource)
                if server is None:
                    board = DeviceBoard(listed)
                    service = DevicePluginService(
                        spec,
                        resource,
                        board,
                        self.allocator,
                        preferred_allocation=preferred_allocation,
                    )
                    server = PluginServer(
                        service, self.plugin_dir, self.kubelet_socket, grace=self.grace
                    )
                    server.start()
                    self._servers[resource] = server
                    self._register(server)
                else:
                    server.service.board.publish(listed)

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
        for server in servers:
            server.service.board.close()
            server.stop(grace=1.0)
