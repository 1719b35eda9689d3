"""Policy administration on a gateway: numbered, signed versions over NATS and the admin port.

Public API: ``PolicyAdministration`` (owned by the runtime), ``AdminAuthenticator`` and
``Permission`` (roles), ``PolicyVersion`` and ``NatsPolicyVersions`` (the version store),
``audit_policy_change`` (the audit event of a change).
"""

from gateway.admin.auth import ROLES, AdminAuthenticator, AdminIdentity, Permission
from gateway.admin.server import AdminService, audit_policy_change
from gateway.admin.service import PolicyAdministration
from gateway.admin.versions import NatsPolicyVersions, PolicyVersion, files_digest, policy_subject, unified_diff

__all__ = [
    "ROLES",
    "AdminAuthenticator",
    "AdminIdentity",
    "AdminService",
    "NatsPolicyVersions",
    "Permission",
    "PolicyAdministration",
    "PolicyVersion",
    "audit_policy_change",
    "files_digest",
    "policy_subject",
    "unified_diff",
]
