"""The scheduler's HTTP app (ASGI): `/filter`, `/bind`, `/webhook`, `/healthz`, `/readyz`,
`/metrics`.

Bodies are read up to `max_body_bytes` (413 beyond it, also when `Content-Length` says so up
front); an empty or malformed JSON body, or one of the wrong shape, is a 400 whose body says
why — for `/filter` and `/bind` as `{"Error": ...}`, for `/webhook` as an AdmissionReview
response with `allowed: false`. Logical failures of filter and bind are 200 with `Error` set,
as kube-scheduler expects; an unexpected exception inside a verb is logged and answered the
same way, never as a 500. The verbs run on worker threads (`hami-verb_N`, `VerbThreads`) so the
event loop keeps serving.

`POST` to the three verbs is answered by a lean ASGI handler (no middleware, no routing
table: kube-scheduler calls these once or twice per pod, and Starlette's request machinery
cost more than the verbs' own HTTP work); everything else — probes, metrics, a wrong method
on a verb (405) or an unknown path (404) — goes to a Starlette app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hami_core.scheduler.bind import BindVerb
from hami_core.scheduler.filtering import FilterVerb
from hami_core.scheduler.metrics import SchedulerMetrics
from hami_core.scheduler.webhook import Webhook
from hami_core.scheduler.wire import (
    WireError,
    bind_result,
    filter_result,
    parse_bind_args,
    parse_filter_args,
)

__all__ = ["BodyError", "ExtenderApp", "VerbThreads", "build_app", "read_json_body"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

VERB_THREADS = 16
"""Worker threads for the verbs (concurrent binds; kube-scheduler binds asynchronously)."""

_JSON_HEADERS = [(b"content-type", b"application/json")]

log = logging.getLogger(__name__)


class BodyError(Exception):
    """A request body that cannot be used: `status` is 400 or 413."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _check_declared(declared: str | None, limit: int) -> None:
    if declared is None:
        return
    try:
        size = int(declared)
    except ValueError:
        raise BodyError(400, f"Content-Length: {declared!r} is not a number") from None
    if size > limit:
        raise BodyError(413, f"request body of {size} bytes is over the {limit}-byte limit")


def _parse(data: bytes) -> Any:
    if not data.strip():
        raise BodyError(400, "Please send a request body")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BodyError(400, f"malformed JSON: {exc}") from None


