"""Makes the scheduling test kit (`sched_kit`) importable and offers its registry fixture."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sched_kit import make_registry

from hami_core.plugins import VendorRegistry


@pytest.fixture
def registry() -> VendorRegistry:
    """All three test vendors (nvidia, wcard, steps)."""
    return make_registry()
