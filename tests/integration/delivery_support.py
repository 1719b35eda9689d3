"""A federation with registered delivery turned on, and small clients for both agencies' systems.

The tax board's system (EE/GOV/70000001/tax) sends; the population register's mailbox
(EE/GOV/70000002/population) receives documents (text/plain, application/pdf) in handover mode,
and its "inbox" subsystem receives in accept/reject mode. Message policies: the tax subsystem may
send documents with any purpose except "marketing"; nobody else may send anything.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import grpc

from audit.index import AuditIndexer, open_store
from audit.trail import SignedEvent, count_stream_records
from crossway.core.ids import SubsystemId
from crossway.demo.federation import POPULATION, TAX_SUBSYSTEM, Agency, Federation
from crossway.security.keys import save_pem
from crossway.security.tokens import mint_token
from gateway.delivery.convert import event_from_pb
from protos.crossway.v1 import delivery_pb2 as dpb
from protos.crossway.v1 import delivery_pb2_grpc as dgrpc
from registry import AcceptanceMode, RegistryAuthority

MAILBOX = SubsystemId(POPULATION, "population")
CONSENT_BOX = SubsystemId(POPULATION, "inbox")
PUSH_BOX = SubsystemId(POPULATION, "pushbox")  # handed over by push to the backend's GetPerson
DOCUMENT = "crossway.v1.Document"

POLICY = """\
@id("tax-sends-documents")
permit (
  principal == Crossway::Subsystem::"EE/GOV/70000001/tax",
  action == Crossway::Action::"crossway.v1.Document",
  resource
);

