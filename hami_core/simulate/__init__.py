"""`hami simulate`: what-if scheduling against an in-memory cluster, with the services' code.

An inventory (shorthand or cluster snapshot) becomes a `MemoryCluster`; workload pods go
through the scheduler's webhook, filter and bind and the device plugin's Allocate, in order;
the result says where each pod went, why the others did not fit, and how full each card is.
"""

from __future__ import annotations

from hami_core.simulate.errors import InputError
from hami_core.simulate.inventory import Inventory, load_inventory
from hami_core.simulate.outcome import (
    CardFill,
    ContainerOutcome,
    PodOutcome,
    SimulationResult,
)
from hami_core.simulate.simulator import Simulator, simulate
from hami_core.simulate.workload import WorkloadPod, load_workloads

__all__ = [
    "CardFill",
    "ContainerOutcome",
    "InputError",
    "Inventory",
    "PodOutcome",
    "SimulationResult",
    "Simulator",
    "WorkloadPod",
    "load_inventory",
    "load_workloads",
    "simulate",
]
