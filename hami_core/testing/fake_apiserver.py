"""`FakeApiServer`: a stateful fake Kubernetes API over real HTTP, for tests without a cluster.

It serves a `MemoryCluster` at the apiserver's own paths on `127.0.0.1` (an ephemeral port, a
background thread), so the real `kubernetes` client, `kubectl --server` or any HTTP client can talk
to it. What it keeps of the apiserver: resourceVersions and 409 on a stale precondition (in a PUT,
or a `metadata.resourceVersion` inside any patch), 409 `AlreadyExists`, `pods/binding` (409 when
already bound, a `Status` 201 reply), merge / strategic merge / JSON patch, the `status`
subresource (main writes keep `.status`, status writes change only `.status`), label and field
selectors, `?watch=true` streams of newline-delimited JSON events with `timeoutSeconds`,
bookmarks, and an `ERROR` event with a 410 `Status` for a too-old resourceVersion, and `Status`
error bodies. A request without a `Content-Type` is read as JSON, as the apiserver does.

What it leaves out (on purpose): admission, validation beyond metadata, defaulting, graceful
deletion, server-side apply, pagination, protobuf, TLS, and RBAC (any token passes unless one
is configured).

Tests arrange state through `server.state` (the `MemoryCluster`), inject faults through
`server.faults`, and read what was called in `server.requests`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import select
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from hami_core.k8s.cluster import ClusterError, NotFound, Obj
from hami_core.k8s.errors import STATUS_REASONS, Expired, Invalid, reason_of
from hami_core.k8s.memory import MemoryCluster
from hami_core.k8s.patch import copy_json, copy_obj, json_patch, merge_patch, strategic_merge_patch
from hami_core.k8s.resources import RESOURCES, ResourceInfo
from hami_core.k8s.watch import WatchStream

if TYPE_CHECKING:
    from hami_core.k8s.kube import KubeCluster

__all__ = ["FakeApiServer", "Faults", "RecordedRequest", "status_object"]

_log = logging.getLogger(__name__)

_CORE_RE = re.compile(
    r"^/api/v1(?:/namespaces/(?P<ns>[^/]+))?/(?P<res>[^/]+)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?/?$"
)
_GROUP_RE = re.compile(
    r"^/apis/(?P<group>[^/]+)/(?P<ver>[^/]+)(?:/namespaces/(?P<ns>[^/]+))?/(?P<res>[^/]+)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?/?$"
)
_PATCH_TYPES: Mapping[str, Callable[[Any, Any], Any]] = MappingProxyType(
    {
        "application/merge-patch+json": merge_patch,
        "application/strategic-merge-patch+json": strategic_merge_patch,
        "application/json-patch+json": json_patch,
    }
)
_VERSION = MappingProxyType(
    {"major": "1", "minor": "37", "gitVersion": "v1.37.0+hami-fake", "platform": "linux/amd64"}
)


def status_object(
    code: int, message: str, reason: str | None = None, details: Obj | None = None
) -> Obj:
    """A `v1` Status as the apiserver sends it (`Failure` for codes >= 400)."""
    status: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure" if code >= 400 else "Success",
        "code": code,
    }
    if code >= 400:
        status["message"] = message
        status["reason"] = reason or STATUS_REASONS.get(code, "Unknown")
    if details:
        status["details"] = details
    return status


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the fake received: `body` is the parsed JSON (raw text if not JSON)."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    """Header names in lower case."""
    body: Any

    @property
    def content_type(self) -> str | None:
        """The `Content-Type` header, or None when the client sent none."""
        return self.headers.get("content-type")


@dataclass(slots=True)
class _Failure:
    method: str
    pattern: re.Pattern[str]
    status: int
    remaining: int
    message: str | None


@dataclass(slots=True)
class _Delay:
    method: str
    pattern: re.Pattern[str]
    seconds: float


@dataclass(slots=True)
class _ActiveWatch:
    stream: WatchStream
    dropped: bool = False


def _method_matches(wanted: str, method: str) -> bool:
    return wanted == "*" or wanted.upper() == method


class Faults:
    """Fault injection for a `FakeApiServer`; thread-safe, rules match `re.search` on the path.

    `method` is an HTTP method or `"*"`. Failures answer with a `Status` body of that code.
    """

    def __init__(self, drop_watches: Callable[[], int]) -> None:
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._delays: list[_Delay] = []
        self._drop_watches = drop_watches

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int = 500,
        count: int = 1,
        *,
        message: str | None = None,
    ) -> None:
        """Answer the next `count` matching requests with HTTP `status` instead of serving them."""
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count!r}")
        rule = _Failure(method, re.compile(path_regex), status, count, message)
        with self._lock:
            self._failures.append(rule)

    def delay(self, path_regex: str, seconds: float, *, method: str = "*") -> None:
        """Hold every matching request `seconds` before serving it (until `clear()`)."""
        with self._lock:
            self._delays.append(_Delay(method, re.compile(path_regex), seconds))

    def drop_watches(self) -> int:
        """Cut every open watch connection mid-stream (no clean end); return how many."""
        return self._drop_watches()

    def clear(self) -> None:
        """Remove every pending failure and delay."""
        with self._lock:
            self._failures.clear()
            self._delays.clear()

    def take(self, method: str, path: str) -> tuple[float, _Failure | None]:
        """The delay and the failure (consumed) that apply to this request."""
        with self._lock:
            delay = sum(
                d.seconds
                for d in self._delays
                if _method_matches(d.method, method) and d.pattern.search(path)
            )
            for rule in self._failures:
                if _method_matches(rule.method, method) and rule.pattern.search(path):
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._failures.remove(rule)
                    return delay, rule
            return delay, None


@dataclass(frozen=True, slots=True)
class _Route:
    info: ResourceInfo | None
    plural: str
    namespace: str | None
    name: str | None
    sub: str | None


def _route(path: str) -> _Route | None:
    """Which resource a path names, or None when the fake does not serve it."""
    if m := _CORE_RE.match(path):
        group_version = "v1"
    elif m := _GROUP_RE.match(path):
        group_version = f"{m['group']}/{m['ver']}"
    else:
        return None
    plural = m["res"]
    ns = unquote(m["ns"]) if m["ns"] else None
    name = unquote(m["name"]) if m["name"] else None
    if plural == "bindings" and group_version == "v1":
        return _Route(None, plural, ns, name, m["sub"])
    info = RESOURCES.get(plural)
    if info is None or info.api_version != group_version:
        return None
    if ns is not None and not info.namespaced:
        return None
    return _Route(info, plural, ns, name, m["sub"])


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], fake: FakeApiServer) -> None:
        super().__init__(address, _Handler)
        self.fake = fake
        self._conn_lock = threading.Lock()
        self._conns: set[socket.socket] = set()

    def finish_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self._conns.add(request)
        try:
            super().finish_request(request, client_address)
        finally:
            with self._conn_lock:
                self._conns.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log (instead of printing) a connection the client reset or closed early."""
        _log.debug("connection from %s ended with an error", client_address, exc_info=True)

    def close_connections(self) -> None:
        with self._conn_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # headers and body go out as separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # ------------------------------------------------------------------ plumbing

    def _send_json(self, code: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_status(self, code: int, message: str, reason: str | None = None) -> None:
        self._send_json(code, status_object(code, message, reason))

    def _send_error(self, error: ClusterError, route: _Route | None) -> None:
        code = error.status or 500
        details = None
        if route is not None and route.name:
            details = {"name": route.name, "kind": route.plural}
        self._send_json(code, status_object(code, str(error), reason_of(error), details))

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _dispatch(self, method: str) -> None:
        fake = self.server.fake
        split = urlsplit(self.path)
        path = split.path
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True  # the unread body would corrupt the next request
            self._send_status(411, "chunked request bodies are not supported; send Content-Length")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            self._send_status(400, "Content-Length is not a number")
            return
        raw = self.rfile.read(length) if length > 0 else b""
        body: Any = None
        bad_json: str | None = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError as exc:
                bad_json = str(exc)
                body = raw.decode("utf-8", errors="replace")
        headers = {k.lower(): v for k, v in self.headers.items()}
        fake._record(RecordedRequest(method, path, query, headers, body))
        delay, failure = fake.faults.take(method, path)
        if delay > 0:
            fake._stopping.wait(delay)
        if failure is not None:
            message = failure.message or f"injected failure {failure.status} for {method} {path}"
            self._send_status(failure.status, message)
            return
        if fake.token is not None and headers.get("authorization") != f"Bearer {fake.token}":
            self._send_status(401, "Unauthorized")
            return
        if bad_json is not None:
            self._send_status(400, f"the request body is not valid JSON: {bad_json}")
            return
        route = _route(path)
        try:
            self._serve(method, path, query, body, headers.get("content-type"), route)
        except ClusterError as exc:
            self._send_error(exc, route)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout)
            _log.debug("fake apiserver: client of %s %s went away", method, path)
        except Exception as exc:  # a bug in the fake must not kill the server thread
            _log.exception("fake apiserver failed on %s %s", method, path)
            self._send_status(500, f"internal error: {type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ the API

    def _serve(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: Any,
        content_type: str | None,
        route: _Route | None,
    ) -> None:
        if path == "/version" and method == "GET":
            self._send_json(200, dict(_VERSION))
            return
        if path in ("/healthz", "/readyz", "/livez") and method == "GET":
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if route is None:
            raise NotFound("the server could not find the requested resource", status=404)
        state = self.server.fake.state
        if route.plural == "bindings":
            if method != "POST" or route.namespace is None or route.name is not None:
                raise NotFound("the server could not find the requested resource", status=404)
            self._bind(state, route.namespace, None, body)
            return
        info = route.info
        assert info is not None
        if route.name is None:
            self._collection(state, info, method, route, query, body)
        elif route.sub is None:
            self._item(state, info, method, route, query, body, content_type)
        elif route.sub == "status" and info.has_status:
            self._status(state, info, method, route, body, content_type)
        elif route.sub == "binding" and info.plural == "pods" and method == "POST":
            assert route.namespace is not None and route.name is not None
            self._bind(state, route.namespace, route.name, body)
        else:
            raise NotFound("the server could not find the requested resource", status=404)

    def _collection(
        self,
        state: MemoryCluster,
        info: ResourceInfo,
        method: str,
        route: _Route,
        query: Mapping[str, str],
        body: Any,
    ) -> None:
        if method == "GET":
            if query.get("watch") in ("true", "1"):
                self._watch(state, info, route, query)
                return
            listing = state.list_objects(
                info.plural,
                namespace=route.namespace,
                label_selector=query.get("labelSelector"),
                field_selector=query.get("fieldSelector"),
            )
            for item in listing["items"]:  # the apiserver omits these in list items
                item.pop("kind", None)
                item.pop("apiVersion", None)
            self._send_json(200, listing)
        elif method == "POST" and (route.namespace is not None or not info.namespaced):
            self._send_json(201, state.create(info.plural, body, namespace=route.namespace))
        else:
            self._send_status(405, f"{method} is not supported on {info.plural}")

    def _item(
        self,
        state: MemoryCluster,
        info: ResourceInfo,
        method: str,
        route: _Route,
        query: Mapping[str, str],
        body: Any,
        content_type: str | None,
    ) -> None:
        assert route.name is not None
        name, ns = route.name, route.namespace
        if info.namespaced and ns is None:
            raise NotFound("the server could not find the requested resource", status=404)
        if method == "GET":
            self._send_json(200, state.get(info.plural, name, namespace=ns))
        elif method in ("PUT", "PATCH"):
            incoming = _incoming(method, body, content_type)

            def write(current: Obj) -> Obj:
                new: Obj = incoming(current)  # not a dict? `update` answers Invalid
                if info.has_status and isinstance(new, dict):
                    if "status" in current:
                        new["status"] = copy_json(current["status"])
                    else:
                        new.pop("status", None)
                return new

            self._send_json(200, state.update(info.plural, name, write, namespace=ns))
        elif method == "DELETE":
            pre = _mapping(body.get("preconditions") if isinstance(body, dict) else None)
            deleted = state.delete(
                info.plural,
                name,
                namespace=ns,
                resource_version=pre.get("resourceVersion") or None,
                uid=pre.get("uid") or None,
            )
            self._send_json(200, deleted)
        else:
            self._send_status(405, f"{method} is not supported on {info.plural}/{name}")

    def _status(
        self,
        state: MemoryCluster,
        info: ResourceInfo,
        method: str,
        route: _Route,
        body: Any,
        content_type: str | None,
    ) -> None:
        assert route.name is not None
        name, ns = route.name, route.namespace
        if method == "GET":
            self._send_json(200, state.get(info.plural, name, namespace=ns))
            return
        if method not in ("PUT", "PATCH"):
            self._send_status(405, f"{method} is not supported on {info.plural}/status")
            return
        incoming = _incoming(method, body, content_type)

        def write(current: Obj) -> Obj:
            new = incoming(copy_json(current))
            if not isinstance(new, dict):
                raise Invalid(f"{info.plural}/status: expected a JSON object", status=400)
            result = copy_obj(current)
            new_meta = _mapping(new.get("metadata"))
            for precondition in ("resourceVersion", "uid"):
                if precondition in new_meta:
                    result["metadata"][precondition] = new_meta[precondition]
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
            return result

        self._send_json(200, state.update(info.plural, name, write, namespace=ns))

    def _bind(self, state: MemoryCluster, namespace: str, name: str | None, body: Any) -> None:
        if not isinstance(body, dict):
            raise Invalid("Binding: expected a JSON object", status=400)
        meta = _mapping(body.get("metadata"))
        target = _mapping(body.get("target"))
        pod = meta.get("name") or name
        if name is not None and meta.get("name") not in (None, name):
            raise Invalid(
                f"Binding: metadata.name {meta.get('name')!r} does not match the pod {name!r}",
                status=400,
            )
        if not isinstance(pod, str) or not pod:
            raise Invalid("Binding: metadata.name: Required value", status=400)
        node = target.get("name")
        if not isinstance(node, str) or not node:
            raise Invalid("Binding: target.name: Required value")
        annotations = meta.get("annotations")
        state.bind(
            namespace,
            pod,
            node,
            uid=meta.get("uid") or None,
            annotations=annotations if isinstance(annotations, dict) else None,
        )
        self._send_json(201, status_object(201, ""))

    def _watch(
        self, state: MemoryCluster, info: ResourceInfo, route: _Route, query: Mapping[str, str]
    ) -> None:
        fake = self.server.fake
        timeout: float | None = None
        if "timeoutSeconds" in query:
            try:
                timeout = float(int(query["timeoutSeconds"]))
            except ValueError:
                raise Invalid(
                    f"timeoutSeconds: {query['timeoutSeconds']!r} is not an integer", status=400
                ) from None
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        try:
            stream = state.watch(
                info.plural,
                resource_version=query.get("resourceVersion"),
                namespace=route.namespace,
                label_selector=query.get("labelSelector"),
                field_selector=query.get("fieldSelector"),
                timeout=timeout,
                bookmark_at_end=bookmarks,
                alive=lambda: _peer_open(self.connection),
            )
        except Expired as exc:  # the apiserver answers 200 and an ERROR event
            self._start_stream()
            self._watch_error(exc)
            self._chunk(b"")
            return
        self._start_stream()
        active = fake._watch_started(stream)
        try:
            try:
                for event in stream:
                    line = json.dumps({"type": event.type, "object": event.object}) + "\n"
                    self._chunk(line.encode())
            except Expired as exc:
                self._watch_error(exc)
            if active.dropped or fake._stopping.is_set():
                self.close_connection = True  # cut mid-stream: no terminating chunk
                return
            self._chunk(b"")
        except OSError:
            self.close_connection = True  # the client went away
        finally:
            fake._watch_ended(active)
            stream.stop()

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _watch_error(self, error: ClusterError) -> None:
        code = error.status or 500
        event = {"type": "ERROR", "object": status_object(code, str(error), reason_of(error))}
        self._chunk((json.dumps(event) + "\n").encode())


def _peer_open(sock: socket.socket) -> bool:
    """Whether the client is still connected (it has not closed its end)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return not readable or sock.recv(1, socket.MSG_PEEK) != b""
    except OSError:
        return False


def _mapping(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _incoming(method: str, body: Any, content_type: str | None) -> Callable[[Obj], Any]:
    """How a PUT or PATCH body turns the current object into the new one."""
    if method == "PUT":
        if not isinstance(body, dict):
            raise Invalid("PUT: the body must be a JSON object", status=400)
        return lambda _current: copy_json(body)
    media = (content_type or "").split(";")[0].strip().lower()
    apply = _PATCH_TYPES.get(media)
    if apply is None:
        raise ClusterError(
            f"the body of the request was in an unknown format - accepted media types include: "
            f'{", ".join(_PATCH_TYPES)} (got "{media}")',
            status=415,
        )
    return lambda current: apply(current, body)


class FakeApiServer:
    """A stateful fake Kubernetes apiserver over HTTP on `127.0.0.1`, in a background thread.

    `with FakeApiServer() as server:` starts it; `server.url` is its address, `server.state`
    the `MemoryCluster` behind it, `server.faults` the fault injection, `server.requests` the
    log. With `token`, requests must carry `Authorization: Bearer <token>`.
    """

    def __init__(
        self,
        state: MemoryCluster | None = None,
        *,
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.state = state if state is not None else MemoryCluster()
        self.token = token
        self.faults = Faults(self._drop_watches)
        self._address = (host, port)
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._watches: list[_ActiveWatch] = []
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeApiServer:
        """Bind the port and serve in a background thread; returns self."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _Server(self._address, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"fake-apiserver-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: open watches are cut, connections closed, the port released."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()
        self._drop_watches()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The TCP port it listens on (after `start()`)."""
        if self._httpd is None:
            raise RuntimeError("FakeApiServer is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`, the `host` for a client `Configuration`."""
        return f"http://{self._address[0]}:{self.port}"

    def kube_cluster(self, **kwargs: Any) -> KubeCluster:
        """A `KubeCluster` (the real `kubernetes` client) pointed at this server.

        Keyword arguments go to `KubeCluster.for_host` (`qps`, `burst`, `limiter`,
        `request_timeout`, `watch_timeout_seconds`).
        """
        from hami_core.k8s.kube import KubeCluster

        kwargs.setdefault("token", self.token)
        return KubeCluster.for_host(self.url, **kwargs)

    # ------------------------------------------------------------------ request log

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def requests_matching(self, method: str = "*", path_regex: str = "") -> list[RecordedRequest]:
        """The received requests with this method (`"*"` for any) whose path matches."""
        pattern = re.compile(path_regex)
        return [
            r for r in self.requests if _method_matches(method, r.method) and pattern.search(r.path)
        ]

    def clear_requests(self) -> None:
        """Forget the request log."""
        with self._lock:
            self._requests.clear()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    # ------------------------------------------------------------------ watches

    @property
    def open_watches(self) -> int:
        """How many watch streams are being served now."""
        with self._lock:
            return len(self._watches)

    def _watch_started(self, stream: WatchStream) -> _ActiveWatch:
        active = _ActiveWatch(stream)
        with self._lock:
            self._watches.append(active)
        return active

    def _watch_ended(self, active: _ActiveWatch) -> None:
        with self._lock:
            if active in self._watches:
                self._watches.remove(active)

    def _drop_watches(self) -> int:
        with self._lock:
            watches = list(self._watches)
        for active in watches:
            active.dropped = True
            active.stream.stop()
        return len(watches)
