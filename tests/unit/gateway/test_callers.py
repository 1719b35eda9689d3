"""Who is calling: a pinned client certificate or a bearer JWT, and only registered subsystems of our member."""

from __future__ import annotations

from typing import Any

import pytest
from gateway_samples import PROVIDER, TAX

from crossway.core.clock import ManualClock
from crossway.core.errors import ClientUnknown, TokenInvalid, Unauthenticated
from crossway.core.ids import SubsystemId
from crossway.security.keys import generate_signing_key, generate_tls_key
from crossway.security.pki import cert_to_pem, create_ca
from crossway.security.tokens import JwtVerifier, TokenClaims, mint_token
from gateway.client.callers import Caller, CallerAuthenticator, pem_sha256

MEMBER = TAX.member
ANALYTICS = SubsystemId.parse("EE/GOV/70000002/analytics")  # our member's, but not in the registry
ISSUER, AUDIENCE = "https://idp.tax.example", "crossway:EE/GOV/70000002/gw1"
NOW_S = 1_700_000_000


class CountingVerifier:
    """Wraps the real verifier to count how often a token is actually verified."""

    def __init__(self, inner: JwtVerifier) -> None:
        self.inner = inner
        self.calls = 0

    def verify(self, token: str) -> TokenClaims:
        self.calls += 1
        return self.inner.verify(token)

    @property
    def key_generation(self) -> int:
        return self.inner.key_generation


@pytest.fixture(scope="module")
def idp_key() -> Any:
    return generate_signing_key()


@pytest.fixture
def verifier(idp_key: Any) -> CountingVerifier:
    clock = ManualClock(NOW_S * 1000)
    return CountingVerifier(
        JwtVerifier(issuer=ISSUER, audience=AUDIENCE, public_keys=[idp_key.public_key()], clock=clock)
    )


def _pem() -> bytes:
    # Any certificate will do: a client certificate is pinned by its fingerprint, not by its issuer.
    return cert_to_pem(create_ca("EE", generate_tls_key()))


def _token(key: Any, subject: str = str(TAX), **kwargs: Any) -> str:
    return mint_token(key, subject=subject, issuer=ISSUER, audience=AUDIENCE, now_s=NOW_S, **kwargs)


def _authenticator(
    pinned: dict[str, SubsystemId] | None = None, jwt: Any = None, registered: frozenset[SubsystemId] = frozenset({TAX})
) -> CallerAuthenticator:
    return CallerAuthenticator(MEMBER, pinned or {}, jwt, registered.__contains__, lambda: float(NOW_S))


def test_a_pinned_certificate_identifies_its_subsystem() -> None:
    pem = _pem()
    auth = _authenticator({pem_sha256(pem): TAX})
    assert auth.authenticate(pem, None) == Caller(TAX, "certificate")


def test_a_certificate_wins_over_a_token_when_both_are_presented(idp_key: Any, verifier: CountingVerifier) -> None:
    pem = _pem()
    auth = _authenticator({pem_sha256(pem): TAX}, verifier)
    assert auth.authenticate(pem, f"Bearer {_token(idp_key)}").via == "certificate"
    assert verifier.calls == 0


def test_an_unpinned_certificate_is_client_unknown() -> None:
    pinned = _pem()
    auth = _authenticator({pem_sha256(pinned): TAX})
    with pytest.raises(ClientUnknown, match="is not registered with this gateway"):
        auth.authenticate(_pem(), None)


def test_a_valid_bearer_token_identifies_its_subject(idp_key: Any, verifier: CountingVerifier) -> None:
    auth = _authenticator(jwt=verifier)
    assert auth.authenticate(None, f"Bearer {_token(idp_key)}") == Caller(TAX, "jwt")


def test_a_second_call_with_the_same_token_is_served_from_the_cache(idp_key: Any, verifier: CountingVerifier) -> None:
    auth = _authenticator(jwt=verifier)
    token = _token(idp_key)
    first = auth.authenticate(None, f"Bearer {token}")
    second = auth.authenticate(None, f"bearer {token}")  # the scheme is case-insensitive
    assert first == second == Caller(TAX, "jwt")
    assert verifier.calls == 1
    auth.authenticate(None, f"Bearer {_token(idp_key)}")  # another token is verified on its own
    assert verifier.calls == 2


