"""HAMi's wire formats as pure functions: read and write every annotation value HAMi's Go
scheduler and device plugins exchange, byte for byte. No I/O; every decoder raises only
`ProtocolError`.
"""

from hami_core.protocol import keys
from hami_core.protocol.errors import ProtocolError
from hami_core.protocol.handshake import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    Handshake,
    HandshakeDecision,
    HandshakeKind,
    format_deleted,
    format_reported,
    format_requesting,
    handshake_health,
    parse_handshake,
)
from hami_core.protocol.limits import (
    MAX_ANNOTATION_BYTES,
    MAX_CAPACITY_CARDS,
    check_annotation_size,
    check_card_count,
)
from hami_core.protocol.node_devices import decode_node_devices, encode_node_devices
from hami_core.protocol.node_lock import (
    DEFAULT_NODE_LOCK_TIMEOUT,
    NodeLock,
    format_node_lock,
    parse_node_lock,
)
from hami_core.protocol.pair_scores import decode_pair_scores, encode_pair_scores
from hami_core.protocol.pod_devices import (
    decode_container_devices,
    decode_pod_devices,
    encode_container_devices,
    encode_pod_devices,
    pop_next_container,
)
from hami_core.protocol.policy import (
    BINPACK,
    GPU_POLICIES,
    MUTEX,
    NODE_POLICIES,
    NUMA,
    SPREAD,
    TOPOLOGY_AWARE,
    parse_gpu_policy,
    parse_node_policy,
)
from hami_core.protocol.reasons import Reason, format_reasons, parse_reasons
from hami_core.protocol.types import ContainerDevice, DeviceInfo
from hami_core.protocol.weights import (
    DEFAULT_SCORING_WEIGHTS,
    ScoringWeights,
    parse_scoring_weights,
)

__all__ = [
    "BINPACK",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_NODE_LOCK_TIMEOUT",
    "DEFAULT_SCORING_WEIGHTS",
    "GPU_POLICIES",
    "MAX_ANNOTATION_BYTES",
    "MAX_CAPACITY_CARDS",
    "MUTEX",
    "NODE_POLICIES",
    "NUMA",
    "SPREAD",
    "TOPOLOGY_AWARE",
    "ContainerDevice",
    "DeviceInfo",
    "Handshake",
    "HandshakeDecision",
    "HandshakeKind",
    "NodeLock",
    "ProtocolError",
    "Reason",
    "ScoringWeights",
    "check_annotation_size",
    "check_card_count",
    "decode_container_devices",
    "decode_node_devices",
    "decode_pair_scores",
    "decode_pod_devices",
    "encode_container_devices",
    "encode_node_devices",
    "encode_pair_scores",
    "encode_pod_devices",
    "format_deleted",
    "format_node_lock",
    "format_reasons",
    "format_reported",
    "format_requesting",
    "handshake_health",
    "keys",
    "parse_gpu_policy",
    "parse_handshake",
    "parse_node_lock",
    "parse_node_policy",
    "parse_reasons",
    "parse_scoring_weights",
    "pop_next_container",
]
