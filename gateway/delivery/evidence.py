"""Issuing, checking and logging evidence events at one gateway.

Issuing: an event is made from the message's state, signed with the member signing key, added
to the state by compare-and-set (the chain link comes from what won), and only then logged — as
a ``delivery`` record in the gateway's audit stream, hence in its Merkle log, cosigned like any
record. Events seen by the recipient's gateway are also queued for the sender's gateway (the
FORWARD stream) *before* they are added, so none can be lost between the two steps; the
forwarder sends only events the state really holds.

Checking events another gateway issued: the issuer is a gateway the configuration lists, the key
id is a signing certificate of that gateway's member, and the signature verifies.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from audit.trail import (
    AuditRecord,
    EvidenceEvent,
    EvidenceInvalid,
    SignedEvent,
    delivery_record,
    new_evidence_id,
    new_record_id,
    sign_event,
)
from crossway.bus import Names
from crossway.core.errors import CrosswayError, SignatureInvalid
from crossway.core.ids import GatewayId
from gateway.delivery.state import MessageState
from gateway.delivery.store import DeliveryStore
from gateway.shared.context import GatewayContext
from registry.configuration import VerifiedConfiguration

__all__ = ["EvidenceBook", "unsigned_event"]

Decide = Callable[[MessageState], EvidenceEvent | None]


def unsigned_event(
    name: str, state: MessageState, issuer: str, now_ms: int, reason_code: str = "", reason: str = ""
) -> EvidenceEvent:
    """An event of ``state``'s message; its id and chain link are filled in when it is added."""
    return EvidenceEvent(
        evidence_id="0" * 32,
        event=name,
        time_ms=now_ms,
        issuer=issuer,
        sender=state.sender,
        recipient=state.recipient,
        message_id=state.message_id,
        message_type=state.message_type,
        submitted_at_ms=state.submitted_at_ms,
        expires_at_ms=state.expires_at_ms,
        message_hash=state.message_hash,
        body_sha256=state.body_sha256,
        previous="",
        reason_code=reason_code,
        reason=reason[:500],
    )


class EvidenceBook:
    def __init__(self, ctx: GatewayContext, store: DeliveryStore, names: Names) -> None:
        self._ctx = ctx
        self._store = store
        self._names = names
        self.issuer = str(ctx.gateway_id)

    def sign(self, event: EvidenceEvent) -> SignedEvent:
        return sign_event(event, self._ctx.signer)

    def log(self, signed: SignedEvent, peer_gateway: str = "") -> None:
        """Into this gateway's audit log (Merkle tree, checkpoints, witnesses)."""
        self._ctx.audit.submit(delivery_record(signed, self.issuer, new_record_id(), peer_gateway=peer_gateway))

    def log_refusal(
        self, key: str, sender: str, recipient: str, what: str, error: CrosswayError, peer: str = ""
    ) -> None:
        """A refusal with no evidence event (the message could not be trusted): recorded all the same."""
        now = self._ctx.clock.now_ms()
        self._ctx.audit.submit(
            AuditRecord(
                record_id=new_record_id(),
                gateway=self.issuer,
                side="delivery",
                message_id=key,
                client=sender,
                service=recipient,
                method=what,
                user_id="",
                purpose="",
                request_in_ms=now,
                request_out_ms=now,
                response_in_ms=now,
                response_out_ms=now,
                request_size=0,
                response_size=0,
                request_sha256="",
                response_sha256="",
                status=error.status.name,
                error_code=error.code,
                decision="deny" if error.code.startswith("policy.") else "",
                policy_ids=(),
                withheld_fields=(),
                peer_gateway=peer,
                trace_id="",
                request_signature="",
                response_signature="",
            )
        )

    async def append(
        self, key: str, decide: Decide, *, forward: bool = False, **facts: object
    ) -> tuple[MessageState, SignedEvent | None]:
        """Issue one event by compare-and-set on the message's state, then log it."""
        states = self._store.states
        assert states is not None
        evidence_id = new_evidence_id()
        if forward:
            # Queued first: the forwarder sends the state's events once this id is among them.
            job = json.dumps({"key": key, "evidence_id": evidence_id, "at_ms": self._ctx.clock.now_ms()}).encode()
            # ``key`` is the state key: the forwarder reads the timeline from it
            await self._store.publish(self._names.forward, job, f"fwd:{evidence_id}", self._names.forward_stream)
        state, signed = await states.append(key, evidence_id, decide, self.sign, **facts)
        if signed is not None and signed.event.evidence_id == evidence_id and signed.event.issuer == self.issuer:
            self.log(signed)
        return state, signed

    def verify_foreign(self, config: VerifiedConfiguration, signed: SignedEvent) -> None:
        """An event another gateway issued: a registered gateway, its member's key, a good signature."""
        event = signed.event
        try:
            issuer = GatewayId.parse(event.issuer)
        except CrosswayError as exc:
            raise EvidenceInvalid(f"evidence event {event.evidence_id} names no gateway as issuer") from exc
        member = config.member(issuer.member)
        if member is None or issuer not in {g.id for g in member.gateways}:
            raise EvidenceInvalid(f"evidence event {event.evidence_id}: issuer {issuer} is not a registered gateway")
        key = member.signing_keys.get(signed.key_id)
        if key is None:
            raise SignatureInvalid(f"{issuer.member} has no registered signing key {signed.key_id[:16]}…")
        signed.verify(key)

    def new_id(self) -> str:
        return new_evidence_id()
