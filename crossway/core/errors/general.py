"""The errors that stand alone in the tree, each its own family: identifiers, configuration,
deadlines, the audit trail, a gateway's health and the catch-all internal error."""

from __future__ import annotations

import grpc

from crossway.core.errors.base import CrosswayError

__all__ = [
    "AuditUnavailable",
    "ConfigError",
    "DeadlineExceeded",
    "HealthUnavailable",
    "InternalError",
    "InvalidIdentifier",
]


class InvalidIdentifier(CrosswayError, ValueError):
    code = "id.invalid"
    grpc_status = grpc.StatusCode.INVALID_ARGUMENT
    default_hint = "identifiers look like EE/GOV/70000001/subsystem"


class ConfigError(CrosswayError):
    code = "config.invalid"
    grpc_status = grpc.StatusCode.FAILED_PRECONDITION
    default_hint = "fix the named file and key, then start again"


class DeadlineExceeded(CrosswayError):
    code = "deadline.exceeded"
    grpc_status = grpc.StatusCode.DEADLINE_EXCEEDED
    default_hint = "raise the call's deadline or retry"


class AuditUnavailable(CrosswayError):
    code = "audit.unavailable"
    grpc_status = grpc.StatusCode.UNAVAILABLE
    default_hint = "strict audit mode: the audit trail cannot be written; check NATS and the spool"


class HealthUnavailable(CrosswayError):
    """A gateway's health service could not be asked (``crossway gateway health``)."""

    code = "health.unavailable"
    grpc_status = grpc.StatusCode.UNAVAILABLE
    default_hint = (
        "check that the gateway runs, the address names its client or admin port, and --ca is the registry CA"
    )


class InternalError(CrosswayError):
    code = "internal"
