"""The sender's gateway: checking a submission, signing it, storing it, answering with evidence.

Steps of ``Send``, in order, each failing closed with its own code:
1. the caller is authenticated (by the client port, as for calls)                → client.*
2. the submission is checked against the registry: the message id's charset, the recipient's
   mailbox, the type (and content type) it accepts, expiry within the retention period, sizes,
   the attachments named, an encryption key when the mailbox requires encryption
   → SubmissionRejection evidence, signed and logged, with the code      → mailbox.unknown,
     message.type_refused, message.too_large, delivery.expired, attachment.unknown, …
3. the delivery key (sender, message id) is claimed in the state bucket, create-if-absent: a
   key that holds a SubmissionAcceptance answers with that original evidence, for the whole
   retention period (a claim left by a process that died is taken over after 30 s)
4. the message is signed (its body encrypted to the recipient member when required)
5. it is stored in the OUTBOX stream (acknowledged) — before any evidence says so
6. SubmissionAcceptance is issued (compare-and-set on the state), logged, and returned.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace

from audit.trail import EvidenceEvent, SignedEvent
from crossway.bus import Names
from crossway.core.errors import CrosswayError, MessageMalformed, MessageTooLarge
from crossway.core.ids import SubsystemId
from gateway.delivery.attachments import AttachmentStore
from gateway.delivery.config import DeliveryConfig
from gateway.delivery.errors import (
    DeliveryBusy,
    DeliveryExpired,
    EncryptionRequired,
    MailboxUnknown,
    MessageTypeRefused,
)
from gateway.delivery.evidence import EvidenceBook, unsigned_event
from gateway.delivery.message import MessageContent, check_message_id, delivery_key, seal_message, stored_headers
from gateway.delivery.state import MessageState
from gateway.delivery.store import DeliveryStore
from gateway.shared.context import GatewayContext
from gateway.wire.codec import encode_envelope
from registry import AcceptanceMode

__all__ = ["CLAIM_STALE_MS", "SendOutcome", "SubmissionDesk", "Submission"]

log = logging.getLogger(__name__)

# A claim this old without its SubmissionAcceptance belongs to a process that died.
CLAIM_STALE_MS = 30_000
_MIN_LIFETIME_MS = 1_000


@dataclass(frozen=True, slots=True)
class Submission:
    recipient: str
    message_id: str
    message_type: str
    payload: bytes
    expires_at_ms: int
    content_type: str = ""
    attachment_ids: tuple[str, ...] = ()
    purpose: str = ""
    correlation_id: str = ""


@dataclass(frozen=True, slots=True)
class SendOutcome:
    evidence: SignedEvent
    refusal: CrosswayError | None = None
    duplicate: bool = False


class SubmissionDesk:
    def __init__(
        self,
        ctx: GatewayContext,
        store: DeliveryStore,
        names: Names,
        book: EvidenceBook,
        config: DeliveryConfig,
        attachments: AttachmentStore,
    ) -> None:
        self._ctx = ctx
        self._store = store
        self._names = names
        self._book = book
        self._config = config
        self._attachments = attachments

    async def send(self, sender: SubsystemId, sub: Submission, traceparent: str = "") -> SendOutcome:
        ctx = self._ctx
        now = ctx.clock.now_ms()
        # 2. the submission, against the registry
        try:
            recipient, mode, window, encrypt_to, content = await self._check(sender, sub, now)
        except CrosswayError as exc:
            return self._reject(sender, sub, exc, now)
        ctx.check_audit_writable()
        # 3. claim the delivery key
        states = self._store.states
        assert states is not None
        key = delivery_key(str(sender), sub.message_id)
        skey = self._names.state_key("out", sender, key)
        fresh = MessageState(
            role="out",
            sender=str(sender),
            message_id=sub.message_id,
            recipient=str(recipient),
            message_type=sub.message_type,
            submitted_at_ms=now,
            expires_at_ms=sub.expires_at_ms,
            claimed_at_ms=now,
            acceptance="accept_reject" if mode is AcceptanceMode.ACCEPT_REJECT else "handover",
            acceptance_window_ms=window,
            attachment_ids=tuple(sub.attachment_ids),
        )
        if await states.claim(skey, fresh) is None:
            current = await states.get(skey)
            if current is None:
                raise DeliveryBusy(f"message {key} is being submitted right now")
            existing, revision = current
            original = existing.event("SubmissionAcceptance")
            if original is not None:
                log.info("delivery %s: duplicate submission, original evidence returned", key)
                return SendOutcome(original, duplicate=True)
            if (
                now - existing.claimed_at_ms < CLAIM_STALE_MS
                or await states.replace_claim(skey, fresh, revision) is None
            ):
                raise DeliveryBusy(f"message {key} is being submitted right now")
        # 4. sign (and encrypt)
        envelope, frame = seal_message(
            ctx.signer,
            ctx.member,
            sender=str(sender),
            recipient=str(recipient),
            message_id=sub.message_id,
            message_type=sub.message_type,
            purpose=sub.purpose,
            submitted_at_ms=now,
            expires_at_ms=sub.expires_at_ms,
            content=content,
            encrypt_to=encrypt_to,
            traceparent=traceparent,
        )
        message_hash = frame.header_hash.hex()
        # 5. durable in the outbox before any evidence says so (the id de-duplicates a retry whose
        # ack was lost; a taken-over claim signs anew, so its id differs)
        await self._store.publish(
            self._names.outbox,
            encode_envelope(envelope),
            message_hash,
            self._names.outbox_stream,
            stored_headers(frame),
        )

        # 6. SubmissionAcceptance
        def decide(state: MessageState) -> EvidenceEvent | None:
            if state.events or state.claimed_at_ms != now:
                return None  # another submission of the same key won meanwhile
            facts = _with_hashes(state, message_hash, frame.header.body_sha256.hex())
            return unsigned_event("SubmissionAcceptance", facts, self._book.issuer, ctx.clock.now_ms())

        state, signed = await self._book.append(
            skey, decide, message_hash=message_hash, body_sha256=frame.header.body_sha256.hex()
        )
        if signed is None:
            original = state.event("SubmissionAcceptance")
            if original is None:
                raise DeliveryBusy(f"message {key} is being submitted right now")
            return SendOutcome(original, duplicate=True)
        log.info("delivery %s: submitted to %s (%s)", key, recipient, sub.message_type)
        return SendOutcome(signed)

    async def _check(
        self, sender: SubsystemId, sub: Submission, now: int
    ) -> tuple[SubsystemId, AcceptanceMode, int, bytes | None, MessageContent]:
        if not check_message_id(sub.message_id):
            raise MessageMalformed(
                f"message id {sub.message_id[:40]!r} is not 1-128 of A-Z a-z 0-9 . _ : -",
                hint="choose an id like summons-2024-0001; it is your idempotency key",
            )
        recipient = SubsystemId.parse(sub.recipient)
        config = self._ctx.config()
        mailbox = config.mailbox(recipient)
        if mailbox is None:
            raise MailboxUnknown(f"{recipient} has no mailbox")
        if not mailbox.accepts(sub.message_type, sub.content_type):
            what = f"{sub.message_type} ({sub.content_type})" if sub.content_type else sub.message_type
            raise MessageTypeRefused(f"the mailbox of {recipient} does not accept {what}")
        if sub.expires_at_ms < now + _MIN_LIFETIME_MS:
            raise DeliveryExpired(f"expires_at {sub.expires_at_ms} is not in the future")
        if sub.expires_at_ms > now + self._config.retention_s * 1000:
            raise MessageMalformed(
                f"expires_at is beyond the retention period ({self._config.retention_days:g} days)",
                hint="choose an earlier expires_at",
            )
        if len(sub.payload) > self._config.max_message_bytes:
            raise MessageTooLarge(
                f"the payload is {len(sub.payload)} bytes; at most {self._config.max_message_bytes} go inline",
                hint="send large content as attachments (SendAttachment), not inline",
            )
        attachments = tuple([await self._attachments.info(sender, a) for a in sub.attachment_ids])
        encrypt_to = None
        if mailbox.require_encryption:
            member = config.member(recipient.member)
            if member is None or member.encryption_public_key is None:
                raise EncryptionRequired(f"{recipient.member} has no encryption key in the registry")
            encrypt_to = member.encryption_public_key
        content = MessageContent(sub.payload, sub.content_type, sub.correlation_id, attachments)
        return recipient, mailbox.acceptance, mailbox.acceptance_window_ms, encrypt_to, content

    def _reject(self, sender: SubsystemId, sub: Submission, error: CrosswayError, now: int) -> SendOutcome:
        """SubmissionRejection: signed and logged, not stored — the id stays free for a corrected send."""
        facts = MessageState(
            role="out",
            sender=str(sender),
            message_id=sub.message_id[:128],
            recipient=sub.recipient[:200],
            message_type=sub.message_type[:200],
            submitted_at_ms=now,
            expires_at_ms=sub.expires_at_ms,
            claimed_at_ms=now,
            body_sha256=hashlib.sha256(sub.payload).hexdigest(),
        )
        event = unsigned_event("SubmissionRejection", facts, self._book.issuer, now, error.code, error.message)
        signed = self._book.sign(replace(event, evidence_id=self._book.new_id()))
        self._book.log(signed)
        log.info("delivery %s/%s: submission refused: %s", sender, sub.message_id[:40], error.code)
        return SendOutcome(signed, refusal=error)


def _with_hashes(state: MessageState, message_hash: str, body_sha256: str) -> MessageState:
    return replace(state, message_hash=message_hash, body_sha256=body_sha256)
