"""Both inventory forms: the shorthand as the node agent and kubelet would publish it, and a
cluster snapshot as kubectl prints it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from sim_kit import EXAMPLES

from hami_core import hookimpl
from hami_core.model import AnnotationKeys, NodeView, ResourceNames, VendorSpec
from hami_core.plugins import VendorRegistry, load_vendors
from hami_core.protocol import decode_node_devices
from hami_core.protocol.keys import NODE_LOCK
from hami_core.simulate import InputError, Inventory, Simulator, load_inventory


def write(tmp_path: Path, data: Any, name: str = "inventory.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return str(path)


def node(inventory: Inventory, name: str) -> dict[str, Any]:
    [found] = [n for n in inventory.nodes if n["metadata"]["name"] == name]
    return found


# ------------------------------------------------------------------------------ shorthand


def test_nvidia_cards_are_registered_as_the_node_agent_writes_them(
    tmp_path: Path, registry: VendorRegistry
) -> None:
    path = write(
        tmp_path,
        {
            "nodes": [
                {
                    "name": "gpu-1",
                    "labels": {"pool": "a"},
                    "devices": [
                        {
                            "vendor": "nvidia",
                            "model": "Tesla T4",
                            "memory": "15Gi",
                            "count": 2,
                            "uuids": ["GPU-a", "GPU-b"],
                            "numa": 1,
                        }
                    ],
                }
            ]
        },
    )
    inv = load_inventory(path, registry)
    gpu = node(inv, "gpu-1")
    assert gpu["metadata"]["labels"] == {"kubernetes.io/hostname": "gpu-1", "pool": "a"}
    cards = decode_node_devices(gpu["metadata"]["annotations"]["hami.io/node-nvidia-register"])
    assert [(c.id, c.index, c.count, c.devmem, c.type, c.numa) for c in cards] == [
        ("GPU-a", 0, 10, 15360, "NVIDIA-Tesla T4", 1),
        ("GPU-b", 1, 10, 15360, "NVIDIA-Tesla T4", 1),
    ]
    assert gpu["status"]["capacity"] == {"nvidia.com/gpu": "20"}
    assert [d.uuid for d in inv.devices["gpu-1"]["nvidia"]] == ["GPU-a", "GPU-b"]


def test_split_override_and_unhealthy_cards_shape_the_kubelet_numbers(
    tmp_path: Path, registry: VendorRegistry
) -> None:
    path = write(
        tmp_path,
        {
            "nodes": [
                {
                    "name": "gpu-1",
                    "devices": [
                        {"vendor": "nvidia", "model": "NVIDIA A10", "memory": 24576, "split": 4},
                        {
                            "vendor": "nvidia",
                            "model": "NVIDIA A10",
                            "memory": 24576,
                            "split": 4,
                            "health": False,
                        },
                    ],
                }
            ]
        },
    )
    gpu = node(load_inventory(path, registry), "gpu-1")
    assert gpu["status"]["capacity"] == {"nvidia.com/gpu": "8"}
    assert gpu["status"]["allocatable"] == {"nvidia.com/gpu": "4"}
    cards = decode_node_devices(gpu["metadata"]["annotations"]["hami.io/node-nvidia-register"])
    assert [(c.count, c.health) for c in cards] == [(4, True), (4, False)]


def test_capacity_vendors_get_the_capacity_their_device_plugin_advertises(
    tmp_path: Path, registry: VendorRegistry
) -> None:
    path = write(
        tmp_path,
        {
            "nodes": [
                {
                    "name": "mlu-1",
                    "devices": [
                        {"vendor": "cambricon", "model": "MLU370-X8", "memory": 24576, "count": 2}
                    ],
                },
                {
                    "name": "mx-1",
                    "devices": [
                        {"vendor": "metax", "model": "MXC500", "memory": 65536, "count": 3}
                    ],
                },
            ]
        },
    )
    inv = load_inventory(path, registry)
    assert inv.warnings == []
    assert node(inv, "mlu-1")["status"]["capacity"] == {
        "cambricon.com/mlu.smlu.vcore": "200",
        "cambricon.com/mlu.smlu.vmemory": str(2 * 24576 // 256),
    }
    assert node(inv, "mlu-1")["metadata"]["annotations"] == {}
    assert node(inv, "mx-1")["status"]["capacity"] == {"metax-tech.com/gpu": "3"}
    seen = registry.hook.hami_read_node(
        spec=registry.spec("cambricon"), node=NodeView.from_obj(node(inv, "mlu-1")), config={}
    )
    assert [(c.id, c.devmem) for c in seen] == [
        ("mlu-1-cambricon-mlu-0", 24576),
        ("mlu-1-cambricon-mlu-1", 24576),
    ]


def test_advertise_states_a_vendor_plugins_kubelet_devices(
    tmp_path: Path, registry: VendorRegistry
) -> None:
    entry = {
        "vendor": "mthreads",
        "model": "MTT S4000",
        "memory": 49152,
        "cores": 16,
        "count": 2,
        "advertise": {"mthreads.com/sgpu-core": 16, "mthreads.com/sgpu-memory": 96},
    }
    inv = load_inventory(
        write(tmp_path, {"nodes": [{"name": "mt-1", "devices": [entry]}]}), registry
    )
    capacity = node(inv, "mt-1")["status"]["capacity"]
    assert capacity["mthreads.com/sgpu-core"] == "32"
    assert capacity["mthreads.com/sgpu-memory"] == "192"
    assert inv.warnings == []


class _CapacityOnly:
    """A vendor read from node capacity whose own device plugin hami knows nothing about."""

    SPEC = VendorSpec(
        key="capcard",
        common_word="CAPCARD",
        resources=ResourceNames(count="cap.example/card", memory="cap.example/mem"),
        annotations=AnnotationKeys(allocated="hami.io/capcard-devices-allocated"),
        register_format="capacity",
        mounting="builtin",
    )

    @hookimpl
    def hami_vendor(self) -> VendorSpec:
        return self.SPEC

    @hookimpl
    def hami_read_node(self, spec: VendorSpec, node: NodeView, config: Any) -> list[Any] | None:
        if spec.key != self.SPEC.key:
            return None
        from hami_core.protocol import DeviceInfo

        count = int(node.capacity.get("cap.example/card", "0"))
        return [
            DeviceInfo(id=f"{node.name}-cap-{i}", count=1, devmem=1, devcore=100, type="CAP")
            for i in range(count)
        ]


def test_cards_the_scheduler_would_not_see_are_warned_about(tmp_path: Path) -> None:
    registry = load_vendors(environ={}, entry_points_=[], plugins=[("capcard", _CapacityOnly())])
    entry = {"vendor": "capcard", "model": "C1", "memory": 1024, "count": 2}
    inv = load_inventory(
        write(tmp_path, {"nodes": [{"name": "c-1", "devices": [entry]}]}), registry
    )
    [warning] = inv.warnings
    assert "node c-1: capcard: the inventory lists 2 card(s) but the scheduler reads 0" in warning
    assert "`advertise:` for cap.example/card, cap.example/mem" in warning
    entry["advertise"] = {"cap.example/card": 1}
    fixed = load_inventory(
        write(tmp_path, {"nodes": [{"name": "c-1", "devices": [entry]}]}), registry
    )
    assert fixed.warnings == []


def test_generated_uuids_follow_the_seed(tmp_path: Path, registry: VendorRegistry) -> None:
    path = write(
        tmp_path,
        {
            "nodes": [
                {
                    "name": "n",
                    "devices": [{"vendor": "nvidia", "model": "A", "memory": 1024, "count": 3}],
                }
            ]
        },
    )

    def ids(seed: int) -> list[str]:
        return [d.uuid for d in load_inventory(path, registry, seed=seed).devices["n"]["nvidia"]]

    assert ids(7) == ids(7)
    assert ids(7) != ids(8)
    assert len(set(ids(7))) == 3
    assert all(u.startswith("NVIDIA-") for u in ids(7))


def test_user_annotations_sit_beside_the_register_annotations(
    tmp_path: Path, registry: VendorRegistry
) -> None:
    path = write(
        tmp_path,
        {
            "nodes": [
                {
                    "name": "n",
                    "annotations": {"hami.io/device-cordon": "GPU-x"},
                    "devices": [
                        {"vendor": "nvidia", "model": "A", "memory": 1024, "uuids": ["GPU-x"]}
                    ],
                }
            ]
        },
    )
    annotations = node(load_inventory(path, registry), "n")["metadata"]["annotations"]
    assert annotations["hami.io/device-cordon"] == "GPU-x"
    assert "hami.io/node-nvidia-register" in annotations


# ------------------------------------------------------------------------------ snapshot


def test_the_example_snapshot_counts_its_running_pods(registry: VendorRegistry) -> None:
    inv = load_inventory(str(EXAMPLES / "snapshot.yaml"), registry)
    assert inv.form == "snapshot"
    assert [n["metadata"]["name"] for n in inv.nodes] == ["gpu-node-1", "gpu-node-2", "dcu-node-1"]
    result = Simulator(registry, {}, inv).result()
    first = {c.id: c for c in result.nodes["gpu-node-1"]}
    assert (
        first["GPU-0d6a4b5c-94b1-2e8e-7f3a-5c1d2e9f0a11"].usedmem,
        first["GPU-0d6a4b5c-94b1-2e8e-7f3a-5c1d2e9f0a11"].usedcores,
    ) == (20480, 50)
    assert first["GPU-7b3e2f10-6c4d-11ee-9a2b-0242ac120002"].used == 0
    dcu = {c.id: c for c in result.nodes["dcu-node-1"]}
    assert dcu["DCU-1d2f4e6a-8b0c-4d1e-9f3a-5b7c9d1e3f51"].usedcores == 100
    # the Succeeded pod on gpu-node-2 holds nothing
    assert sum(c.used for c in result.nodes["gpu-node-2"]) == 0


def test_a_snapshot_may_be_multi_document_yaml_or_json(
    tmp_path: Path, registry: VendorRegistry
) -> None:
    listing = yaml.safe_load((EXAMPLES / "snapshot.yaml").read_text())
    docs = yaml.safe_dump_all(listing["items"])
    as_yaml = load_inventory(write(tmp_path, docs, "snap.yaml"), registry)
    as_json = load_inventory(write(tmp_path, json.dumps(listing), "snap.json"), registry)
    for inv in (as_yaml, as_json):
        assert [n["metadata"]["name"] for n in inv.nodes] == [
            "gpu-node-1",
            "gpu-node-2",
            "dcu-node-1",
        ]
        assert len(inv.pods) == 3


def test_snapshot_in_flight_state_is_settled(tmp_path: Path, registry: VendorRegistry) -> None:
    listing = yaml.safe_load((EXAMPLES / "snapshot.yaml").read_text())
    gpu = listing["items"][0]
    gpu["metadata"]["annotations"][NODE_LOCK] = "2025-01-01T00:00:00Z,ml,llm-finetune-0"
    running = listing["items"][3]
    running["status"]["phase"] = "Pending"
    pending = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "queued", "namespace": "ml"},
        "spec": {"containers": [{"name": "c"}]},
    }
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"}}
    listing["items"] += [pending, service]
    inv = load_inventory(write(tmp_path, listing), registry)
    assert NODE_LOCK not in node(inv, "gpu-node-1")["metadata"]["annotations"]
    [finetune] = [p for p in inv.pods if p["metadata"]["name"] == "llm-finetune-0"]
    assert finetune["status"]["phase"] == "Running"
    assert len(inv.warnings) == 2
    assert 'Pod "ml/queued"' in inv.warnings[0] and "not bound" in inv.warnings[0]
    assert "1 Service" in inv.warnings[1]


def test_a_malformed_register_annotation_fails_only_that_node(
    tmp_path: Path, registry: VendorRegistry
) -> None:
    listing = yaml.safe_load((EXAMPLES / "snapshot.yaml").read_text())
    listing["items"][1]["metadata"]["annotations"]["hami.io/node-nvidia-register"] = "[{oops"
    inv = load_inventory(write(tmp_path, listing), registry)
    result = Simulator(registry, {}, inv).result()
    assert result.nodes["gpu-node-2"] == ()
    assert "hami.io/node-nvidia-register" in result.node_errors["gpu-node-2"]
    assert any(w.startswith("node gpu-node-2: nvidia:") for w in result.warnings)
    assert len(result.nodes["gpu-node-1"]) == 2


@pytest.mark.parametrize(
    ("data", "obj", "field", "problem"),
    [
        (
            {"nodes": [{"name": "n", "devices": [{"vendor": "nvida", "model": "A", "memory": 1}]}]},
            'node "n" (nodes[0])',
            "devices[0].vendor",
            "did you mean 'nvidia'?",
        ),
        (
            {
                "nodes": [
                    {"name": "n", "devices": [{"vendor": "nvidia", "model": "A", "memory": "lots"}]}
                ]
            },
            'node "n" (nodes[0])',
            "devices[0].memory",
            "is not a quantity",
        ),
        (
            {"nodes": [{"name": "n", "devices": [{"vendor": "nvidia", "model": "A"}]}]},
            'node "n" (nodes[0])',
            "devices[0].memory",
            "required",
        ),
        (
            {
                "nodes": [
                    {
                        "name": "n",
                        "devices": [
                            {"vendor": "nvidia", "model": "A", "memory": 1, "colour": "red"}
                        ],
                    }
                ]
            },
            'node "n" (nodes[0])',
            "devices[0].colour",
            "unknown field",
        ),
        ({"nodes": [{"name": "N_1"}]}, 'node "N_1" (nodes[0])', "name", "should match pattern"),
        ({"nodes": [{"name": "n"}, {"name": "n"}]}, "nodes[1]", "name", "also used by nodes[0]"),
        (
            {
                "nodes": [
                    {
                        "name": "n",
                        "devices": [
                            {
                                "vendor": "nvidia",
                                "model": "A",
                                "memory": 1,
                                "count": 2,
                                "uuids": ["x"],
                            }
                        ],
                    }
                ]
            },
            'node "n" (nodes[0])',
            "devices[0].uuids",
            "1 uuids for count 2",
        ),
        (
            {
                "nodes": [
                    {
                        "name": "n",
                        "devices": [
                            {"vendor": "nvidia", "model": "A", "memory": 1, "uuids": ["a,b"]}
                        ],
                    }
                ]
            },
            'node "n" (nodes[0])',
            "devices[0].uuids",
            "without ',', ':' or ';'",
        ),
        ({"nodes": "gpu-1"}, "", "nodes", "valid list"),
    ],
)
def test_bad_shorthand_names_file_object_and_field(
    tmp_path: Path,
    registry: VendorRegistry,
    data: Any,
    obj: str,
    field: str,
    problem: str,
) -> None:
    path = write(tmp_path, data)
    with pytest.raises(InputError) as caught:
        load_inventory(path, registry)
    error = caught.value
    assert (error.file, error.obj, error.field) == (path, obj, field)
    assert problem in error.problem
    assert str(error).startswith(f"{path}: {obj + ': ' if obj else ''}{field}: ")
