"""Size limits on what a node or a pod's author can make hami read (pure).

Annotation values are refused before they are parsed when they are longer than the apiserver
would ever store, and nodes that register through `status.capacity` may not make the scheduler
build more than a bounded number of cards.
"""

from __future__ import annotations

from typing import Final

from hami_core.protocol.errors import ProtocolError

__all__ = [
    "MAX_ANNOTATION_BYTES",
    "MAX_CAPACITY_CARDS",
    "check_annotation_size",
    "check_card_count",
]

MAX_ANNOTATION_BYTES: Final = 256 * 1024
"""The apiserver's limit on all of an object's annotations together (`TotalAnnotationSizeLimitB`):
no stored annotation value can be longer, so anything longer is refused unread."""

MAX_CAPACITY_CARDS: Final = 1024
"""The most cards a node's capacity may make the scheduler build (far beyond any real node)."""


def check_annotation_size(value: str, what: str) -> None:
    """Raise `ProtocolError` when `value` is longer than `MAX_ANNOTATION_BYTES` (not parsed)."""
    if len(value) > MAX_ANNOTATION_BYTES:
        raise ProtocolError(
            f"{what} is too long: {len(value)} characters, the limit is "
            f"{MAX_ANNOTATION_BYTES} bytes",
            value=value[:200],
        )


def check_card_count(cards: int, resource: str | None, raw: object) -> None:
    """Raise `ProtocolError` naming `resource` when capacity claims more than
    `MAX_CAPACITY_CARDS` cards."""
    if cards > MAX_CAPACITY_CARDS:
        raise ProtocolError(
            f"node capacity {resource}: {raw!r} makes {cards} cards, "
            f"more than the limit of {MAX_CAPACITY_CARDS}",
            field=resource,
            value=raw,
        )
