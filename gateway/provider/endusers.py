"""Provider-side step 2d: the end user, as a JWT signed by the calling agency.

A client names its end user either with a bare id (``crossway-user-id``: allowed, but it carries
no claims a policy could trust) or with a token (``crossway-user-token``) that its member signed
with a key registered in the registry. The token travels inside the signed request header; this
gateway verifies it against the *client member's* registered keys only, before any claim reaches
policy. Steps, each failing closed with ``policy.user_token_invalid`` (never silently ignored):

1. the client's member has registered user-token keys (else nobody can vouch for the token);
2. JWS signature by one of them, algorithm allow-list, ``iss`` = the member's registered issuer
   (the member id by default), ``aud`` = this service, its subsystem or its member, ``exp``
   (with the verifier's leeway) and a non-empty ``sub`` (:class:`crossway.security.tokens.JwtVerifier`);
3. a bare user id sent alongside must be the token's ``sub``.

The verified ``sub`` becomes the user id (audit, policy ``context.user_id``); scalar claims
(strings, integers, booleans) become the end user's Cedar tags. Time- and token-unique claims
(``exp``, ``iat``, ``nbf``, ``jti``, ``aud``, ``sub``) are left out: policies have ``context.time``,
and they would make every call a new cache entry in the decision point. Errors name the reason
and the member, never the token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from crossway.core.clock import Clock
from crossway.core.errors import TokenInvalid, UserTokenInvalid
from crossway.core.ids import ServiceId, SubsystemId
from crossway.security.tokens import JwtVerifier
from policies import Claim
from registry.configuration import MemberView, VerifiedConfiguration

__all__ = ["EndUser", "EndUserVerifier"]

# Every asymmetric algorithm the registry accepts a key for; each key is tried only with the
# algorithms of its own type (JwtVerifier), so no key-type confusion is possible.
_ALGORITHMS = ("ES256", "ES384", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
_NOT_FOR_POLICY = frozenset({"exp", "iat", "nbf", "jti", "aud", "sub"})
_VERIFIERS_MAX = 1024


@dataclass(frozen=True, slots=True)
class EndUser:
    """Who the call is made for: the id, and claims a policy may trust (empty without a token)."""

    user_id: str
    claims: Mapping[str, Claim] = field(default_factory=lambda: MappingProxyType({}))
    verified: bool = False


class EndUserVerifier:
    """Verifies end-user tokens against the registry's keys; one JwtVerifier per member and service."""

    def __init__(self, clock: Clock, leeway_s: int = 30) -> None:
        self._clock = clock
        self._leeway_s = leeway_s
        # (configuration serial, member, service) → verifier: keys and issuer come with the serial.
        self._verifiers: dict[tuple[int, str, str], JwtVerifier] = {}

    def end_user(
        self, config: VerifiedConfiguration, client: SubsystemId, service: ServiceId, user_id: str, token: str
    ) -> EndUser:
        if not token:
            return EndUser(user_id)
        # 1. the client's member must have registered keys
        member = config.member(client.member)
        if member is None or not member.user_token_keys:
            raise UserTokenInvalid(
                f"the call carries an end-user token, but {client.member} registered no user-token key",
                hint="the calling agency registers its key with `crossway registry member user-token-key`",
            )
        # 2. signature, iss, aud, exp, sub
        try:
            claims = self._verifier(config.serial, member, service).verify(token)
        except TokenInvalid as exc:
            raise UserTokenInvalid(f"end-user token from {client.member} refused: {exc.message}") from None
        # 3. a bare user id must agree with the token
        if user_id and user_id != claims.subject:
            raise UserTokenInvalid(
                f"crossway-user-id names another user than the end-user token from {client.member}",
                hint="send the token alone (its sub is the user id), or the same id in both",
            )
        policy_claims = {
            name: value
            for name, value in claims.claims.items()
            if name not in _NOT_FOR_POLICY and isinstance(value, str | int | bool)
        }
        return EndUser(claims.subject, MappingProxyType(policy_claims), verified=True)

    def _verifier(self, serial: int, member: MemberView, service: ServiceId) -> JwtVerifier:
        key = (serial, str(member.id), str(service))
        verifier = self._verifiers.get(key)
        if verifier is None:
            if len(self._verifiers) >= _VERIFIERS_MAX:
                self._verifiers.clear()  # a new configuration serial makes the old entries dead
            verifier = self._verifiers[key] = JwtVerifier(
                issuer=member.user_token_issuer or str(member.id),
                audience=(str(service), str(service.subsystem), str(service.subsystem.member)),
                public_keys=list(member.user_token_keys.values()),
                algorithms=_ALGORITHMS,
                leeway_s=self._leeway_s,
                clock=self._clock,
            )
        return verifier
