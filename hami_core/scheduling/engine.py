"""The scheduling engine: for one pod and a list of candidate nodes, the node and the cards.

`Engine.schedule` is HAMi's filter (reference §7.1, §5.1, §6) without I/O:

1. Requests of every container via `pod_requests`, memoised per pod shape (a bad value, a
   malformed pod or a bad device config → `Decision.error`). A pod that asks nothing of any vendor →
   `Decision(passthrough=True)`.
2. Policies: the pod's `hami.io/gpu-scheduler-policy` / `hami.io/node-scheduler-policy`
   override the engine's defaults (an invalid value is logged and the default kept, as HAMi
   does); `hami.io/device-scoring-weights` must be valid (`Decision.error` otherwise).
3. Per candidate node (duplicates ignored): unknown to the cache, or known with no cards and no
   vendor error → `node unregistered`; a vendor whose annotation failed to decode → that error.
   Init containers are each fitted on the node's usage before the pod; app containers
   cumulatively (each sees the cards earlier app containers took). For each container and
   vendor: fewer cards than the count → `NodeInsufficientDevice`; else the cards are scored
   for this container (`score.py`), ordered by the GPU policy (`order.py`) and handed to
   `hami_allocate`; a failure becomes the node's message in HAMi's `n/N Reason` form. The pod's
   own earlier usage (a previous decision or its old annotations) is not counted against it.
4. Each fitting node gets the node score (`score.py`) plus each used vendor's
   `hami_score_node` (added under binpack, subtracted under spread); the node policy chooses.
5. The decision carries the annotations to patch onto the pod (`hami.io/vgpu-node`,
   `hami.io/vgpu-time`, and each used vendor's `hami_pod_annotations`) and the label
   `hami.io/vgpu-node`. With `reserve=True` the cache counts it at once (expired reservations
   are dropped first).

Cost: O(candidate nodes * cards) under the cache lock; no pod is re-read.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hami_core.errors import HamiError
from hami_core.model import (
    ContainerDevice,
    ContainerRequest,
    DeviceUsage,
    FitContext,
    PodDevices,
    PodView,
    VendorSpec,
)
from hami_core.protocol import (
    ProtocolError,
    ScoringWeights,
    format_reasons,
    parse_gpu_policy,
    parse_node_policy,
    parse_scoring_weights,
)
from hami_core.protocol.keys import (
    ASSIGNED_NODE,
    ASSIGNED_TIME,
    DEVICE_SCORING_WEIGHTS,
    GPU_SCHEDULER_POLICY,
    NODE_SCHEDULER_POLICY,
)
from hami_core.protocol.reasons import Reason
from hami_core.scheduling.cache import NodeState, PodUsage, UsageCache, VendorCards, pod_key
from hami_core.scheduling.order import order_devices
from hami_core.scheduling.pins import pod_pins
from hami_core.scheduling.requests import RequestMemo
from hami_core.scheduling.score import device_scores, node_score

if TYPE_CHECKING:
    from hami_core.plugins import VendorRegistry

__all__ = ["NODE_UNREGISTERED", "Decision", "Engine"]

log = logging.getLogger(__name__)

_MEMO_SIZE = 16
"""Card orders memoised per vendor and node (distinct pod shapes) before the memo is reset."""

_FITS_SIZE = 8
"""Node answers memoised per node (distinct pod shapes) before the memo is reset."""

_FIT_IDS = 4096
"""Distinct pod shapes the engine numbers before it starts numbering afresh."""

NODE_UNREGISTERED = "node unregistered"
"""A candidate node the cache knows no cards of."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one `Engine.schedule` call.

    `node` is the chosen node (None when nothing fits, when the pod passes through, or on
    `error`). `failed` maps each refused candidate to HAMi's reason text; `scores` holds the
    score of every fitting node. `annotations` and `labels` are what to patch onto the pod.
    """

    node: str | None
    pod_devices: PodDevices = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    passthrough: bool = False
    error: str | None = None


@dataclass(slots=True)
class _PodPlan:
    view: PodView
    key: str
    requests: list[list[ContainerRequest]]
    specs: dict[str, VendorSpec]
    gpu_policy: tuple[str, ...]
    node_policy: str
    weights: ScoringWeights
    numa_bind: dict[str, bool]
    last_app: dict[str, int]
    order_keys: dict[tuple[int, str], Hashable]
    fit_key: Hashable
    own: tuple[str, PodUsage] | None = None


class Engine:
    """Chooses nodes and cards for pods against a `UsageCache` (module docstring)."""

    def __init__(
        self,
        registry: VendorRegistry,
        config: Mapping[str, Any] | None,
        cache: UsageCache,
        node_policy: str = "binpack",
        gpu_policy: str = "spread",
        *,
        requests: RequestMemo | None = None,
    ) -> None:
        """An engine with these default policies (`ProtocolError` for an unknown one); pods'
        requests are read through `requests` (a memo of its own when not given)."""
        self.registry = registry
        self.config: Mapping[str, Any] = config or {}
        self.requests = requests or RequestMemo(registry, self.config)
        self.cache = cache
        self.node_policy = parse_node_policy(node_policy)
        self.gpu_policy = parse_gpu_policy(gpu_policy)
        self._specs = {s.key: s for s in registry.specs()}
        self._fit_ids: dict[Hashable, int] = {}
        self._fit_counter = itertools.count()
        impls = registry.hook.hami_score_node.get_hookimpls()
        self._generic_node_scores = all(i.plugin_name == "hami-generic" for i in impls)

    # ------------------------------------------------------------------ public

    def schedule(
        self,
        pod: Mapping[str, Any],
        candidate_nodes: Sequence[str],
        now: float,
        *,
        reserve: bool = False,
    ) -> Decision:
        """Choose a node and cards for `pod` among `candidate_nodes` at time `now` (unix s).

        With `reserve=True` the decision is counted in the cache until the pod's annotations
        arrive or the reservation expires; otherwise the cache is left untouched.
        """
        try:
            requests = self.requests(pod)
        except (HamiError, ValueError) as exc:  # a bad request, pod shape or device config
            return Decision(node=None, error=str(exc))
        if not any(requests):
            return Decision(node=None, passthrough=True)
        view = PodView.from_obj(pod)
        try:
            weights = parse_scoring_weights(view.annotations.get(DEVICE_SCORING_WEIGHTS))
        except ProtocolError as exc:
            return Decision(node=None, error=str(exc))
        plan = self._plan(view, requests, weights)

        with self.cache.locked():
            if reserve:
                self.cache.expire(now)
            plan.own = self.cache.holding(plan.key)
            failed: dict[str, str] = {}
            scores: dict[str, float] = {}
            best: tuple[str, PodDevices] | None = None  # kept as we go: fits are not stored
            best_key = 0.0  # the best score, negated under spread: higher is always better
            own_node = plan.own[0] if plan.own is not None else None
            states = self.cache.states()  # the hot loop: locals, no per-node method calls
            fit_key, seen_before = self._fit_id(plan.fit_key)
            sign = -1.0 if plan.node_policy == "spread" else 1.0
            for name in dict.fromkeys(candidate_nodes):
                state = states.get(name)
                if state is None or not (state.vendors or state.errors):
                    failed[name] = NODE_UNREGISTERED
                    continue
                if name == own_node or not seen_before:
                    # the pod's own usage is taken out; a shape seen once may never come back
                    outcome, score = self._answer(plan, state)
                else:
                    memo = state.fits.get(fit_key)
                    if memo is None:
                        memo = self._answer(plan, state)
                        if len(state.fits) >= _FITS_SIZE:
                            state.fits.clear()
                        state.fits[fit_key] = memo
                    outcome, score = memo
                if isinstance(outcome, str):
                    failed[name] = outcome
                    continue
                scores[name] = score
                key = sign * score  # as `prefers`: the better score, then the first name
                if best is None or key > best_key or (key == best_key and name < best[0]):
                    best = (name, outcome)
                    best_key = key
            if best is None:
                return Decision(node=None, failed=failed, scores=scores)
            chosen, devices = best
            try:
                annotations = self._annotations(plan, chosen, devices, now)
            except Exception as exc:  # a vendor that cannot write its decision
                log.warning("pod %s: writing the decision failed: %s", plan.key, exc)
                return Decision(node=None, failed=failed, scores=scores, error=str(exc))
            if reserve:
                self.cache.reserve(
                    plan.key,
                    chosen,
                    devices,
                    now,
                    containers=len(requests),
                    init_containers=_init_count(pod),
                )
        return Decision(
            node=chosen,
            pod_devices=devices,
            annotations=annotations,
            labels={ASSIGNED_NODE: chosen},
            failed=failed,
            scores=scores,
        )

    # ------------------------------------------------------------------ steps

    def _plan(
        self, view: PodView, requests: list[list[ContainerRequest]], weights: ScoringWeights
    ) -> _PodPlan:
        gpu_policy = self.gpu_policy
        node_policy = self.node_policy
        raw = view.annotations.get(GPU_SCHEDULER_POLICY)
        if raw is not None:
            try:
                gpu_policy = parse_gpu_policy(raw)
            except ProtocolError as exc:
                log.warning("pod %s/%s: %s; using %s", view.namespace, view.name, exc, gpu_policy)
        raw = view.annotations.get(NODE_SCHEDULER_POLICY)
        if raw is not None:
            try:
                node_policy = parse_node_policy(raw)
            except ProtocolError as exc:
                log.warning("pod %s/%s: %s; using %s", view.namespace, view.name, exc, node_policy)
        specs: dict[str, VendorSpec] = {}
        last_app: dict[str, int] = {}
        for index, reqs in enumerate(requests):
            for r in reqs:
                specs[r.vendor] = self._specs[r.vendor]
                if not r.init:
                    last_app[r.vendor] = index
        numa_bind = {k: pod_pins(s, view).numa_bind for k, s in specs.items()}
        order_keys: dict[tuple[int, str], Hashable] = {
            (index, r.vendor): (
                gpu_policy,
                numa_bind[r.vendor],
                weights,
                tuple(
                    (o.memory_mib, o.memory_percent, o.cores) for o in reqs if o.vendor == r.vendor
                ),
            )
            for index, reqs in enumerate(requests)
            for r in reqs
        }
        fit_key = (
            tuple(tuple(_request_key(r) for r in reqs) for reqs in requests),
            gpu_policy,
            node_policy,
            (weights.slot, weights.core, weights.memory),  # a tuple hashes without Python code
            view.namespace,
            tuple(sorted(view.annotations.items())),
            tuple(sorted(view.labels.items())),
        )
        return _PodPlan(
            view=view,
            key=pod_key(view.namespace, view.name),
            requests=requests,
            specs=specs,
            gpu_policy=gpu_policy,
            node_policy=node_policy,
            weights=weights,
            numa_bind=numa_bind,
            last_app=last_app,
            order_keys=order_keys,
            fit_key=fit_key,
        )

    def _fit_id(self, fit_key: Hashable) -> tuple[int, bool]:
        """A small number standing for `fit_key` in the nodes' memos (hashed once per pod, not
        once per node), and whether the shape was seen before: the answers of a shape are
        memoised from its second pod on, so pods unlike any other fill no memo. Numbers are
        never reused, so forgetting old ones is always safe."""
        ids = self._fit_ids
        found = ids.get(fit_key)
        if found is not None:
            return found, True
        if len(ids) >= _FIT_IDS:
            ids.clear()
        found = ids[fit_key] = next(self._fit_counter)
        return found, False

    def _answer(self, plan: _PodPlan, state: NodeState) -> tuple[PodDevices | str, float]:
        """The node's fit (cards, or the reason it does not fit) and its score if it fits."""
        outcome = self._fit_node(plan, state)
        if isinstance(outcome, str):
            return outcome, 0.0
        return outcome, self._score_node(plan, state, outcome)

    def _base(self, plan: _PodPlan, state: NodeState, vendor: str) -> list[DeviceUsage]:
        cards = state.cards(vendor)
        own = plan.own
        if own is None or own[0] != state.view.name or vendor not in own[1]:
            return cards
        held = own[1][vendor]
        out = []
        for d in cards:
            share = held.get(d.id)
            if share is not None:
                d = d.copy()
                d.used -= share[0]
                d.usedmem -= share[1]
                d.usedcores -= share[2]
            out.append(d)
        return out

    def _fit_node(self, plan: _PodPlan, state: NodeState) -> PodDevices | str:
        allocate = self.registry.hook.hami_allocate
        n = len(plan.requests)
        chosen: PodDevices = {v: [[] for _ in range(n)] for v in plan.specs}
        base: dict[str, list[DeviceUsage]] = {}
        working: dict[str, list[DeviceUsage]] = {}
        for index, reqs in enumerate(plan.requests):
            for request in reqs:
                vendor = request.vendor
                error = state.errors.get(vendor)
                if error is not None:
                    return error
                cards = base.get(vendor)
                if cards is None:
                    cards = base[vendor] = self._base(plan, state, vendor)
                if not request.init:
                    cards = working.get(vendor, cards)
                if request.count > len(cards):
                    return str(Reason.NODE_INSUFFICIENT_DEVICE)
                spec = plan.specs[vendor]
                vendor_cards = state.vendors.get(vendor)
                ordered = self._ordered(plan, cards, reqs, index, vendor, vendor_cards)
                context = FitContext(
                    pod=plan.view,
                    node=state.view,
                    gpu_policy=plan.gpu_policy,
                    pair_scores=vendor_cards.pair_scores if vendor_cards is not None else {},
                    pod_devices=chosen,
                    config=self.config,
                )
                try:
                    result = allocate(spec=spec, request=request, devices=ordered, context=context)
                except Exception as exc:  # a broken vendor fails this node, not the scheduler
                    log.warning(
                        "node %s: %s hami_allocate failed: %s", state.view.name, vendor, exc
                    )
                    return f"{vendor}: allocate failed: {exc}"
                if result is None or not result.ok:
                    if result is None:
                        return str(Reason.NODE_UNFIT_POD)
                    return format_reasons(result.reasons, result.total) or str(
                        Reason.NODE_UNFIT_POD
                    )
                chosen[vendor][index] = list(result.devices)
                if not request.init and index < plan.last_app[vendor]:
                    working[vendor] = _taken(cards, result.devices, vendor in working)
        return chosen

    def _ordered(
        self,
        plan: _PodPlan,
        cards: list[DeviceUsage],
        requests: list[ContainerRequest],
        index: int,
        vendor: str,
        vendor_cards: VendorCards | None,
    ) -> tuple[DeviceUsage, ...]:
        """The cards scored for this container and ordered by the GPU policy. The cache's own
        cards keep the order memoised until their counters change (it depends only on them,
        the policy, the weights and this container's requests of the vendor)."""
        memo = None
        key = plan.order_keys[index, vendor]
        if vendor_cards is not None and cards is vendor_cards.devices:
            memo = vendor_cards.orders
            hit = memo.get(key)
            if hit is not None:
                return hit
        scores = device_scores(cards, requests, plan.weights)
        ordered = tuple(order_devices(cards, scores, plan.gpu_policy, plan.numa_bind[vendor]))
        if memo is not None:
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            memo[key] = ordered
        return ordered

    def _score_node(self, plan: _PodPlan, state: NodeState, devices: PodDevices) -> float:
        if plan.own is not None and plan.own[0] == state.view.name:
            cards: list[DeviceUsage] = []
            for vendor in state.vendors:
                if vendor not in state.unhealthy:
                    cards.extend(self._base(plan, state, vendor))
            score = node_score(cards)
        else:
            score = state.utilisation()
        if self._generic_node_scores:
            return score
        sign = -1.0 if plan.node_policy == "spread" else 1.0
        hook = self.registry.hook.hami_score_node
        for vendor, spec in plan.specs.items():
            vendor_cards = state.vendors.get(vendor)
            context = FitContext(
                pod=plan.view,
                node=state.view,
                gpu_policy=plan.gpu_policy,
                pair_scores=vendor_cards.pair_scores if vendor_cards is not None else {},
                pod_devices=devices,
                config=self.config,
            )
            try:
                term = hook(
                    spec=spec,
                    devices=self._base(plan, state, vendor),
                    containers=devices[vendor],
                    context=context,
                )
            except Exception as exc:  # a broken vendor scores 0, it does not stop scheduling
                log.warning("node %s: %s hami_score_node failed: %s", state.view.name, vendor, exc)
                term = None
            if term:
                score += sign * float(term)
        return score

    def _annotations(
        self, plan: _PodPlan, node: str, devices: PodDevices, now: float
    ) -> dict[str, str]:
        state = self.cache.node(node)
        assert state is not None
        out = {ASSIGNED_NODE: node, ASSIGNED_TIME: str(int(now))}
        hook = self.registry.hook.hami_pod_annotations
        for vendor, spec in plan.specs.items():
            vendor_cards = state.vendors.get(vendor)
            context = FitContext(
                pod=plan.view,
                node=state.view,
                gpu_policy=plan.gpu_policy,
                pair_scores=vendor_cards.pair_scores if vendor_cards is not None else {},
                pod_devices=devices,
                config=self.config,
            )
            written = hook(spec=spec, containers=devices[vendor], context=context)
            if written:
                out.update(written)
        return out


def _request_key(r: ContainerRequest) -> Hashable:
    """Everything of a request a fit may read, hashable (extras by their repr, sorted)."""
    extras = repr(sorted(r.extras.items(), key=lambda item: item[0])) if r.extras else ""
    return (
        r.vendor,
        r.container,
        r.container_index,
        r.init,
        r.count,
        r.memory_mib,
        r.memory_percent,
        r.cores,
        extras,
    )


def _taken(
    cards: list[DeviceUsage], shares: Sequence[ContainerDevice], owned: bool
) -> list[DeviceUsage]:
    """`cards` with `shares` taken (copying the cards unless they are already our copies)."""
    out = cards if owned else [d.copy() for d in cards]
    by_id = {d.id: d for d in out}
    for share in shares:
        dev = by_id.get(share.uuid)
        if dev is not None:
            dev.take(share)
    return out


def _init_count(pod: Mapping[str, Any]) -> int:
    spec = pod.get("spec") or {}
    items = spec.get("initContainers") if isinstance(spec, Mapping) else None
    return len(items) if isinstance(items, list) else 0
