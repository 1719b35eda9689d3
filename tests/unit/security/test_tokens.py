from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from crossway.core.clock import ManualClock
from crossway.core.errors import ConfigError, TokenInvalid
from crossway.security.tokens import JwtVerifier, TokenClaims, jwk_thumbprint, mint_token

ISS = "https://idp.agency-a.example"
AUD = "crossway:EE/GOV/70000001/gw1"
SUB = "EE/GOV/70000001/tax"
NOW_S = 1_700_000_000


@pytest.fixture
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW_S * 1000)


def _verifier(
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey, clock: ManualClock, **kw: Any
) -> JwtVerifier:
    return JwtVerifier(issuer=ISS, audience=AUD, public_keys=[key.public_key()], clock=clock, **kw)


def _mint(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey, **kw: Any) -> str:
    args: dict[str, Any] = {"subject": SUB, "issuer": ISS, "audience": AUD, "now_s": NOW_S} | kw
    return mint_token(key, **args)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("kind", ["ES256", "EdDSA"])
def test_a_valid_token_is_accepted_with_its_claims(kind: str, clock: ManualClock) -> None:
    key = ec.generate_private_key(ec.SECP256R1()) if kind == "ES256" else ed25519.Ed25519PrivateKey.generate()
    token = _mint(key, extra={"purpose": "tax-audit"})
    assert jwt.get_unverified_header(token)["alg"] == kind
    claims = _verifier(key, clock).verify(token)
    assert isinstance(claims, TokenClaims)
    assert (claims.subject, claims.issuer, claims.audience, claims.expires_at_s) == (SUB, ISS, AUD, NOW_S + 300)
    assert claims.claims["purpose"] == "tax-audit"
    with pytest.raises(TypeError):
        claims.claims["sub"] = "someone else"  # type: ignore[index]


def test_a_pem_configured_key_verifies_too(ec_key: ec.EllipticCurvePrivateKey, clock: ManualClock) -> None:
    pem = ec_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    verifier = JwtVerifier(issuer=ISS, audience=AUD, public_keys=[pem], clock=clock)
    assert verifier.verify(_mint(ec_key)).subject == SUB


def test_an_expired_token_is_rejected_saying_when(ec_key: ec.EllipticCurvePrivateKey, clock: ManualClock) -> None:
    token = _mint(ec_key, ttl_s=60)
    clock.advance((60 + 30) * 1000)  # past exp plus the 30 s leeway
    with pytest.raises(TokenInvalid, match=r"token expired at 2023-11-14T22:14:20Z \(30 s ago"):
        _verifier(ec_key, clock).verify(token)


def test_a_token_within_the_leeway_is_still_accepted(ec_key: ec.EllipticCurvePrivateKey, clock: ManualClock) -> None:
    token = _mint(ec_key, ttl_s=60)
    clock.advance((60 + 29) * 1000)
    assert _verifier(ec_key, clock).verify(token).subject == SUB


def test_a_token_for_another_audience_is_rejected(ec_key: ec.EllipticCurvePrivateKey, clock: ManualClock) -> None:
    with pytest.raises(TokenInvalid, match="audience does not include"):
        _verifier(ec_key, clock).verify(_mint(ec_key, audience="crossway:someone-else"))


def test_a_token_from_another_issuer_is_rejected(ec_key: ec.EllipticCurvePrivateKey, clock: ManualClock) -> None:
    with pytest.raises(TokenInvalid, match="issuer is not the expected"):
        _verifier(ec_key, clock).verify(_mint(ec_key, issuer="https://evil.example"))


def test_an_unsigned_alg_none_token_is_rejected(ec_key: ec.EllipticCurvePrivateKey, clock: ManualClock) -> None:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(json.dumps({"sub": SUB, "iss": ISS, "aud": AUD, "exp": NOW_S + 300}).encode())
    with pytest.raises(TokenInvalid, match="algorithm 'none' is not allowed"):
        _verifier(ec_key, clock).verify(f"{header}.{payload}.")


def test_an_hs256_token_keyed_with_the_public_key_is_rejected(
    ec_key: ec.EllipticCurvePrivateKey, clock: ManualClock
) -> None:
    # The classic confusion: the attacker uses the verifier's public key bytes as the HMAC secret.
    pem = ec_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    payload = {"sub": SUB, "iss": ISS, "aud": AUD, "exp": NOW_S + 300}
    # pyjwt itself refuses to sign this, so the token is assembled by hand as an attacker would.
    signing_input = f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{_b64(json.dumps(payload).encode())}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{_b64(mac)}"
    with pytest.raises(TokenInvalid, match="algorithm 'HS256' is not allowed"):
        _verifier(ec_key, clock).verify(token)


