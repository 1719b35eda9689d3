"""JWT bearer tokens for agency systems calling the client port.

Verification is a list of fail-closed steps (see :meth:`JwtVerifier.verify`), built on pyjwt with
an explicit algorithm allow-list: only asymmetric algorithms are accepted, so neither ``none`` nor
the classic "HS256 signed with the public key as HMAC secret" confusion (RFC 8725 §2.1, §3.1) can
get through. ``exp``, ``iss``, ``aud`` and ``sub`` are required.

Time checks (``exp``, ``nbf``, ``iat``) are done here against a :class:`Clock` rather than by
pyjwt, which reads the wall clock itself; that keeps them testable and replayable.

Error messages name the reason (and claim values such as the issuer when useful), never the token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

from crossway.core.clock import Clock, SystemClock
from crossway.core.errors import ConfigError, TokenInvalid
from crossway.security.signing import PrivateSigningKey, algorithm_for_key

__all__ = [
    "JwtVerifier",
    "TokenClaims",
    "TokenKeySource",
    "jwk_thumbprint",
    "mint_token",
]

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey


class TokenKeySource(Protocol):
    """Where a verifier finds keys beyond its configured files (``kid`` → public key): an identity
    provider's JWKS (``crossway.security.jwks``), or its in-memory twin."""

    @property
    def ready(self) -> bool:
        """True once a key set was obtained; until then tokens no configured file verifies are refused."""
        ...

    @property
    def generation(self) -> int:
        """Changes whenever the key set changes."""
        ...

    def keys(self) -> Mapping[str, PublicKey]: ...

    def request_refresh(self) -> None:
        """A token named an unknown key: fetch again soon (never blocks, may be ignored)."""
        ...


# Asymmetric algorithms pyjwt implements with `cryptography`; anything else ("none", HS*) can never
# be configured. Each maps to the key type it needs, checked before a key is tried.
_KEY_TYPES: Final[dict[str, type[Any]]] = {
    "ES256": ec.EllipticCurvePublicKey,
    "ES384": ec.EllipticCurvePublicKey,
    "ES512": ec.EllipticCurvePublicKey,
    "EdDSA": ed25519.Ed25519PublicKey,
    "RS256": rsa.RSAPublicKey,
    "RS384": rsa.RSAPublicKey,
    "RS512": rsa.RSAPublicKey,
    "PS256": rsa.RSAPublicKey,
    "PS384": rsa.RSAPublicKey,
    "PS512": rsa.RSAPublicKey,
}
_EC_CURVES: Final[dict[str, str]] = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}

