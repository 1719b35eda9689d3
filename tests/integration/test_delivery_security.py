"""A hand-driven peer relays messages to the population register's gateway: tampered, forged and
replayed relays are refused with their codes, and each refusal is in that gateway's audit log."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from delivery_support import DOCUMENT, MAILBOX, delivery_federation
from peer_client import PeerClient

from audit.trail import AuditRecord, SignedEvent, fetch_records, new_evidence_id, sign_event
from crossway.demo.federation import POPULATION, TAX, TAX_SUBSYSTEM, Federation
from gateway.delivery.convert import event_to_pb, events_from_pb
from gateway.delivery.evidence import unsigned_event
from gateway.delivery.message import MessageContent, seal_message, seal_relay_attempt
from gateway.delivery.state import MessageState
from gateway.wire.codec import envelope_to_pb
from gateway.wire.frames import Envelope, SignedFrame
from gateway.wire.metadata import metadata_text
from protos.crossway.v1 import delivery_pb2 as dpb

pytestmark = pytest.mark.asyncio(loop_scope="module")

RELAY = "/crossway.v1.PeerDelivery/Relay"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    workdir: Path = tmp_path_factory.mktemp("delivery-security")
    async with delivery_federation(workdir) as federation:
        yield federation


@pytest.fixture
def peer(fed: Federation) -> PeerClient:
    # The tax board's gateway, driven by hand: its real TLS and signing keys.
    return PeerClient.from_gateway_keys(
        fed.tax.directory / "keys", f"127.0.0.1:{fed.population.peer_port}", fed.ca_pem, str(TAX)
    )


def _message(peer: PeerClient, message_id: str, *, sender: str = str(TAX_SUBSYSTEM)) -> tuple[Envelope, SignedFrame]:
    now = int(time.time() * 1000)
    return seal_message(
        peer.signer,
        peer.member,
        sender=sender,
        recipient=str(MAILBOX),
        message_id=message_id,
        message_type=DOCUMENT,
        purpose="notice",
        submitted_at_ms=now,
        expires_at_ms=now + 120_000,
        content=MessageContent(b"summons", "text/plain"),
        encrypt_to=None,
    )


def _submitted(peer: PeerClient, frame: SignedFrame) -> SignedEvent:
    h = frame.header
    state = MessageState(
        "out", h.client, h.message_id, h.service, h.method, h.issued_at_ms, h.deadline_ms, h.issued_at_ms,
        message_hash=frame.header_hash.hex(), body_sha256=h.body_sha256.hex(),
    )  # fmt: skip
    event = unsigned_event("SubmissionAcceptance", state, "EE/GOV/70000001/gw1", int(time.time() * 1000))
    return sign_event(dataclasses.replace(event, evidence_id=new_evidence_id()), peer.signer)


def _request(peer: PeerClient, envelope: Envelope, frame: SignedFrame) -> dpb.RelayRequest:
    now = int(time.time() * 1000)
    attempt = seal_relay_attempt(peer.signer, peer.member, frame, now, now + 10_000)
    return dpb.RelayRequest(
        attempt=envelope_to_pb(attempt),
        message=envelope_to_pb(envelope),
        events=[event_to_pb(_submitted(peer, frame))],
    )


async def _relay(peer: PeerClient, request: dpb.RelayRequest) -> list[SignedEvent]:
    async with peer.channel() as channel:
        call = channel.unary_unary(
            RELAY,
            request_serializer=dpb.RelayRequest.SerializeToString,
            response_deserializer=dpb.RelayReply.FromString,
        )
        reply = await call(request, timeout=10)
    return events_from_pb(reply.events)


async def _refused(peer: PeerClient, request: dpb.RelayRequest) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _relay(peer, request)
    return refused.value.code(), metadata_text(refused.value.trailing_metadata()).get("crossway-error", "")


async def _recorded(fed: Federation, code: str) -> AuditRecord:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        records = await fetch_records(fed.auditor)
        for r in records:
            if r.side == "delivery" and r.gateway == str(POPULATION.gateway("gw1")) and r.error_code == code:
                return r
        await asyncio.sleep(0.3)
    raise AssertionError(f"no delivery record with {code}")


async def test_a_well_formed_relay_is_accepted_and_the_same_attempt_again_is_a_replay(
    fed: Federation, peer: PeerClient
) -> None:
    envelope, frame = _message(peer, "rogue-ok")
    request = _request(peer, envelope, frame)
    events = await _relay(peer, request)
    assert [e.event.event for e in events] == ["SubmissionAcceptance", "RelayAcceptance"]
    assert await _refused(peer, request) == (grpc.StatusCode.ALREADY_EXISTS, "message.replayed")
    record = await _recorded(fed, "message.replayed")
    assert record.method == "Relay" and record.status == "ALREADY_EXISTS"
    # A fresh attempt of the same message is a legitimate retry: the original evidence again.
    again = await _relay(peer, _request(peer, envelope, frame))
    assert [e.data for e in again] == [e.data for e in events]


async def test_a_message_changed_after_signing_is_refused_as_tampered(fed: Federation, peer: PeerClient) -> None:
    envelope, frame = _message(peer, "rogue-tampered")
    request = _request(peer, envelope, frame)
    request.message.body = request.message.body.replace(b"summons", b"acquittal")
    assert await _refused(peer, request) == (grpc.StatusCode.INVALID_ARGUMENT, "message.tampered")
    await _recorded(fed, "message.tampered")


async def test_a_sender_of_another_member_is_refused_as_forged(fed: Federation, peer: PeerClient) -> None:
    # Signed with the tax board's key, claiming to come from the population register's subsystem.
    envelope, frame = _message(peer, "rogue-forged", sender=str(MAILBOX))
    code, error = await _refused(peer, _request(peer, envelope, frame))
    assert (code, error) == (grpc.StatusCode.UNAUTHENTICATED, "message.signature_invalid")
    await _recorded(fed, "message.signature_invalid")


async def test_an_attempt_that_does_not_bind_its_message_is_refused(fed: Federation, peer: PeerClient) -> None:
    envelope, frame = _message(peer, "rogue-swap")
    other_envelope, _ = _message(peer, "rogue-other")
    request = _request(peer, envelope, frame)
    request.message.CopyFrom(envelope_to_pb(other_envelope))
    assert await _refused(peer, request) == (grpc.StatusCode.INVALID_ARGUMENT, "message.tampered")
