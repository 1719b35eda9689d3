"""Every NATS name the delivery room uses: streams, subjects, consumers, the state bucket.

One module, so the backbone's permission generator can be extended to them. ``<gw>`` is the
gateway id as subject tokens (``EE.GOV.70000001.gw1``, escaped as in ``audit.trail.subjects``),
``<sub>`` a subsystem id as tokens; consumer names use a short hash of the gateway id instead.

======================  ===========================================  ===========================  ============================
name                    subjects / keys                              publishes                    reads (consumers)
======================  ===========================================  ===========================  ============================
CROSSWAY_DELIVERY_      ``crossway.delivery.outbox.<gw>``            that gateway (Send: the      that gateway (relay worker,
OUTBOX (stream)                                                      signed message, before its   durable ``relay-<h>``)
                                                                     SubmissionAcceptance)
CROSSWAY_DELIVERY_      ``crossway.delivery.inbox.<gw>.<sub>``       that gateway (a relayed      that gateway (``mailbox-<h>-
INBOX (stream)                                                       message, before its          <s>`` handover per mailbox,
                                                                     RelayAcceptance)             ``expiry-<h>``, ``push-<h>-<s>``)
CROSSWAY_DELIVERY_      ``crossway.delivery.forward.<gw>``           that gateway (an event for   that gateway (``forward-<h>``)
FORWARD (stream)                                                     the other side)
CROSSWAY_DELIVERY_      ``crossway.delivery.chunks.<gw>.<id>``       that gateway (attachment     that gateway (relay of
CHUNKS (stream)                                                      chunks: uploads and relays)  attachments, FetchAttachment)
crossway_delivery_      keys ``<gw>.out.<sub>.<hash>`` (sender) and  that gateway only            that gateway only
state (KV bucket)       ``<gw>.in.<sub>.<hash>`` (recipient)
======================  ===========================================  ===========================  ============================

So a gateway publishes and reads only subjects and keys under its own ``<gw>`` tokens (plus its
consumers' ``$JS.API.CONSUMER.*`` and ``$JS.ACK`` subjects on these streams, and the KV's
``$KV.crossway_delivery_state.<gw>.>``); nothing else needs any of them. Evidence itself is not
here: every event also goes to the gateway's audit stream (``crossway.audit.<gw>``) as a
``delivery`` record, with the audit stream's permissions and guarantees.
"""

from __future__ import annotations

import hashlib
import re

from crossway.core.ids import GatewayId, SubsystemId

__all__ = [
    "CHUNKS_STREAM",
    "FORWARD_STREAM",
    "INBOX_STREAM",
    "OUTBOX_STREAM",
    "STATE_BUCKET",
    "Names",
    "tokens",
]

OUTBOX_STREAM = "CROSSWAY_DELIVERY_OUTBOX"
INBOX_STREAM = "CROSSWAY_DELIVERY_INBOX"
FORWARD_STREAM = "CROSSWAY_DELIVERY_FORWARD"
CHUNKS_STREAM = "CROSSWAY_DELIVERY_CHUNKS"
STATE_BUCKET = "crossway_delivery_state"

_PREFIX = "crossway.delivery"
_PLAIN = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")
_KEY_SAFE = re.compile(r"[A-Za-z0-9._=/-]+")


def _encode(part: str) -> str:
    # The audit subjects' escape: '.', '_' and anything else outside [A-Za-z0-9-] become _XX.
    return "".join(chr(b) if b in _PLAIN else f"_{b:02X}" for b in part.encode())


def tokens(identifier: GatewayId | SubsystemId | str) -> str:
    """An id's ``/``-separated parts as subject tokens (reversible, never ``.`` ``*`` ``>``)."""
    return ".".join(_encode(p) for p in str(identifier).split("/"))


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Names:
    """The names of one gateway's delivery subjects, keys and consumers."""

    def __init__(self, gateway: GatewayId) -> None:
        self.gateway = gateway
        self._gw = tokens(gateway)
        self._h = _short(str(gateway))
        self.outbox = f"{_PREFIX}.outbox.{self._gw}"
        self.inbox_all = f"{_PREFIX}.inbox.{self._gw}.>"
        self.forward = f"{_PREFIX}.forward.{self._gw}"
        self.relay_consumer = f"relay-{self._h}"
        self.expiry_consumer = f"expiry-{self._h}"
        self.forward_consumer = f"forward-{self._h}"

    def inbox(self, mailbox: SubsystemId) -> str:
        return f"{_PREFIX}.inbox.{self._gw}.{tokens(mailbox)}"

    def mailbox_consumer(self, mailbox: SubsystemId) -> str:
        return f"mailbox-{self._h}-{_short(str(mailbox))}"

    def push_consumer(self, mailbox: SubsystemId) -> str:
        return f"push-{self._h}-{_short(str(mailbox))}"

    def chunks(self, attachment_id: str) -> str:
        if not _KEY_SAFE.fullmatch(attachment_id) or "." in attachment_id:
            raise ValueError(f"attachment id {attachment_id!r} is not a subject token")
        return f"{_PREFIX}.chunks.{self._gw}.{attachment_id}"

    def state_key(self, role: str, subsystem: SubsystemId, delivery_key: str) -> str:
        """``role`` is "out" (we sent it; ``subsystem`` = sender) or "in" (``subsystem`` = recipient)."""
        if role not in ("out", "in"):
            raise ValueError(f"state role {role!r} is not out/in")
        digest = hashlib.sha256(delivery_key.encode()).hexdigest()[:40]
        return f"{self._gw}.{role}.{tokens(subsystem)}.{digest}"

    def state_filter(self, role: str, subsystem: SubsystemId) -> str:
        return f"{self._gw}.{role}.{tokens(subsystem)}.*"
