"""`KubeCluster`: the `Cluster` verbs over the official `kubernetes` client (its only importer).

The client supplies configuration (kubeconfig, in-cluster service account, TLS, proxies, token
refresh) and its urllib3 transport; requests go through `ApiClient.param_serialize`/`call_api`
with plain dict bodies and come back as raw JSON, so objects keep the apiserver's camelCase keys
and nothing is round-tripped through the generated models. That also sidesteps two traps of the
generated methods: a dict PATCH body goes out as strategic merge patch (we always send
`application/merge-patch+json`), and `create_namespaced_pod_binding` fails to deserialize the
`Status` the apiserver answers with (we read the raw reply).

Client-side rate limiting is a token bucket (`qps`, `burst`), as client-go does. Watches list,
then watch from the list's resourceVersion, re-watch from the last seen version when a stream
ends or breaks, and relist (a `RESYNC` event) on 410 Gone.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import suppress
from types import TracebackType
from typing import Any
from urllib.parse import quote

import urllib3
from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from hami_core.k8s.cluster import ClusterError, Obj, Unavailable, WatchEvent
from hami_core.k8s.errors import Expired, Invalid, error_for_status
from hami_core.k8s.objects import event_body, resource_version_of
from hami_core.k8s.patch import metadata_patch
from hami_core.k8s.ratelimit import TokenBucket
from hami_core.k8s.watch import WatchStream

__all__ = ["KubeCluster"]

_log = logging.getLogger(__name__)

_NODES = "/api/v1/nodes"
_MERGE_PATCH = "application/merge-patch+json"
_JSON = "application/json"
_SERVER_EVENT_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK"})


def _q(segment: str) -> str:
    if not isinstance(segment, str) or not segment:
        raise Invalid(f"expected a non-empty name, got {segment!r}", status=400)
    return quote(segment, safe="")


def _pods(namespace: str | None = None) -> str:
    return "/api/v1/pods" if namespace is None else f"/api/v1/namespaces/{_q(namespace)}/pods"


def _leases(namespace: str) -> str:
    return f"/apis/coordination.k8s.io/v1/namespaces/{_q(namespace)}/leases"


def _status_error(status: int, data: bytes, what: str) -> ClusterError:
    """The typed error for an HTTP failure, carrying the apiserver's `Status.message`."""
    message = reason = None
    try:
        body = json.loads(data) if data else None
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status":
        message, reason = body.get("message"), body.get("reason")
    if not isinstance(message, str) or not message:
        text = data.decode("utf-8", errors="replace").strip()[:300]
        message = f"{what}: HTTP {status}" + (f": {text}" if text else "")
    return error_for_status(status, message, reason if isinstance(reason, str) else None)


def _default_retries() -> urllib3.Retry:
    """Retry connecting (a restarting apiserver), never a request that may have been served."""
    return urllib3.Retry(total=3, connect=3, read=0, redirect=0, status=0, backoff_factor=0.1)


