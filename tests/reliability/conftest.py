"""Makes the reliability kits (`rel_kit`, `world`) importable and sets hypothesis' profile.

Sizes come from `HAMI_RELIABILITY_SCALE` (a multiplier) and `HAMI_SOAK=1` (see `rel_kit`).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
