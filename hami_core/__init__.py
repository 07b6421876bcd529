"""hami: share AI accelerators between Kubernetes pods, wire-compatible with HAMi.

The small public API: the pluggy markers a vendor uses (`hookimpl`), the package version, and
the names every vendor needs from `hami_core.model`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import pluggy

PROJECT_NAME = "hami"
"""The pluggy project name; every hook is called `hami_*`."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marks a hook specification (used only in `hami_core.hookspecs`)."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a vendor's hook implementation: `@hookimpl def hami_vendor(): ...`."""

try:
    __version__ = version("hami-core")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = ["PROJECT_NAME", "__version__", "hookimpl", "hookspec"]
