"""The shipped example: every seed vendor's pods on examples/cluster.yaml, as a user reads them."""

from __future__ import annotations

import re

import pytest
from sim_kit import EXAMPLES

from hami_core.plugins import VendorRegistry
from hami_core.simulate import ContainerOutcome, PodOutcome, SimulationResult, simulate

SEED_VENDORS = (
    "nvidia",
    "ascend910b3",
    "hygon",
    "cambricon",
    "iluvatar-bi-v150",
    "mthreads",
    "metax",
)


def pod(result: SimulationResult, key: str) -> PodOutcome:
    [found] = [p for p in result.pods if p.key == key]
    return found


def shares(outcome: PodOutcome, word: str) -> list[tuple[str, int, int]]:
    """(uuid, MiB, cores) of every device of vendor `word`, over all containers."""
    return [(d.uuid, d.usedmem, d.usedcores) for c in outcome.devices[word] for d in c]


def container(outcome: PodOutcome, name: str) -> ContainerOutcome:
    [found] = [c for c in outcome.containers if c.name == name]
    return found


def node_paths(c: ContainerOutcome) -> list[str]:
    return [str(d["host_path"]) for d in c.devices]


def test_every_seed_vendor_is_installed(registry: VendorRegistry) -> None:
    missing = [key for key in SEED_VENDORS if key not in registry.vendors]
    assert not missing, f"vendors not installed: {missing}"


def test_the_inventory_raises_no_warnings(example: SimulationResult) -> None:
    assert example.warnings == ()
    assert set(example.nodes) == {
        "gpu-a100-1",
        "gpu-a100-2",
        "gpu-v100-1",
        "npu-910b3-1",
        "dcu-z100-1",
        "mlu-370-1",
        "ix-bi150-1",
        "mt-s4000-1",
        "mx-c500-1",
    }


def test_nvidia_training_pod_shares_two_a100s(example: SimulationResult) -> None:
    train = pod(example, "ml/train-a100")
    assert train.stage == "scheduled"
    assert train.node in ("gpu-a100-1", "gpu-a100-2")
    got = shares(train, "NVIDIA")
    assert [(m, c) for _, m, c in got] == [(40000, 50), (40000, 50)]
    env = container(train, "trainer").env
    assert env["NVIDIA_VISIBLE_DEVICES"].split(",") == [u for u, _, _ in got]
    assert env["CUDA_DEVICE_MEMORY_LIMIT_0"] == env["CUDA_DEVICE_MEMORY_LIMIT_1"] == "40000m"
    assert env["CUDA_DEVICE_SM_LIMIT"] == "50"


def test_nvidia_replicas_share_cards(example: SimulationResult) -> None:
    replicas = [pod(example, f"ml/infer-{i}") for i in range(6)]
    assert {p.stage for p in replicas} == {"scheduled"}
    cards = [shares(p, "NVIDIA") for p in replicas]
    assert all(len(c) == 1 and c[0][1:] == (8000, 20) for c in cards)
    assert len({c[0][0] for c in cards}) < len(cards), "some replicas share a card"


def test_nvidia_count_only_is_exclusive_and_type_pins_hold(example: SimulationResult) -> None:
    solo = pod(example, "ml/exclusive-v100")
    assert solo.node == "gpu-v100-1"
    [(uuid, mem, cores)] = shares(solo, "NVIDIA")
    assert (mem, cores) == (32768, 100)
    [card] = [c for c in example.nodes["gpu-v100-1"] if c.id == uuid]
    assert card.type == "NVIDIA-Tesla V100-SXM2-32GB"
    assert (card.used, card.usedcores) == (1, 100)


