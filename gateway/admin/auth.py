"""Who may use the admin API: a JWT from the admin identity provider, and a role in it.

Numbered checks, each failing closed:
1. ``authorization: Bearer <token>`` is present                         → admin.unauthenticated
2. the token verifies (issuer, audience, algorithm allow-list, keys, exp) → admin.unauthenticated
3. its roles claim (a list of strings, or one string) grants the action  → admin.forbidden
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from crossway.core.errors import AdminForbidden, AdminUnauthenticated, TokenInvalid
from crossway.security.tokens import JwtVerifier

__all__ = ["AdminAuthenticator", "AdminIdentity", "Permission", "ROLES"]


class Permission(enum.Enum):
    READ = "read"  # policies, their history and diffs, access questions, the gateway's status
    APPLY = "apply"  # apply and roll back policy versions
    RECORD_READ = "record_read"  # have one's own audit reads recorded (the audit API asks, with the auditor's token)


# Role → what it may do. Anything not listed here grants nothing.
ROLES: dict[str, frozenset[Permission]] = {
    "policy-admin": frozenset({Permission.READ, Permission.APPLY}),
    "auditor": frozenset({Permission.READ, Permission.RECORD_READ}),
    "observer": frozenset({Permission.READ}),
}

_WHAT = {
    Permission.READ: "read policies or status",
    Permission.APPLY: "apply policies",
    Permission.RECORD_READ: "have audit reads recorded",
}


@dataclass(frozen=True, slots=True)
class AdminIdentity:
    subject: str
    roles: frozenset[str]


class AdminAuthenticator:
    def __init__(self, verifier: JwtVerifier, roles_claim: str = "roles") -> None:
        self._verifier = verifier
        self._roles_claim = roles_claim

    def check(self, metadata: Iterable[tuple[str, str | bytes]], need: Permission) -> AdminIdentity:
        # 1. a bearer token
        token = ""
        for key, value in metadata:
            if key.lower() == "authorization" and isinstance(value, str) and value[:7].lower() == "bearer ":
                token = value[7:].strip()
        if not token:
            raise AdminUnauthenticated("the admin API needs a bearer token (authorization metadata)")
        # 2. it verifies (the reason is safe to show: it never contains the token)
        try:
            claims = self._verifier.verify(token)
        except TokenInvalid as exc:
            raise AdminUnauthenticated(f"admin token refused: {exc.message}") from exc
        # 3. a role that grants what is asked
        raw = claims.claims.get(self._roles_claim, [])
        listed = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
        roles = frozenset(r for r in listed if isinstance(r, str))
        if not any(need in ROLES.get(role, frozenset()) for role in roles):
            allowed = sorted(r for r, perms in ROLES.items() if need in perms)
            raise AdminForbidden(
                f"{claims.subject} may not {_WHAT[need]}: roles {sorted(roles) or '(none)'} "
                f"do not include {' or '.join(allowed)}"
            )
        return AdminIdentity(claims.subject, roles)
