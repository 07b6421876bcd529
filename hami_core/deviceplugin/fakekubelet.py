"""`FakeKubelet`: the kubelet's side of the device-plugin API, over real Unix sockets.

It serves `v1beta1.Registration` on `<plugin_dir>/kubelet.sock`. On each valid `Register` it
dials the plugin's socket (`<plugin_dir>/<endpoint>`), calls `GetDevicePluginOptions`, opens
`ListAndWatch` and keeps the latest device list, as the kubelet's device manager does. Tests then
call `allocate(resource, ids)` like the kubelet does at container creation. `restart()` does what
a new kubelet does at start: delete every socket in the directory and serve `kubelet.sock` again.

Shipped for tests and manual checks (`hami_core.testing.FakeKubelet` re-exports it); it lives
here because this package is the only one that speaks gRPC.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import grpc

from hami_core.deviceplugin import rpc
from hami_core.deviceplugin.api import deviceplugin_pb2 as pb
from hami_core.deviceplugin.devices import KubeletDevice

__all__ = ["FakeKubelet", "Registration"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Registration:
    """One `Register` call the fake kubelet accepted."""

    resource: str
    endpoint: str
    version: str
    pre_start_required: bool
    get_preferred_allocation_available: bool
    at: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class _Endpoint:
    registration: Registration
    channel: grpc.Channel
    client: rpc.DevicePluginClient
    options: pb.DevicePluginOptions | None = None
    stream: grpc.Future | None = None  # type: ignore[type-arg]
    thread: threading.Thread | None = None


def _devices(response: pb.ListAndWatchResponse) -> tuple[KubeletDevice, ...]:
    out = []
    for d in response.devices:
        numa = d.topology.nodes[0].ID if d.HasField("topology") and d.topology.nodes else None
        out.append(KubeletDevice(d.ID, d.health == rpc.HEALTHY, numa))
    return tuple(out)


class FakeKubelet:
    """A kubelet device manager stand-in: registration server, ListAndWatch client, Allocate."""

    def __init__(self, plugin_dir: str | Path | None = None) -> None:
        self._own_dir = plugin_dir is None
        self.plugin_dir = Path(plugin_dir or tempfile.mkdtemp(prefix="hami-kubelet-"))
        self.socket_path = self.plugin_dir / "kubelet.sock"
        self._cond = threading.Condition()
        self._server: grpc.Server | None = None
        self._endpoints: dict[str, _Endpoint] = {}
        self._devices: dict[str, tuple[KubeletDevice, ...]] = {}
        self._updates: dict[str, int] = {}
        self.registrations: list[Registration] = []
        self.rejected: list[str] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeKubelet:
        """Serve `kubelet.sock` (the directory is created if needed); returns self."""
        self.plugin_dir.mkdir(parents=True, exist_ok=True)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        server.add_generic_rpc_handlers((rpc.registration_handler(self),))
        server.add_insecure_port(rpc.unix_target(str(self.socket_path)))
        server.start()
        self._server = server
        return self

    def _drop_endpoints(self) -> None:
        with self._cond:
            endpoints = list(self._endpoints.values())
            self._endpoints.clear()
            self._cond.notify_all()
        for ep in endpoints:
            if ep.stream is not None:
                ep.stream.cancel()
            ep.channel.close()

    def restart(self, *, delete_sockets: bool = True) -> None:
        """Act as a kubelet restart: stop, delete every socket in the directory (as a real
        kubelet does at start; `delete_sockets=False` keeps the plugins'), serve again."""
        if self._server is not None:
            self._server.stop(None).wait()
            self._server = None
        self._drop_endpoints()
        for path in self.plugin_dir.iterdir():
            if path.is_socket() and (delete_sockets or path == self.socket_path):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        self.start()

    def stop(self) -> None:
        """Stop serving and close every plugin connection (the temp dir is removed if ours)."""
        if self._server is not None:
            self._server.stop(None).wait()
            self._server = None
        self._drop_endpoints()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        if self._own_dir:
            shutil.rmtree(self.plugin_dir, ignore_errors=True)

    def __enter__(self) -> FakeKubelet:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ Registration service

    def Register(self, request: pb.RegisterRequest, context: grpc.ServicerContext) -> pb.Empty:
        """Validate like the kubelet, then connect to the plugin in the background."""
        problem = None
        if request.version != rpc.VERSION:
            problem = f"unsupported API version {request.version!r}"
        elif "/" not in request.resource_name:
            problem = f"invalid extended resource name {request.resource_name!r}"
        elif not (self.plugin_dir / request.endpoint).is_socket():
            problem = f"endpoint {request.endpoint!r} is not a socket in {self.plugin_dir}"
        if problem is not None:
            self.rejected.append(problem)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        reg = Registration(
            resource=request.resource_name,
            endpoint=request.endpoint,
            version=request.version,
            pre_start_required=request.options.pre_start_required,
            get_preferred_allocation_available=request.options.get_preferred_allocation_available,
        )
        channel = grpc.insecure_channel(rpc.unix_target(str(self.plugin_dir / reg.endpoint)))
        ep = _Endpoint(reg, channel, rpc.DevicePluginClient(channel))
        with self._cond:
            old = self._endpoints.pop(reg.resource, None)
            self._endpoints[reg.resource] = ep
            self.registrations.append(reg)
            self._cond.notify_all()
        if old is not None:
            if old.stream is not None:
                old.stream.cancel()
            old.channel.close()
        ep.thread = threading.Thread(
            target=self._watch, args=(ep,), name=f"fake-kubelet-{reg.resource}", daemon=True
        )
        ep.thread.start()
        return pb.Empty()

    def _watch(self, ep: _Endpoint) -> None:
        resource = ep.registration.resource
        try:
            ep.options = ep.client.get_options(pb.Empty(), timeout=5)
            stream = ep.client.list_and_watch(pb.Empty())
            ep.stream = stream  # type: ignore[assignment]
            for response in stream:
                with self._cond:
                    if self._endpoints.get(resource) is not ep:
                        break
                    self._devices[resource] = _devices(response)
                    self._updates[resource] = self._updates.get(resource, 0) + 1
                    self._cond.notify_all()
        except (grpc.RpcError, ValueError) as exc:  # ValueError: the channel was closed
            log.debug("ListAndWatch of %s ended: %s", resource, exc)

    # ------------------------------------------------------------------ what tests read

    def registered(self, resource: str) -> Registration | None:
        """The registration the kubelet currently uses for `resource`."""
        with self._cond:
            ep = self._endpoints.get(resource)
            return ep.registration if ep is not None else None

    def registration_count(self, resource: str) -> int:
        """How many times `resource` registered since this fake started."""
        with self._cond:
            return sum(1 for r in self.registrations if r.resource == resource)

    def wait_registered(self, resource: str, *, count: int = 1, timeout: float = 5.0) -> None:
        """Block until `resource` registered at least `count` times; `TimeoutError` otherwise."""
        self._wait(
            lambda: (
                sum(1 for r in self.registrations if r.resource == resource) >= count
                and resource in self._endpoints
            ),
            timeout,
            f"{resource} did not register {count} time(s) within {timeout} s",
        )

    def devices(self, resource: str) -> tuple[KubeletDevice, ...]:
        """The latest device list `ListAndWatch` sent for `resource`."""
        with self._cond:
            return self._devices.get(resource, ())

    def updates(self, resource: str) -> int:
        """How many `ListAndWatch` messages arrived for `resource`."""
        with self._cond:
            return self._updates.get(resource, 0)

    def wait_devices(
        self,
        resource: str,
        predicate: Callable[[tuple[KubeletDevice, ...]], bool] = bool,
        *,
        timeout: float = 5.0,
    ) -> tuple[KubeletDevice, ...]:
        """Block until the device list for `resource` satisfies `predicate` (default: not
        empty); return it, or raise `TimeoutError`."""
        self._wait(
            lambda: predicate(self._devices.get(resource, ())),
            timeout,
            f"device list of {resource} never matched within {timeout} s",
        )
        return self.devices(resource)

    def _wait(self, ready: Callable[[], bool], timeout: float, message: str) -> None:
        with self._cond:
            if not self._cond.wait_for(ready, timeout):
                raise TimeoutError(message)

    def options(self, resource: str) -> pb.DevicePluginOptions:
        """The options the plugin answered with for `resource`."""
        ep = self._endpoint(resource)
        if ep.options is None:
            return ep.client.get_options(pb.Empty(), timeout=5)
        return ep.options

    def _endpoint(self, resource: str) -> _Endpoint:
        with self._cond:
            ep = self._endpoints.get(resource)
        if ep is None:
            raise KeyError(f"no plugin registered for {resource}")
        return ep

    # ------------------------------------------------------------------ calls into the plugin

    def allocate(
        self, resource: str, ids: Sequence[str], *, timeout: float = 10.0
    ) -> pb.ContainerAllocateResponse:
        """`Allocate` one container with these device IDs; `grpc.RpcError` on refusal."""
        return self.allocate_containers(resource, [ids], timeout=timeout).container_responses[0]

    def allocate_containers(
        self, resource: str, containers: Sequence[Sequence[str]], *, timeout: float = 10.0
    ) -> pb.AllocateResponse:
        """`Allocate` several containers in one call (one ID list per container)."""
        request = pb.AllocateRequest(
            container_requests=[
                pb.ContainerAllocateRequest(devices_ids=list(c)) for c in containers
            ]
        )
        return self._endpoint(resource).client.allocate(request, timeout=timeout)

    def preferred_allocation(
        self,
        resource: str,
        available: Sequence[str],
        size: int,
        must_include: Sequence[str] = (),
        *,
        timeout: float = 10.0,
    ) -> list[str]:
        """`GetPreferredAllocation` for one container; the IDs the plugin prefers."""
        request = pb.PreferredAllocationRequest(
            container_requests=[
                pb.ContainerPreferredAllocationRequest(
                    available_deviceIDs=list(available),
                    must_include_deviceIDs=list(must_include),
                    allocation_size=size,
                )
            ]
        )
        response = self._endpoint(resource).client.get_preferred_allocation(
            request, timeout=timeout
        )
        return list(response.container_responses[0].deviceIDs)

    def pre_start_container(self, resource: str, ids: Sequence[str]) -> None:
        """`PreStartContainer` with these device IDs."""
        self._endpoint(resource).client.pre_start_container(
            pb.PreStartContainerRequest(devices_ids=list(ids)), timeout=10
        )
