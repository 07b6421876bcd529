"""The only place that touches the 'hardware': a JSON file standing in for a vendor library."""

import json
import os
from typing import Any


def read_cards() -> list[dict[str, Any]] | None:
    """The cards listed in `$HAMI_EXAMPLE_DEVICES`, or None when the variable is unset."""
    path = os.environ.get("HAMI_EXAMPLE_DEVICES")
    if not path:
        return None
    with open(path, encoding="utf-8") as f:
        cards: list[dict[str, Any]] = json.load(f)
    return cards
