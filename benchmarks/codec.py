"""How fast node register annotations decode, against plain `json.loads` of the same strings.

Builds N eight-GPU node annotations exactly as HAMi's Go device plugin writes them (compact JSON,
zero values omitted), then times, in the same run and interleaved, best of several repeats:

* `json.loads` over every annotation: the floor (parsing only, no validation, no objects);
* `decode_node_devices` over every annotation: parse, validate every field, build `DeviceInfo`s.

It prints both times, the time per node and the ratio; the goal is a ratio of at most 1.5.
Run: `python benchmarks/codec.py [--n 5000] [--repeats 7]`.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from hami_core.protocol import DeviceInfo, decode_node_devices, encode_node_devices

GOAL = 1.5
GPUS_PER_NODE = 8


def node_annotation(node: int) -> str:
    """One node's `hami.io/node-nvidia-register` value: 8 H100s, two NUMA nodes."""
    return encode_node_devices(
        DeviceInfo(
            id=f"GPU-{node:08x}-{gpu:04x}-4e5f-8a9b-{node * GPUS_PER_NODE + gpu:012x}",
            index=gpu,
            count=10,
            devmem=81559,
            devcore=100,
            type="NVIDIA-NVIDIA H100 80GB HBM3",
            numa=gpu // 4,
            mode="hami-core",
            health=True,
        )
        for gpu in range(GPUS_PER_NODE)
    )


def best_of(repeats: int, runs: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Best wall time of each run, the runs interleaved so drift hits them alike."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    """Run the benchmark and print the floor, the decoder's time and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="number of nodes (default 5000)")
    parser.add_argument("--repeats", type=int, default=7, help="repeats, best kept (default 7)")
    args = parser.parse_args()

    values = [node_annotation(node) for node in range(args.n)]
    # Same strings, same answers: the decoder must agree with the parser it is measured against.
    assert decode_node_devices(values[-1])[-1].id == json.loads(values[-1])[-1]["id"]

    loads = json.loads
    best = best_of(
        args.repeats,
        {
            "json.loads (floor)": lambda: [loads(value) for value in values],
            "decode_node_devices": lambda: [decode_node_devices(value) for value in values],
        },
    )
    floor, decode = best["json.loads (floor)"], best["decode_node_devices"]
    size = sum(map(len, values)) / len(values)
    print(
        f"{args.n} nodes x {GPUS_PER_NODE} GPUs, {size:.0f} bytes per annotation, "
        f"best of {args.repeats}"
    )
    for name, seconds in best.items():
        print(f"  {name:22s} {seconds * 1e3:9.1f} ms  {seconds / args.n * 1e6:7.2f} us/node")
    ratio = decode / floor
    verdict = "goal met" if ratio <= GOAL else "goal missed"
    print(f"  ratio decode / floor   {ratio:9.2f}x  (goal <= {GOAL}x: {verdict})")


if __name__ == "__main__":
    main()
