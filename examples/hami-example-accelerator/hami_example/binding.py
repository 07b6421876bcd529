"""The only place that touches the 'hardware': a JSON file standing in for a vendor library."""

import json
import os
from pathlib import Path
from typing import Any


def read_cards() -> list[dict[str, Any]] | None:
    """The cards listed in `$HAMI_EXAMPLE_DEVICES`, or None when the variable is unset."""
    path = os.environ.get("HAMI_EXAMPLE_DEVICES")
    cards: list[dict[str, Any]] | None = json.loads(Path(path).read_text()) if path else None
    return cards
