"""Caller tokens verified with keys from the identity provider's JWKS, across a rotation (issue 17).

The tax gateway's [client_auth.jwt] names a JWKS over HTTPS (its own CA in jwks_ca) instead of PEM
files. The provider adds a key, then drops the old one; the gateway follows both ways without a
restart: a token of the new key works once the JWKS serves it, a token of the old key stops
working once it is gone — also one the gateway had verified and cached before.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
import pytest_asyncio

from crossway.demo.federation import Federation
from crossway.security.keys import generate_signing_key
from crossway.security.tokens import mint_token
from protos.demo.population.v1 import population_pb2 as pb
from protos.demo.population.v1 import population_pb2_grpc as pb_grpc
from tests.integration.jwks_server import JwksServer, jwk_of

pytestmark = pytest.mark.asyncio(loop_scope="module")

OLD, NEW = generate_signing_key("ES256"), generate_signing_key("EdDSA")


@pytest.fixture(scope="module")
def jwks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JwksServer]:
    with JwksServer(tmp_path_factory.mktemp("idp")) as server:
        server.publish(jwk_of(OLD, "old"))
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def federation(tmp_path_factory: pytest.TempPathFactory, jwks: JwksServer) -> AsyncIterator[Federation]:
    async with Federation(tmp_path_factory.mktemp("jwks")) as fed:
        assert fed.tax.config_path is not None
        text = fed.tax.config_path.read_text()
        assert 'public_keys = ["idp.pub"]' in text
        fed.tax.config_path.write_text(
            text.replace(
                'public_keys = ["idp.pub"]',
                f'jwks_url = "{jwks.url}"\njwks_ca = "{jwks.ca_file}"\njwks_refresh_s = 1',
            )
        )
        await fed.restart_gateway(fed.tax)
        yield fed


def _token(fed: Federation, key: Any, kid: str) -> str:
    return mint_token(
        key,
        subject="EE/GOV/70000001/tax",
        issuer="https://idp.tax.example",
        audience=f"crossway:{fed.tax.gateway}",
        kid=kid,
    )


async def _call(fed: Federation, token: str) -> str:
    """ "ok", or the crossway-error code of the refusal."""
    async with fed.channel() as channel:
        try:
            await pb_grpc.PersonRegistryStub(channel).GetPerson(
                pb.GetPersonRequest(national_id="38001010001"),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=10,
            )
        except grpc.aio.AioRpcError as exc:
            return str(dict(exc.trailing_metadata() or ()).get("crossway-error", exc.code().name))
    return "ok"


async def _eventually(fed: Federation, token: str, outcome: str, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (got := await _call(fed, token)) != outcome:
        assert asyncio.get_running_loop().time() < deadline, f"still {got!r}, not {outcome!r}"
        await asyncio.sleep(0.3)


async def test_a_key_rotation_at_the_identity_provider_is_followed_both_ways(
    federation: Federation, jwks: JwksServer
) -> None:
    old_token = _token(federation, OLD, "old")
    assert await _call(federation, old_token) == "ok"
    new_token = _token(federation, NEW, "new")
    # 1. Signed with a key the JWKS does not serve yet: refused, without waiting on the network.
    assert await _call(federation, new_token) == "client.token_invalid"
    # 2. The provider publishes it: it works (no restart).
    jwks.publish(jwk_of(OLD, "old"), jwk_of(NEW, "new"))
    await _eventually(federation, new_token, "ok")
    assert await _call(federation, old_token) == "ok"
    # 3. The provider drops the old key: its tokens stop working, the cached one included.
    jwks.publish(jwk_of(NEW, "new"))
    await _eventually(federation, old_token, "client.token_invalid")
    assert await _call(federation, _token(federation, OLD, "old")) == "client.token_invalid"
    assert await _call(federation, new_token) == "ok"
