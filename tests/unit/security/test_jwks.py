"""Token keys from a JWK Set: fail closed until fetched, refreshed on an unknown kid, rotated (issue 17).

No network: the JWKS "server" is an httpx.MockTransport answering from a dict the test changes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import jwt
import pytest

from crossway.core.errors import ConfigError, TokenInvalid
from crossway.security.jwks import JwksKeySource, StaticKeySource, parse_jwks
from crossway.security.keys import generate_signing_key
from crossway.security.tokens import JwtVerifier, mint_token

ISSUER, AUDIENCE = "https://idp.example", "crossway:gw1"


def _jwk(key: Any, kid: str, **extra: str) -> dict[str, Any]:
    algorithm = jwt.algorithms.ECAlgorithm if hasattr(key, "curve") else jwt.algorithms.OKPAlgorithm
    return {**json.loads(algorithm.to_jwk(key.public_key())), "kid": kid, **extra}


def _token(key: Any, kid: str | None) -> str:
    return mint_token(key, subject="EE/GOV/70000001/tax", issuer=ISSUER, audience=AUDIENCE, kid=kid)


class Idp:
    """A JWKS endpoint in memory: what it publishes, and how often it was asked."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        self.down = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        if self.down:
            return httpx.Response(503)
        return httpx.Response(200, json={"keys": self.keys})


def _verifier(source: Any) -> JwtVerifier:
    return JwtVerifier(issuer=ISSUER, audience=AUDIENCE, public_keys=[], key_source=source)


async def _source(idp: Idp, **kw: Any) -> JwksKeySource:
    source = JwksKeySource("https://idp.example/jwks", transport=httpx.MockTransport(idp.handle), **kw)
    await source.start()
    return source


async def test_until_a_key_set_is_fetched_every_token_is_refused() -> None:
    idp, key = Idp(), generate_signing_key("ES256")
    idp.down = True
    source = await _source(idp, refresh_s=300)
    try:
        with pytest.raises(TokenInvalid, match="not been fetched yet"):
            _verifier(source).verify(_token(key, "k1"))
    finally:
        await source.aclose()


async def test_a_new_key_is_fetched_at_once_when_a_token_names_it_and_then_verifies() -> None:
    idp, old, new = Idp(), generate_signing_key("ES256"), generate_signing_key("EdDSA")
    idp.keys = [_jwk(old, "old")]
    source = await _source(idp, refresh_s=300, min_interval_s=0.05)
    verifier = _verifier(source)
    try:
        assert verifier.verify(_token(old, "old")).subject == "EE/GOV/70000001/tax"
        idp.keys.append(_jwk(new, "new"))
        with pytest.raises(TokenInvalid, match="being fetched again"):
            verifier.verify(_token(new, "new"))  # refused now, never waiting on the network
        for _ in range(50):
            if "new" in dict(source.keys()):
                break
            await asyncio.sleep(0.02)
        assert verifier.verify(_token(new, "new")).subject == "EE/GOV/70000001/tax"
        assert idp.fetches == 2  # the start, and the one the unknown kid asked for (not the 300 s timer)
    finally:
        await source.aclose()


async def test_unknown_kids_cannot_make_the_gateway_hammer_the_identity_provider() -> None:
    idp, key = Idp(), generate_signing_key("ES256")
    idp.keys = [_jwk(key, "k1")]
    source = await _source(idp, refresh_s=300, min_interval_s=60)
    verifier = _verifier(source)
    try:
        for n in range(100):
            with pytest.raises(TokenInvalid):
                verifier.verify(_token(key, f"made-up-{n}"))
        await asyncio.sleep(0.1)
        assert idp.fetches == 1
    finally:
        await source.aclose()


async def test_a_dropped_key_stops_verifying_and_an_outage_keeps_the_last_good_set() -> None:
    idp, first, second = Idp(), generate_signing_key("ES256"), generate_signing_key("ES256")
    idp.keys = [_jwk(first, "a"), _jwk(second, "b")]
    source = await _source(idp, refresh_s=300)
    verifier = _verifier(source)
    try:
        generation = verifier.key_generation
        idp.down = True
        assert not await source.refresh()
        assert verifier.verify(_token(first, "a"))  # the provider is down: the last good set holds
        idp.down, idp.keys = False, [_jwk(second, "b")]
        assert await source.refresh()
        assert verifier.key_generation != generation
        with pytest.raises(TokenInvalid):
            verifier.verify(_token(first, "a"))
        assert verifier.verify(_token(second, "b"))
    finally:
        await source.aclose()


def test_shared_secrets_and_encryption_keys_in_a_jwk_set_are_ignored() -> None:
    signing = generate_signing_key("ES256")
    document = {
        "keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {**_jwk(signing, "enc"), "use": "enc"},
            _jwk(signing, "sig"),
        ]
    }
    assert set(parse_jwks(document)) == {"sig"}
    with pytest.raises(ValueError, match="no usable signing key"):
        parse_jwks({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})


def test_a_jwks_url_must_be_https_except_on_loopback() -> None:
    with pytest.raises(ConfigError, match="https"):
        JwksKeySource("http://idp.example/jwks")
    JwksKeySource("http://127.0.0.1:8080/jwks")
    JwksKeySource("https://idp.example/jwks")


def test_a_verifier_with_files_and_a_source_tries_its_files_while_the_set_is_not_ready() -> None:
    pem, key = generate_signing_key("ES256"), generate_signing_key("ES256")
    verifier = JwtVerifier(
        issuer=ISSUER, audience=AUDIENCE, public_keys=[pem.public_key()], key_source=StaticKeySource()
    )
    assert verifier.verify(_token(pem, None))
    with pytest.raises(TokenInvalid):
        verifier.verify(_token(key, "k"))
