"""The message bus's NATS names: every stream, subject, consumer and bucket of registered delivery.

In the kernel, so the backbone's permission generator (``crossway.natsauth``), provisioning
(``crossway.natsstreams``, the registry) and the delivery room build the same names.

**Each member has streams and a state bucket of its own** (``<m>`` = 12 hex digits of SHA-256 of
the member id): its gateways hold full consumer rights on them and nothing on any other member's.
Shared streams would need consumer names in the permissions, and the delivery room names one
consumer per mailbox; a create request for an existing name *updates* that consumer (filter
included), so any wildcard there would let one agency redirect another's mailbox.

======================  ===========================================  ===========================  ============================
name                    subjects / keys                              publishes                    reads (consumers)
======================  ===========================================  ===========================  ============================
CROSSWAY_DELIVERY_      ``crossway.delivery.outbox.<gw>``            that gateway (Send: the      that gateway (relay worker,
OUTBOX_<m> (stream)                                                  signed message, before its   durable ``relay-<h>``)
                                                                     SubmissionAcceptance)
CROSSWAY_DELIVERY_      ``crossway.delivery.inbox.<gw>.<sub>``       that gateway (a relayed      that gateway (``mailbox-<h>-
INBOX_<m> (stream)                                                   message, before its          <s>`` handover per mailbox,
                                                                     RelayAcceptance)             ``expiry-<h>``, ``push-<h>-<s>``)
CROSSWAY_DELIVERY_      ``crossway.delivery.forward.<gw>``           that gateway (an event for   that gateway (``forward-<h>``)
FORWARD_<m> (stream)                                                 the other side)
CROSSWAY_DELIVERY_      ``crossway.delivery.chunks.<gw>.<id>``       that gateway (attachment     that gateway (relay of
CHUNKS_<m> (stream)                                                  chunks: uploads and relays)  attachments, FetchAttachment)
CROSSWAY_TOPICS_        ``crossway.delivery.topic.<gw>.<topic>``     that gateway (Publish, a     that gateway (``fan-<h>-<s>``,
EVENTS_<m> (stream)                                                  topic's signed events)       one per subscription)
CROSSWAY_TOPICS_        ``crossway.delivery.topicbox.<gw>.<s>.<n>``  that gateway (an event      that gateway (Receive, Replay:
INBOX_<m> (stream)                                                   accepted for subscription s) direct gets by subject)
crossway_delivery_      keys ``<gw>.out.<sub>.<hash>`` (sender) and  that gateway                 that gateway (timelines watch
state_<m> (KV bucket)   ``<gw>.in.<sub>.<hash>`` (recipient)                                      a key, reports list keys)
======================  ===========================================  ===========================  ============================

``<gw>`` is the gateway id as subject tokens (``EE.GOV.70000001.gw1``, escaped as in
``crossway.backbone``), ``<sub>`` a subsystem id as tokens; consumer names use a short hash of the
gateway id. A gateway publishes only under its own ``<gw>`` tokens. The streams refuse deletes
and purges (as the evidence streams do) and keep messages for the retention period (30 days
unless provisioned otherwise). Evidence itself is not here: every event also goes to the
gateway's audit stream as a ``delivery`` record, with the audit stream's permissions.
"""

from __future__ import annotations

import hashlib
import re

from crossway.backbone import StreamSpec, short_hash
from crossway.core.ids import GatewayId, MemberId, SubsystemId

__all__ = [
    "DEFAULT_RETENTION_S",
    "KINDS",
    "Names",
    "delivery_state_bucket",
    "delivery_streams",
    "tokens",
]

DEFAULT_RETENTION_S = 30 * 86_400.0
# kind -> (stream name prefix, what it holds)
KINDS = {
    "outbox": ("CROSSWAY_DELIVERY_OUTBOX", "signed messages awaiting relay"),
    "inbox": ("CROSSWAY_DELIVERY_INBOX", "relayed messages awaiting handover"),
    "forward": ("CROSSWAY_DELIVERY_FORWARD", "evidence to send to the other side"),
    "chunks": ("CROSSWAY_DELIVERY_CHUNKS", "attachment chunks"),
    # Topics (issue 15) ride on the same machinery: events as published, and as accepted for a
    # subscriber (subjects ``crossway.delivery.topic.<gw>.<topic>`` and
    # ``crossway.delivery.topicbox.<gw>.<subscription>.<sequence>``).
    "topic": ("CROSSWAY_TOPICS_EVENTS", "topic events as published"),
    "topicbox": ("CROSSWAY_TOPICS_INBOX", "topic events accepted for a subscriber"),
}
# Must exceed the longest retry of a publish whose acknowledgement was lost (NATS restarts).
_DUPLICATE_WINDOW_S = 3600.0