def test_a_cached_token_is_verified_again_once_it_has_expired(idp_key: Any) -> None:
    now = [float(NOW_S)]
    counting = CountingVerifier(
        JwtVerifier(
            issuer=ISSUER, audience=AUDIENCE, public_keys=[idp_key.public_key()], clock=ManualClock(NOW_S * 1000)
        )
    )
    auth = CallerAuthenticator(MEMBER, {}, counting, {TAX}.__contains__, lambda: now[0])  # type: ignore[arg-type]
    token = _token(idp_key, ttl_s=60)
    auth.authenticate(None, f"Bearer {token}")
    now[0] = NOW_S + 61.0
    auth.authenticate(None, f"Bearer {token}")  # the verifier's own clock still accepts it
    assert counting.calls == 2


@pytest.mark.parametrize(
    "authorization",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token abc.def.ghi", ""],
)
def test_an_authorization_that_is_not_a_bearer_token_is_token_invalid(
    authorization: str, verifier: CountingVerifier
) -> None:
    with pytest.raises(TokenInvalid, match="not `Bearer <token>`"):
        _authenticator(jwt=verifier).authenticate(None, authorization)
    assert verifier.calls == 0


def test_a_token_signed_by_another_key_is_token_invalid(verifier: CountingVerifier) -> None:
    with pytest.raises(TokenInvalid, match="signature does not verify"):
        _authenticator(jwt=verifier).authenticate(None, f"Bearer {_token(generate_signing_key())}")


def test_a_garbage_token_is_token_invalid(verifier: CountingVerifier) -> None:
    with pytest.raises(TokenInvalid):
        _authenticator(jwt=verifier).authenticate(None, "Bearer not-a-jwt")


def test_a_rejected_token_is_not_cached(verifier: CountingVerifier) -> None:
    auth = _authenticator(jwt=verifier)
    bad = f"Bearer {_token(generate_signing_key())}"
    for _ in range(2):
        with pytest.raises(TokenInvalid):
            auth.authenticate(None, bad)
    assert verifier.calls == 2


def test_a_token_whose_subject_is_not_a_subsystem_id_is_token_invalid(idp_key: Any, verifier: CountingVerifier) -> None:
    with pytest.raises(TokenInvalid, match="token subject is not a subsystem id"):
        _authenticator(jwt=verifier).authenticate(None, f"Bearer {_token(idp_key, subject='alice@tax.example')}")


def test_a_token_on_a_gateway_without_a_verifier_is_token_invalid(idp_key: Any) -> None:
    with pytest.raises(TokenInvalid, match="accepts no bearer tokens"):
        _authenticator().authenticate(None, f"Bearer {_token(idp_key)}")


def test_a_subsystem_of_another_member_is_client_unknown(idp_key: Any, verifier: CountingVerifier) -> None:
    other = PROVIDER.subsystem("population")
    with pytest.raises(ClientUnknown, match="belongs to another member"):
        _authenticator(jwt=verifier, registered=frozenset({TAX, other})).authenticate(
            None, f"Bearer {_token(idp_key, subject=str(other))}"
        )


def test_a_pinned_certificate_of_another_members_subsystem_is_client_unknown() -> None:
    pem = _pem()
    other = PROVIDER.subsystem("population")
    with pytest.raises(ClientUnknown, match="belongs to another member"):
        _authenticator({pem_sha256(pem): other}).authenticate(pem, None)


def test_an_unregistered_subsystem_of_our_member_is_client_unknown(idp_key: Any, verifier: CountingVerifier) -> None:
    with pytest.raises(ClientUnknown, match=f"subsystem {ANALYTICS} is not registered"):
        _authenticator(jwt=verifier).authenticate(None, f"Bearer {_token(idp_key, subject=str(ANALYTICS))}")


def test_a_pinned_certificate_of_an_unregistered_subsystem_is_client_unknown() -> None:
    pem = _pem()
    with pytest.raises(ClientUnknown, match="is not registered in the registry"):
        _authenticator({pem_sha256(pem): ANALYTICS}).authenticate(pem, None)


def test_a_call_with_neither_credential_is_unauthenticated(verifier: CountingVerifier) -> None:
    with pytest.raises(Unauthenticated, match="neither a client certificate nor a bearer token"):
        _authenticator(jwt=verifier).authenticate(None, None)
