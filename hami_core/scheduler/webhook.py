"""`Webhook`: the mutating admission webhook for pods (reference: kubernetes-interfaces §3,
hami-protocol §7.4).

For an `AdmissionReview` (`admission.k8s.io/v1` or `v1beta1`, answered in the same version,
`uid` echoed) of a pod `CREATE`:

1. Decision annotations or labels set by the user (`hami.io/vgpu-node`, `hami.io/bind-phase`,
   each vendor's to-allocate/allocated keys, ...) are refused, or stripped when configured.
2. A pod without containers is refused (`pod has no containers`).
3. A pod naming another scheduler is left alone (`default-scheduler` is taken over unless
   `force_overwrite_default_scheduler` is off).
4. Each vendor's `hami_mutate` runs on every init, then app container: limits it sets (mirrored
   into requests where the container has requests), env it adds (names already defined are
   kept), pod annotations it adds (existing keys are kept), a runtime class (when the pod has
   none). `AdmissionDenied` from a vendor refuses the pod with its message.
5. If the pod uses any vendor: any privileged container refuses it (`container <name> is
   privileged`); a pod with `spec.nodeName` is refused (`pod has node assigned`); otherwise
   `spec.schedulerName` is set to the configured scheduler name.
6. The answer carries a base64 RFC 6902 patch from the original to the mutated pod.

Other operations and kinds are allowed untouched. Namespace quotas (HAMi's step 6) are not
enforced here.
"""

from __future__ import annotations

import base64
import copy
import logging
from collections.abc import Mapping
from typing import Any

import jsonpatch
import orjson

from hami_core.errors import AdmissionDenied, HamiError
from hami_core.model import Mutation
from hami_core.plugins import VendorRegistry
from hami_core.scheduler.decisions import decision_keys, forged_keys
from hami_core.scheduler.settings import SchedulerSettings
from hami_core.scheduler.wire import WireError
from hami_core.scheduling.requests import container_list

__all__ = ["ADMISSION_VERSIONS", "Review", "Webhook"]

log = logging.getLogger(__name__)

ADMISSION_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
"""The AdmissionReview versions answered (each in its own version)."""

DEFAULT_SCHEDULER = "default-scheduler"

Obj = dict[str, Any]


class _Denied(Exception):
    def __init__(self, message: str, code: int = 403) -> None:
        super().__init__(message)
        self.code = code


class Review:
    """One answered review: the response body and how it went (`allowed`, `patched`, `denied`)."""

    def __init__(self, body: Obj, result: str) -> None:
        self.body = body
        self.result = result


def _object(value: Any, field: str) -> Obj:
    if not isinstance(value, dict):
        raise WireError(f"{field}: expected a JSON object")
    return value


