"""The committed kubelet API modules: regenerated identically, and the wire names and numbers
the kubelet relies on."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

from google.protobuf import descriptor_pb2

from hami_core.deviceplugin import rpc
from hami_core.deviceplugin.api import (
    deviceplugin_pb2,
    deviceplugin_pb2_grpc,
    pluginregistration_pb2,
    pluginregistration_pb2_grpc,
)

ROOT = Path(__file__).resolve().parents[2]
API = Path("hami_core/deviceplugin/api")


def test_regenerating_gives_the_committed_files(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts/gen-protos"), "--out", str(tmp_path)],
        check=True,
        cwd=ROOT,
    )
    generated = sorted(p.name for p in (tmp_path / API).iterdir())
    assert generated == [
        "deviceplugin_pb2.py",
        "deviceplugin_pb2.pyi",
        "deviceplugin_pb2_grpc.py",
        "pluginregistration_pb2.py",
        "pluginregistration_pb2.pyi",
        "pluginregistration_pb2_grpc.py",
    ]
    for name in generated:
        assert filecmp.cmp(tmp_path / API / name, ROOT / API / name, shallow=False), (
            f"{API / name} differs from what scripts/gen-protos generates; rerun it"
        )


class _RecordingChannel:
    """Collects the method paths a generated stub asks a channel for."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def _record(self, path: str, *args: object, **kwargs: object) -> None:
        self.paths.append(path)

    unary_unary = unary_stream = stream_unary = stream_stream = _record


def test_method_paths_are_the_kubelets() -> None:
    channel = _RecordingChannel()
    deviceplugin_pb2_grpc.RegistrationStub(channel)  # type: ignore[no-untyped-call]
    deviceplugin_pb2_grpc.DevicePluginStub(channel)  # type: ignore[no-untyped-call]
    pluginregistration_pb2_grpc.RegistrationStub(channel)  # type: ignore[no-untyped-call]
    assert channel.paths == [
        "/v1beta1.Registration/Register",
        "/v1beta1.DevicePlugin/GetDevicePluginOptions",
        "/v1beta1.DevicePlugin/ListAndWatch",
        "/v1beta1.DevicePlugin/GetPreferredAllocation",
        "/v1beta1.DevicePlugin/Allocate",
        "/v1beta1.DevicePlugin/PreStartContainer",
        "/pluginregistration.Registration/GetInfo",
        "/pluginregistration.Registration/NotifyRegistrationStatus",
    ]
    # the typed layer the plugin uses builds the same paths
    assert rpc.method_path(rpc.DEVICE_PLUGIN_SERVICE, "Allocate") == channel.paths[4]
    assert rpc.method_path(rpc.REGISTRATION_SERVICE, "Register") == channel.paths[0]


def test_list_and_watch_is_a_server_stream() -> None:
    service = deviceplugin_pb2.DESCRIPTOR.services_by_name["DevicePlugin"]
    streaming = {m.name: (m.client_streaming, m.server_streaming) for m in service.methods}
    assert streaming == {
        "GetDevicePluginOptions": (False, False),
        "ListAndWatch": (False, True),
        "GetPreferredAllocation": (False, False),
        "Allocate": (False, False),
        "PreStartContainer": (False, False),
    }


def _fields(module: object, message: str) -> dict[str, tuple[int, str, bool]]:
    desc = module.DESCRIPTOR.message_types_by_name[message]  # type: ignore[attr-defined]
    out = {}
    for f in desc.fields:
        kind = (
            f.message_type.full_name
            if f.message_type
            else descriptor_pb2.FieldDescriptorProto.Type.Name(f.type)
        )
        out[f.name] = (f.number, kind, f.is_repeated)
    return out


