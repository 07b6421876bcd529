"""`SchedulerService`: everything `hami scheduler` runs, wired together.

One usage cache fed by the informer; the engine over it; leader election, whose leader writes
the register loop's handshakes (followers apply its health verdicts read-only); the filter,
bind and webhook handlers; metrics; and the HTTP app, served by uvicorn in the foreground
(`serve`) or in a background thread (`serve_in_thread`, for tests, benchmarks and embedding).

Filter and bind are answered by every replica, leader or not: kube-scheduler, itself
leader-elected, calls the extender beside it, and that extender's cache is fed by the same
watches as the leader's. See docs/scheduler.md.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import uvicorn

from hami_core.k8s.cluster import Cluster
from hami_core.nodelock import release_node_lock
from hami_core.plugins import VendorRegistry
from hami_core.scheduler.app import build_app
from hami_core.scheduler.bind import BindVerb
from hami_core.scheduler.decisions import DECISION_LABELS, decision_keys
from hami_core.scheduler.events import EventRecorder
from hami_core.scheduler.filtering import FilterVerb
from hami_core.scheduler.informer import Informer
from hami_core.scheduler.leader import LeaderElector
from hami_core.scheduler.metrics import SchedulerMetrics
from hami_core.scheduler.register import RegisterLoop
from hami_core.scheduler.settings import SchedulerSettings
from hami_core.scheduler.tls import ReloadingTLS
from hami_core.scheduler.webhook import Webhook
from hami_core.scheduling.cache import UsageCache
from hami_core.scheduling.engine import Engine
from hami_core.scheduling.requests import RequestMemo

__all__ = ["RunningServer", "SchedulerService"]

log = logging.getLogger(__name__)


class RunningServer:
    """A uvicorn server running in a background thread; `url` is where it listens."""

    def __init__(self, server: Any, thread: threading.Thread, url: str) -> None:
        self._server = server
        self._thread = thread
        self.url = url

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and join the thread."""
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class SchedulerService:
    """The scheduler extender and webhook service over one `Cluster` (module doc)."""

    def __init__(
        self,
        cluster: Cluster,
        registry: VendorRegistry,
        config: Mapping[str, Any] | None = None,
        settings: SchedulerSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Wire the parts; nothing runs until `start()`. `ProtocolError` for a bad policy."""
        self.cluster = cluster
        self.registry = registry
        self.config: Mapping[str, Any] = dict(config or {})
        self.settings = settings or SchedulerSettings()
        s = self.settings
        self.cache = UsageCache(registry, self.config, reservation_ttl=s.reservation_ttl)
        # one memo of pod requests for filter and bind: it ignores the decision keys filter
        # writes, so bind finds the answer filter computed
        requests = RequestMemo(
            registry, self.config, decision_keys(registry.specs()) | set(DECISION_LABELS)
        )
        self.engine = Engine(
            registry,
            self.config,
            self.cache,
            node_policy=s.node_policy,
            gpu_policy=s.gpu_policy,
            requests=requests,
        )
        self.metrics = SchedulerMetrics(self.cache)
        self.events = EventRecorder(cluster, s.scheduler_name, clock=clock)
        self.informer = Informer(
            cluster,
            self.cache,
            decision_keys=decision_keys(registry.specs()),
            resync_period=s.resync_period,
            on_node_added=self._node_added,
            on_lock_orphaned=self._release_orphaned_lock,
        )
        self.elector = LeaderElector(
            cluster,
            s.lease_namespace,
            s.lease_name,
            s.identity,
            lease_duration=s.lease_duration,
            renew_deadline=s.renew_deadline,
            retry_period=s.retry_period,
            on_started_leading=self._started_leading,
            on_stopped_leading=self._stopped_leading,
        )
        self.register = RegisterLoop(
            cluster,
            self.cache,
            registry,
            is_leader=lambda: self.elector.is_leader,
            interval=s.register_interval,
            handshake_timeout=s.handshake_timeout,
            on_written=self.metrics.handshakes_written.inc,
        )
        self.filter = FilterVerb(
            cluster,
            self.engine,
            self.informer,
            metrics=self.metrics,
            events=self.events,
            sync_timeout=s.sync_timeout,
            success_events=s.success_events,
            clock=clock,
        )
        self.bind = BindVerb(
            cluster,
            registry,
            self.config,
            metrics=self.metrics,
            events=self.events,
            cache=self.cache,
            requests=requests,
            pods_seen=self.informer.wait_pods_seen,
            cache_wait=s.bind_cache_wait,
            node_lock_timeout=s.node_lock_timeout,
            success_events=s.success_events,
            clock=clock,
        )
        self.webhook = Webhook(registry, self.config, s)
        self.app = build_app(
            filter_verb=self.filter,
            bind_verb=self.bind,
            webhook=self.webhook,
            metrics=self.metrics,
            ready=self.ready,
            max_body_bytes=s.max_body_bytes,
        )
        self.tls: ReloadingTLS | None = None
        self._started = False

    # ------------------------------------------------------------------ state

    def ready(self) -> bool:
        """True once the caches are synced (what `/readyz` answers)."""
        synced = self.informer.synced
        self.metrics.cache_synced.set(1 if synced else 0)
        return synced

    @property
    def is_leader(self) -> bool:
        """Whether this replica holds the lease now."""
        return self.elector.is_leader

    def _node_added(self, _name: str) -> None:
        self.register.trigger()

    def _release_orphaned_lock(self, node: str, namespace: str, name: str) -> None:
        """Release a node lock whose holder pod was deleted or finished (any replica may: the
        release checks the holder under a resourceVersion precondition)."""
        if release_node_lock(self.cluster, node, namespace, name):
            log.info("node %s: released the lock of %s/%s, which is gone", node, namespace, name)

    def _started_leading(self) -> None:
        self.metrics.leader.set(1)
        self.register.trigger()

    def _stopped_leading(self) -> None:
        self.metrics.leader.set(0)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the background work: events, informer, leader election, register loop."""
        if self._started:
            return
        self._started = True
        self.events.start()
        self.informer.start()
        self.elector.start()
        self.register.start()

    def stop(self, *, release_lease: bool = True) -> None:
        """Stop the background work; `release_lease=False` simulates a crash (no hand-over)."""
        if not self._started:
            return
        self._started = False
        self.register.stop()
        self.elector.stop(release=release_lease)
        self.informer.stop()
        self.events.stop()
        self.app.close()

    def __enter__(self) -> SchedulerService:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ HTTP

    def _config(
        self,
        *,
        host: str,
        port: int,
        certfile: str | os.PathLike[str] | None,
        keyfile: str | os.PathLike[str] | None,
        log_config: Any,
    ) -> Any:
        kwargs: dict[str, Any] = {}
        if certfile is not None or keyfile is not None:
            if certfile is None or keyfile is None:
                raise ValueError("TLS needs both a certificate file and a key file")
            tls = ReloadingTLS(certfile, keyfile)
            self.tls = tls
            kwargs["ssl_context_factory"] = lambda _config, _default: tls.context()
            kwargs["ssl_certfile"] = str(certfile)
            kwargs["ssl_keyfile"] = str(keyfile)
        else:
            self.tls = None
        return uvicorn.Config(
            self.app,
            host=host,
            port=port,
            log_config=log_config,
            access_log=False,
            lifespan="off",
            # kube-scheduler and the apiserver call in directly: no proxy headers to trust, and
            # no Server/Date headers for them to read (each costs time on every request)
            proxy_headers=False,
            server_header=False,
            date_header=False,
            timeout_graceful_shutdown=5,
            **kwargs,
        )

    def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        certfile: str | os.PathLike[str] | None = None,
        keyfile: str | os.PathLike[str] | None = None,
    ) -> None:
        """Serve HTTP(S) in the foreground until SIGTERM/SIGINT (uvicorn handles the signals)."""
        config = self._config(
            host=host, port=port, certfile=certfile, keyfile=keyfile, log_config=None
        )
        server = uvicorn.Server(config)

        def _stop(signum: int, _frame: object) -> None:
            server.should_exit = True

        # uvicorn re-raises the signal it caught once it has shut down, with the handlers it
        # found installed: with ours there, the caller gets to stop the service cleanly.
        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            server.run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def serve_in_thread(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        certfile: str | os.PathLike[str] | None = None,
        keyfile: str | os.PathLike[str] | None = None,
        timeout: float = 10.0,
    ) -> RunningServer:
        """Serve in a background thread on `host:port` (0: a free port); returns once listening."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and
        # without it a response's second write waits for the client's delayed ACK (~40 ms).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        bound = sock.getsockname()[1]
        config = self._config(
            host=host, port=bound, certfile=certfile, keyfile=keyfile, log_config=None
        )
        server = uvicorn.Server(config)
        loop_factory = config.get_loop_factory()  # uvloop where installed, as `serve` uses

        def run() -> None:
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                runner.run(server.serve(sockets=[sock]))

        thread = threading.Thread(target=run, name=f"hami-http-{bound}", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                raise RuntimeError(f"the HTTP server did not start on {host}:{bound}")
            time.sleep(0.005)
        scheme = "https" if certfile is not None else "http"
        where = f"[{host}]" if family == socket.AF_INET6 else host
        return RunningServer(server, thread, f"{scheme}://{where}:{bound}")
