"""The one error type every HAMi wire decoder raises."""

from __future__ import annotations

__all__ = ["ProtocolError"]


class ProtocolError(ValueError):
    """A wire value that cannot be read (or a value that cannot be written) as HAMi defines it.

    The message says what was wrong in words an operator can act on. `field` names the part
    of the value at fault (`"count"`, `"health"`, `"slot"`...), `value` holds the offending
    piece, and `annotation` the annotation key once a caller has attached it
    (`err.with_annotation("hami.io/node-nvidia-register")`).
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        value: object = None,
        annotation: str | None = None,
    ) -> None:
        self.message = message
        self.field = field
        self.value = value
        self.annotation = annotation
        super().__init__(f"annotation {annotation}: {message}" if annotation else message)

    def with_annotation(self, annotation: str) -> ProtocolError:
        """Return the same error with the annotation key it came from named in its message."""
        return ProtocolError(
            self.message, field=self.field, value=self.value, annotation=annotation
        )