def test_device_plugin_messages_match_the_reference() -> None:
    pb = deviceplugin_pb2
    assert _fields(pb, "DevicePluginOptions") == {
        "pre_start_required": (1, "TYPE_BOOL", False),
        "get_preferred_allocation_available": (2, "TYPE_BOOL", False),
    }
    assert _fields(pb, "RegisterRequest") == {
        "version": (1, "TYPE_STRING", False),
        "endpoint": (2, "TYPE_STRING", False),
        "resource_name": (3, "TYPE_STRING", False),
        "options": (4, "v1beta1.DevicePluginOptions", False),
    }
    assert _fields(pb, "Empty") == {}
    assert _fields(pb, "ListAndWatchResponse") == {"devices": (1, "v1beta1.Device", True)}
    assert _fields(pb, "Device") == {
        "ID": (1, "TYPE_STRING", False),
        "health": (2, "TYPE_STRING", False),
        "topology": (3, "v1beta1.TopologyInfo", False),
    }
    assert _fields(pb, "TopologyInfo") == {"nodes": (1, "v1beta1.NUMANode", True)}
    assert _fields(pb, "NUMANode") == {"ID": (1, "TYPE_INT64", False)}
    assert _fields(pb, "PreStartContainerRequest") == {"devices_ids": (1, "TYPE_STRING", True)}
    assert _fields(pb, "PreStartContainerResponse") == {}
    assert _fields(pb, "PreferredAllocationRequest") == {
        "container_requests": (1, "v1beta1.ContainerPreferredAllocationRequest", True)
    }
    assert _fields(pb, "ContainerPreferredAllocationRequest") == {
        "available_deviceIDs": (1, "TYPE_STRING", True),
        "must_include_deviceIDs": (2, "TYPE_STRING", True),
        "allocation_size": (3, "TYPE_INT32", False),
    }
    assert _fields(pb, "PreferredAllocationResponse") == {
        "container_responses": (1, "v1beta1.ContainerPreferredAllocationResponse", True)
    }
    assert _fields(pb, "ContainerPreferredAllocationResponse") == {
        "deviceIDs": (1, "TYPE_STRING", True)
    }
    assert _fields(pb, "AllocateRequest") == {
        "container_requests": (1, "v1beta1.ContainerAllocateRequest", True)
    }
    assert _fields(pb, "ContainerAllocateRequest") == {"devices_ids": (1, "TYPE_STRING", True)}
    assert _fields(pb, "AllocateResponse") == {
        "container_responses": (1, "v1beta1.ContainerAllocateResponse", True)
    }
    assert _fields(pb, "ContainerAllocateResponse") == {
        "envs": (1, "v1beta1.ContainerAllocateResponse.EnvsEntry", True),
        "mounts": (2, "v1beta1.Mount", True),
        "devices": (3, "v1beta1.DeviceSpec", True),
        "annotations": (4, "v1beta1.ContainerAllocateResponse.AnnotationsEntry", True),
        "cdi_devices": (5, "v1beta1.CDIDevice", True),
    }
    envs = pb.ContainerAllocateResponse.DESCRIPTOR.fields_by_name["envs"].message_type
    assert envs is not None
    assert envs.GetOptions().map_entry
    assert _fields(pb, "Mount") == {
        "container_path": (1, "TYPE_STRING", False),
        "host_path": (2, "TYPE_STRING", False),
        "read_only": (3, "TYPE_BOOL", False),
    }
    assert _fields(pb, "DeviceSpec") == {
        "container_path": (1, "TYPE_STRING", False),
        "host_path": (2, "TYPE_STRING", False),
        "permissions": (3, "TYPE_STRING", False),
    }
    assert _fields(pb, "CDIDevice") == {"name": (1, "TYPE_STRING", False)}


def test_plugin_registration_messages_match_the_reference() -> None:
    pb = pluginregistration_pb2
    assert pb.DESCRIPTOR.package == "pluginregistration"
    assert _fields(pb, "PluginInfo") == {
        "type": (1, "TYPE_STRING", False),
        "name": (2, "TYPE_STRING", False),
        "endpoint": (3, "TYPE_STRING", False),
        "supported_versions": (4, "TYPE_STRING", True),
    }
    assert _fields(pb, "RegistrationStatus") == {
        "plugin_registered": (1, "TYPE_BOOL", False),
        "error": (2, "TYPE_STRING", False),
    }
    assert _fields(pb, "InfoRequest") == {}
    assert _fields(pb, "RegistrationStatusResponse") == {}


def test_both_apis_load_in_one_process_with_distinct_descriptor_names() -> None:
    assert deviceplugin_pb2.DESCRIPTOR.name != pluginregistration_pb2.DESCRIPTOR.name
    assert deviceplugin_pb2.DESCRIPTOR.package == "v1beta1"
