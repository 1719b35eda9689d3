"""Registered delivery (issue 14): store-and-forward messages between agencies, with signed
evidence at every step — a room of the gateway beside the client and provider sides.

The sender's gateway checks, signs and stores a message (OUTBOX) and answers with
SubmissionAcceptance; its relay worker carries it to the recipient's gateway over the peer port
until it is answered or expires; the recipient's gateway verifies, decides (Cedar), stores it
(INBOX) and answers with RelayAcceptance or RelayRejection; the recipient system receives and
acknowledges it (ContentHandover) and, in accept/reject mailboxes, accepts or rejects it; the
deadlines end what does not happen in time. Every event is signed by the gateway that saw it,
chained per message, logged in that gateway's Merkle audit log and sent to the other side, so
both hold the whole timeline. See docs/delivery.md.

Public API: :class:`DeliveryService` (built by the runtime), :class:`DeliveryConfig` and
:func:`load_delivery_config`, the stream and bucket names (:mod:`crossway.bus`).
"""

from crossway.bus import Names
from gateway.delivery.config import DeliveryConfig, PushTarget, load_delivery_config
from gateway.delivery.service import DeliveryService

__all__ = [
    "DeliveryConfig",
    "DeliveryService",
    "Names",
    "PushTarget",
    "load_delivery_config",
]
