"""The scheduler's HTTP app (Starlette): `/filter`, `/bind`, `/webhook`, `/healthz`, `/readyz`,
`/metrics`.

Bodies are read up to `max_body_bytes` (413 beyond it, also when `Content-Length` says so up
front); an empty or malformed JSON body, or one of the wrong shape, is a 400 whose body says
why — for `/filter` and `/bind` as `{"Error": ...}`, for `/webhook` as an AdmissionReview
response with `allowed: false`. Logical failures of filter and bind are 200 with `Error` set,
as kube-scheduler expects; an unexpected exception inside a verb is logged and answered the
same way, never as a 500. The verbs run in a worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
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

__all__ = ["BodyError", "build_app", "read_json"]

log = logging.getLogger(__name__)


class BodyError(Exception):
    """A request body that cannot be used: `status` is 400 or 413."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _json(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


async def read_json(request: Request, limit: int) -> Any:
    """The request's JSON body; `BodyError` (413 over `limit` bytes, 400 empty or malformed)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise BodyError(400, f"Content-Length: {declared!r} is not a number") from None
        if size > limit:
            raise BodyError(413, f"request body of {size} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise BodyError(413, f"request body is over the {limit}-byte limit")
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data.strip():
        raise BodyError(400, "Please send a request body")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BodyError(400, f"malformed JSON: {exc}") from None


def build_app(
    *,
    filter_verb: FilterVerb,
    bind_verb: BindVerb,
    webhook: Webhook,
    metrics: SchedulerMetrics,
    ready: Callable[[], bool],
    max_body_bytes: int,
) -> Starlette:
    """The Starlette app serving the extender verbs, the webhook and the probes."""

    def verb_route(
        verb: str, handle: Callable[[Any], dict[str, Any]], error_body: Callable[[str], Any]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            try:
                body = await read_json(request, max_body_bytes)
                result = await run_in_threadpool(handle, body)
            except BodyError as exc:
                metrics.fail(verb, "bad_request")
                return _json(error_body(str(exc)), exc.status)
            except WireError as exc:
                metrics.fail(verb, "bad_request")
                return _json(error_body(str(exc)), 400)
            except Exception as exc:
                log.exception("%s failed", verb)
                metrics.fail(verb, "internal")
                return _json(error_body(f"internal error: {type(exc).__name__}: {exc}"))
            return _json(result)

        return route

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

    return Starlette(
        routes=[
            Route(
                "/filter",
                verb_route("filter", do_filter, lambda m: filter_result(error=m)),
                methods=["POST"],
            ),
            Route("/bind", verb_route("bind", do_bind, bind_result), methods=["POST"]),
            Route("/webhook", verb_route("webhook", do_review, review_error), methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_route, methods=["GET"]),
        ]
    )
