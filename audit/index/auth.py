"""Who may use the audit API: an ``auditor`` JWT, optionally scoped to one agency (member).

Numbered checks, each failing closed:
1. ``authorization: Bearer <token>`` is present                           → audit.unauthenticated
2. the token verifies (issuer, audience, algorithm allow-list, keys, exp)   → audit.unauthenticated
3. its roles claim (a list of strings, or one string) includes ``auditor``  → audit.forbidden
4. its member claim, when present, is a well-formed member id
   (INSTANCE/CLASS/CODE); the caller then sees only that agency's exchanges → audit.forbidden

Token verification is ``crossway.security.tokens.JwtVerifier``, as on the admin port; the admin
port's ``AdminAuthenticator`` is not reused because its roles grant policy permissions and its
errors speak of policies, while this one answers with a scope.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from audit.trail import AuditForbidden, AuditUnauthenticated
from crossway.core.errors import TokenInvalid
from crossway.core.ids import MemberId
from crossway.security.tokens import JwtVerifier

__all__ = ["AUDITOR_ROLE", "AuditAuthenticator", "AuditorIdentity"]

AUDITOR_ROLE = "auditor"


@dataclass(frozen=True, slots=True)
class AuditorIdentity:
    subject: str
    member: str = ""  # "" = every gateway's log; else only exchanges this member took part in

    @property
    def scoped(self) -> bool:
        return bool(self.member)


class AuditAuthenticator:
    def __init__(self, verifier: JwtVerifier, *, roles_claim: str = "roles", member_claim: str = "member") -> None:
        self._verifier = verifier
        self._roles_claim = roles_claim
        self._member_claim = member_claim

    def check(self, metadata: Iterable[tuple[str, str | bytes]]) -> AuditorIdentity:
        # 1. a bearer token
        token = ""
        for key, value in metadata:
            if key.lower() == "authorization" and isinstance(value, str) and value[:7].lower() == "bearer ":
                token = value[7:].strip()
        if not token:
            raise AuditUnauthenticated("the audit API needs a bearer token (authorization metadata)")
        # 2. it verifies (the reason never contains the token)
        try:
            claims = self._verifier.verify(token)
        except TokenInvalid as exc:
            raise AuditUnauthenticated(f"audit token refused: {exc.message}") from exc
        # 3. the auditor role
        raw = claims.claims.get(self._roles_claim, [])
        listed = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
        roles = sorted(r for r in listed if isinstance(r, str))
        if AUDITOR_ROLE not in roles:
            raise AuditForbidden(
                f"{claims.subject} may not read the audit trail: roles {roles or '(none)'} do not include {AUDITOR_ROLE}"
            )
        # 4. the scope: present but malformed is refused, never widened to "everything"
        if self._member_claim not in claims.claims:
            return AuditorIdentity(claims.subject)
        member = claims.claims[self._member_claim]
        try:
            parsed = MemberId.parse(member) if isinstance(member, str) else None
        except ValueError:
            parsed = None
        if parsed is None:
            raise AuditForbidden(f"{claims.subject}: the {self._member_claim} claim is not a member id")
        return AuditorIdentity(claims.subject, str(parsed))
