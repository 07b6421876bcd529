"""`DevicePluginNode`: everything `hami device-plugin` runs on one node, wired together.

The node agent discovers and registers the cards; the plugin manager serves one kubelet device
plugin per advertised resource name and keeps it registered; one allocator (one lock) serves
every plugin's `Allocate`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from hami_core.deviceplugin.agent import NodeAgent
from hami_core.deviceplugin.allocate import Allocator
from hami_core.deviceplugin.manager import DEFAULT_PLUGIN_DIR, PluginManager
from hami_core.k8s.cluster import Cluster
from hami_core.plugins import VendorRegistry

__all__ = ["DevicePluginNode"]


class DevicePluginNode:
    """The node agent, the device plugins and their allocator for `node_name`."""

    def __init__(
        self,
        cluster: Cluster,
        registry: VendorRegistry,
        node_name: str,
        *,
        config: Mapping[str, Any] | None = None,
        plugin_dir: str | os.PathLike[str] = DEFAULT_PLUGIN_DIR,
        kubelet_socket: str | os.PathLike[str] | None = None,
        interval: float = 30.0,
        health_interval: float = 5.0,
        poll: float = 0.5,
    ) -> None:
        self.agent = NodeAgent(
            cluster,
            registry,
            node_name,
            config=config,
            interval=interval,
            health_interval=health_interval,
        )
        self.allocator = Allocator(
            cluster,
            registry,
            node_name,
            config=config,
            node_devices=self.agent.devices,
        )
        self.plugins = PluginManager(
            self.allocator, plugin_dir=plugin_dir, kubelet_socket=kubelet_socket, poll=poll
        )
        self.agent.plugins = self.plugins

    def start(self) -> None:
        """Register once now (serving the plugins), then keep watching in the background."""
        self.agent.refresh(verify=True)
        self.plugins.start()
        self.agent.start()

    def refresh(self) -> None:
        """Re-discover now: health changes reach the kubelet and the node annotation at once."""
        self.agent.refresh()

    def stop(self) -> None:
        """Stop the agent and every plugin (their sockets are removed)."""
        self.agent.stop()
        self.plugins.stop()
