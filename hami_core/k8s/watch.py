"""`WatchStream`: the iterator every `watch_*` verb returns, stoppable from any thread.

What the `watch_nodes`/`watch_pods` verbs yield, informer style:
- `RESYNC`: the object is the full `<Kind>List`; replace everything you know with its `items`.
  It comes first when no resourceVersion was given, and again whenever the version expired.
- `ADDED`, `MODIFIED`, `DELETED`: the object as stored (for `DELETED`, its last state).
- `BOOKMARK`: only `metadata.resourceVersion` (progress without a change); skip it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from types import TracebackType

from hami_core.k8s.cluster import WatchEvent

__all__ = ["WatchStream"]


class WatchStream(Iterator[WatchEvent]):
    """Watch events in order; `stop()` from any thread ends the iteration promptly.

    The events come from `source`, a generator that watches `stop_event` and returns once it is
    set; `on_stop` wakes it if it is blocked (notifies a condition, shuts a socket down).
    Also a context manager that stops on exit.
    """

    def __init__(
        self,
        source: Iterator[WatchEvent],
        stop_event: threading.Event,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self._source = source
        self._stop_event = stop_event
        self._on_stop = on_stop
        self._lock = threading.Lock()
        self._busy = False
        self._closed = False

    @property
    def stopped(self) -> bool:
        """Whether `stop()` was called or the stream ended."""
        return self._stop_event.is_set()

    def __iter__(self) -> WatchStream:
        return self

    def __next__(self) -> WatchEvent:
        with self._lock:
            if self._stop_event.is_set():
                self._close_source()
                raise StopIteration
            self._busy = True
        try:
            event = next(self._source)
        except BaseException:
            self._stop_event.set()
            raise
        finally:
            with self._lock:
                self._busy = False
                if self._stop_event.is_set():
                    self._close_source()
        if self._stop_event.is_set():
            raise StopIteration
        return event

    def stop(self) -> None:
        """End the stream: a blocked `next()` in another thread returns StopIteration soon,
        and the source's resources (a connection, a server-side stream) are released."""
        self._stop_event.set()
        if self._on_stop is not None:
            self._on_stop()
        with self._lock:
            if not self._busy:
                self._close_source()

    def _close_source(self) -> None:
        """Close the source generator (only while no thread is running it)."""
        if self._closed:
            return
        self._closed = True
        close = getattr(self._source, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> WatchStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
