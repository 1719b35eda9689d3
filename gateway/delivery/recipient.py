"""The recipient's gateway: a relayed message is verified, decided, stored, and answered with evidence.

Steps of ``PeerDelivery.Relay``, in order, each failing closed with its own code. Up to step 5 a
failure is a plain gRPC error (nothing is signed for a message that cannot be trusted) and a
``delivery`` audit record; from step 6 on the answer is signed evidence.
1. the peer's TLS certificate: the registry CA, not revoked, a registered gateway   → peer.*
2. the relay attempt: signed by the peer's member, kind RELAY, issued within the
   allowed skew, its id never seen before (the replay window)         → message.expired, message.replayed
3. the message: signed by the same member, kind DELIVERY, bound to the attempt
   (``request_hash``), its body matching its digest, its sender a subsystem of the
   signing member                          → message.tampered, message.signature_invalid (a forged sender)
4. the mailbox is one of this gateway's member                                     → mailbox.unknown
5. the sender's events (its SubmissionAcceptance) verify with its member's keys and
   describe this very message                                         → message.signature_invalid, …
6. duplicates: a delivery key already answered returns that original evidence, for the
   whole retention period (the state bucket, create-if-absent)
7. refusals, each a signed RelayRejection with its reason: expired, a type the mailbox
   does not take, not encrypted when it must be or not decryptable, and — deny by
   default — the Cedar decision (principal the sender, action the type, resource the
   mailbox, context purpose and the rest; the reason names the deciding policies)
8. the message is stored in the INBOX stream (acknowledged) — before the evidence says so
9. RelayAcceptance is issued, logged and returned with the whole timeline.

``PeerDelivery.Evidence`` brings the recipient's later events back to the sender's gateway:
verified one by one, merged into the sender's state by compare-and-set, logged there too.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from audit.trail import EvidenceEvent, EvidenceInvalid, SignedEvent
from crossway.bus import Names
from crossway.core.errors import (
    CrosswayError,
    DecryptionFailed,
    Hop,
    MessageExpired,
    MessageMalformed,
    MessageReplayed,
    MessageTampered,
    PeerUntrusted,
    PolicyDenied,
    SignatureInvalid,
)
from crossway.core.ids import SubsystemId
from crossway.security.replay import ReplayGuard
from gateway.delivery.attachments import AttachmentStore
from gateway.delivery.config import DeliveryConfig
from gateway.delivery.errors import AttachmentUnknown, DeliveryBusy, DeliveryUnknown, MailboxUnknown
from gateway.delivery.evidence import EvidenceBook, unsigned_event
from gateway.delivery.message import MessageContent, delivery_key, open_content, stored_headers
from gateway.delivery.policies import PolicyHolder
from gateway.delivery.sender import CLAIM_STALE_MS
from gateway.delivery.state import MessageState
from gateway.delivery.store import DeliveryStore
from gateway.shared.context import GatewayContext
from gateway.wire.codec import encode_envelope, open_envelope
from gateway.wire.frames import Envelope, FrameKind, SignedFrame
from gateway.wire.link import AuthContext
from policies import MessageRequest
from registry.configuration import VerifiedConfiguration

__all__ = ["PeerCheck", "PeerIdentityLike", "RelayDesk"]

log = logging.getLogger(__name__)


class PeerIdentityLike(Protocol):
    @property
    def member(self) -> str: ...

    @property
    def gateway(self) -> str: ...


class PeerCheck(Protocol):
    """Provider-side step 1 (``gateway.provider.peers.PeerVerifier``), injected by the runtime."""

    def identify(self, auth_context: AuthContext, config: VerifiedConfiguration, now_ms: int) -> PeerIdentityLike: ...


@dataclass(frozen=True, slots=True)
class _Trusted:
    config: VerifiedConfiguration
    peer: PeerIdentityLike
    frame: SignedFrame
    sender: SubsystemId
    recipient: SubsystemId
    events: list[SignedEvent]

    @property
    def key(self) -> str:
        return delivery_key(str(self.sender), self.frame.header.message_id)


class RelayDesk:
    def __init__(
        self,
        ctx: GatewayContext,
        store: DeliveryStore,
        names: Names,
        book: EvidenceBook,
        config: DeliveryConfig,
        policies: PolicyHolder,
        replay: ReplayGuard,
        peers: PeerCheck,
        encryption_key: object | None,
        attachments: AttachmentStore,
    ) -> None:
        self._ctx = ctx
        self._store = store
        self._names = names
        self._book = book
        self._config = config
        self._policies = policies
        self._replay = replay
        self._peers = peers
        self._encryption_key = encryption_key
        self._attachments = attachments

    # -- Relay -------------------------------------------------------------------------------

    async def relay(
        self, attempt: Envelope, message: Envelope, events: list[SignedEvent], auth_context: AuthContext
    ) -> list[SignedEvent]:
        try:
            trusted = self._trust(attempt, message, events, auth_context)
        except CrosswayError as exc:
            exc.at(Hop.PROVIDER)
            self._book.log_refusal("", "", "", "Relay", exc)
            log.warning("delivery relay refused: %s %s", exc.code, exc.message)
            raise
        return await self._admit(trusted)

    def _trust(
        self, attempt_env: Envelope, message_env: Envelope, events: list[SignedEvent], auth_context: AuthContext
    ) -> _Trusted:
        ctx = self._ctx
        config = ctx.config()
        now = ctx.clock.now_ms()
        # 1. the peer gateway
        peer = self._peers.identify(auth_context, config, now)
        lookup = ctx.key_lookup(config)
        # 2. the attempt: fresh, never seen
        attempt = open_envelope(attempt_env, peer.member, lookup)
        a = attempt.header
        if a.kind != FrameKind.RELAY or not a.message_id:
            raise MessageMalformed(f"expected a RELAY frame, got {a.kind.name}")
        if abs(now - a.issued_at_ms) > ctx.max_skew_ms:
            raise MessageExpired(
                f"relay attempt {a.message_id} was issued {(now - a.issued_at_ms) / 1000:.0f} s from now; "
                f"the window is ±{ctx.max_skew_ms // 1000} s"
            )
        if self._replay.seen_before(f"relay|{peer.member}|{a.message_id}", a.issued_at_ms + ctx.max_skew_ms, now):
            raise MessageReplayed(f"relay attempt {a.message_id} from {peer.member} was already seen")
        # 3. the message: same signer, bound to the attempt, untouched, from a subsystem of the signer
        frame = open_envelope(message_env, peer.member, lookup)
        h = frame.header
        if h.kind != FrameKind.DELIVERY or not h.message_id:
            raise MessageMalformed(f"expected a DELIVERY frame, got {h.kind.name}")
        if a.request_hash != frame.header_hash or (a.client, a.service, a.method) != (h.client, h.service, h.method):
            raise MessageTampered(f"relay attempt {a.message_id} does not bind message {h.message_id}")
        sender = SubsystemId.parse(h.client)
        if str(sender.member) != peer.member:
            raise SignatureInvalid(f"sender {sender} is not a subsystem of the signing member {peer.member}")
        # 4. a mailbox of ours
        recipient = SubsystemId.parse(h.service)
        if recipient.member != ctx.gateway_id.member or config.mailbox(recipient) is None:
            raise MailboxUnknown(f"{recipient} has no mailbox at this gateway")
        # 5. the sender's evidence so far, about exactly this message
        key = delivery_key(str(sender), h.message_id)
        if not events or events[0].event.event != "SubmissionAcceptance":
            raise MessageMalformed(f"relay of {key} without the sender's SubmissionAcceptance")
        for signed in events:
            e = signed.event
            if e.delivery_key != key or e.message_hash != frame.header_hash.hex() or e.recipient != str(recipient):
                raise MessageTampered(f"evidence event {e.evidence_id} is not about message {key}")
            if not e.issuer.startswith(f"{peer.member}/"):
                raise SignatureInvalid(f"evidence event {e.evidence_id} is not issued by the sender's gateway")
            try:
                self._book.verify_foreign(config, signed)
            except EvidenceInvalid as exc:
                raise SignatureInvalid(exc.message) from exc
        return _Trusted(config, peer, frame, sender, recipient, list(events))

    async def _admit(self, t: _Trusted) -> list[SignedEvent]:
        ctx = self._ctx
        states = self._store.states
        assert states is not None
        h = t.frame.header
        skey = self._names.state_key("in", t.recipient, t.key)
        mailbox = t.config.mailbox(t.recipient)
        assert mailbox is not None
        now = ctx.clock.now_ms()
        # 6. duplicates answer with the original evidence
        fresh = MessageState(
            role="in",
            sender=str(t.sender),
            message_id=h.message_id,
            recipient=str(t.recipient),
            message_type=h.method,
            submitted_at_ms=h.issued_at_ms,
            expires_at_ms=h.deadline_ms,
            claimed_at_ms=now,
            message_hash=t.frame.header_hash.hex(),
            body_sha256=t.frame.header.body_sha256.hex(),
            acceptance="accept_reject" if mailbox.acceptance.value == 2 else "handover",
            acceptance_window_ms=mailbox.acceptance_window_ms,
            peer_gateway=t.peer.gateway,
        )
        answered = await self._answered(skey, now)
        if answered is not None:
            return answered
        await self._attachments_complete(t)
        if await states.claim(skey, fresh.with_events(t.events)) is None:
            answered = await self._answered(skey, now, take_over=fresh.with_events(t.events))
            if answered is not None:
                return answered
        for signed in t.events:
            self._book.log(signed, peer_gateway=t.peer.gateway)  # the sender's events, in our log too
        # 7. refusals, signed
        refusal = self._refusal(t, mailbox.require_encryption, now)
        if refusal is None:
            # 8. durable in the inbox before the evidence says so
            await self._store.publish(
                self._names.inbox(t.recipient),
                encode_envelope_of(t),
                t.frame.header_hash.hex(),
                self._names.inbox_stream,
                stored_headers(t.frame),
            )
            name, code, reason = "RelayAcceptance", "", ""
        else:
            name, code, reason = "RelayRejection", refusal.code, refusal.message

        def decide(state: MessageState) -> EvidenceEvent | None:
            if state.names & {"RelayAcceptance", "RelayRejection"}:
                return None
            return unsigned_event(name, state, self._book.issuer, ctx.clock.now_ms(), code, reason)

        # 9. the evidence
        state, _ = await self._book.append(skey, decide)
        log.info("delivery %s: %s", t.key, name if refusal is None else f"{name} ({code}: {reason})")
        return list(state.events)

    async def _answered(self, skey: str, now: int, take_over: MessageState | None = None) -> list[SignedEvent] | None:
        states = self._store.states
        assert states is not None
        current = await states.get(skey)
        if current is None:
            return None
        state, revision = current
        if state.names & {"RelayAcceptance", "RelayRejection"}:
            log.info("delivery %s/%s: duplicate relay, original evidence returned", state.sender, state.message_id)
            return list(state.events)
        if take_over is None:
            return None
        if now - state.claimed_at_ms < CLAIM_STALE_MS or await states.replace_claim(skey, take_over, revision) is None:
            raise DeliveryBusy(f"message {state.sender}/{state.message_id} is being relayed right now")
        return None

    def _refusal(self, t: _Trusted, require_encryption: bool, now: int) -> CrosswayError | None:
        """Step 7: why this message may not enter the mailbox, or None."""
        h = t.frame.header
        mailbox = t.config.mailbox(t.recipient)
        assert mailbox is not None
        if h.deadline_ms <= now:
            return MessageExpired(f"message {t.key} expired before it was relayed")
        if h.encryption is None and require_encryption:
            return MessageMalformed(f"the mailbox of {t.recipient} requires encryption; the message was not encrypted")
        try:
            content = open_content(t.frame, self._encryption_key)
        except (DecryptionFailed, MessageMalformed) as exc:
            return exc
        if not mailbox.accepts(h.method, content.content_type):
            return MessageMalformed(f"the mailbox of {t.recipient} does not accept {h.method}")
        self._policies.refresh(t.config)
        decision = self._policies.decide(
            MessageRequest(
                sender=t.sender,
                sender_groups=t.config.groups_of(t.sender),
                mailbox=t.recipient,
                message_type=h.method,
                purpose=h.purpose,
                content_type=content.content_type,
                correlation_id=content.correlation_id,
                size=content.size,
                encrypted=h.encryption is not None,
                now_ms=now,
            )
        )
        if not decision.allowed:
            return PolicyDenied(f"{t.sender} may not send {h.method} to {t.recipient}: {decision.reason}")
        return None

    # -- attachments, before their message's relay --------------------------------------------

    async def attachment(
        self, message_env: Envelope, attachment_id: str, chunks: AsyncIterator[bytes], auth_context: AuthContext
    ) -> int:
        """One attachment of a message about to be relayed: every chunk checked against its digest."""
        ctx = self._ctx
        config = ctx.config()
        peer = self._peers.identify(auth_context, config, ctx.clock.now_ms())
        frame = open_envelope(message_env, peer.member, ctx.key_lookup(config))
        h = frame.header
        if h.kind != FrameKind.DELIVERY:
            raise MessageMalformed(f"expected a DELIVERY frame, got {h.kind.name}")
        sender = SubsystemId.parse(h.client)
        recipient = SubsystemId.parse(h.service)
        if str(sender.member) != peer.member:
            raise SignatureInvalid(f"sender {sender} is not a subsystem of the signing member {peer.member}")
        if recipient.member != ctx.gateway_id.member or config.mailbox(recipient) is None:
            raise MailboxUnknown(f"{recipient} has no mailbox at this gateway")
        content = open_content(frame, self._encryption_key)
        info = next((a for a in content.attachments if a.attachment_id == attachment_id), None)
        if info is None:
            raise AttachmentUnknown(f"message {h.message_id} names no attachment {attachment_id[:40]!r}")
        return await self._attachments.receive(delivery_key(str(sender), h.message_id), info, chunks)

    async def _attachments_complete(self, t: _Trusted) -> None:
        """Before any evidence: every attachment the message names has arrived, chunk for chunk."""
        try:
            content = open_content(t.frame, self._encryption_key)
        except CrosswayError:
            return  # step 7 refuses it with the reason
        for info in content.attachments:
            stored = await self._attachments.stored(t.key, info.attachment_id)
            if stored is None or stored.info != info:
                raise DeliveryBusy(f"attachment {info.attachment_id} of {t.key} has not arrived yet")

    # -- Evidence from the other side --------------------------------------------------------

    async def evidence(
        self, sender_text: str, message_id: str, events: list[SignedEvent], auth_context: AuthContext
    ) -> None:
        ctx = self._ctx
        config = ctx.config()
        peer = self._peers.identify(auth_context, config, ctx.clock.now_ms())
        sender = SubsystemId.parse(sender_text)
        key = delivery_key(str(sender), message_id)
        if sender.member != ctx.gateway_id.member:
            raise DeliveryUnknown(f"{sender} is not a subsystem of this gateway's member")
        states = self._store.states
        assert states is not None
        skey = self._names.state_key("out", sender, key)
        current = await states.get(skey)
        if current is None:
            raise DeliveryUnknown(f"message {key} was not sent through this gateway")
        held = {e.event.evidence_id: e.data for e in current[0].events}
        for signed in events:
            if signed.event.delivery_key != key:
                raise MessageTampered(f"evidence event {signed.event.evidence_id} is not about message {key}")
            if held.get(signed.event.evidence_id) == signed.data:
                continue  # an event we hold already, byte for byte (verified when it came)
            try:
                self._book.verify_foreign(config, signed)
            except EvidenceInvalid as exc:
                raise SignatureInvalid(exc.message) from exc
        recipient = SubsystemId.parse(current[0].recipient)
        if str(recipient.member) != peer.member:
            raise PeerUntrusted(f"{peer.gateway} is not a gateway of the recipient {recipient}")
        try:
            _, fresh = await states.merge(skey, events, peer_gateway=peer.gateway)
        except EvidenceInvalid as exc:
            raise MessageTampered(f"the events of {key} do not continue its chain: {exc.message}") from exc
        for signed in fresh:
            self._book.log(signed, peer_gateway=peer.gateway)
        if fresh:
            log.info("delivery %s: %s from %s", key, ", ".join(e.event.event for e in fresh), peer.gateway)

    def content_of(self, frame: SignedFrame) -> MessageContent:
        return open_content(frame, self._encryption_key)


def encode_envelope_of(t: _Trusted) -> bytes:
    f = t.frame
    return encode_envelope(
        Envelope(f.header_bytes, f.body, f.signature.algorithm, f.signature.key_id, f.signature.value)
    )
