"""Unary exchanges multiplexed over one ``PeerExchange.Multiplex`` stream, against real gateways.

Against the real provider gateway (mTLS, real keys): answers are paired with requests by tag,
refusals carry the same stable codes ``Call`` gives, replay protection spans both methods, a
revocation reaches a stream that is already open, a stopping provider lets what runs finish,
and several connections per provider are taken in turn. The client side against providers that
misbehave, and the provider side without a network: ``test_peer_multiplex_sides.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from crossway.core.errors import MessageTampered
from crossway.demo.federation import POPULATION_SERVICE, TAX_SUBSYSTEM, Federation
from crossway.security.keys import generate_signing_key, load_private_key
from crossway.security.signing import Signer
from gateway.wire.channels import PeerChannels
from gateway.wire.multiplex import MULTIPLEX_METHOD
from protos.crossway.v1 import envelope_pb2 as pb
from protos.crossway.v1 import peer_pb2 as mux_pb
from protos.demo.population.v1 import population_pb2 as population
from protos.demo.population.v1 import population_pb2_grpc as population_grpc
from tests.integration.peer_client import (
    EncryptedExchange,
    PeerClient,
    mux_handler,
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


def _valid(fed: Federation, peer: PeerClient, signer: Signer | None = None) -> pb.Envelope:
    header = peer.request_header(str(TAX_SUBSYSTEM), str(POPULATION_SERVICE), "GetPerson")
    provider_key = (fed.population.directory / "keys" / "encryption.pub").read_bytes()
    opened = EncryptedExchange(provider_key, header.message_id).opening(header, GET_PERSON)
    return peer.seal(*opened, signer)


# -- the real provider gateway --------------------------------------------------------------


async def test_one_stream_answers_each_tag_with_its_own_response_or_refusal(federation: Federation) -> None:
    peer = _peer(federation)
    tampered = _valid(federation, peer)
    tampered.body = tampered.body[:-1] + bytes([tampered.body[-1] ^ 1])
    forger = Signer(generate_signing_key("ES256"), peer.signer.key_id)
    envelopes = [_valid(federation, peer), tampered, _valid(federation, peer), _valid(federation, peer, forger)]
    replies = await peer.multiplex(envelopes)
    assert {tag: outcome(reply) for tag, reply in replies.items()} == {
        1: "ok",
        2: "message.tampered",
        3: "ok",
        4: "message.signature_invalid",
    }
    # Each signed response belongs to the request of its tag.
    for tag in (1, 3):
        request_id = pb.Header.FromString(envelopes[tag - 1].header).message_id
        assert pb.Header.FromString(replies[tag].response.header).message_id == request_id
    refusal = replies[2].refusal
    assert refusal.grpc_code == MessageTampered("x").status.value[0]  # what Call's status would be
    assert refusal.hint and refusal.message


async def test_a_message_sent_by_call_is_a_replay_on_the_stream(federation: Federation) -> None:
    peer = _peer(federation)
    env = _valid(federation, peer)
    assert outcome(await peer.call(env)) == "ok"
    assert outcome((await peer.multiplex([env]))[1]) == "message.replayed"


async def test_many_exchanges_in_flight_on_one_stream_all_complete(federation: Federation) -> None:
    peer = _peer(federation)
    replies = await peer.multiplex([_valid(federation, peer) for _ in range(40)])
    assert sorted(replies) == list(range(1, 41))
    assert {outcome(reply) for reply in replies.values()} == {"ok"}


async def test_stopping_the_provider_gateway_lets_the_exchanges_in_flight_finish(tmp_path: Path) -> None:
    async with Federation(tmp_path / "federation", require_encryption=False) as fed:
        metadata = (("authorization", f"Bearer {fed.token()}"), ("crossway-purpose", "tax-assessment"))
        async with fed.channel() as channel:
            stub = population_grpc.PersonRegistryStub(channel)

            async def slow_call() -> grpc.StatusCode:
                try:
                    await stub.GetPerson(
                        population.GetPersonRequest(national_id="slow-1500"), metadata=metadata, timeout=20
                    )
                except grpc.aio.AioRpcError as exc:
                    return exc.code()
                return grpc.StatusCode.OK

            # Warm the Multiplex stream, then put four slow exchanges on it and stop the provider.
            assert await stub.GetPerson(population.GetPersonRequest(national_id="38001010001"), metadata=metadata)
            calls = [asyncio.ensure_future(slow_call()) for _ in range(4)]
            await asyncio.sleep(0.5)
            assert fed.population.process is not None
            assert await fed.population.process.stop() == 0
            # The backend answered each (no such person): none was cut off or refused.
            assert await asyncio.gather(*calls) == [grpc.StatusCode.NOT_FOUND] * 4
            with pytest.raises(grpc.aio.AioRpcError) as after:
                await stub.GetPerson(
                    population.GetPersonRequest(national_id="38001010001"), metadata=metadata, timeout=10
                )
            assert after.value.code() == grpc.StatusCode.UNAVAILABLE
            assert dict(after.value.trailing_metadata() or ())["crossway-error"] == "peer.unavailable"


async def test_several_connections_per_provider_are_taken_in_turn(federation: Federation) -> None:
    """``peer_connections``: each connection may land on another worker of the provider."""
    peers: list[str] = []

    async def echo(requests: AsyncIterator[mux_pb.MuxRequests], context: Any) -> AsyncIterator[mux_pb.MuxReplies]:
        async for batch in requests:
            peers.append(context.peer())
            yield mux_pb.MuxReplies(
                replies=[mux_pb.MuxReply(tag=r.tag, response=pb.Envelope(body=r.envelope.body)) for r in batch.requests]
            )

    pop_keys, tax_keys = federation.population.directory / "keys", federation.tax.directory / "keys"
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("crossway.v1.PeerExchange", {"Multiplex": mux_handler(echo)})]
    )
    pair = [(pem_key(load_private_key(pop_keys / "tls.key")), (pop_keys / "tls.crt").read_bytes())]
    port = server.add_secure_port(
        "127.0.0.1:0", grpc.ssl_server_credentials(pair, root_certificates=federation.ca_pem, require_client_auth=True)
    )
    await server.start()
    channels = PeerChannels(
        pem_key(load_private_key(tax_keys / "tls.key")), (tax_keys / "tls.crt").read_bytes(), connections=3
    )
    try:
        for i in range(6):
            stubs = channels.get(f"127.0.0.1:{port}", federation.ca_pem)
            assert (await stubs.exchange(pb.Envelope(header=b"h", body=bytes([i])), timeout=10)).body == bytes([i])
    finally:
        await channels.aclose()
        await server.stop(None)
    assert len(peers) == 6 and len(set(peers)) == 3  # three TCP connections, two exchanges each


async def test_a_certificate_revoked_while_its_stream_is_open_is_refused_on_that_stream(
    federation: Federation,
) -> None:
    """The peer is checked per exchange against the current configuration, not once per stream."""
    assert federation.authority is not None
    peer, serial = await with_new_tls_certificate(_peer(federation), federation)
    outbox: asyncio.Queue[mux_pb.MuxRequests | None] = asyncio.Queue()

    async def requests() -> AsyncIterator[mux_pb.MuxRequests]:
        while (batch := await outbox.get()) is not None:
            yield batch

    async with peer.channel() as channel:
        method = channel.stream_stream(
            MULTIPLEX_METHOD,
            request_serializer=mux_pb.MuxRequests.SerializeToString,
            response_deserializer=mux_pb.MuxReplies.FromString,
        )
        stream = method(requests(), timeout=30)
        replies = stream.__aiter__()

        async def exchange(tag: int) -> str:
            outbox.put_nowait(
                mux_pb.MuxRequests(requests=[mux_pb.MuxRequest(tag=tag, envelope=_valid(federation, peer))])
            )
            (reply,) = (await anext(replies)).replies
            assert reply.tag == tag
            return outcome(reply)

        assert await exchange(1) == "ok"
        federation.authority.revoke(serial, "key compromise")
        await federation.publish_and_wait()
        assert await exchange(2) == "peer.revoked"  # same stream, same TLS connection
        outbox.put_nowait(None)
