"""Exceptions raised by the model package, so callers can tell a bad checkpoint from a bad input."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint directory or file is missing, truncated, malformed or does not fit the model."""
