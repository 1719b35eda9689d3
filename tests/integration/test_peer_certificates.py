"""A provider gateway whose TLS certificate does not name the address the registry lists for it.

Real TLS on loopback: a stand-in provider presents a certificate issued by the registry's CA to
its gateway, naming only ``provider.example``, while the client gateway dials 127.0.0.1 — the
case of a gateway provisioned with the default ``localhost`` and registered under another name.
The client gateway must say that the certificate does not name the host (``peer.untrusted``),
not that the provider is unreachable and to retry later.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest

from crossway.core.errors import CrosswayError
from crossway.core.ids import GatewayId
from crossway.security.keys import generate_signing_key, generate_tls_key
from crossway.security.pki import CertKind, build_csr, cert_to_pem, create_ca, gateway_uri, issue_certificate
from gateway.wire.channels import GrpcPeerLink, PeerChannels
from gateway.wire.frames import Envelope
from gateway.wire.link import PeerTarget
from tests.integration.peer_client import pem_key

PROVIDER = GatewayId.parse("EE/GOV/70000002/gw1")
CLIENT = GatewayId.parse("EE/GOV/70000001/gw1")


class _Authority:
    def __init__(self) -> None:
        self.key = generate_signing_key("ES256")
        self.ca = create_ca("EE", self.key)

    @property
    def pem(self) -> bytes:
        return cert_to_pem(self.ca)

    def tls(self, gateway: GatewayId, *, dns: tuple[str, ...] = (), ips: tuple[str, ...] = ()) -> tuple[bytes, bytes]:
        key = generate_tls_key()
        uri = gateway_uri(gateway)
        csr = build_csr(key, subject_uri=uri, dns_names=dns, ip_addresses=ips)
        return pem_key(key), cert_to_pem(issue_certificate(self.ca, self.key, csr, kind=CertKind.TLS, uri=uri, days=1))


@asynccontextmanager
async def _provider(authority: _Authority, key_and_cert: tuple[bytes, bytes]) -> AsyncIterator[int]:
    async def call(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        return request

    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(call)
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("crossway.v1.PeerExchange", {"Call": handler})]
    )
    credentials = grpc.ssl_server_credentials([key_and_cert], root_certificates=authority.pem, require_client_auth=True)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        yield port
    finally:
        await server.stop(None)


async def _exchange(authority: _Authority, port: int) -> None:
    key, cert = authority.tls(CLIENT, ips=("127.0.0.1",))
    link = GrpcPeerLink(PeerChannels(key, cert, multiplex=False))
    target = PeerTarget(f"127.0.0.1:{port}", str(PROVIDER), str(PROVIDER.member), authority.pem)
    try:
        await link.exchange(target, Envelope(b"h", b"b", "ES256", "k", b"s"), timeout=5)
    finally:
        await link.aclose()


async def test_a_provider_certificate_without_the_registered_host_is_reported_as_untrusted_naming_the_host() -> None:
    authority = _Authority()
    async with _provider(authority, authority.tls(PROVIDER, dns=("provider.example",))) as port:
        with pytest.raises(CrosswayError) as refused:
            await _exchange(authority, port)
    error = refused.value
    assert error.code == "peer.untrusted"
    assert f"{PROVIDER.member}'s gateway at 127.0.0.1:{port}" in error.message
    assert "does not name 127.0.0.1, the address the registry lists for it" in error.message
    assert "crossway gateway init --host 127.0.0.1" in error.hint


async def test_the_same_provider_with_the_host_in_its_certificate_is_reached() -> None:
    # The control: everything equal but the name, so the refusal above is about the name alone.
    authority = _Authority()
    async with _provider(authority, authority.tls(PROVIDER, dns=("provider.example",), ips=("127.0.0.1",))) as port:
        await _exchange(authority, port)  # the stand-in echoes; no error is the point
