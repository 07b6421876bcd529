"""Typed gRPC plumbing for the kubelet device-plugin API (both directions).

The generated `*_pb2_grpc` modules are untyped; this module builds the same method handlers and
client callables from the generated message classes, with service names read from the proto
descriptors, so the rest of the package type-checks. Paths are the kubelet's:
`/v1beta1.DevicePlugin/<Method>` and `/v1beta1.Registration/Register`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import grpc

from hami_core.deviceplugin.api import deviceplugin_pb2 as pb

__all__ = [
    "DEVICE_PLUGIN_SERVICE",
    "HEALTHY",
    "REGISTRATION_SERVICE",
    "UNHEALTHY",
    "VERSION",
    "DevicePluginClient",
    "DevicePluginServicer",
    "RegistrationClient",
    "RegistrationServicer",
    "device_plugin_handler",
    "method_path",
    "registration_handler",
    "unix_target",
]

DEVICE_PLUGIN_SERVICE: str = pb.DESCRIPTOR.services_by_name["DevicePlugin"].full_name
"""`v1beta1.DevicePlugin`, served by each device plugin on its own socket."""

REGISTRATION_SERVICE: str = pb.DESCRIPTOR.services_by_name["Registration"].full_name
"""`v1beta1.Registration`, served by the kubelet on `kubelet.sock`."""

VERSION = "v1beta1"
"""The device-plugin API version sent in `RegisterRequest.version`."""

HEALTHY = "Healthy"
"""`Device.health` of a usable device."""

UNHEALTHY = "Unhealthy"
"""`Device.health` of a device the kubelet must not hand out."""


def method_path(service: str, method: str) -> str:
    """The gRPC path of a method: `/v1beta1.DevicePlugin/Allocate`."""
    return f"/{service}/{method}"


def unix_target(path: str) -> str:
    """The gRPC target for a Unix socket at absolute or relative `path`."""
    return f"unix://{path}" if path.startswith("/") else f"unix:{path}"


class DevicePluginServicer(Protocol):
    """What a device plugin implements (one method per RPC of `v1beta1.DevicePlugin`)."""

    def GetDevicePluginOptions(
        self, request: pb.Empty, context: grpc.ServicerContext
    ) -> pb.DevicePluginOptions:
        """Options the kubelet reads before anything else."""
        ...

    def ListAndWatch(
        self, request: pb.Empty, context: grpc.ServicerContext
    ) -> Iterator[pb.ListAndWatchResponse]:
        """The whole device list, then again on every change."""
        ...

    def GetPreferredAllocation(
        self, request: pb.PreferredAllocationRequest, context: grpc.ServicerContext
    ) -> pb.PreferredAllocationResponse:
        """Which of the available IDs the plugin would like the kubelet to pick."""
        ...

    def Allocate(
        self, request: pb.AllocateRequest, context: grpc.ServicerContext
    ) -> pb.AllocateResponse:
        """Env, mounts and device nodes for each container of the request."""
        ...

    def PreStartContainer(
        self, request: pb.PreStartContainerRequest, context: grpc.ServicerContext
    ) -> pb.PreStartContainerResponse:
        """Hook before a container starts (called only when the options ask for it)."""
        ...


class RegistrationServicer(Protocol):
    """What the kubelet implements on `kubelet.sock`."""

    def Register(self, request: pb.RegisterRequest, context: grpc.ServicerContext) -> pb.Empty:
        """Accept a plugin's registration."""
        ...


