"""One kubelet device plugin: the `v1beta1.DevicePlugin` service for one resource name, its gRPC
server on a Unix socket in the device-plugin directory, and its registration with the kubelet.

The server always serves before it registers (the kubelet dials back at once). `restart()`
serves a fresh server on the same path (the kubelet deletes every socket when it starts) while
the old one finishes its in-flight calls.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc

from hami_core.deviceplugin import rpc
from hami_core.deviceplugin.allocate import AllocateError, Allocator
from hami_core.deviceplugin.api import deviceplugin_pb2 as pb
from hami_core.deviceplugin.board import DeviceBoard
from hami_core.deviceplugin.devices import KubeletDevice
from hami_core.model import ContainerRuntimeSpec, VendorSpec

__all__ = [
    "DevicePluginService",
    "PluginServer",
    "RegistrationFailed",
    "socket_identity",
    "socket_name",
    "to_response",
]

log = logging.getLogger(__name__)

_WATCH_TICK = 0.25
"""How often an idle `ListAndWatch` stream checks that its call and server are still alive."""


def socket_name(spec: VendorSpec, resource: str) -> str:
    """The plugin's socket file name: `hami-<vendor>-<resource with / as _>.sock`."""
    return f"hami-{spec.key}-{resource.replace('/', '_')}.sock"


def to_response(spec: ContainerRuntimeSpec) -> pb.ContainerAllocateResponse:
    """The kubelet's `ContainerAllocateResponse` for a vendor's runtime spec."""
    return pb.ContainerAllocateResponse(
        envs=dict(spec.envs),
        mounts=[
            pb.Mount(container_path=m.container_path, host_path=m.host_path, read_only=m.read_only)
            for m in spec.mounts
        ],
        devices=[
            pb.DeviceSpec(
                container_path=d.container_path, host_path=d.host_path, permissions=d.permissions
            )
            for d in spec.devices
        ],
        annotations=dict(spec.annotations),
        cdi_devices=[pb.CDIDevice(name=n) for n in spec.cdi_devices],
    )


def _to_pb(devices: tuple[KubeletDevice, ...]) -> pb.ListAndWatchResponse:
    out = []
    for d in devices:
        dev = pb.Device(ID=d.id, health=rpc.HEALTHY if d.healthy else rpc.UNHEALTHY)
        if d.numa is not None:
            dev.topology.nodes.add(ID=d.numa)
        out.append(dev)
    return pb.ListAndWatchResponse(devices=out)


class DevicePluginService:
    """The `v1beta1.DevicePlugin` RPCs for one vendor resource name."""

    def __init__(
        self,
        spec: VendorSpec,
        resource: str,
        board: DeviceBoard,
        allocator: Allocator,
        *,
        preferred_allocation: bool = False,
    ) -> None:
        self.spec = spec
        self.resource = resource
        self.board = board
        self.allocator = allocator
        self.preferred_allocation = preferred_allocation
        self._stopped = threading.Event()

    def stop_streams(self) -> None:
        """End every open `ListAndWatch` stream of this service."""
        self._stopped.set()

    def options(self) -> pb.DevicePluginOptions:
        """The options sent at registration and by `GetDevicePluginOptions`."""
        return pb.DevicePluginOptions(
            pre_start_required=False,
            get_preferred_allocation_available=self.preferred_allocation,
        )

    def GetDevicePluginOptions(
        self, request: pb.Empty, context: grpc.ServicerContext
    ) -> pb.DevicePluginOptions:
        """No PreStartContainer; GetPreferredAllocation when configured."""
        return self.options()

    def ListAndWatch(
        self, request: pb.Empty, context: grpc.ServicerContext
    ) -> Iterator[pb.ListAndWatchResponse]:
        """The whole device list now, and again each time it changes."""
        sent = -1
        while context.is_active() and not self._stopped.is_set() and not self.board.closed:
            version, devices = self.board.wait(sent, _WATCH_TICK)
            if version != sent:
                sent = version
                yield _to_pb(devices)

    def GetPreferredAllocation(
        self, request: pb.PreferredAllocationRequest, context: grpc.ServicerContext
    ) -> pb.PreferredAllocationResponse:
        """Replicas of the cards the scheduler chose, when the pod is known; else spread."""
        out = pb.PreferredAllocationResponse()
        for req in request.container_requests:
            ids = self.allocator.preferred(
                self.spec,
                list(req.available_deviceIDs),
                list(req.must_include_deviceIDs),
                int(req.allocation_size),
            )
            out.container_responses.add(deviceIDs=ids)
        return out

    def Allocate(
        self, request: pb.AllocateRequest, context: grpc.ServicerContext
    ) -> pb.AllocateResponse:
        """Env, mounts and device nodes for each container, from the pod's annotations."""
        requests = [list(r.devices_ids) for r in request.container_requests]
        try:
            specs = self.allocator.allocate(self.spec, requests, self.resource)
        except AllocateError as exc:
            context.abort(grpc.StatusCode[exc.code], str(exc))
        except Exception as exc:  # never let a bug look like a hung call to the kubelet
            log.exception("Allocate of %s failed unexpectedly", self.resource)
            context.abort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")
        return pb.AllocateResponse(container_responses=[to_response(s) for s in specs])

    def PreStartContainer(
        self, request: pb.PreStartContainerRequest, context: grpc.ServicerContext
    ) -> pb.PreStartContainerResponse:
        """Nothing to do before a container starts."""
        return pb.PreStartContainerResponse()


