"""The gateway's signed configuration from the registry: missing, stale or untrusted."""

from __future__ import annotations

import grpc

from crossway.core.errors.base import CrosswayError

__all__ = ["RegistryError", "RegistryStale", "RegistryUnavailable", "RegistryUntrusted"]


class RegistryError(CrosswayError):
    code = "registry.unavailable"
    grpc_status = grpc.StatusCode.UNAVAILABLE


class RegistryStale(RegistryError):
    code = "registry.stale"
    default_hint = "the gateway has no unexpired configuration; check that the registry is publishing"


class RegistryUntrusted(RegistryError):
    code = "registry.untrusted"
    default_hint = "the configuration does not verify against the pinned anchor; check the anchor file"


class RegistryUnavailable(RegistryError):
    code = "registry.unavailable"
    default_hint = "start the registry or check the NATS connection"
