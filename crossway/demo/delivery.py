"""The demo's registered-delivery scenario: a court serves a summons on the business register.

A fourth agency joins the federation, the Harju County Court (EE/GOV/70000004) with its own
gateway. The business register (EE/GOV/70000003) has two mailboxes: ``business``, whose system
pulls its mail (Receive + Ack, through its own gateway's client port — the register's SAP system
is read through the SAP adapter for calls, while mail is handed over by pull), and ``archive``,
whose system is switched off. Message policy at the business register: the court's ``court``
subsystem may send documents; its ``clerk`` subsystem may not.

Three messages, each followed to its end: a summons handed over (Submission → Relay →
ContentHandover), a notice from the clerk refused by policy (RelayRejection naming the reason),
and a summons to the archive that nobody reads before it expires (ContentHandoverFailure).
Every message's signed timeline is fetched from the court's gateway, verified offline against
the registry CA, and compared with the business register's copy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from audit.trail import verify_timeline_bundle
from crossway.core.ids import MemberId, SubsystemId
from crossway.demo.business import ARCHIVE_SERVICE, BUSINESS, BUSINESS_SERVICE
from crossway.demo.federation import Agency, Federation
from crossway.security.keys import save_pem
from crossway.security.tokens import mint_token
from protos.crossway.v1 import delivery_pb2 as dpb
from protos.crossway.v1 import delivery_pb2_grpc as dgrpc
from registry import RegistryAuthority

__all__ = [
    "COURT",
    "COURT_AGENCY",
    "DeliveryResult",
    "customize_gateway",
    "customize_registry",
    "run_delivery_scenario",
    "write_mail_profiles",
]

COURT = MemberId("EE", "GOV", "70000004")
COURT_AGENCY = (COURT, "Harju County Court", "court")
COURT_SUBSYSTEM = SubsystemId(COURT, "court")
CLERK_SUBSYSTEM = SubsystemId(COURT, "clerk")
MAILBOX = BUSINESS_SERVICE.subsystem
ARCHIVE_MAILBOX = ARCHIVE_SERVICE.subsystem
DOCUMENT = "crossway.v1.Document"
ISSUER = "https://idp.demo.example"

POLICY = """\
// Who may put what into the business register's mailboxes (registered delivery).
@id("court-serves-documents")
permit (
  principal == Crossway::Subsystem::"EE/GOV/70000004/court",
  action == Crossway::Action::"crossway.v1.Document",
  resource
);
"""


def customize_registry(authority: RegistryAuthority) -> None:
    authority.add_subsystem(COURT_SUBSYSTEM)
    authority.add_subsystem(CLERK_SUBSYSTEM)
    for mailbox in (MAILBOX, ARCHIVE_MAILBOX):
        authority.set_mailbox(mailbox, document_content_types=["application/pdf", "text/plain"])


def customize_gateway(fed: Federation, agency: Agency) -> str:
    """Each gateway's [delivery] table; the court and the business register accept demo JWTs."""
    text = "[delivery]\nack_wait_s = 5\nbackoff_max_s = 2\n"
    if agency.member == BUSINESS:
        policies = agency.directory / "policies" / "delivery"
        policies.mkdir(parents=True, exist_ok=True)
        (policies / "delivery.cedar").write_text(POLICY)
        text += 'policy_dir = "policies/delivery"\n'
    if agency.member in (BUSINESS, COURT):
        text += demo_jwt_table(fed, agency)
    return text


def demo_jwt_table(fed: Federation, agency: Agency) -> str:
    """A gateway's [client_auth.jwt] table accepting the demo's agency systems (its IdP key saved)."""
    save_pem(agency.directory / "demo-idp.pub", fed.idp_key.public_key())
    return (
        f'\n[client_auth.jwt]\nissuer = "{ISSUER}"\naudience = "crossway:{agency.gateway}"\n'
        'public_keys = ["demo-idp.pub"]\n'
    )


@dataclass(slots=True)
class DeliveryResult:
    messages: int = 0
    handed_over: int = 0
    refused: int = 0
    expired: int = 0
    verified_events: int = 0
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"delivery: {self.messages} messages, {self.handed_over} handed over, {self.refused} refused, "
            f"{self.expired} expired, {self.verified_events} evidence events verified"
        )


class DemoSystem:
    """An agency system with a channel to its own gateway and a fresh JWT per call (``md``)."""

    def __init__(self, fed: Federation, agency: Agency, subsystem: SubsystemId, issuer: str = ISSUER) -> None:
        self._fed, self._agency, self.subsystem, self._issuer = fed, agency, subsystem, issuer
        self.channel = grpc.aio.secure_channel(agency.client_address, grpc.ssl_channel_credentials(fed.ca_pem))

    @property
    def md(self) -> tuple[tuple[str, str], ...]:
        token = mint_token(
            self._fed.idp_key,
            subject=str(self.subsystem),
            issuer=self._issuer,
            audience=f"crossway:{self._agency.gateway}",
        )
        return (("authorization", f"Bearer {token}"),)


class _System(DemoSystem):
    """An agency system speaking to its own gateway's Delivery service."""

    def __init__(self, fed: Federation, agency: Agency, subsystem: SubsystemId) -> None:
        super().__init__(fed, agency, subsystem)
        self.stub = dgrpc.DeliveryStub(self.channel)

    async def names(self, sender: SubsystemId, message_id: str) -> list[str]:
        request = dpb.TimelineRequest(message=dpb.MessageRef(sender=str(sender), message_id=message_id))
        return [e.event async for e in self.stub.Timeline(request, metadata=self.md, timeout=10)]