def test_nvidia_memory_percentage_and_binpack_policy(example: SimulationResult) -> None:
    notebook = pod(example, "dev/notebook")
    [(uuid, mem, cores)] = shares(notebook, "NVIDIA")
    assert (mem, cores) == (81920 // 4, 10)
    [card] = [c for c in example.nodes[str(notebook.node)] if c.id == uuid]
    assert card.used > 1, "binpack puts it on a card already in use"


def test_nvidia_init_and_app_containers_each_get_their_share(example: SimulationResult) -> None:
    pipeline = pod(example, "ml/pipeline")
    assert [c.name for c in pipeline.containers] == ["warmup", "encoder", "decoder"]
    per_container = [[(d.usedmem, d.usedcores) for d in c] for c in pipeline.devices["NVIDIA"]]
    assert per_container == [[(2000, 10)], [(6000, 15)], [(6000, 15)]]
    assert container(pipeline, "warmup").env["CUDA_DEVICE_MEMORY_LIMIT_0"] == "2000m"
    assert container(pipeline, "decoder").env["CUDA_DEVICE_SM_LIMIT"] == "15"


def test_ascend_requests_round_up_to_templates(example: SimulationResult) -> None:
    for i in range(3):
        batch = pod(example, f"npu/npu-batch-{i}")
        assert batch.node == "npu-910b3-1"
        assert [m for _, m, _ in shares(batch, "Ascend910B3")] == [16384]
        assert container(batch, "worker").env["ASCEND_VNPU_SPECS"] == "vir05_1c_16g"
    large = pod(example, "npu/npu-large")
    assert [m for _, m, _ in shares(large, "Ascend910B3")] == [32768]
    assert container(large, "main").env["ASCEND_VNPU_SPECS"] == "vir10_3c_32g"


def test_ascend_two_npus_are_whole(example: SimulationResult) -> None:
    for i in range(2):
        train = pod(example, f"npu/npu-train-{i}")
        assert [m for _, m, _ in shares(train, "Ascend910B3")] == [65536, 65536]
        env = container(train, "trainer").env
        assert len(env["ASCEND_VISIBLE_DEVICES"].split(",")) == 2
        assert "ASCEND_VNPU_SPECS" not in env


def test_hygon_whole_cards_get_their_device_nodes(example: SimulationResult) -> None:
    one = pod(example, "hpc/dcu-one")
    assert one.node == "dcu-z100-1"
    assert [(m, c) for _, m, c in shares(one, "DCU")] == [(32768, 100)]
    paths = node_paths(container(one, "main"))
    assert paths[0] == "/dev/kfd"
    assert re.fullmatch(r"/dev/dri/card[0-3]", paths[1])
    pair = pod(example, "hpc/dcu-pair")
    assert [(m, c) for _, m, c in shares(pair, "DCU")] == [(32768, 100), (32768, 100)]
    assert len(node_paths(container(pair, "main"))) == 5  # /dev/kfd, card and renderD each


def test_hygon_slice_gets_a_vdcu_config_mount(example: SimulationResult) -> None:
    slice_ = pod(example, "hpc/dcu-slice")
    assert slice_.node == "dcu-z100-1"
    assert [(m, c) for _, m, c in shares(slice_, "DCU")] == [(8192, 25)]
    main = container(slice_, "main")
    assert {m["container_path"] for m in main.mounts} >= {"/etc/vdev/docker", "/opt/hyhal"}
    assert node_paths(main)[0] == "/dev/kfd"


def test_cambricon_slice_names_its_smlu_node(example: SimulationResult) -> None:
    slice_ = pod(example, "hpc/mlu-slice")
    assert slice_.node == "mlu-370-1"
    assert [(m, c) for _, m, c in shares(slice_, "MLU")] == [(16 * 256, 25)]
    assert any(p.startswith("/dev/cambricon-caps/") for p in node_paths(container(slice_, "main")))


def test_cambricon_cards_are_read_from_capacity(example: SimulationResult) -> None:
    cards = example.nodes["mlu-370-1"]
    assert [c.id for c in cards] == [f"mlu-370-1-cambricon-mlu-{i}" for i in range(4)]
    assert {(c.count, c.totalmem, c.type) for c in cards} == {(100, 24576, "MLU")}
    one = pod(example, "hpc/mlu-one")
    assert [(m, c) for _, m, c in shares(one, "MLU")] == [(24576, 100)]
    paths = node_paths(container(one, "main"))
    assert paths[0] == "/dev/cambricon_ctl"
    assert re.fullmatch(r"/dev/cambricon_dev[0-3]", paths[1])
    two = pod(example, "hpc/mlu-two")
    assert len(shares(two, "MLU")) == 2


def test_iluvatar_replicas_share_cards_in_256_mib_units(example: SimulationResult) -> None:
    for i in range(3):
        replica = pod(example, f"hpc/ix-infer-{i}")
        [(uuid, mem, cores)] = shares(replica, "BI-V150")
        assert (mem, cores) == (32 * 256, 25)
        server = container(replica, "server")
        assert server.env["IX_VISIBLE_DEVICES"] == uuid
        assert "/dev/itrctl" in node_paths(server)


def test_mthreads_slice_and_whole_cards(example: SimulationResult) -> None:
    share = pod(example, "hpc/mt-share")
    [(uuid, mem, cores)] = shares(share, "Mthreads")
    assert (mem, cores) == (16 * 512, 4)
    assert uuid.startswith("mt-s4000-1-mthreads-")
    assert container(share, "main").env["MTHREADS_VISIBLE_DEVICES"] == uuid.rsplit("-", 1)[1]
    whole = pod(example, "hpc/mt-whole")
    assert [(m, c) for _, m, c in shares(whole, "Mthreads")] == [(49152, 16), (49152, 16)]


def test_metax_takes_whole_cards(example: SimulationResult) -> None:
    pair = pod(example, "hpc/mx-pair")
    assert pair.node == "mx-c500-1"
    assert [(m, c) for _, m, c in shares(pair, "Metax-GPU")] == [(65536, 100), (65536, 100)]
    assert node_paths(container(pair, "main"))[0] == "/dev/mxcd"
    assert sum(c.used for c in example.nodes["mx-c500-1"]) == 2


def test_a_pod_that_fits_nowhere_says_why_per_node(example: SimulationResult) -> None:
    big = pod(example, "ml/too-big")
    assert (big.stage, big.node, big.containers) == ("unschedulable", None, ())
    assert big.failed["gpu-a100-1"] == "4/4 CardInsufficientMemory"
    assert big.failed["gpu-v100-1"] == "4/4 CardInsufficientMemory"
    assert big.failed["npu-910b3-1"] == "NodeInsufficientDevice"
    assert big.reason is not None
    assert big.reason.startswith("4/4 CardInsufficientMemory [gpu-a100-1, gpu-a100-2, gpu-v100-1]")


def test_the_webhook_refuses_a_privileged_pod(example: SimulationResult) -> None:
    refused = pod(example, "ml/privileged")
    assert refused.stage == "denied"
    assert refused.reason == "denied by the webhook: container main is privileged"


def test_a_pod_without_accelerators_is_left_to_kube_scheduler(example: SimulationResult) -> None:
    web = pod(example, "default/web")
    assert (web.stage, web.node, web.devices) == ("skipped", None, {})


def test_card_fill_adds_up_the_running_pods(example: SimulationResult) -> None:
    for name in ("npu-910b3-1", "ix-bi150-1", "mt-s4000-1", "dcu-z100-1"):
        running = [p for p in example.pods if p.node == name and p.stage == "scheduled"]
        held = [d for p in running for cs in p.devices.values() for c in cs for d in c]
        cards = example.nodes[name]
        assert sum(c.usedmem for c in cards) == sum(d.usedmem for d in held)
        assert sum(c.usedcores for c in cards) == sum(d.usedcores for d in held)
        assert sum(c.used for c in cards) == len(held)


@pytest.mark.parametrize("policy", ["binpack", "spread"])
def test_node_policy_moves_the_replicas(registry: VendorRegistry, policy: str) -> None:
    result = simulate(
        str(EXAMPLES / "cluster.yaml"),
        [str(EXAMPLES / "workload.yaml")],
        registry=registry,
        node_policy=policy,
    )
    nodes = {pod(result, f"ml/infer-{i}").node for i in range(6)}
    if policy == "binpack":
        assert len(nodes) == 1
    else:
        assert len(nodes) > 1
