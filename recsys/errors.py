"""Errors the core raises across packages (kept apart so low modules can raise them)."""

from __future__ import annotations


class BundleError(ValueError):
    """An artifact bundle is missing, corrupt, or does not match what it is used with."""
