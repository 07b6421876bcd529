"""`FakeKubelet`: the kubelet's side of the device-plugin gRPC API over real Unix sockets.

A Registration server on `kubelet.sock` in a temp dir; after `Register` it dials the plugin:
`GetDevicePluginOptions` → `ListAndWatch` (keeps the latest list) → `allocate(resource, ids)`;
`restart()` deletes the sockets and serves `kubelet.sock` again, as a kubelet restart does.
The implementation lives in `hami_core.deviceplugin.fakekubelet`, the package allowed to speak
gRPC; this module is its place in the test kit.
"""

from __future__ import annotations

from hami_core.deviceplugin.fakekubelet import FakeKubelet, Registration

__all__ = ["FakeKubelet", "Registration"]