class RegistrationFailed(Exception):
    """`Register` with the kubelet did not succeed (the kubelet is down or refused)."""


def socket_identity(path: Path) -> tuple[int, int, int] | None:
    """(device, inode, ctime ns) of the Unix socket at `path`, which changes when the socket is
    created again even if the inode number is reused; None when there is no socket there."""
    try:
        st = path.stat()
    except OSError:
        return None
    if not stat.S_ISSOCK(st.st_mode):
        return None
    return (st.st_dev, st.st_ino, st.st_ctime_ns)


class PluginServer:
    """Serves one `DevicePluginService` on `<plugin_dir>/<socket>` and registers it."""

    def __init__(
        self,
        service: DevicePluginService,
        plugin_dir: str | os.PathLike[str],
        kubelet_socket: str | os.PathLike[str],
        *,
        socket: str | None = None,
        max_workers: int = 8,
        grace: float = 5.0,
    ) -> None:
        self.service = service
        self.plugin_dir = Path(plugin_dir)
        self.kubelet_socket = Path(kubelet_socket)
        self.socket_path = self.plugin_dir / (socket or socket_name(service.spec, service.resource))
        self.max_workers = max_workers
        self.grace = grace
        self.registered = False
        self._server: grpc.Server | None = None
        self._inode: tuple[int, int, int] | None = None
        self._generation = 0

    @property
    def resource(self) -> str:
        """The extended-resource name this plugin serves."""
        return self.service.resource

    def serving(self) -> bool:
        """True while our socket file is still the one our server listens on."""
        return self._server is not None and socket_identity(self.socket_path) == self._inode

    def start(self) -> None:
        """Serve on the socket, replacing whatever file is there.

        gRPC removes the path it bound when its server stops, at some later moment. So each
        server binds a private name in the directory and the socket is renamed into place: a
        server stopped later removes only its private name, never the live socket.
        """
        self.plugin_dir.mkdir(parents=True, exist_ok=True)
        self._generation += 1
        private = self.socket_path.with_name(
            f".{self.socket_path.name}.{os.getpid()}.{self._generation}"
        )
        with contextlib.suppress(FileNotFoundError):
            private.unlink()
        server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=self.max_workers, thread_name_prefix=f"dp-{self.resource}"
            )
        )
        server.add_generic_rpc_handlers((rpc.device_plugin_handler(self.service),))
        server.add_insecure_port(rpc.unix_target(str(private)))
        server.start()
        os.replace(private, self.socket_path)
        self._server = server
        self._inode = socket_identity(self.socket_path)
        self.registered = False
        log.info("serving %s on %s", self.resource, self.socket_path)

    def restart(self) -> None:
        """Serve a new server on the socket; the old one keeps running its in-flight calls for
        `grace` seconds, then stops."""
        old = self._server
        self.start()
        if old is not None:
            old.stop(self.grace)

    def register(self, timeout: float = 5.0) -> None:
        """Call the kubelet's `Register` for this resource; `RegistrationFailed` on failure."""
        request = pb.RegisterRequest(
            version=rpc.VERSION,
            endpoint=self.socket_path.name,
            resource_name=self.resource,
            options=self.service.options(),
        )
        try:
            with grpc.insecure_channel(rpc.unix_target(str(self.kubelet_socket))) as channel:
                rpc.RegistrationClient(channel).register(request, timeout=timeout)
        except grpc.RpcError as exc:
            raise RegistrationFailed(
                f"{self.resource}: Register with {self.kubelet_socket} failed: "
                f"{exc.code().name}: {exc.details()}"
            ) from exc
        self.registered = True
        log.info("registered %s with the kubelet (%s)", self.resource, self.socket_path.name)

    def stop(self, grace: float | None = None) -> None:
        """Stop serving, end the streams, and remove our socket file if it is still ours."""
        self.service.stop_streams()
        server, self._server = self._server, None
        if server is not None:
            server.stop(self.grace if grace is None else grace).wait()
        if self._inode is not None and socket_identity(self.socket_path) == self._inode:
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
        self._inode = None
        self.registered = False