class _LiveResponse:
    """The response a watch is reading, so `stop()` can unblock it from another thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._response: urllib3.HTTPResponse | None = None
        self._stopped = False

    def hold(self, response: urllib3.HTTPResponse) -> bool:
        with self._lock:
            if self._stopped:
                return False
            self._response = response
            return True

    def release(self) -> None:
        with self._lock:
            self._response = None

    def shutdown(self) -> None:
        with self._lock:
            self._stopped = True
            response = self._response
            if response is not None:
                # already closed or released: then nothing is left to unblock
                with suppress(OSError, ValueError, RuntimeError):
                    response.shutdown()


class KubeCluster:
    """The `Cluster` verbs against a real apiserver, through the official `kubernetes` client.

    Thread-safe; one instance is meant to be shared. Build it with `from_environment()`
    (kubeconfig or in-cluster) or `for_host()`; `close()` releases its connections.
    """

    def __init__(
        self,
        api_client: ApiClient,
        *,
        limiter: TokenBucket | None = None,
        request_timeout: float = 30.0,
        watch_timeout_seconds: int = 300,
        backoff: tuple[float, float] = (0.1, 10.0),
    ) -> None:
        self._api = api_client
        self._limiter = limiter or TokenBucket(100.0, 200)
        self._request_timeout = request_timeout
        self._watch_timeout = max(1, int(watch_timeout_seconds))
        self._backoff = backoff

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_environment(
        cls,
        kubeconfig: str | None = None,
        context: str | None = None,
        qps: float = 100,
        burst: int = 200,
    ) -> KubeCluster:
        """Connect with `kubeconfig` (and `context`), else in-cluster when running in a pod,
        else `$KUBECONFIG` / `~/.kube/config`. `ClusterError` if no configuration loads.

        `qps`/`burst` limit requests client-side (well above client-go's 5/10 defaults).
        """
        configuration = Configuration()
        try:
            if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
                kube_config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration
                )
            else:
                kube_config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=kubeconfig,
                    context=context,
                    client_configuration=configuration,
                    persist_config=False,
                )
        except (ConfigException, OSError, ValueError, TypeError, KeyError) as exc:
            where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
            raise ClusterError(f"cannot load Kubernetes configuration from {where}: {exc}") from exc
        if configuration.retries is None:
            configuration.retries = _default_retries()
        return cls(ApiClient(configuration), limiter=TokenBucket(qps, burst))

    @classmethod
    def for_host(
        cls,
        host: str,
        *,
        token: str | None = None,
        qps: float = 100,
        burst: int = 200,
        verify_ssl: bool = True,
        request_timeout: float = 30.0,
        watch_timeout_seconds: int = 300,
        limiter: TokenBucket | None = None,
    ) -> KubeCluster:
        """Connect to the apiserver at `host` (`http(s)://...`), with an optional bearer token."""
        configuration = Configuration(host=host.rstrip("/"), verify_ssl=verify_ssl)
        configuration.retries = _default_retries()
        if token is not None:
            configuration.api_key = {"BearerToken": token}
            configuration.api_key_prefix = {"BearerToken": "Bearer"}
        return cls(
            ApiClient(configuration),
            limiter=limiter or TokenBucket(qps, burst),
            request_timeout=request_timeout,
            watch_timeout_seconds=watch_timeout_seconds,
        )

    @property
    def limiter(self) -> TokenBucket:
        """The client-side rate limiter every request passes through."""
        return self._limiter

    def close(self) -> None:
        """Release the client's connections."""
        self._api.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> KubeCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ transport

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str | None = None,
        timeout: float | tuple[float, float] | None = None,
    ) -> urllib3.HTTPResponse:
        """Send one rate-limited request; the raw, unread response (`Unavailable` if unsent)."""
        self._limiter.acquire()
        headers = {"Accept": _JSON}
        if body is not None:
            headers["Content-Type"] = content_type or _JSON
        method, url, headers, data, _post = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self._api.call_api(
                method,
                url,
                header_params=headers,
                body=data,
                _request_timeout=timeout or self._request_timeout,
            )
        except ApiException as exc:
            raise Unavailable(f"{method} {path}: {exc.reason}", status=exc.status or None) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Unavailable(f"{method} {path}: {exc}") from exc
        raw: urllib3.HTTPResponse = response.response
        return raw

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str | None = None,
    ) -> Any:
        """One request; the reply's JSON, or the typed error for its `Status`."""
        raw = self._send(method, path, query=query, body=body, content_type=content_type)
        try:
            data = raw.data
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Unavailable(f"{method} {path}: {exc}") from exc
        finally:
            raw.release_conn()
        if not 200 <= raw.status <= 299:
            raise _status_error(raw.status, data, f"{method} {path}")
        try:
            return json.loads(data) if data else None
        except ValueError as exc:
            raise ClusterError(f"{method} {path}: reply is not JSON: {exc}") from exc

    def _object(self, method: str, path: str, **kwargs: Any) -> Obj:
        reply = self._request(method, path, **kwargs)
        if not isinstance(reply, dict):
            raise ClusterError(f"{method} {path}: expected an object, got {type(reply).__name__}")
        return reply

    def _list(
        self,
        path: str,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Obj:
        """A list, with `kind`/`apiVersion` filled into every item (the apiserver omits them)."""
        query = []
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        listing = self._object("GET", path, query=query)
        kind = str(listing.get("kind", "")).removesuffix("List")
        api_version = listing.get("apiVersion")
        items = listing.get("items") or []
        for item in items:
            if isinstance(item, dict):
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
        listing["items"] = items
        return listing

    # ------------------------------------------------------------------ the Cluster verbs

    def version(self) -> Obj:
        """The apiserver's `/version` (a cheap reachability check)."""
        return self._object("GET", "/version")

    def get_node(self, name: str) -> Obj:
        """The node, or `NotFound`."""
        return self._object("GET", f"{_NODES}/{_q(name)}")

    def list_nodes(self, *, label_selector: str | None = None) -> list[Obj]:
        """All nodes matching the selector."""
        items: list[Obj] = self._list(_NODES, label_selector=label_selector)["items"]
        return items

    def get_pod(self, namespace: str, name: str) -> Obj:
        """The pod, or `NotFound`."""
        return self._object("GET", f"{_pods(namespace)}/{_q(name)}")

    def list_pods(
        self,
        *,
        namespace: str | None = None,
        node_name: str | None = None,
        label_selector: str | None = None,
    ) -> list[Obj]:
        """Pods, optionally only those in a namespace or with `spec.nodeName == node_name`."""
        items: list[Obj] = self._list(
            _pods(namespace),
            label_selector=label_selector,
            field_selector=None if node_name is None else f"spec.nodeName={node_name}",
        )["items"]
        return items

    def patch_node_metadata(
        self,
        name: str,
        *,
        annotations: Mapping[str, str | None] | None = None,
        labels: Mapping[str, str | None] | None = None,
        resource_version: str | None = None,
    ) -> Obj:
        """Merge-patch the node's annotations/labels; return the updated node."""
        body = metadata_patch(
            annotations=annotations, labels=labels, resource_version=resource_version
        )
        return self._object("PATCH", f"{_NODES}/{_q(name)}", body=body, content_type=_MERGE_PATCH)

    def patch_pod_metadata(
        self,
        namespace: str,
        name: str,
        *,
        annotations: Mapping[str, str | None] | None = None,
        labels: Mapping[str, str | None] | None = None,
        resource_version: str | None = None,
    ) -> Obj:
        """Merge-patch the pod's annotations/labels; return the updated pod."""
        body = metadata_patch(
            annotations=annotations, labels=labels, resource_version=resource_version
        )
        return self._object(
            "PATCH", f"{_pods(namespace)}/{_q(name)}", body=body, content_type=_MERGE_PATCH
        )

    def bind_pod(self, namespace: str, name: str, uid: str | None, node: str) -> None:
        """POST the pod's `Binding` to `node`; `Conflict` if it is already bound."""
        metadata: dict[str, str] = {"name": name, "namespace": namespace}
        if uid:
            metadata["uid"] = uid
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": metadata,
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        self._request("POST", f"{_pods(namespace)}/{_q(name)}/binding", body=binding)

    def get_lease(self, namespace: str, name: str) -> Obj:
        """The `coordination.k8s.io/v1` Lease, or `NotFound`."""
        return self._object("GET", f"{_leases(namespace)}/{_q(name)}")

    def create_lease(self, namespace: str, lease: Obj) -> Obj:
        """Create a Lease; `AlreadyExists` (a `Conflict`) if it exists."""
        if not isinstance(lease, dict):
            raise Invalid(f"lease: expected a JSON object, got {type(lease).__name__}")
        return self._object("POST", _leases(namespace), body=lease)

    def replace_lease(self, namespace: str, lease: Obj) -> Obj:
        """Replace a Lease; its `metadata.resourceVersion` is the precondition."""
        if not isinstance(lease, dict):
            raise Invalid(f"lease: expected a JSON object, got {type(lease).__name__}")
        meta = lease.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        if not isinstance(name, str) or not name:
            raise Invalid("lease: metadata.name: Required value")
        return self._object("PUT", f"{_leases(namespace)}/{_q(name)}", body=lease)

    def create_event(self, namespace: str, event: Obj) -> None:
        """Record a `v1` Event; failures are logged, never raised."""
        try:
            body = event_body(namespace, event)
            self._request("POST", f"/api/v1/namespaces/{_q(namespace)}/events", body=body)
        except ClusterError as exc:
            _log.warning("could not record event in %s: %s", namespace, exc)

    def watch_nodes(
        self, *, resource_version: str | None = None, timeout: float | None = None
    ) -> WatchStream:
        """Node events after `resource_version` (`RESYNC` with the full list first when None,
        and after a 410); ends after `timeout` seconds or on `stop()`."""
        return self._watch(_NODES, resource_version, timeout)

    def watch_pods(
        self, *, resource_version: str | None = None, timeout: float | None = None
    ) -> WatchStream:
        """Pod events after `resource_version` (`RESYNC` with the full list first when None,
        and after a 410); ends after `timeout` seconds or on `stop()`."""
        return self._watch(_pods(), resource_version, timeout)

    # ------------------------------------------------------------------ watch machinery

    def _watch(self, path: str, resource_version: str | None, timeout: float | None) -> WatchStream:
        stop = threading.Event()
        live = _LiveResponse()
        deadline = None if timeout is None else time.monotonic() + timeout

        def events() -> Iterator[WatchEvent]:
            rv = resource_version
            need_list = rv is None
            delay = self._backoff[0]
            while not stop.is_set():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return
                try:
                    if need_list:
                        listing = self._list(path)
                        rv = str(listing["metadata"]["resourceVersion"])
                        need_list = False
                        yield WatchEvent("RESYNC", listing)
                        continue
                    assert rv is not None
                    stream = self._watch_once(path, rv, remaining, live)
                    try:
                        for event in stream:
                            rv = resource_version_of(event.object) or rv
                            delay = self._backoff[0]
                            yield event
                    finally:
                        stream.close()
                except Expired:
                    _log.info("watch %s: resourceVersion %s expired; relisting", path, rv)
                    need_list = True
                except Unavailable as exc:
                    if stop.is_set():
                        return
                    _log.info("watch %s: %s; retrying in %.2fs", path, exc, delay)
                    wait = delay if remaining is None else min(delay, max(remaining, 0.0))
                    stop.wait(wait)
                    delay = min(delay * 2, self._backoff[1])

        return WatchStream(events(), stop, on_stop=live.shutdown)

    def _watch_once(
        self, path: str, rv: str, remaining: float | None, live: _LiveResponse
    ) -> Generator[WatchEvent, None, None]:
        """One watch request from `rv`; its events until the server ends the stream."""
        if remaining is None:
            server_timeout = self._watch_timeout
            read_timeout = server_timeout + 30.0
        else:
            server_timeout = max(1, min(self._watch_timeout, math.ceil(remaining)))
            read_timeout = remaining + 0.05
        query = [
            ("watch", "true"),
            ("resourceVersion", rv),
            ("timeoutSeconds", str(server_timeout)),
            ("allowWatchBookmarks", "true"),
        ]
        connect = min(10.0, self._request_timeout)
        raw = self._send("GET", path, query=query, timeout=(connect, read_timeout))
        what = f"GET {path}?watch"
        try:
            if not live.hold(raw):
                return
            if not 200 <= raw.status <= 299:
                raise _status_error(raw.status, raw.data, what)
            for line in raw:
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                    etype, obj = event["type"], event["object"]
                except (ValueError, KeyError, TypeError) as exc:
                    raise Unavailable(f"{what}: malformed event {line[:200]!r}") from exc
                if etype == "ERROR":
                    data = json.dumps(obj).encode()
                    code = obj.get("code") if isinstance(obj, dict) else None
                    raise _status_error(code if isinstance(code, int) else 500, data, what)
                if etype not in _SERVER_EVENT_TYPES or not isinstance(obj, dict):
                    _log.debug("%s: skipping event of type %r", what, etype)
                    continue
                yield WatchEvent(etype, obj)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Unavailable(f"{what}: {exc}") from exc
        finally:
            live.release()
            raw.close()
            raw.release_conn()
