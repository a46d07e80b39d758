"""Resilience around upstream calls; wraps the call, never the whole pipeline."""

from adaptor.resilience.guard import DestinationGuard, GuardedResolver

__all__ = ["DestinationGuard", "GuardedResolver"]
