"""`DeviceBoard`: the latest kubelet device list of one resource, with change notification.

The node agent publishes; every open `ListAndWatch` stream waits on the board and sends the whole
list again when its version moves. Publishing an identical list does not wake anyone.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from hami_core.deviceplugin.devices import KubeletDevice

__all__ = ["DeviceBoard"]


class DeviceBoard:
    """Thread-safe holder of a versioned device list; readers wait for a newer version."""

    def __init__(self, devices: Sequence[KubeletDevice] = ()) -> None:
        self._cond = threading.Condition()
        self._devices: tuple[KubeletDevice, ...] = tuple(devices)
        self._version = 0
        self._closed = False

    def publish(self, devices: Sequence[KubeletDevice]) -> bool:
        """Replace the list; wake the watchers and return True only if it changed."""
        new = tuple(devices)
        with self._cond:
            if new == self._devices:
                return False
            self._devices = new
            self._version += 1
            self._cond.notify_all()
            return True

    def current(self) -> tuple[int, tuple[KubeletDevice, ...]]:
        """(version, devices) now."""
        with self._cond:
            return self._version, self._devices

    def wait(self, after: int, timeout: float) -> tuple[int, tuple[KubeletDevice, ...]]:
        """(version, devices) as soon as the version differs from `after`, or after `timeout`
        seconds (then the version may equal `after`), or at once when the board is closed."""
        with self._cond:
            self._cond.wait_for(lambda: self._version != after or self._closed, timeout)
            return self._version, self._devices

    @property
    def closed(self) -> bool:
        """True once `close` was called (streams end)."""
        with self._cond:
            return self._closed

    def close(self) -> None:
        """End every waiting stream."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
