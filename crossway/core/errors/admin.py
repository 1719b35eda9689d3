"""The admin port's callers: their token, their role, and concurrent changes."""

from __future__ import annotations

import grpc

from crossway.core.errors.base import CrosswayError

__all__ = ["AdminConflict", "AdminError", "AdminForbidden", "AdminUnauthenticated"]


class AdminError(CrosswayError):
    code = "admin.forbidden"
    grpc_status = grpc.StatusCode.PERMISSION_DENIED


class AdminUnauthenticated(AdminError):
    code = "admin.unauthenticated"
    grpc_status = grpc.StatusCode.UNAUTHENTICATED
    default_hint = "send `authorization: Bearer <token>` from the admin identity provider in [admin]"


class AdminForbidden(AdminError):
    code = "admin.forbidden"
    default_hint = "policy-admin may apply and roll back; auditor and observer may read"


class AdminConflict(AdminError):
    code = "admin.conflict"
    grpc_status = grpc.StatusCode.ABORTED
    default_hint = "another change was applied meanwhile: diff again, then apply"
