"""End-user tokens: verified against the client member's registered keys, or refused — never ignored."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import serialization
from gateway_samples import CLIENT, PROVIDER, SERVICE, TAX

from crossway.core.clock import ManualClock
from crossway.core.errors import UserTokenInvalid
from crossway.security.keys import generate_signing_key
from crossway.security.tokens import mint_token
from gateway.provider.endusers import EndUserVerifier
from registry import RegistryAuthority, VerifiedConfiguration

Configure = Callable[[], VerifiedConfiguration]
KEY = generate_signing_key("ES256")


def _pem(key: object) -> bytes:
    return key.public_key().public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _token(clock: ManualClock, **kw: object) -> str:
    args: dict[str, object] = {
        "subject": "EE38001010000",
        "issuer": str(CLIENT),
        "audience": str(SERVICE),
        "now_s": clock.now_ms() // 1000,
        "extra": {"role": "officer", "loa": 3, "admin": False, "groups": ["a"], "score": 1.5},
    } | kw
    return mint_token(kw.pop("key", KEY), **{k: v for k, v in args.items() if k != "key"})  # type: ignore[arg-type]


@pytest.fixture
def config(authority: RegistryAuthority, configure: Configure) -> VerifiedConfiguration:
    authority.add_user_token_key(CLIENT, _pem(KEY))
    return configure()


def test_no_token_keeps_the_bare_user_id_without_claims(config: VerifiedConfiguration, clock: ManualClock) -> None:
    user = EndUserVerifier(clock).end_user(config, TAX, SERVICE, "EE1", "")
    assert (user.user_id, dict(user.claims), user.verified) == ("EE1", {}, False)


def test_a_valid_token_gives_its_subject_and_scalar_claims_for_policy(
    config: VerifiedConfiguration, clock: ManualClock
) -> None:
    user = EndUserVerifier(clock).end_user(config, TAX, SERVICE, "", _token(clock))
    assert user.user_id == "EE38001010000" and user.verified
    # iss stays; time-, token- and audience-bound claims and non-scalars do not reach policy.
    assert dict(user.claims) == {"role": "officer", "loa": 3, "admin": False, "iss": str(CLIENT)}
    for audience in (str(SERVICE.subsystem), str(PROVIDER)):
        assert EndUserVerifier(clock).end_user(config, TAX, SERVICE, "", _token(clock, audience=audience)).verified


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"key": generate_signing_key("ES256")}, "signature does not verify"),
        ({"issuer": "https://elsewhere"}, "issuer"),
        ({"audience": "EE/GOV/70000009"}, "audience"),
        ({"ttl_s": -120}, "expired"),
    ],
)
def test_an_unverifiable_token_is_refused_with_its_reason(
    config: VerifiedConfiguration, clock: ManualClock, change: dict[str, object], reason: str
) -> None:
    token = _token(clock, **change)
    with pytest.raises(UserTokenInvalid, match=reason) as info:
        EndUserVerifier(clock).end_user(config, TAX, SERVICE, "", token)
    assert info.value.code == "policy.user_token_invalid" and token not in str(info.value)


def test_a_user_id_other_than_the_subject_is_refused(config: VerifiedConfiguration, clock: ManualClock) -> None:
    with pytest.raises(UserTokenInvalid, match="another user"):
        EndUserVerifier(clock).end_user(config, TAX, SERVICE, "EE2", _token(clock))
    assert EndUserVerifier(clock).end_user(config, TAX, SERVICE, "EE38001010000", _token(clock)).verified


def test_a_member_without_registered_keys_cannot_vouch_for_anyone(configure: Configure, clock: ManualClock) -> None:
    with pytest.raises(UserTokenInvalid, match="registered no user-token key"):
        EndUserVerifier(clock).end_user(configure(), TAX, SERVICE, "", _token(clock))


def test_the_registered_issuer_replaces_the_member_id(
    authority: RegistryAuthority, config: VerifiedConfiguration, configure: Configure, clock: ManualClock
) -> None:
    authority.set_user_token_issuer(CLIENT, "https://idp.tax.example")
    token = _token(clock, issuer="https://idp.tax.example")
    assert EndUserVerifier(clock).end_user(configure(), TAX, SERVICE, "", token).verified
    with pytest.raises(UserTokenInvalid):
        EndUserVerifier(clock).end_user(configure(), TAX, SERVICE, "", _token(clock))