_PREFIX = "crossway.delivery"
_PLAIN = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")
_KEY_SAFE = re.compile(r"[A-Za-z0-9._=/-]+")


def _encode(part: str) -> str:
    # The audit subjects' escape: '.', '_' and anything else outside [A-Za-z0-9-] become _XX.
    return "".join(chr(b) if b in _PLAIN else f"_{b:02X}" for b in part.encode())


def tokens(identifier: GatewayId | SubsystemId | MemberId | str) -> str:
    """An id's ``/``-separated parts as subject tokens (reversible, never ``.`` ``*`` ``>``)."""
    return ".".join(_encode(p) for p in str(identifier).split("/"))


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _member(member: MemberId | str) -> MemberId:
    return member if isinstance(member, MemberId) else MemberId.parse(member)


def delivery_state_bucket(member: MemberId | str) -> str:
    """The KV bucket of one member's message states (all its gateways use it)."""
    return f"crossway_delivery_state_{short_hash(str(_member(member)))}"


def delivery_streams(member: MemberId | str, retention_s: float = DEFAULT_RETENTION_S) -> tuple[StreamSpec, ...]:
    """One member's delivery streams (and its two topic streams), as provisioning creates them."""
    m = _member(member)
    return tuple(
        StreamSpec(
            f"{prefix}_{short_hash(str(m))}",
            (f"{_PREFIX}.{kind}.{tokens(m)}.>",),
            True,  # deny delete and purge: messages leave by age only
            duplicate_window_s=min(_DUPLICATE_WINDOW_S, retention_s),
            description=f"Crossway delivery of {m}: {what}",
            max_age_s=retention_s,
            # Chunks are read one at a time by sequence: a direct get returns the stored bytes as
            # they are, where a STREAM.MSG.GET answer is JSON with the data in base64 (three more
            # chunk-sized copies per read, which showed in the sender's memory under load).
            allow_direct=kind == "chunks",
        )
        for kind, (prefix, what) in KINDS.items()
    )


class Names:
    """The names of one gateway's delivery subjects, keys and consumers."""

    def __init__(self, gateway: GatewayId) -> None:
        self.gateway = gateway
        self._gw = tokens(gateway)
        self._h = _short(str(gateway))
        member = short_hash(str(gateway.member))
        by_kind = {kind: f"{prefix}_{member}" for kind, (prefix, _) in KINDS.items()}
        self.outbox_stream, self.inbox_stream = by_kind["outbox"], by_kind["inbox"]
        self.forward_stream, self.chunks_stream = by_kind["forward"], by_kind["chunks"]
        self.topic_stream, self.topicbox_stream = by_kind["topic"], by_kind["topicbox"]
        self.streams = tuple(by_kind.values())
        self.state_bucket = delivery_state_bucket(gateway.member)
        self.tokens = self._gw
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

    def topic_events(self, topic: str) -> str:
        """Where this gateway stores a topic's events (issue 15)."""
        return f"{_PREFIX}.topic.{self._gw}.{tokens(topic)}"

    def topicbox(self, subscription: str, sequence: int) -> str:
        """Where this gateway stores one event accepted for one of its subscriptions."""
        if not _KEY_SAFE.fullmatch(subscription) or "." in subscription:
            raise ValueError(f"subscription id {subscription!r} is not a subject token")
        return f"{_PREFIX}.topicbox.{self._gw}.{subscription}.{sequence}"

    def fan_consumer(self, subscription: str) -> str:
        """The named durable consumer of one subscription's fan-out."""
        return f"fan-{self._h}-{subscription}"

    def state_filter(self, role: str, subsystem: SubsystemId) -> str:
        return f"{self._gw}.{role}.{tokens(subsystem)}.*"
