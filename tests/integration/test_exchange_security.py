"""The provider gateway refuses every forged, altered, replayed, stale or untrusted message.

A hand-driven peer (tests/integration/peer_client.py) holds the tax gateway's real keys, so each
test changes exactly one thing about an otherwise valid exchange — and the first test proves
that the unchanged exchange is accepted, so every refusal below means something.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace

import grpc
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from crossway.demo.federation import POPULATION_SERVICE, TAX_SUBSYSTEM, Federation
from crossway.security.keys import generate_signing_key, generate_tls_key
from crossway.security.pki import CertKind, build_csr, cert_to_pem, create_ca, gateway_uri, issue_certificate
from crossway.security.signing import Signer
from gateway.wire.chain import ChainWriter
from gateway.wire.codec import encode_envelope, seal_frame
from gateway.wire.frames import Envelope, FrameKind, Header
from protos.crossway.v1 import envelope_pb2 as pb
from protos.demo.population.v1 import population_pb2 as population
from tests.integration.peer_client import (
    STREAM,
    EncryptedExchange,
    PeerClient,
    outcome,
    pem_key,
    with_new_tls_certificate,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

GET_PERSON = population.GetPersonRequest(national_id="38001010001").SerializeToString()


def _peer(fed: Federation) -> PeerClient:
    return PeerClient.from_gateway_keys(
        fed.tax.directory / "keys", f"127.0.0.1:{fed.population.peer_port}", fed.ca_pem, str(fed.tax.member)
    )


def _provider_key(fed: Federation) -> bytes:
    return (fed.population.directory / "keys" / "encryption.pub").read_bytes()


async def _send(peer: PeerClient, env: pb.Envelope) -> str:
    try:
        return outcome(await peer.call(env))
    except grpc.aio.AioRpcError as exc:
        return outcome(exc)


def _request(fed: Federation, peer: PeerClient, method: str = "GetPerson", **fields: object) -> tuple[Header, bytes]:
    """A valid, encrypted GetPerson request header and body (the demo service requires encryption)."""
    header = peer.request_header(str(TAX_SUBSYSTEM), str(POPULATION_SERVICE), method, **fields)
    return EncryptedExchange(_provider_key(fed), header.message_id).opening(header, GET_PERSON)


async def test_an_unchanged_hand_made_request_is_accepted(federation: Federation) -> None:
    peer = _peer(federation)
    assert await _send(peer, peer.seal(*_request(federation, peer))) == "ok"


async def test_a_tampered_body_is_refused(federation: Federation) -> None:
    peer = _peer(federation)
    env = peer.seal(*_request(federation, peer))
    env.body = env.body[:-1] + bytes([env.body[-1] ^ 1])
    assert await _send(peer, env) == "message.tampered"


async def test_a_forged_signature_is_refused(federation: Federation) -> None:
    peer = _peer(federation)
    forger = Signer(generate_signing_key("ES256"), peer.signer.key_id)  # claims the member's real key id
    assert await _send(peer, peer.seal(*_request(federation, peer), forger)) == "message.signature_invalid"


async def test_a_replayed_message_id_is_refused(federation: Federation) -> None:
    peer = _peer(federation)
    env = peer.seal(*_request(federation, peer))
    assert await _send(peer, env) == "ok"
    assert await _send(peer, env) == "message.replayed"


async def test_an_expired_message_is_refused(federation: Federation) -> None:
    peer = _peer(federation)
    old = int(time.time() * 1000) - 10 * 60 * 1000
    assert await _send(peer, peer.seal(*_request(federation, peer, issued_at_ms=old))) == "message.expired"


async def test_a_request_whose_deadline_has_passed_is_refused(federation: Federation) -> None:
    peer = _peer(federation)
    past = int(time.time() * 1000) - 1000
    assert await _send(peer, peer.seal(*_request(federation, peer, deadline_ms=past))) == "message.expired"


async def test_a_request_for_a_client_of_another_member_is_refused(federation: Federation) -> None:
    peer = _peer(federation)
    header, body = _request(federation, peer)
    header = replace(header, client="EE/GOV/70000002/population")
    assert await _send(peer, peer.seal(header, body)) == "message.signature_invalid"


async def test_an_unencrypted_request_to_a_service_that_requires_encryption_is_refused(
    federation: Federation,
) -> None:
    peer = _peer(federation)
    header = peer.request_header(str(TAX_SUBSYSTEM), str(POPULATION_SERVICE), "GetPerson")
    assert await _send(peer, peer.seal(header, GET_PERSON)) == "message.malformed"


@pytest.mark.parametrize("damage", ["drop", "reorder", "inject"])
async def test_a_dropped_reordered_or_injected_stream_frame_is_detected(federation: Federation, damage: str) -> None:
    peer = _peer(federation)
    header = peer.request_header(str(TAX_SUBSYSTEM), str(POPULATION_SERVICE), "ImportPeople")
    crypto = EncryptedExchange(_provider_key(federation), header.message_id)
    opening_header, _ = crypto.opening(header)
    opening, request = seal_frame(opening_header, b"", peer.signer)
    writer = ChainWriter(
        peer.signer,
        Header(message_id=header.message_id, kind=FrameKind.STREAM_DATA, signer=peer.member),
        request.header_hash,
        1,
    )
    frames = []
    for seq in range(1, 4):
        body, enc = crypto.frame(population.Person(national_id=f"p{seq}").SerializeToString(), seq)
        frames.append(writer.data(body, encryption=enc)[0])
    end, _ = writer.seal(Header(message_id=header.message_id, kind=FrameKind.STREAM_END, signer=peer.member), b"")
    if damage == "drop":
        sent = [opening, frames[0], frames[2], end]
    elif damage == "reorder":
        sent = [opening, frames[1], frames[0], frames[2], end]
    else:  # a validly signed frame of another exchange
        other = peer.request_header(str(TAX_SUBSYSTEM), str(POPULATION_SERVICE), "ImportPeople")
        stranger = ChainWriter(
            peer.signer,
            Header(message_id=other.message_id, kind=FrameKind.STREAM_DATA, signer=peer.member),
            request.header_hash,
            2,
        )
        sent = [opening, frames[0], stranger.data(b"x")[0], frames[2], end]

    async def stream() -> AsyncIterator[Envelope]:
        for env in sent:
            yield env

    async with peer.channel() as channel:
        call = channel.stream_stream(
            STREAM, request_serializer=encode_envelope, response_deserializer=pb.Envelope.FromString
        )
        answers = [env async for env in call(stream(), timeout=10)]
    assert outcome(answers[-1]) == "message.stream_broken"


async def test_an_intact_hand_made_stream_is_accepted(federation: Federation) -> None:
    peer = _peer(federation)
    header = peer.request_header(str(TAX_SUBSYSTEM), str(POPULATION_SERVICE), "ImportPeople")
    crypto = EncryptedExchange(_provider_key(federation), header.message_id)
    opening, request = seal_frame(crypto.opening(header)[0], b"", peer.signer)
    writer = ChainWriter(
        peer.signer,
        Header(message_id=header.message_id, kind=FrameKind.STREAM_DATA, signer=peer.member),
        request.header_hash,
        1,
    )
    sent = [opening]
    for seq in range(1, 4):
        body, enc = crypto.frame(population.Person(national_id=f"p{seq}").SerializeToString(), seq)
        sent.append(writer.data(body, encryption=enc)[0])
    sent.append(
        writer.seal(Header(message_id=header.message_id, kind=FrameKind.STREAM_END, signer=peer.member), b"")[0]
    )

    async def stream() -> AsyncIterator[Envelope]:
        for env in sent:
            yield env

    async with peer.channel() as channel:
        call = channel.stream_stream(
            STREAM, request_serializer=encode_envelope, response_deserializer=pb.Envelope.FromString
        )
        answers = [env async for env in call(stream(), timeout=10)]
    assert [outcome(a) for a in answers] == ["ok", "ok"]  # the summary frame, then the final status


def _rogue_tls(fed: Federation) -> tuple[bytes, bytes]:
    """A TLS key and certificate naming the tax gateway, from a CA the registry never heard of."""
    ca_key = generate_signing_key("ES256")
    ca = create_ca("EE", ca_key)
    key = generate_tls_key()
    uri = gateway_uri(fed.tax.gateway)
    csr = build_csr(key, subject_uri=uri, ip_addresses=("127.0.0.1",))
    return pem_key(key), cert_to_pem(issue_certificate(ca, ca_key, csr, kind=CertKind.TLS, uri=uri, days=1))


async def test_a_peer_certificate_from_another_ca_never_gets_past_the_tls_handshake(federation: Federation) -> None:
    key_pem, cert_pem = _rogue_tls(federation)
    peer = replace(_peer(federation), tls_key_pem=key_pem, tls_cert_pem=cert_pem)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await peer.call(peer.seal(*_request(federation, peer)))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_provider_impersonated_with_a_certificate_from_another_ca_is_refused_as_untrusted(
    federation: Federation,
) -> None:
    """Someone answers at the provider's address with a certificate the registry CA did not issue."""
    assert federation.authority is not None
    key_pem, cert_pem = _rogue_tls(federation)
    rogue = grpc.aio.server()
    port = rogue.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key_pem, cert_pem)]))
    await rogue.start()
    real = f"127.0.0.1:{federation.population.peer_port}"
    try:
        federation.authority.set_gateway_address(federation.population.gateway, f"127.0.0.1:{port}")
        await federation.publish_and_wait()
        async with federation.channel() as channel:
            method = channel.unary_unary("/population.v1.PersonRegistry/GetPerson")
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await method(GET_PERSON, metadata=(("authorization", f"Bearer {federation.token()}"),), timeout=10)
    finally:
        federation.authority.set_gateway_address(federation.population.gateway, real)
        await federation.publish_and_wait()
        await rogue.stop(None)
    assert dict(info.value.trailing_metadata() or ()).get("crossway-error") == "peer.untrusted"
    assert (info.value.details() or "").startswith("client gateway: peer.untrusted: TLS handshake")


async def test_a_registry_ca_certificate_not_issued_to_any_gateway_is_refused(federation: Federation) -> None:
    assert federation.authority is not None
    key = generate_tls_key()
    # A member *signing* certificate: issued by the registry CA, but to no gateway.
    csr = build_csr(key, subject_uri=federation.tax.member.uri, ip_addresses=("127.0.0.1",))
    cert = federation.authority.issue(
        csr.public_bytes(Encoding.PEM), kind=CertKind.SIGNING, member=federation.tax.member
    )
    await federation.publish_and_wait()
    peer = replace(_peer(federation), tls_key_pem=pem_key(key), tls_cert_pem=cert_to_pem(cert))
    assert await _send(peer, peer.seal(*_request(federation, peer))) == "peer.untrusted"


async def test_a_revoked_gateway_certificate_is_refused_once_the_revocation_is_published(
    federation: Federation,
) -> None:
    assert federation.authority is not None
    peer, serial = await with_new_tls_certificate(_peer(federation), federation)
    assert await _send(peer, peer.seal(*_request(federation, peer))) == "ok"
    federation.authority.revoke(serial, "key compromise")
    await federation.publish_and_wait()
    assert await _send(peer, peer.seal(*_request(federation, peer))) == "peer.revoked"
