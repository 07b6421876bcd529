"""`ReloadingTLS`: a server TLS context that picks up a renewed certificate without a restart.

The listening socket is built once with `context()`. Its SNI callback runs for every new
connection (with or without SNI) and, when the certificate or key file changed since the last
load (mtime, size or inode; checked at most every `check_interval` seconds), loads them into a
fresh `SSLContext` and hands the connection to it. A half-written or mismatched pair is logged
and the previous certificate kept until the files are whole again.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hami_core.errors import ConfigError

__all__ = ["ReloadingTLS"]

log = logging.getLogger(__name__)

Stamp = tuple[tuple[int, int, int], tuple[int, int, int]]


def _stamp(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class ReloadingTLS:
    """Serves `certfile`/`keyfile`, reloading them when they change (module doc)."""

    def __init__(
        self,
        certfile: str | os.PathLike[str],
        keyfile: str | os.PathLike[str],
        *,
        check_interval: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Load the pair now; `ConfigError` naming the file when it cannot be loaded."""
        self.certfile = Path(certfile)
        self.keyfile = Path(keyfile)
        self.check_interval = check_interval
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self.reloads = 0
        try:
            stamp = self._files_stamp()
            current = self._load()
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"TLS: cannot load certificate {self.certfile} with key {self.keyfile}: {exc}"
            ) from exc
        self._current = current
        self._stamp = stamp
        self._checked = monotonic()
        self._base = self._load()
        self._base.sni_callback = self._on_hello

    def _files_stamp(self) -> Stamp:
        return (_stamp(self.certfile), _stamp(self.keyfile))

    def _load(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.certfile, self.keyfile)
        return ctx

    def context(self) -> ssl.SSLContext:
        """The context to build the listening socket with."""
        return self._base

    def current(self) -> ssl.SSLContext:
        """The context for a new connection: reloaded first if the files changed."""
        with self._lock:
            now = self._monotonic()
            if now - self._checked < self.check_interval:
                return self._current
            self._checked = now
            try:
                stamp = self._files_stamp()
            except OSError as exc:
                log.warning("TLS: cannot stat %s / %s: %s", self.certfile, self.keyfile, exc)
                return self._current
            if stamp == self._stamp:
                return self._current
            try:
                fresh = self._load()
            except (OSError, ssl.SSLError) as exc:
                log.warning("TLS: keeping the previous certificate: %s", exc)
                return self._current
            self._current, self._stamp = fresh, stamp
            self.reloads += 1
            log.info("TLS: reloaded certificate %s", self.certfile)
            return fresh

    def _on_hello(
        self,
        connection: ssl.SSLObject | ssl.SSLSocket,
        server_name: str | None,
        ctx: ssl.SSLContext,
    ) -> None:
        connection.context = self.current()