def device_plugin_handler(servicer: DevicePluginServicer) -> grpc.GenericRpcHandler[Any, Any]:
    """A handler serving `v1beta1.DevicePlugin` with `servicer`."""
    return grpc.method_handlers_generic_handler(
        DEVICE_PLUGIN_SERVICE,
        {
            "GetDevicePluginOptions": grpc.unary_unary_rpc_method_handler(
                servicer.GetDevicePluginOptions,
                request_deserializer=pb.Empty.FromString,
                response_serializer=pb.DevicePluginOptions.SerializeToString,
            ),
            "ListAndWatch": grpc.unary_stream_rpc_method_handler(
                servicer.ListAndWatch,
                request_deserializer=pb.Empty.FromString,
                response_serializer=pb.ListAndWatchResponse.SerializeToString,
            ),
            "GetPreferredAllocation": grpc.unary_unary_rpc_method_handler(
                servicer.GetPreferredAllocation,
                request_deserializer=pb.PreferredAllocationRequest.FromString,
                response_serializer=pb.PreferredAllocationResponse.SerializeToString,
            ),
            "Allocate": grpc.unary_unary_rpc_method_handler(
                servicer.Allocate,
                request_deserializer=pb.AllocateRequest.FromString,
                response_serializer=pb.AllocateResponse.SerializeToString,
            ),
            "PreStartContainer": grpc.unary_unary_rpc_method_handler(
                servicer.PreStartContainer,
                request_deserializer=pb.PreStartContainerRequest.FromString,
                response_serializer=pb.PreStartContainerResponse.SerializeToString,
            ),
        },
    )


def registration_handler(servicer: RegistrationServicer) -> grpc.GenericRpcHandler[Any, Any]:
    """A handler serving `v1beta1.Registration` with `servicer` (the kubelet's side)."""
    return grpc.method_handlers_generic_handler(
        REGISTRATION_SERVICE,
        {
            "Register": grpc.unary_unary_rpc_method_handler(
                servicer.Register,
                request_deserializer=pb.RegisterRequest.FromString,
                response_serializer=pb.Empty.SerializeToString,
            )
        },
    )


class DevicePluginClient:
    """Typed client of `v1beta1.DevicePlugin` (what the kubelet calls on a plugin)."""

    def __init__(self, channel: grpc.Channel) -> None:
        path = method_path
        svc = DEVICE_PLUGIN_SERVICE
        self.get_options: grpc.UnaryUnaryMultiCallable[pb.Empty, pb.DevicePluginOptions] = (
            channel.unary_unary(
                path(svc, "GetDevicePluginOptions"),
                request_serializer=pb.Empty.SerializeToString,
                response_deserializer=pb.DevicePluginOptions.FromString,
            )
        )
        self.list_and_watch: grpc.UnaryStreamMultiCallable[pb.Empty, pb.ListAndWatchResponse] = (
            channel.unary_stream(
                path(svc, "ListAndWatch"),
                request_serializer=pb.Empty.SerializeToString,
                response_deserializer=pb.ListAndWatchResponse.FromString,
            )
        )
        self.get_preferred_allocation: grpc.UnaryUnaryMultiCallable[
            pb.PreferredAllocationRequest, pb.PreferredAllocationResponse
        ] = channel.unary_unary(
            path(svc, "GetPreferredAllocation"),
            request_serializer=pb.PreferredAllocationRequest.SerializeToString,
            response_deserializer=pb.PreferredAllocationResponse.FromString,
        )
        self.allocate: grpc.UnaryUnaryMultiCallable[pb.AllocateRequest, pb.AllocateResponse] = (
            channel.unary_unary(
                path(svc, "Allocate"),
                request_serializer=pb.AllocateRequest.SerializeToString,
                response_deserializer=pb.AllocateResponse.FromString,
            )
        )
        self.pre_start_container: grpc.UnaryUnaryMultiCallable[
            pb.PreStartContainerRequest, pb.PreStartContainerResponse
        ] = channel.unary_unary(
            path(svc, "PreStartContainer"),
            request_serializer=pb.PreStartContainerRequest.SerializeToString,
            response_deserializer=pb.PreStartContainerResponse.FromString,
        )


class RegistrationClient:
    """Typed client of `v1beta1.Registration` (what a plugin calls on the kubelet)."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.register: grpc.UnaryUnaryMultiCallable[pb.RegisterRequest, pb.Empty] = (
            channel.unary_unary(
                method_path(REGISTRATION_SERVICE, "Register"),
                request_serializer=pb.RegisterRequest.SerializeToString,
                response_deserializer=pb.Empty.FromString,
            )
        )
