"""The root of the error tree: ``CrosswayError`` (code, message, hint, gRPC status) and the ``Hop`` that failed."""

from __future__ import annotations

import enum
from typing import ClassVar

import grpc

__all__ = ["CrosswayError", "Hop"]


class Hop(enum.Enum):
    """Which hop of an exchange failed; shown as the prefix of the error message."""

    CLIENT = "client gateway"
    PROVIDER = "provider gateway"
    BACKEND = "backend"
    LOCAL = "crossway"


class CrosswayError(Exception):
    code: ClassVar[str] = "internal"
    grpc_status: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL
    default_hint: ClassVar[str] = "see the gateway's log for this message id"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        hop: Hop = Hop.LOCAL,
        status: grpc.StatusCode | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint
        self.hop = hop
        # Only UpstreamFailed carries a status of its own (the backend's).
        self._status = status

    @property
    def status(self) -> grpc.StatusCode:
        return self._status or self.grpc_status

    def at(self, hop: Hop) -> CrosswayError:
        """Mark which hop raised this error (keeps an already-set hop)."""
        if self.hop is Hop.LOCAL:
            self.hop = hop
        return self

    def details(self) -> str:
        """The gRPC details string: hop prefix, code, message."""
        return f"{self.hop.value}: {self.code}: {self.message}"

    def __str__(self) -> str:
        return f"{self.code}: {self.message} (hint: {self.hint})"