async def read_json_body(scope: Scope, receive: Receive, limit: int) -> Any:
    """The JSON body of an ASGI HTTP request; `BodyError`: 413 over `limit` bytes (also when
    `Content-Length` says so up front), 400 when empty, malformed or cut off by a disconnect."""
    declared = None
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            declared = value.decode("latin-1")
            break
    _check_declared(declared, limit)
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BodyError(400, "the client disconnected before sending the whole body")
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise BodyError(413, f"request body is over the {limit}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return _parse(chunks[0] if len(chunks) == 1 else b"".join(chunks))


Handler = Callable[[Any], dict[str, Any]]


class VerbThreads:
    """Up to `size` worker threads that run the verbs for the event loop.

    A lighter `run_in_executor`: a job is one put on a `SimpleQueue`, and its result one
    `call_soon_threadsafe` back to the loop (no concurrent `Future` chained to an asyncio
    one). Threads start as jobs arrive and block on the queue when idle; `close()` stops
    them once the jobs queued before it are done.
    """

    def __init__(self, size: int, name: str) -> None:
        self.size = size
        self.name = name
        self._jobs: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0

    def run(self, handle: Handler, body: Any) -> asyncio.Future[dict[str, Any]]:
        """Run `handle(body)` on a worker thread; the future settles on the calling loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        with self._lock:
            if self._idle == 0 and len(self._threads) < self.size:
                thread = threading.Thread(
                    target=self._work, name=f"{self.name}_{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= 1 if self._idle else 0
        self._jobs.put((loop, future, handle, body))
        return future

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            loop, future, handle, body = job
            try:
                outcome: tuple[Callable[..., None], Any] = (_set_result, handle(body))
            except BaseException as exc:  # handed to the awaiting coroutine
                outcome = (_set_exception, exc)
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for it
                loop.call_soon_threadsafe(outcome[0], future, outcome[1])
            with self._lock:
                self._idle += 1

    def close(self) -> None:
        """Stop every thread once the jobs queued so far are done."""
        with self._lock:
            threads, self._threads, self._idle = self._threads, [], 0
        for _ in threads:
            self._jobs.put(None)


def _set_result(future: asyncio.Future[Any], value: Any) -> None:
    if not future.cancelled():
        future.set_result(value)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.cancelled():
        future.set_exception(exc)


class ExtenderApp:
    """The ASGI app: lean `POST /filter`, `/bind`, `/webhook`; Starlette for the rest.

    The verbs' worker threads start with the first request; `close()` stops them.
    """

    def __init__(
        self,
        verbs: dict[str, tuple[str, Handler, Callable[[str], Any]]],
        fallback: Starlette,
        metrics: SchedulerMetrics,
        max_body_bytes: int,
    ) -> None:
        self.verbs = verbs
        self.fallback = fallback
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self._workers: VerbThreads | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] == "http" and scope["method"] == "POST":
            verb = self.verbs.get(scope["path"])
            if verb is not None:
                status, body = await self._verb(verb, scope, receive)
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [
                            *_JSON_HEADERS,
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.fallback(scope, receive, send)

    async def _verb(
        self, verb: tuple[str, Handler, Callable[[str], Any]], scope: Scope, receive: Receive
    ) -> tuple[int, bytes]:
        name, handle, error_body = verb
        try:
            body = await read_json_body(scope, receive, self.max_body_bytes)
            workers = self._workers
            if workers is None:
                workers = self._workers = VerbThreads(VERB_THREADS, "hami-verb")
            result = await workers.run(handle, body)
        except BodyError as exc:
            self.metrics.fail(name, "bad_request")
            return exc.status, orjson.dumps(error_body(str(exc)))
        except WireError as exc:
            self.metrics.fail(name, "bad_request")
            return 400, orjson.dumps(error_body(str(exc)))
        except Exception as exc:
            log.exception("%s failed", name)
            self.metrics.fail(name, "internal")
            return 200, orjson.dumps(error_body(f"internal error: {type(exc).__name__}: {exc}"))
        return 200, orjson.dumps(result)

    def close(self) -> None:
        """Stop the worker threads (those running a verb finish it first); a later request
        starts new ones."""
        workers, self._workers = self._workers, None
        if workers is not None:
            workers.close()


def build_app(
    *,
    filter_verb: FilterVerb,
    bind_verb: BindVerb,
    webhook: Webhook,
    metrics: SchedulerMetrics,
    ready: Callable[[], bool],
    max_body_bytes: int,
) -> ExtenderApp:
    """The ASGI app serving the extender verbs, the webhook and the probes."""

    def do_filter(body: Any) -> dict[str, Any]:
        return filter_verb(parse_filter_args(body))

    def do_bind(body: Any) -> dict[str, Any]:
        return bind_verb(parse_bind_args(body))

    def do_review(body: Any) -> dict[str, Any]:
        review = webhook.review(body)
        metrics.webhook_requests.labels(result=review.result).inc()
        return review.body

    def review_error(message: str) -> dict[str, Any]:
        code = 500 if message.startswith("internal error") else 400
        return {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {
                "uid": "",
                "allowed": False,
                "status": {"code": code, "message": message},
            },
        }

    async def not_allowed(_request: Request) -> Response:  # only reached by a non-POST
        return Response("Method Not Allowed", status_code=405, media_type="text/plain")

    async def healthz(_request: Request) -> Response:
        return Response("ok", media_type="text/plain")

    async def readyz(_request: Request) -> Response:
        if ready():
            return Response("ok", media_type="text/plain")
        return Response("caches not synced", status_code=503, media_type="text/plain")

    async def metrics_route(_request: Request) -> Response:
        ready()  # refreshes the cache-synced gauge
        body, content_type = await run_in_threadpool(metrics.render)
        return Response(body, media_type=content_type)

    verbs: dict[str, tuple[str, Handler, Callable[[str], Any]]] = {
        "/filter": ("filter", do_filter, lambda m: filter_result(error=m)),
        "/bind": ("bind", do_bind, bind_result),
        "/webhook": ("webhook", do_review, review_error),
    }
    fallback = Starlette(
        routes=[
            *(Route(path, not_allowed, methods=["POST"]) for path in verbs),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_route, methods=["GET"]),
        ]
    )
    return ExtenderApp(verbs, fallback, metrics, max_body_bytes)
