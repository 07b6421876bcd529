"""Which NVML XID events make a GPU unhealthy (pure; HAMi's `rm/health.go` rules).

Only XID critical-error events count. XIDs 13, 31, 43, 45, 68 and 109 are application errors
(a kernel fault, a page fault, a stopped channel, ...) and never mark the card unhealthy.
`DP_DISABLE_HEALTHCHECKS` (same variable as HAMi's device plugin) tunes it: `all` or `xids`
turns XID health off; a comma list of numbers adds XIDs to ignore.
"""

from __future__ import annotations

from dataclasses import dataclass

from hami_core.errors import ConfigError

__all__ = ["APPLICATION_XIDS", "XidPolicy", "xid_policy"]

APPLICATION_XIDS = frozenset({13, 31, 43, 45, 68, 109})
"""XIDs caused by applications, ignored by HAMi's health check."""


@dataclass(frozen=True, slots=True)
class XidPolicy:
    """Whether XID events are watched, and which XIDs do not count."""

    enabled: bool = True
    ignored: frozenset[int] = APPLICATION_XIDS

    def is_critical(self, xid: int) -> bool:
        """True when this XID marks the card unhealthy."""
        return self.enabled and xid not in self.ignored


def xid_policy(disable: str | None) -> XidPolicy:
    """The policy for a `DP_DISABLE_HEALTHCHECKS` value (`None` or empty: the default).

    Raises `ConfigError` naming the variable for an item that is neither a keyword nor a number.
    """
    items = [p.strip().lower() for p in (disable or "").split(",") if p.strip()]
    if any(item in ("all", "xids") for item in items):
        return XidPolicy(enabled=False)
    extra: set[int] = set()
    for item in items:
        if not item.isdigit():
            raise ConfigError(
                f"DP_DISABLE_HEALTHCHECKS: expected 'all', 'xids' or XID numbers, got {item!r}"
            )
        extra.add(int(item))
    return XidPolicy(enabled=True, ignored=APPLICATION_XIDS | extra)
