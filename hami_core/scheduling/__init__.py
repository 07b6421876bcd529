"""The scheduling engine: requests from pod specs, the generic fit loop, scores, card order,
the incremental usage cache and node choice. Pure code: no HTTP, no Kubernetes client.

Typical use (the scheduler service and `hami simulate` do exactly this):

    cache = UsageCache(registry, config)
    for node in nodes: cache.upsert_node(node)
    for pod in pods: cache.upsert_pod(pod)
    engine = Engine(registry, config, cache, node_policy="binpack", gpu_policy="spread")
    decision = engine.schedule(pod, candidate_node_names, now=time.time(), reserve=True)
"""

from hami_core.scheduling.admission import generic_mutation
from hami_core.scheduling.cache import (
    DEFAULT_RESERVATION_TTL,
    CacheSnapshot,
    NodeSnapshot,
    NodeState,
    UsageCache,
    pod_key,
    pod_usage,
)
from hami_core.scheduling.engine import NODE_UNREGISTERED, Decision, Engine
from hami_core.scheduling.fit import generic_fit, select_topology
from hami_core.scheduling.order import order_devices
from hami_core.scheduling.pins import Pins, pod_pins
from hami_core.scheduling.requests import PodShapeError, generic_request, pod_requests
from hami_core.scheduling.score import choose_node, device_score, device_scores, node_score

__all__ = [
    "DEFAULT_RESERVATION_TTL",
    "NODE_UNREGISTERED",
    "CacheSnapshot",
    "Decision",
    "Engine",
    "NodeSnapshot",
    "NodeState",
    "Pins",
    "PodShapeError",
    "UsageCache",
    "choose_node",
    "device_score",
    "device_scores",
    "generic_fit",
    "generic_mutation",
    "generic_request",
    "node_score",
    "order_devices",
    "pod_key",
    "pod_pins",
    "pod_requests",
    "pod_usage",
    "select_topology",
]