def test_a_token_without_a_subject_is_rejected(ec_key: ec.EllipticCurvePrivateKey, clock: ManualClock) -> None:
    token = jwt.encode({"iss": ISS, "aud": AUD, "exp": NOW_S + 300}, ec_key, algorithm="ES256")
    with pytest.raises(TokenInvalid, match="missing the required claim 'sub'"):
        _verifier(ec_key, clock).verify(token)


def test_a_token_signed_by_an_unknown_key_is_rejected(ec_key: ec.EllipticCurvePrivateKey, clock: ManualClock) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(TokenInvalid, match="signature does not verify with any of the 1 configured ES256 key"):
        _verifier(ec_key, clock).verify(_mint(stranger))


def test_a_token_naming_an_unknown_kid_is_rejected_when_keys_have_ids(
    ec_key: ec.EllipticCurvePrivateKey, clock: ManualClock
) -> None:
    verifier = JwtVerifier(issuer=ISS, audience=AUD, public_keys={"idp-2024": ec_key.public_key()}, clock=clock)
    assert verifier.verify(_mint(ec_key, kid="idp-2024")).subject == SUB
    with pytest.raises(TokenInvalid, match="key id 'idp-2025' is not one of the configured keys"):
        verifier.verify(_mint(ec_key, kid="idp-2025"))


def test_the_kid_selects_the_key_by_its_thumbprint(ec_key: ec.EllipticCurvePrivateKey, clock: ManualClock) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    verifier = JwtVerifier(issuer=ISS, audience=AUD, public_keys=[other.public_key(), ec_key.public_key()], clock=clock)
    token = _mint(ec_key, kid=jwk_thumbprint(ec_key.public_key()))
    assert verifier.verify(token).subject == SUB


def test_an_eddsa_token_is_rejected_when_only_es256_is_allowed(clock: ManualClock) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(TokenInvalid, match="algorithm 'EdDSA' is not allowed"):
        _verifier(key, clock, algorithms=["ES256"]).verify(_mint(key))


def test_malformed_tokens_are_rejected(ec_key: ec.EllipticCurvePrivateKey, clock: ManualClock) -> None:
    verifier = _verifier(ec_key, clock)
    for junk in ["", "abc", "a.b.c", "!!!.???.###"]:
        with pytest.raises(TokenInvalid, match="malformed"):
            verifier.verify(junk)


def test_a_token_from_the_future_is_rejected(ec_key: ec.EllipticCurvePrivateKey, clock: ManualClock) -> None:
    with pytest.raises(TokenInvalid, match="issued in the future"):
        _verifier(ec_key, clock).verify(_mint(ec_key, now_s=NOW_S + 3600))


def test_error_messages_never_contain_the_token(ec_key: ec.EllipticCurvePrivateKey, clock: ManualClock) -> None:
    token = _mint(ec_key, audience="elsewhere")
    with pytest.raises(TokenInvalid) as info:
        _verifier(ec_key, clock).verify(token)
    assert token not in str(info.value) and token.split(".")[2] not in str(info.value)


def test_unsafe_verifier_configurations_are_refused(ec_key: ec.EllipticCurvePrivateKey) -> None:
    for algorithms in (["none"], ["HS256"], []):
        with pytest.raises(ConfigError):
            JwtVerifier(issuer=ISS, audience=AUD, public_keys=[ec_key.public_key()], algorithms=algorithms)
    with pytest.raises(ConfigError, match="no public keys"):
        JwtVerifier(issuer=ISS, audience=AUD, public_keys=[])
    with pytest.raises(ConfigError, match="not a PEM public key"):
        JwtVerifier(issuer=ISS, audience=AUD, public_keys=[b"shared-secret"])


def test_extra_claims_cannot_override_registered_ones(ec_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(ConfigError, match="sub"):
        mint_token(ec_key, subject=SUB, issuer=ISS, audience=AUD, extra={"sub": "EE/GOV/1/admin"})


def test_a_verifier_with_several_audiences_accepts_any_one_and_says_which(
    ec_key: ec.EllipticCurvePrivateKey, clock: ManualClock
) -> None:
    service, member = "EE/GOV/70000002/population/population.v1.PersonRegistry", "EE/GOV/70000002"
    verifier = JwtVerifier(issuer=ISS, audience=(service, member), public_keys=[ec_key.public_key()], clock=clock)
    assert verifier.verify(_mint(ec_key, audience=member)).audience == member
    assert verifier.verify(_mint(ec_key, audience=service)).audience == service
    with pytest.raises(TokenInvalid, match="audience does not include"):
        verifier.verify(_mint(ec_key, audience="EE/GOV/70000003"))
    with pytest.raises(ConfigError):
        JwtVerifier(issuer=ISS, audience=(), public_keys=[ec_key.public_key()])
