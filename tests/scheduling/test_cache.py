"""The usage cache: cards decoded on change, usage kept incrementally, equal to a rebuild."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sched_kit import NVIDIA, SpecPlugin, container, make_registry, node, nvidia_node, pod

from hami_core import hookimpl
from hami_core.model import ContainerDevice, NodeView, VendorSpec
from hami_core.plugins import VendorRegistry, load_vendors
from hami_core.scheduling.cache import UsageCache


def placed(
    name: str,
    node_name: str,
    allocated: str,
    *,
    containers: int = 1,
    init: int = 0,
    phase: str | None = None,
    namespace: str = "default",
) -> dict[str, Any]:
    """A pod the scheduler already placed: `hami.io/vgpu-node` plus the NVIDIA allocated key."""
    return pod(
        name,
        containers=[container(f"c{i}") for i in range(containers)],
        init=[container(f"i{i}") for i in range(init)],
        annotations={
            "hami.io/vgpu-node": node_name,
            "hami.io/vgpu-devices-allocated": allocated,
        },
        phase=phase,
        namespace=namespace,
    )


def usage(
    cache: UsageCache, node_name: str, vendor: str = "nvidia"
) -> dict[str, tuple[int, int, int]]:
    """Card UUID → (used, usedmem, usedcores)."""
    snap = cache.snapshot().nodes[node_name]
    return {uuid: (u, m, c) for uuid, u, m, c in snap.vendors[vendor]}


@pytest.fixture
def cache(registry: VendorRegistry) -> UsageCache:
    c = UsageCache(registry, {}, reservation_ttl=30)
    c.upsert_node(nvidia_node("n1", 2))
    return c


def test_nodes_are_read_from_their_register_annotation(cache: UsageCache) -> None:
    assert usage(cache, "n1") == {"GPU-n1-0": (0, 0, 0), "GPU-n1-1": (0, 0, 0)}
    state = cache.node("n1")
    assert state is not None
    assert [(d.totalmem, d.count, d.totalcore) for d in state.cards("nvidia")] == [
        (16384, 10, 100),
        (16384, 10, 100),
    ]


class CountingReader(SpecPlugin):
    """NVIDIA that counts how often the scheduler reads a node, then lets the generic reader
    answer."""

    def __init__(self) -> None:
        super().__init__(NVIDIA)
        self.calls = 0

    @hookimpl
    def hami_read_node(self, spec: VendorSpec, node: NodeView, config: Any) -> None:
        self.calls += 1


def test_nodes_are_decoded_only_when_their_cards_may_have_changed() -> None:
    reader = CountingReader()
    registry = load_vendors(environ={}, entry_points_=[], plugins=[("nvidia", reader)])
    cache = UsageCache(registry, {})
    n = nvidia_node("n1", 2)
    cache.upsert_node(n)
    assert reader.calls == 1
    for volatile in (
        {"hami.io/mutex.lock": "2024-05-01T10:00:00Z,default,p"},
        {"hami.io/node-handshake": "Requesting_2024-05-01 10:00:00"},
    ):
        n["metadata"]["annotations"].update(volatile)
        cache.upsert_node(n)
    assert reader.calls == 1
    n["metadata"]["annotations"]["hami.io/device-cordon"] = "GPU-n1-0"
    cache.upsert_node(n)
    assert reader.calls == 1
    state = cache.node("n1")
    assert state is not None and state.view.annotations["hami.io/device-cordon"] == "GPU-n1-0"
    n["metadata"]["annotations"]["hami.io/node-nvidia-register"] = nvidia_node("n1", 3)["metadata"][
        "annotations"
    ]["hami.io/node-nvidia-register"]
    cache.upsert_node(n)
    assert reader.calls == 2
    assert len(usage(cache, "n1")) == 3


def test_a_malformed_annotation_is_kept_as_that_nodes_error(cache: UsageCache) -> None:
    cache.upsert_node(node("bad", {"hami.io/node-nvidia-register": "[{not json"}))
    snap = cache.snapshot()
    error = snap.nodes["bad"].errors["nvidia"]
    assert error.startswith("nvidia: annotation hami.io/node-nvidia-register: ")
    assert snap.nodes["bad"].vendors == {}
    assert usage(cache, "n1")  # the other node is untouched


def test_malformed_pair_scores_fail_the_vendor_on_that_node(cache: UsageCache) -> None:
    n = nvidia_node("n2", 2, extra={"hami.io/node-nvidia-score": "{oops"})
    cache.upsert_node(n)
    error = cache.snapshot().nodes["n2"].errors["nvidia"]
    assert "hami.io/node-nvidia-score" in error


def test_a_placed_pod_counts_on_its_cards(cache: UsageCache) -> None:
    cache.upsert_pod(placed("a", "n1", "GPU-n1-0,NVIDIA,3000,30:;"))
    assert usage(cache, "n1") == {"GPU-n1-0": (1, 3000, 30), "GPU-n1-1": (0, 0, 0)}


def test_a_pod_update_replaces_its_previous_usage(cache: UsageCache) -> None:
    cache.upsert_pod(placed("a", "n1", "GPU-n1-0,NVIDIA,3000,30:;"))
    cache.upsert_pod(placed("a", "n1", "GPU-n1-1,NVIDIA,1000,0:;"))
    assert usage(cache, "n1") == {"GPU-n1-0": (0, 0, 0), "GPU-n1-1": (1, 1000, 0)}


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_finished_pods_stop_counting(cache: UsageCache, phase: str) -> None:
    cache.upsert_pod(placed("a", "n1", "GPU-n1-0,NVIDIA,3000,30:;"))
    cache.upsert_pod(placed("a", "n1", "GPU-n1-0,NVIDIA,3000,30:;", phase=phase))
    assert usage(cache, "n1")["GPU-n1-0"] == (0, 0, 0)


def test_deleted_pods_stop_counting(cache: UsageCache) -> None:
    cache.upsert_pod(placed("a", "n1", "GPU-n1-0,NVIDIA,3000,30:;", namespace="ml"))
    cache.remove_pod("ml", "a")
    assert usage(cache, "n1")["GPU-n1-0"] == (0, 0, 0)
    cache.remove_pod("ml", "never-seen")  # harmless


def test_pods_without_a_node_or_with_bad_annotations_count_nothing(cache: UsageCache) -> None:
    cache.upsert_pod(pod("pending", [container()], annotations={}))
    cache.upsert_pod(placed("garbled", "n1", "GPU-n1-0,NVIDIA:;"))
    assert usage(cache, "n1")["GPU-n1-0"] == (0, 0, 0)


def test_unknown_cards_are_ignored(cache: UsageCache, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO"):
        cache.upsert_pod(placed("a", "n1", "GPU-gone,NVIDIA,3000,30:GPU-n1-1,NVIDIA,10,0:;"))
    assert usage(cache, "n1") == {"GPU-n1-0": (0, 0, 0), "GPU-n1-1": (1, 10, 0)}
    assert "GPU-gone" in caplog.text


def test_pods_seen_before_their_node_count_once_it_arrives(registry: VendorRegistry) -> None:
    cache = UsageCache(registry, {})
    cache.upsert_pod(placed("early", "n9", "GPU-n9-1,NVIDIA,500,5:;"))
    cache.upsert_node(nvidia_node("n9", 2))
    assert usage(cache, "n9")["GPU-n9-1"] == (1, 500, 5)


def test_re_registration_keeps_the_usage(cache: UsageCache) -> None:
    cache.upsert_pod(placed("a", "n1", "GPU-n1-0,NVIDIA,3000,30:;"))
    cache.upsert_node(nvidia_node("n1", 3))
    assert usage(cache, "n1") == {
        "GPU-n1-0": (1, 3000, 30),
        "GPU-n1-1": (0, 0, 0),
        "GPU-n1-2": (0, 0, 0),
    }


def test_init_containers_count_at_their_peak_not_summed(cache: UsageCache) -> None:
    # init i0 (5000 MiB), init i1 (2000 MiB), app c0 (1000 MiB) + c1 (1500 MiB), all one card
    value = "G,NVIDIA,5000,50:;G,NVIDIA,2000,10:;G,NVIDIA,1000,20:;G,NVIDIA,1500,20:;"
    cache.upsert_node(nvidia_node("n2", 1))
    p = placed("a", "n2", value.replace("G", "GPU-n2-0"), containers=2, init=2)
    cache.upsert_pod(p)
    assert usage(cache, "n2")["GPU-n2-0"] == (2, 5000, 50)
    p["status"] = {
        "phase": "Running",
        "initContainerStatuses": [{"state": {"terminated": {"exitCode": 0}}}] * 2,
    }
    cache.upsert_pod(p)
    assert usage(cache, "n2")["GPU-n2-0"] == (2, 2500, 40)


def test_annotations_without_one_entry_per_container_are_summed(cache: UsageCache) -> None:
    # HAMi writes entries only for containers that asked for cards: positions are unknown
    p = placed("a", "n1", "GPU-n1-0,NVIDIA,5000,0:;GPU-n1-0,NVIDIA,1000,0:;", containers=1, init=2)
    cache.upsert_pod(p)
    assert usage(cache, "n1")["GPU-n1-0"] == (2, 6000, 0)


DEVICES = {"nvidia": [[ContainerDevice("GPU-n1-1", "NVIDIA", 4000, 40)]]}


def test_a_reservation_counts_until_it_expires(cache: UsageCache) -> None:
    cache.reserve("default/a", "n1", DEVICES, now=100.0)
    assert usage(cache, "n1")["GPU-n1-1"] == (1, 4000, 40)
    assert cache.expire(129.0) == []
    assert cache.expire(130.0) == ["default/a"]
    assert usage(cache, "n1")["GPU-n1-1"] == (0, 0, 0)


def test_the_pods_own_annotations_end_the_reservation(cache: UsageCache) -> None:
    cache.reserve("default/a", "n1", DEVICES, now=100.0)
    cache.upsert_pod(placed("a", "n1", "GPU-n1-1,NVIDIA,4000,40:;"))
    assert usage(cache, "n1")["GPU-n1-1"] == (1, 4000, 40)  # counted once
    assert cache.reservations() == {}
    assert cache.expire(1000.0) == []
    assert usage(cache, "n1")["GPU-n1-1"] == (1, 4000, 40)


def test_a_pod_event_with_an_older_decision_leaves_the_reservation(cache: UsageCache) -> None:
    cache.upsert_pod(placed("a", "n1", "GPU-n1-0,NVIDIA,1000,0:;"))
    cache.reserve("default/a", "n1", DEVICES, now=100.0)  # re-filtered: replaces the old usage
    assert usage(cache, "n1") == {"GPU-n1-0": (0, 0, 0), "GPU-n1-1": (1, 4000, 40)}
    cache.upsert_pod(placed("a", "n1", "GPU-n1-0,NVIDIA,1000,0:;"))  # stale event
    assert usage(cache, "n1") == {"GPU-n1-0": (0, 0, 0), "GPU-n1-1": (1, 4000, 40)}
    cache.expire(200.0)  # never patched: the pod's annotations count again
    assert usage(cache, "n1") == {"GPU-n1-0": (1, 1000, 0), "GPU-n1-1": (0, 0, 0)}


def test_a_new_reservation_replaces_the_previous_one(cache: UsageCache) -> None:
    cache.reserve("default/a", "n1", DEVICES, now=100.0)
    cache.reserve(
        "default/a", "n1", {"nvidia": [[ContainerDevice("GPU-n1-0", "NVIDIA", 1, 0)]]}, now=101.0
    )
    assert usage(cache, "n1") == {"GPU-n1-0": (1, 1, 0), "GPU-n1-1": (0, 0, 0)}


def test_deleting_a_pod_drops_its_reservation(cache: UsageCache) -> None:
    cache.reserve("default/a", "n1", DEVICES, now=100.0)
    cache.remove_pod("default", "a")
    assert usage(cache, "n1")["GPU-n1-1"] == (0, 0, 0)


def test_unhealthy_vendors_offer_no_cards(cache: UsageCache) -> None:
    cache.mark_vendor_unhealthy("n1", "nvidia")
    state = cache.node("n1")
    assert state is not None and state.cards("nvidia") == []
    assert cache.snapshot().nodes["n1"].unhealthy == {"nvidia"}
    cache.mark_vendor_healthy("n1", "nvidia")
    assert len(state.cards("nvidia")) == 2


def test_removed_nodes_are_forgotten_but_their_pods_return_with_them(cache: UsageCache) -> None:
    cache.upsert_pod(placed("a", "n1", "GPU-n1-0,NVIDIA,3000,30:;"))
    cache.remove_node("n1")
    assert cache.node("n1") is None and cache.node_names() == []
    cache.upsert_node(nvidia_node("n1", 2))
    assert usage(cache, "n1")["GPU-n1-0"] == (1, 3000, 30)


def test_pods_need_a_name_and_odd_shapes_count_nothing(cache: UsageCache) -> None:
    with pytest.raises(ValueError, match=r"metadata\.name"):
        cache.upsert_pod({"metadata": {"namespace": "x"}})
    odd = placed("odd", "n1", "GPU-n1-0,NVIDIA,5,0:;")
    odd["status"] = "Running"
    odd["spec"] = []
    cache.upsert_pod(odd)
    assert usage(cache, "n1")["GPU-n1-0"] == (1, 5, 0)


def test_nodes_need_a_name(cache: UsageCache) -> None:
    with pytest.raises(ValueError, match=r"metadata\.name"):
        cache.upsert_node({"metadata": {}})


def test_the_incremental_cache_equals_a_rebuild(registry: VendorRegistry) -> None:
    nodes = [nvidia_node("n1", 2), nvidia_node("n2", 1)]
    pods = {
        "a": placed("a", "n1", "GPU-n1-0,NVIDIA,3000,30:;"),
        "b": placed("b", "n2", "GPU-n2-0,NVIDIA,1000,0:;"),
        "c": placed("c", "n1", "GPU-n1-1,NVIDIA,1000,0:GPU-n1-0,NVIDIA,1000,0:;"),
    }
    cache = UsageCache(registry, {})
    cache.upsert_pod(pods["c"])
    for n in nodes:
        cache.upsert_node(n)
    for p in pods.values():
        cache.upsert_pod(p)
    cache.upsert_pod(placed("gone", "n2", "GPU-n2-0,NVIDIA,5,0:;"))
    cache.remove_pod("default", "gone")
    cache.upsert_pod(placed("b", "n2", "GPU-n2-0,NVIDIA,1000,0:;", phase="Succeeded"))
    del pods["b"]
    assert cache.snapshot() == UsageCache.rebuild(registry, {}, nodes, pods.values()).snapshot()


def test_concurrent_updates_are_safe(registry: VendorRegistry) -> None:
    cache = UsageCache(registry, {})
    nodes = [nvidia_node(f"n{i}", 2) for i in range(4)]
    for n in nodes:
        cache.upsert_node(n)
    pods = [placed(f"p{i}", f"n{i % 4}", f"GPU-n{i % 4}-{i % 2},NVIDIA,10,1:;") for i in range(200)]

    def churn(offset: int) -> None:
        for i in range(offset, 200, 4):
            cache.upsert_pod(pods[i])
            cache.reserve(f"default/r{i}", f"n{i % 4}", DEVICES, now=float(i))
            if i % 3 == 0:
                cache.remove_pod("default", f"p{i}")

    threads = [threading.Thread(target=churn, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cache.expire(10_000.0)
    kept = [p for i, p in enumerate(pods) if i % 3 != 0]
    assert cache.snapshot() == UsageCache.rebuild(registry, {}, nodes, kept).snapshot()


def test_rebuild_reads_every_installed_vendor() -> None:
    registry = make_registry()
    cache = UsageCache.rebuild(
        registry,
        {},
        [
            node(
                "w",
                {
                    "hami.io/node-wcard-register": '[{"id":"W0","count":1,"devmem":100,'
                    '"devcore":100,"type":"WC","health":true}]'
                },
            )
        ],
        [],
    )
    assert cache.snapshot().nodes["w"].vendors == {"wcard": (("W0", 0, 0, 0),)}