async def run_delivery_scenario(
    fed: Federation, court_agency: Agency, say: Callable[[str], None] = print
) -> DeliveryResult:
    assert fed.business is not None and fed.authority is not None
    result = DeliveryResult()
    court = _System(fed, court_agency, COURT_SUBSYSTEM)
    clerk = _System(fed, court_agency, CLERK_SUBSYSTEM)
    register = _System(fed, fed.business, MAILBOX)
    stamp = time.strftime("%Y%m%d%H%M%S")
    plan = [
        (court, MAILBOX, f"summons-{stamp}", "a summons, handed over", 600, "ContentHandover"),
        (clerk, MAILBOX, f"notice-{stamp}", "a notice from the clerk, refused by policy", 600, "RelayRejection"),
        (
            court,
            ARCHIVE_MAILBOX,
            f"late-{stamp}",
            "a summons nobody reads before it expires",
            3,
            "ContentHandoverFailure",
        ),
    ]
    say("The court serves documents on the business register by registered delivery (evidence at every step):")
    try:
        for sender, mailbox, message_id, _, expires_s, _ in plan:
            request = dpb.SendRequest(
                recipient=str(mailbox),
                message_id=message_id,
                type=DOCUMENT,
                payload=b"%PDF-1.4 summons to appear before the Harju County Court",
                content_type="application/pdf",
                expires_at_ms=int((time.time() + expires_s) * 1000),
                purpose="service-of-documents",
            )
            response = await sender.stub.Send(request, metadata=sender.md, timeout=10)
            result.messages += 1
            if response.HasField("refusal"):
                result.failures.append(f"{message_id}: submission refused: {response.refusal.error_code}")
        # The business register's system pulls its mailbox and hands over what it got.
        deadline = time.monotonic() + 20
        handed: set[str] = set()
        while not handed and time.monotonic() < deadline:
            async for message in register.stub.Receive(
                dpb.ReceiveRequest(max_messages=10, wait_ms=1000), metadata=register.md, timeout=15
            ):
                await register.stub.Ack(message.ref, metadata=register.md, timeout=10)
                handed.add(message.ref.message_id)
        for sender, mailbox, message_id, title, _, final in plan:
            names = await _until(sender, sender.subsystem, message_id, final)
            if final not in names:
                result.failures.append(f"{message_id}: ended {names[-1:]} instead of {final}")
                say(f"  ✘ {title}: {' → '.join(names)}")
                continue
            result.handed_over += final == "ContentHandover"
            result.refused += final == "RelayRejection"
            result.expired += final == "ContentHandoverFailure"
            verified = await _verify(
                fed, sender, register if mailbox == MAILBOX else _System(fed, fed.business, mailbox), message_id
            )
            result.verified_events += verified
            why = await _reason(sender, message_id) if final != "ContentHandover" else ""
            say(f"  ✔ {title}: {' → '.join(names)}{why} ({verified} signed events verified, both sides agree)")
    except grpc.aio.AioRpcError as exc:
        result.failures.append(f"delivery: {exc.code().name} {exc.details()}")
        say(f"  ✘ delivery: {exc.code().name} {exc.details()}")
    finally:
        for system in (court, clerk, register):
            await system.channel.close(None)
    return result


async def _reason(system: _System, message_id: str) -> str:
    request = dpb.TimelineRequest(message=dpb.MessageRef(sender=str(system.subsystem), message_id=message_id))
    last = [e async for e in system.stub.Timeline(request, metadata=system.md, timeout=10)][-1]
    return f" [{last.reason_code}: {last.reason}]"


def write_mail_profiles(fed: Federation, workdir: Path) -> None:
    """``crossway mail --profile DIR`` for the court and the business register (an hour's tokens)."""
    assert fed.business is not None
    for agency, subsystem in ((fed.extra[0], COURT_SUBSYSTEM), (fed.business, MAILBOX)):
        profile = workdir / agency.directory.name / "profile"
        profile.mkdir(parents=True, exist_ok=True)
        (profile / "client.port").write_text(str(agency.client_port))
        (profile / "ca.pem").write_bytes(fed.ca_pem)
        token = mint_token(
            fed.idp_key, subject=str(subsystem), issuer=ISSUER, audience=f"crossway:{agency.gateway}", ttl_s=3600
        )
        (profile / "token.jwt").write_text(token)


async def _until(system: _System, sender: SubsystemId, message_id: str, final: str, timeout: float = 30.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        names = await system.names(sender, message_id)
        if final in names or time.monotonic() > deadline:
            return names
        await asyncio.sleep(0.3)


async def _verify(fed: Federation, sender: _System, recipient: _System, message_id: str) -> int:
    """The sender's signed timeline, verified offline against the registry CA; the recipient's equal."""
    assert fed.authority is not None
    ref = dpb.MessageRef(sender=str(sender.subsystem), message_id=message_id)
    bundle = await sender.stub.Evidence(ref, metadata=sender.md, timeout=10)
    report = verify_timeline_bundle(bundle.bundle, fed.authority.anchor.ca_sha256)
    theirs = await recipient.stub.Evidence(ref, metadata=recipient.md, timeout=10)
    other = verify_timeline_bundle(theirs.bundle, fed.authority.anchor.ca_sha256)
    if [e.data for e in other.events] != [e.data for e in report.events]:
        raise AssertionError(f"the two sides' timelines of {message_id} differ")
    return len(report.events)
