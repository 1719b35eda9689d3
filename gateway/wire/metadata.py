"""gRPC metadata as plain text: one place that knows grpc's metadata types."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["metadata_text"]


def metadata_text(metadata: Iterable[Any] | None) -> dict[str, str]:
    """Text entries of gRPC metadata (``key``/``value`` pairs); binary (``-bin``) entries are skipped."""
    out: dict[str, str] = {}
    for key, value in metadata or ():
        if isinstance(value, str):
            out[key] = value
    return out