@id("no-marketing-mail")
forbid (principal, action, resource) when { context.purpose == "marketing" };
"""


def customize_registry(authority: RegistryAuthority) -> None:
    authority.add_subsystem(CONSENT_BOX)
    authority.add_subsystem(PUSH_BOX)
    authority.set_mailbox(PUSH_BOX, document_content_types=["application/x-protobuf"])
    authority.set_mailbox(MAILBOX, document_content_types=["text/plain", "application/pdf"])
    authority.set_mailbox(
        CONSENT_BOX,
        document_content_types=["text/plain"],
        require_encryption=True,
        acceptance=AcceptanceMode.ACCEPT_REJECT,
        acceptance_window_ms=6_000,
    )


def make_customize_gateway(**delivery: Any) -> Any:
    settings = {"ack_wait_s": 4, "backoff_s": 0.2, "backoff_max_s": 2, "handover_ack_wait_s": 5, **delivery}
    lines = "".join(f"{k} = {v}\n" for k, v in settings.items())

    def customize(fed: Federation, agency: Agency) -> str:
        text = "[delivery]\n" + lines
        if agency.member == POPULATION:
            policies = agency.directory / "policies" / "delivery"
            policies.mkdir(parents=True, exist_ok=True)
            (policies / "delivery.cedar").write_text(POLICY)
            save_pem(agency.directory / "idp.pub", fed.idp_key.public_key())
            text += 'policy_dir = "policies/delivery"\n'
            text += (
                f'\n[[delivery.push]]\nmailbox = "{PUSH_BOX}"\nadapter = "grpc"\n'
                f'address = "127.0.0.1:{fed.backend_port}"\nmethod = "/population.v1.PersonRegistry/GetPerson"\n'
                "timeout_s = 5\n"
            )
            text += (
                f'\n[client_auth.jwt]\nissuer = "https://idp.tax.example"\n'
                f'audience = "crossway:{agency.gateway}"\npublic_keys = ["idp.pub"]\n'
            )
        return text

    return customize


def delivery_federation(workdir: Path, **delivery: Any) -> Federation:
    return Federation(
        workdir,
        span_flush_ms=200,
        customize_registry=customize_registry,
        customize_gateway=make_customize_gateway(**delivery),
    )


class Mail:
    """An agency system's view of its own gateway's Delivery service."""

    def __init__(self, fed: Federation, agency: Agency, subsystem: SubsystemId) -> None:
        self._fed = fed
        self._agency = agency
        self.subsystem = subsystem
        self.channel = grpc.aio.secure_channel(agency.client_address, grpc.ssl_channel_credentials(fed.ca_pem))
        self.stub = dgrpc.DeliveryStub(self.channel)

    @property
    def md(self) -> tuple[tuple[str, str], ...]:
        token = mint_token(
            self._fed.idp_key,
            subject=str(self.subsystem),
            issuer="https://idp.tax.example",
            audience=f"crossway:{self._agency.gateway}",
            ttl_s=300,
        )
        return (("authorization", f"Bearer {token}"),)

    async def send(
        self,
        message_id: str,
        payload: bytes = b"hello",
        *,
        recipient: SubsystemId = MAILBOX,
        purpose: str = "notice",
        expires_in_s: float = 120,
        content_type: str = "text/plain",
        attachment_ids: tuple[str, ...] = (),
        timeout: float = 15,
    ) -> dpb.SendResponse:
        request = dpb.SendRequest(
            recipient=str(recipient),
            message_id=message_id,
            type=DOCUMENT,
            payload=payload,
            content_type=content_type,
            expires_at_ms=int((time.time() + expires_in_s) * 1000),
            purpose=purpose,
            attachment_ids=list(attachment_ids),
        )
        response: dpb.SendResponse = await self.stub.Send(request, metadata=self.md, timeout=timeout)
        return response

    async def receive(self, max_messages: int = 10, wait_ms: int = 2000) -> list[dpb.DeliveredMessage]:
        request = dpb.ReceiveRequest(max_messages=max_messages, wait_ms=wait_ms)
        return [m async for m in self.stub.Receive(request, metadata=self.md, timeout=wait_ms / 1000 + 20)]

    async def ack(self, sender: str, message_id: str) -> SignedEvent:
        reply = await self.stub.Ack(dpb.MessageRef(sender=sender, message_id=message_id), metadata=self.md, timeout=15)
        return event_from_pb(reply.evidence)

    async def timeline(self, sender: str, message_id: str) -> list[SignedEvent]:
        request = dpb.TimelineRequest(message=dpb.MessageRef(sender=sender, message_id=message_id))
        return [event_from_pb(e.evidence) async for e in self.stub.Timeline(request, metadata=self.md, timeout=15)]

    async def names(self, sender: str, message_id: str) -> list[str]:
        return [e.event.event for e in await self.timeline(sender, message_id)]

    async def close(self) -> None:
        await self.channel.close()


def tax_mail(fed: Federation) -> Mail:
    return Mail(fed, fed.tax, TAX_SUBSYSTEM)


def population_mail(fed: Federation, subsystem: SubsystemId = MAILBOX) -> Mail:
    return Mail(fed, fed.population, subsystem)


async def restart_gateway(fed: Federation, agency: Agency, *, kill: bool = True, down_s: float = 0.0) -> None:
    """Stop a gateway (SIGKILL, or SIGTERM and drain), wait ``down_s``, start it again on the same
    client and peer ports (so the registry's address stays right)."""
    import asyncio

    assert agency.process is not None and agency.config_path is not None
    if kill:
        agency.process.kill()
    await agency.process.stop()
    pin_ports(agency)
    if down_s:
        await asyncio.sleep(down_s)
    await fed._start_gateway(agency)


def pin_ports(agency: Agency) -> None:
    assert agency.config_path is not None
    text = agency.config_path.read_text()
    text = text.replace('client = "127.0.0.1:0"', f'client = "127.0.0.1:{agency.client_port}"', 1)
    text = text.replace('peer = "127.0.0.1:0"', f'peer = "127.0.0.1:{agency.peer_port}"', 1)
    agency.config_path.write_text(text)


async def indexed_and_cosigned(fed: Federation, index: str, timeout: float = 40.0) -> None:
    """Index every record of the federation into ``index`` and wait until cosigned checkpoints
    cover all of them (so an evidence bundle of any message can be exported)."""
    store = open_store(index)
    indexer = AuditIndexer(fed.index, store)
    deadline = time.monotonic() + timeout
    try:
        while True:
            await indexer.catch_up()
            expected = await count_stream_records(fed.auditor)
            sizes = {g: c.size for g, c in store.latest_checkpoints(cosigned=True).items()}
            counts = {g: store.count(g) for g in store.gateways()}
            if store.count() >= expected and sizes == counts:
                return
            assert time.monotonic() < deadline, f"index not covered in time: {counts} records, cosigned {sizes}"
            await asyncio.sleep(0.3)
    finally:
        store.close()
