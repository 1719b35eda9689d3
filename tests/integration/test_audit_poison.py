"""Issue 12 acceptance: no poison records, over real gateways, NATS and the health protocol.

A 2 MiB header field (a peer's signed request) and a 2 MiB list of withheld fields (a provider's
signed response) are refused with ``message.malformed`` before anything is spooled; a poison
record an older version left in the spool is quarantined, ``crossway.audit`` turns NOT_SERVING
while it is there, and in every case the records after it keep flowing.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from audit.trail import AuditRecord, fetch_records
from audit.trail.samples import sample_record
from crossway.demo.federation import POPULATION_SERVICE, TAX_SUBSYSTEM, Federation
from crossway.security.keys import load_certificate, load_private_key
from crossway.security.pki import cert_fingerprint
from crossway.security.signing import Signer
from gateway.wire.codec import decode_envelope, encode_envelope, seal_frame
from gateway.wire.frames import OK_STATUS, Envelope, FrameKind, Header
from protos.crossway.v1 import envelope_pb2 as envelope_pb
from protos.demo.population.v1 import population_pb2 as pb
from protos.demo.population.v1 import population_pb2_grpc as pb_grpc
from tests.integration.peer_client import PeerClient, pem_key

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180)]

TWO_MIB = 2 << 20
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def federation(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    async with Federation(tmp_path_factory.mktemp("poison"), require_encryption=False) as fed:
        yield fed


async def _get_person(fed: Federation) -> str:
    """One allowed exchange; its message id."""
    async with fed.channel() as channel:
        call = pb_grpc.PersonRegistryStub(channel).GetPerson(
            pb.GetPersonRequest(national_id="38001010001"),
            metadata=(("authorization", f"Bearer {fed.token()}"), ("crossway-purpose", "tax-assessment")),
            timeout=10,
        )
        await call
        return str(dict(await call.trailing_metadata() or ())["crossway-message-id"])


async def _audit_health(fed: Federation) -> int:
    async with grpc.aio.secure_channel(fed.tax.client_address, grpc.ssl_channel_credentials(fed.ca_pem)) as ch:
        stub: Any = health_pb2_grpc.HealthStub(ch)
        response = await stub.Check(health_pb2.HealthCheckRequest(service="crossway.audit"), timeout=5)
    return int(response.status)


async def _eventually(check: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"not within {within:.0f} s: {what}"
        await asyncio.sleep(0.2)


async def _both_sides_stored(fed: Federation, message_id: str) -> list[AuditRecord]:
    found: list[AuditRecord] = []

    async def stored() -> bool:
        found[:] = [r for r in await fetch_records(fed.auditor) if r.message_id == message_id]
        return {r.side for r in found} == {"client", "provider"}

    await _eventually(stored, 20, f"both records of {message_id} in the stream")
    return found


def _spools_empty(fed: Federation) -> bool:
    return not any(any((a.directory / "data" / "audit-spool").glob("*.jsonl")) for a in fed.agencies)


async def test_a_signed_request_with_a_2_mib_purpose_is_refused_as_malformed_and_later_records_flow(
    federation: Federation,
) -> None:
    peer = PeerClient.from_gateway_keys(
        federation.tax.directory / "keys",
        f"127.0.0.1:{federation.population.peer_port}",
        federation.ca_pem,
        str(federation.tax.member),
    )
    header = peer.request_header(str(TAX_SUBSYSTEM), str(POPULATION_SERVICE), "GetPerson", purpose="p" * TWO_MIB)
    body = pb.GetPersonRequest(national_id="38001010001").SerializeToString()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await peer.call(peer.seal(header, body))
    assert dict(refused.value.trailing_metadata() or ()).get("crossway-error") == "message.malformed"

    later = await _get_person(federation)
    assert len(await _both_sides_stored(federation, later)) == 2
    refusals = [r for r in await fetch_records(federation.auditor) if r.error_code == "message.malformed"]
    assert refusals and all(len(r.to_json()) < 4096 for r in refusals)
    assert _spools_empty(federation)
    assert await _audit_health(federation) == SERVING


class _RogueProvider:
    """A provider gateway (the population register's keys) whose signed answers list 2 MiB of
    withheld fields. No Multiplex (UNIMPLEMENTED), so the client gateway uses Call."""

    def __init__(self, fed: Federation) -> None:
        keys = fed.population.directory / "keys"
        cert = load_certificate(keys / "signing.crt")
        self._signer = Signer(load_private_key(keys / "signing.key"), cert_fingerprint(cert))  # type: ignore[arg-type]
        self._member = str(fed.population.member)
        self._tls = (pem_key(load_private_key(keys / "tls.key")), (keys / "tls.crt").read_bytes())
        self._ca = fed.ca_pem
        self.server: grpc.aio.Server | None = None
        self.port = 0

    def _answer(self, env: Envelope) -> Envelope:
        request = envelope_pb.Header.FromString(env.header)
        header = Header(
            message_id=request.message_id,
            kind=FrameKind.RESPONSE,
            request_hash=hashlib.sha256(env.header).digest(),  # bound to the request, as it must be
            status=OK_STATUS,
            signer=self._member,
            withheld_fields=tuple(f"field_{i:07d}" for i in range(150_000)),
        )
        answer, _ = seal_frame(header, pb.Person(national_id="38001010001").SerializeToString(), self._signer)
        return answer

    async def start(self) -> None:
        self.server = grpc.aio.server(
            options=[("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
        )
        handler = grpc.method_handlers_generic_handler(
            "crossway.v1.PeerExchange",
            {
                "Call": grpc.unary_unary_rpc_method_handler(
                    self._call, request_deserializer=decode_envelope, response_serializer=encode_envelope
                )
            },
        )
        self.server.add_generic_rpc_handlers([handler])
        creds = grpc.ssl_server_credentials([self._tls], root_certificates=self._ca, require_client_auth=True)
        self.port = self.server.add_secure_port("127.0.0.1:0", creds)
        await self.server.start()

    async def _call(self, env: Envelope, context: object) -> Envelope:
        return self._answer(env)

    async def aclose(self) -> None:
        if self.server is not None:
            await self.server.stop(0)


async def test_a_signed_response_listing_2_mib_of_withheld_fields_is_refused_and_later_records_flow(
    federation: Federation,
) -> None:
    assert federation.authority is not None
    rogue = _RogueProvider(federation)
    await rogue.start()
    try:
        federation.authority.set_gateway_address(federation.population.gateway, f"127.0.0.1:{rogue.port}")
        await federation.publish_and_wait()
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _get_person(federation)
        assert dict(refused.value.trailing_metadata() or ()).get("crossway-error") == "message.malformed"
        message_id = str(dict(refused.value.trailing_metadata() or ())["crossway-message-id"])
    finally:
        federation.authority.set_gateway_address(
            federation.population.gateway, f"127.0.0.1:{federation.population.peer_port}"
        )
        await federation.publish_and_wait()
        await rogue.aclose()

    async def recorded() -> bool:
        return any(r.message_id == message_id for r in await fetch_records(federation.auditor))

    await _eventually(recorded, 20, "the client gateway's record of the refused answer")
    (record,) = [r for r in await fetch_records(federation.auditor) if r.message_id == message_id]
    assert record.side == "client" and record.error_code == "message.malformed" and len(record.to_json()) < 8192
    later = await _get_person(federation)
    assert len(await _both_sides_stored(federation, later)) == 2
    assert _spools_empty(federation)
    assert await _audit_health(federation) == SERVING


async def test_a_poison_record_left_in_the_spool_is_quarantined_with_an_alarm_while_later_records_flow(
    federation: Federation,
) -> None:
    tax = federation.tax
    assert tax.process is not None
    await tax.process.stop()  # graceful: whatever it held is acked or spooled
    spool = tax.directory / "data" / "audit-spool"
    poison = sample_record(0, gateway=str(tax.gateway), purpose="p" * TWO_MIB)
    behind = [sample_record(i, gateway=str(tax.gateway)) for i in range(1, 11)]
    (spool / "000000000900.jsonl").write_bytes(b"".join(r.to_json() + b"\n" for r in [poison, *behind]))
    await federation.restart_gateway(tax)

    async def alarmed() -> bool:
        return await _audit_health(federation) == NOT_SERVING

    await _eventually(alarmed, 10, "crossway.audit NOT_SERVING while a record is quarantined")
    stored = {r.record_id for r in await fetch_records(federation.auditor)}
    assert {r.record_id for r in behind} <= stored and poison.record_id not in stored
    later = await _get_person(federation)  # exchanges go on: the gateway itself still serves
    assert len(await _both_sides_stored(federation, later)) == 2
    assert _spools_empty(federation)

    quarantine = spool / "quarantine"
    (kept,) = quarantine.glob("*.quarantined")
    assert AuditRecord.from_json(kept.read_bytes().split(b"\n")[1]) == poison
    kept.rename(tax.directory / "handled.quarantined")  # the operator has dealt with it

    async def cleared() -> bool:
        return await _audit_health(federation) == SERVING

    await _eventually(cleared, 10, "crossway.audit SERVING again once the quarantine is empty")
