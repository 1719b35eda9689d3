"""The backend behind the provider's gateway, reached through its adapter."""

from __future__ import annotations

import grpc

from crossway.core.errors.base import CrosswayError

__all__ = ["UpstreamError", "UpstreamFailed", "UpstreamTimeout", "UpstreamUnavailable"]


class UpstreamError(CrosswayError):
    code = "upstream.error"
    grpc_status = grpc.StatusCode.UNKNOWN


class UpstreamUnavailable(UpstreamError):
    code = "upstream.unavailable"
    grpc_status = grpc.StatusCode.UNAVAILABLE
    default_hint = "the backend did not answer; check that it runs and the adapter's address"


class UpstreamTimeout(UpstreamError):
    code = "upstream.deadline_exceeded"
    grpc_status = grpc.StatusCode.DEADLINE_EXCEEDED
    default_hint = "the backend was too slow for the caller's deadline"


class UpstreamFailed(UpstreamError):
    code = "upstream.error"
    default_hint = "the backend answered with an error; its message is passed on"