# Time claims are verified by us (with the Clock); pyjwt checks the signature, presence, iss and aud.
_PYJWT_OPTIONS: Final[dict[str, Any]] = {
    "require": ["exp", "iss", "aud", "sub"],
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_iss": True,
    "verify_aud": True,
    "verify_sub": True,
}


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """The verified content of a bearer token. ``claims`` is a read-only view of all claims."""

    subject: str
    issuer: str
    audience: str
    expires_at_s: int
    claims: Mapping[str, object]

    def __repr__(self) -> str:
        # Claims may carry personal data (names, e-mail); keep them out of logs that print values.
        return f"TokenClaims(subject={self.subject!r}, issuer={self.issuer!r}, expires_at_s={self.expires_at_s})"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_thumbprint(key: PublicKey) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256, base64url) — the default ``kid`` of a configured key."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        members: dict[str, str] = {
            "crv": "Ed25519",
            "kty": "OKP",
            "x": _b64url(key.public_bytes(Encoding.Raw, PublicFormat.Raw)),
        }
    elif isinstance(key, ec.EllipticCurvePublicKey):
        numbers = key.public_numbers()
        size = (key.curve.key_size + 7) // 8
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}.get(key.curve.name, key.curve.name)
        members = {
            "crv": crv,
            "kty": "EC",
            "x": _b64url(numbers.x.to_bytes(size, "big")),
            "y": _b64url(numbers.y.to_bytes(size, "big")),
        }
    else:
        rsa_numbers = key.public_numbers()
        members = {
            "e": _b64url(rsa_numbers.e.to_bytes((rsa_numbers.e.bit_length() + 7) // 8, "big")),
            "kty": "RSA",
            "n": _b64url(rsa_numbers.n.to_bytes((rsa_numbers.n.bit_length() + 7) // 8, "big")),
        }
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return _b64url(hashlib.sha256(canonical).digest())


def _load_key(entry: object, where: str) -> PublicKey:
    if isinstance(entry, bytes | str):
        try:
            loaded = load_pem_public_key(entry.encode() if isinstance(entry, str) else entry)
        except Exception as exc:
            raise ConfigError(f"{where} is not a PEM public key", hint="give a PEM 'PUBLIC KEY' block") from exc
        entry = loaded
    if not isinstance(entry, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
        raise ConfigError(
            f"{where} is a {type(entry).__name__}; token keys must be EC, Ed25519 or RSA public keys",
            hint="configure the identity provider's public key, never a shared secret",
        )
    return entry


def _read_header(token: str) -> dict[str, Any]:
    # Parsed here (not with jwt.get_unverified_header, ~15 µs) only to pick the algorithm and key;
    # pyjwt parses and checks it again when it verifies the signature.
    encoded = token.partition(".")[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except Exception as exc:
        raise TokenInvalid("bearer token is malformed (unreadable header)") from exc
    if not isinstance(header, dict):
        raise TokenInvalid("bearer token is malformed (header is not a JSON object)")
    return header


def _key_fits(key: PublicKey, algorithm: str) -> bool:
    if not isinstance(key, _KEY_TYPES[algorithm]):
        return False
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.curve.name == _EC_CURVES[algorithm]
    return True


def _utc(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int_claim(payload: Mapping[str, Any], name: str) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    # bool is an int subclass; "exp": true is malformed, not 1970-01-01T00:00:01Z.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenInvalid(f"token claim {name!r} is not a number of seconds")
    return int(value)


class JwtVerifier:
    """Verifies bearer tokens from one issuer for one audience against configured public keys.

    ``audience`` may also be a sequence: a token is then accepted for any one of them (an end-user
    token may name the provider's service, subsystem or member), and ``TokenClaims.audience`` says
    which one it named.

    ``public_keys`` is a sequence of key objects or PEM blocks, or a mapping ``kid -> key``. With
    a mapping, a token's ``kid`` header must name one of them. With a sequence, each key's ``kid``
    is its RFC 7638 thumbprint; a token whose ``kid`` matches none is tried against every key
    (identity providers name keys their own way), and must still verify with one of them.

    ``key_source`` adds the keys of an identity provider's JWKS (``crossway.security.jwks``),
    looked up by ``kid`` without waiting on the network: until it has fetched a set, tokens
    that no configured file verifies are refused; a ``kid`` it does not hold asks it to fetch
    again and is refused meanwhile. ``public_keys`` may then be empty.
    """

    __slots__ = (
        "_algorithms",
        "_audience",
        "_by_kid",
        "_clock",
        "_issuer",
        "_keys",
        "_kids_strict",
        "_leeway",
        "_pyjwt",
        "_source",
    )

    def __init__(
        self,
        *,
        issuer: str,
        audience: str | Sequence[str],
        public_keys: Sequence[PublicKey | bytes | str] | Mapping[str, PublicKey | bytes | str],
        algorithms: Sequence[str] = ("ES256", "EdDSA"),
        leeway_s: int = 30,
        clock: Clock | None = None,
        key_source: TokenKeySource | None = None,
    ) -> None:
        audiences = (audience,) if isinstance(audience, str) else tuple(audience)
        if not issuer or not audiences or not all(audiences):
            raise ConfigError("token verifier needs a non-empty issuer and audience")
        bad = [a for a in algorithms if a not in _KEY_TYPES]
        if bad or not algorithms:
            raise ConfigError(
                f"token algorithms {bad or '(none)'} are not allowed",
                hint=f"choose from {', '.join(sorted(_KEY_TYPES))}; 'none' and HS* are never accepted",
            )
        if leeway_s < 0:
            raise ConfigError("token leeway must not be negative")
        keys: list[tuple[str, PublicKey]] = []
        if isinstance(public_keys, Mapping):
            for kid, entry in public_keys.items():
                keys.append((kid, _load_key(entry, f"token key {kid!r}")))
        else:
            for n, entry in enumerate(public_keys):
                key = _load_key(entry, f"token key #{n + 1}")
                keys.append((jwk_thumbprint(key), key))
        if not keys and key_source is None:
            raise ConfigError("token verifier has no public keys", hint="configure the issuer's public key(s)")
        self._source = key_source
        self._issuer = issuer
        self._audience = audiences
        self._algorithms = frozenset(algorithms)
        self._leeway = leeway_s
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._keys = tuple(keys)
        self._by_kid: dict[str, tuple[PublicKey, ...]] = {}
        for kid, key in keys:
            self._by_kid[kid] = (*self._by_kid.get(kid, ()), key)
        self._kids_strict = isinstance(public_keys, Mapping)
        self._pyjwt = jwt.PyJWT(options=_PYJWT_OPTIONS)  # type: ignore[arg-type]

    def verify(self, token: str) -> TokenClaims:
        """Verify ``token``; return its claims or raise :class:`TokenInvalid` with the reason."""
        # 1. It must parse as a JWS compact serialization with a readable header.
        if not isinstance(token, str) or token.count(".") != 2:
            raise TokenInvalid("bearer token is malformed (expected three dot-separated parts)")
        header = _read_header(token)
        # 2. Algorithm allow-list, before any key is touched (RFC 8725 §3.1).
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise TokenInvalid(
                f"token algorithm {alg!r} is not allowed (allowed: {', '.join(sorted(self._algorithms))})"
            )
        # 3. Candidate keys: by kid when it names one, and only keys of the algorithm's type.
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenInvalid("token header 'kid' is not a string")
        if kid is not None and kid in self._by_kid:
            candidates: Sequence[PublicKey] = self._by_kid[kid]
        elif self._source is not None:
            candidates = self._fetched_candidates(kid)
        elif kid is not None and self._kids_strict:
            raise TokenInvalid(f"token key id {kid!r} is not one of the configured keys")
        else:
            candidates = [key for _, key in self._keys]
        candidates = [key for key in candidates if _key_fits(key, alg)]
        if not candidates:
            raise TokenInvalid(f"no configured key can verify {alg} tokens" + (f" (kid {kid!r})" if kid else ""))
        # 4. Signature with one of the candidates, then presence of required claims, iss, aud, sub.
        payload = self._decode(token, alg, candidates, kid)
        # 5. Time: exp (required), nbf and iat (when present), with leeway, against our clock.
        self._check_times(payload)
        return TokenClaims(
            subject=payload["sub"],
            issuer=payload["iss"],
            audience=self._matched_audience(payload["aud"]),
            expires_at_s=int(payload["exp"]),
            claims=MappingProxyType(dict(payload)),
        )

    @property
    def key_generation(self) -> int:
        """Changes when the keys change (a JWKS rotation): caches of verified tokens start over."""
        return self._source.generation if self._source is not None else 0

    def _fetched_candidates(self, kid: str | None) -> Sequence[PublicKey]:
        """Step 3 with a key source: the fetched key ``kid`` names, else fail closed or try all."""
        source = self._source
        assert source is not None
        fetched = source.keys()
        if kid is not None and kid in fetched:
            return (fetched[kid],)
        if not source.ready and not self._keys:
            raise TokenInvalid(
                "the identity provider's keys (JWKS) have not been fetched yet",
                hint="retry shortly; the gateway's log says why its JWKS URL does not answer",
            )
        if kid is not None:
            source.request_refresh()
            if not self._keys:
                raise TokenInvalid(
                    f"token key id {kid!r} is not in the identity provider's key set; the set is being fetched again",
                    hint="retry in a few seconds; a key the identity provider no longer publishes stays refused",
                )
        # No kid (or one only a configured file may hold): every key, as for configured files.
        return [*(key for _, key in self._keys), *fetched.values()]

    def _decode(self, token: str, alg: str, candidates: Sequence[PublicKey], kid: str | None) -> dict[str, Any]:
        for key in candidates:
            try:
                payload: dict[str, Any] = self._pyjwt.decode(
                    token, key, algorithms=[alg], issuer=self._issuer, audience=list(self._audience)
                )
            except jwt.InvalidSignatureError:
                continue  # try the next configured key
            except jwt.MissingRequiredClaimError as exc:
                raise TokenInvalid(f"token is missing the required claim {exc.claim!r}") from exc
            except jwt.InvalidIssuerError as exc:
                raise TokenInvalid(f"token issuer is not the expected {self._issuer!r}") from exc
            except jwt.InvalidAudienceError as exc:
                wanted = " or ".join(repr(a) for a in self._audience)
                raise TokenInvalid(f"token audience does not include {wanted}") from exc
            except jwt.exceptions.InvalidSubjectError as exc:
                raise TokenInvalid("token subject ('sub') is not a string") from exc
            except jwt.DecodeError as exc:
                raise TokenInvalid("bearer token is malformed (undecodable payload or signature)") from exc
            except Exception as exc:  # fail closed on anything unexpected from the library
                raise TokenInvalid(f"token could not be verified ({type(exc).__name__})") from exc
            if not payload.get("sub"):
                raise TokenInvalid("token subject ('sub') is empty")
            return payload
        which = f"key {kid!r}" if kid in self._by_kid else f"any of the {len(candidates)} configured {alg} key(s)"
        raise TokenInvalid(f"token signature does not verify with {which}")

    def _matched_audience(self, aud: object) -> str:
        named = {aud} if isinstance(aud, str) else set(aud) if isinstance(aud, list) else set()
        # pyjwt already checked that one of ours is named; the first of ours that is wins.
        return next((a for a in self._audience if a in named), self._audience[0])

    def _check_times(self, payload: Mapping[str, Any]) -> None:
        now_s = self._clock.now_ms() // 1000
        exp = _int_claim(payload, "exp")
        assert exp is not None  # presence checked by pyjwt's "require"
        if exp <= now_s - self._leeway:
            raise TokenInvalid(f"token expired at {_utc(exp)} ({now_s - exp} s ago, leeway {self._leeway} s)")
        nbf = _int_claim(payload, "nbf")
        if nbf is not None and nbf > now_s + self._leeway:
            raise TokenInvalid(f"token is not valid before {_utc(nbf)}")
        iat = _int_claim(payload, "iat")
        if iat is not None and iat > now_s + self._leeway:
            raise TokenInvalid(f"token was issued in the future ({_utc(iat)}); check the issuer's clock")


def mint_token(
    private_key: PrivateSigningKey,
    *,
    subject: str,
    issuer: str,
    audience: str | list[str],
    ttl_s: int = 300,
    algorithm: str | None = None,
    extra: Mapping[str, object] | None = None,
    kid: str | None = None,
    now_s: int | None = None,
) -> str:
    """Sign a bearer token (for the demo, tests and agency tooling).

    ``audience`` may be a list (RFC 7519 §4.1.3): one token for several APIs, e.g. a console
    user's token for the gateways' admin ports and the audit API. ``algorithm`` defaults to the
    key's own (ES256 for P-256, EdDSA for Ed25519). ``extra`` claims
    may not override the registered ones set here. A random ``jti`` is added.
    """
    alg = algorithm if algorithm is not None else algorithm_for_key(private_key)
    now = now_s if now_s is not None else int(datetime.now(tz=UTC).timestamp())
    registered: dict[str, object] = {
        "sub": subject,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + ttl_s,
        "jti": uuid.uuid4().hex,
    }
    clash = sorted(set(extra or {}) & set(registered))
    if clash:
        raise ConfigError(f"extra claims may not override {', '.join(clash)}")
    payload = {**(extra or {}), **registered}
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(payload, private_key, algorithm=alg, headers=headers)
