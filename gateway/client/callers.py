"""Client-side step 1: who is calling? A pinned client certificate or a bearer JWT.

Fails closed: no credential → ``client.unauthenticated``; a credential that does not verify →
``client.token_invalid``; a verified identity that is not a registered subsystem of this
gateway's member → ``client.unknown``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from crossway.core.errors import ClientUnknown, CrosswayError, TokenInvalid, Unauthenticated
from crossway.core.ids import MemberId, SubsystemId
from crossway.security.tokens import JwtVerifier

__all__ = ["Caller", "CallerAuthenticator", "pem_sha256"]

_TOKEN_CACHE_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Caller:
    subsystem: SubsystemId
    via: str  # "certificate" | "jwt"


def pem_sha256(pem: bytes) -> str:
    """SHA-256 (hex) of the DER form of a PEM certificate."""
    return hashlib.sha256(x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)).hexdigest()


class CallerAuthenticator:
    def __init__(
        self,
        member: MemberId,
        pinned: Mapping[str, SubsystemId],
        jwt: JwtVerifier | None,
        registered: Callable[[SubsystemId], bool],
        now_s: Callable[[], float],
    ) -> None:
        self._member = member
        self._pinned = dict(pinned)  # cert sha256 hex → subsystem
        self._jwt = jwt
        self._registered = registered
        self._now_s = now_s
        # Verified tokens, until they expire: a JWT verify costs ~70 µs, a dict hit ~0.1 µs.
        self._tokens: dict[str, tuple[SubsystemId, float]] = {}
        self._key_generation = jwt.key_generation if jwt is not None else 0
        self._pem_cache: dict[bytes, str] = {}

    def authenticate(self, peer_cert_pem: bytes | None, authorization: str | None) -> Caller:
        if peer_cert_pem is not None:
            return self._by_certificate(peer_cert_pem)
        if authorization is not None:
            return self._by_token(authorization)
        raise Unauthenticated("the call carries neither a client certificate nor a bearer token")

    def _by_certificate(self, pem: bytes) -> Caller:
        fingerprint = self._pem_cache.get(pem)
        if fingerprint is None:
            fingerprint = pem_sha256(pem)
            if len(self._pem_cache) < 1024:
                self._pem_cache[pem] = fingerprint
        subsystem = self._pinned.get(fingerprint)
        if subsystem is None:
            raise ClientUnknown(
                f"client certificate {fingerprint[:16]}… is not registered with this gateway",
                hint="add it under [[client_auth.certificates]] in the gateway configuration",
            )
        return self._checked(subsystem, "certificate")

    def _by_token(self, authorization: str) -> Caller:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise TokenInvalid("the authorization metadata is not `Bearer <token>`")
        now = self._now_s()
        if self._jwt is not None and self._jwt.key_generation != self._key_generation:
            # The identity provider's key set changed (JWKS): a token of a dropped key must go.
            self._tokens.clear()
            self._key_generation = self._jwt.key_generation
        cached = self._tokens.get(token)
        if cached is not None and cached[1] > now:
            return self._checked(cached[0], "jwt")
        if self._jwt is None:
            raise TokenInvalid("this gateway accepts no bearer tokens", hint="use a registered client certificate")
        claims = self._jwt.verify(token)
        try:
            subsystem = SubsystemId.parse(claims.subject)
        except CrosswayError as exc:
            raise TokenInvalid(f"token subject is not a subsystem id: {exc.message}") from exc
        if len(self._tokens) >= _TOKEN_CACHE_MAX:
            self._tokens = {t: v for t, v in self._tokens.items() if v[1] > now}
            if len(self._tokens) >= _TOKEN_CACHE_MAX:
                self._tokens.clear()
        self._tokens[token] = (subsystem, float(claims.expires_at_s))
        return self._checked(subsystem, "jwt")

    def _checked(self, subsystem: SubsystemId, via: str) -> Caller:
        if subsystem.member != self._member:
            raise ClientUnknown(
                f"{subsystem} belongs to another member; this gateway serves {self._member}",
                hint="call through your own member's gateway",
            )
        if not self._registered(subsystem):
            raise ClientUnknown(f"subsystem {subsystem} is not registered in the registry")
        return Caller(subsystem, via)