class Webhook:
    """Answers admission reviews for pods with hami's defaults and refusals (module doc)."""

    def __init__(
        self,
        registry: VendorRegistry,
        config: Mapping[str, Any],
        settings: SchedulerSettings,
    ) -> None:
        self.registry = registry
        self.config = config
        self.settings = settings
        self.specs = registry.specs()
        self.decision_keys = decision_keys(self.specs)

    def review(self, body: Any) -> Review:
        """Answer one `AdmissionReview` body; `WireError` when it is not one."""
        review = _object(body, "AdmissionReview")
        version = review.get("apiVersion")
        if version not in ADMISSION_VERSIONS:
            raise WireError(
                f"apiVersion: expected one of {', '.join(ADMISSION_VERSIONS)}, got {version!r}"
            )
        if review.get("kind") not in (None, "AdmissionReview"):
            raise WireError(f"kind: expected AdmissionReview, got {review.get('kind')!r}")
        request = _object(review.get("request"), "request")
        uid = request.get("uid")
        if not isinstance(uid, str) or not uid:
            raise WireError("request.uid: expected a non-empty string")
        response: Obj = {"uid": uid, "allowed": True}
        result = "allowed"
        if request.get("operation", "CREATE") == "CREATE" and _is_pod(request):
            pod = _object(request.get("object"), "request.object")
            try:
                patch, warnings = self._mutate(pod, str(request.get("namespace") or ""))
            except _Denied as exc:
                response["allowed"] = False
                response["status"] = {
                    "code": exc.code,
                    "reason": "Forbidden" if exc.code == 403 else "BadRequest",
                    "message": str(exc),
                }
                result = "denied"
            else:
                if patch:
                    response["patchType"] = "JSONPatch"
                    response["patch"] = base64.b64encode(orjson.dumps(patch)).decode("ascii")
                    result = "patched"
                if warnings:
                    response["warnings"] = warnings
        return Review(
            {"apiVersion": version, "kind": "AdmissionReview", "response": response}, result
        )

    # ------------------------------------------------------------------ the pod

    def _mutate(self, pod: Obj, namespace: str) -> tuple[list[Obj], list[str]]:
        """The JSON patch for `pod` and any warnings; `_Denied` refuses it."""
        mutated = copy.deepcopy(pod)
        warnings = self._forged(mutated)
        try:
            containers = container_list(mutated)
        except HamiError as exc:
            raise _Denied(str(exc), 400) from exc
        spec = mutated.setdefault("spec", {})
        if not any(not init for _, init in containers):
            raise _Denied("pod has no containers")
        scheduler = spec.get("schedulerName") or ""
        mine = self.settings.scheduler_name
        if (
            scheduler
            and (
                scheduler != DEFAULT_SCHEDULER
                or not self.settings.force_overwrite_default_scheduler
            )
            and scheduler != mine
        ):
            log.debug("pod %s: already has scheduler %s", _name(pod, namespace), scheduler)
            return _diff(pod, mutated), warnings
        uses = False
        hook = self.registry.hook.hami_mutate
        for container, _init in containers:
            for vendor in self.specs:
                try:
                    mutation = hook(
                        spec=vendor, container=container, pod=mutated, config=self.config
                    )
                except AdmissionDenied as exc:
                    raise _Denied(str(exc)) from exc
                except Exception as exc:  # a broken vendor refuses rather than lets through
                    log.warning("vendor %s: hami_mutate failed: %s", vendor.key, exc)
                    raise _Denied(f"vendor {vendor.key}: admission check failed: {exc}") from exc
                if mutation is None:
                    continue
                _apply(mutated, container, mutation)
                uses = uses or mutation.uses_vendor
        if uses:
            for container, _init in containers:
                security = container.get("securityContext")
                if isinstance(security, Mapping) and security.get("privileged") is True:
                    raise _Denied(f"container {container.get('name', '')} is privileged")
            if mine:
                if spec.get("nodeName"):
                    raise _Denied("pod has node assigned")
                spec["schedulerName"] = mine
        return _diff(pod, mutated), warnings

    def _forged(self, pod: Obj) -> list[str]:
        """Refuse (or strip, returning warnings) decision keys the user set on `pod`."""
        annotations, labels = forged_keys(pod, self.decision_keys)
        if not annotations and not labels:
            return []
        named = ", ".join(
            [*(f"annotation {k}" for k in annotations), *(f"label {k}" for k in labels)]
        )
        if not self.settings.strip_forged_annotations:
            raise _Denied(f"{named}: only the hami scheduler may set these; remove them")
        meta = pod["metadata"]
        for key in annotations:
            del meta["annotations"][key]
        for key in labels:
            del meta["labels"][key]
        return [f"removed {named}: only the hami scheduler may set these"]


def _is_pod(request: Mapping[str, Any]) -> bool:
    kind = request.get("kind")
    if isinstance(kind, Mapping) and kind.get("kind") not in (None, "Pod"):
        return False
    resource = request.get("resource")
    return not (isinstance(resource, Mapping) and resource.get("resource") not in (None, "pods"))


def _name(pod: Mapping[str, Any], namespace: str) -> str:
    meta = pod.get("metadata")
    name = (meta.get("name") or meta.get("generateName") or "") if isinstance(meta, Mapping) else ""
    return f"{namespace or 'default'}/{name}"


def _diff(original: Obj, mutated: Obj) -> list[Obj]:
    operations: list[Obj] = jsonpatch.make_patch(original, mutated).patch
    return operations


def _apply(pod: Obj, container: Mapping[str, Any], mutation: Mutation) -> None:
    """Apply one vendor's mutation to `container` (an element of `pod`) and to `pod`."""
    target: Obj = container  # type: ignore[assignment]
    if mutation.limits:
        resources = target.get("resources")
        if not isinstance(resources, dict):
            resources = target["resources"] = {}
        limits = resources.get("limits")
        if not isinstance(limits, dict):
            limits = resources["limits"] = {}
        limits.update(mutation.limits)
        requests = resources.get("requests")
        if isinstance(requests, dict) and requests:
            requests.update(mutation.limits)
    if mutation.env:
        env = target.get("env")
        if not isinstance(env, list):
            env = target["env"] = []
        present = {e.get("name") for e in env if isinstance(e, Mapping)}
        for key, value in mutation.env.items():
            if key not in present:
                env.append({"name": key, "value": value})
    if mutation.pod_annotations:
        meta = pod.setdefault("metadata", {})
        annotations = meta.get("annotations")
        if not isinstance(annotations, dict):
            annotations = meta["annotations"] = {}
        for key, value in mutation.pod_annotations.items():
            annotations.setdefault(key, value)
    if mutation.runtime_class_name:
        spec = pod.setdefault("spec", {})
        if not spec.get("runtimeClassName"):
            spec["runtimeClassName"] = mutation.runtime_class_name
