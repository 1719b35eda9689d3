"""Every NATS name the topics room uses, beside delivery's (``gateway.delivery.subjects``).

======================  ==============================================  ============================
name                    subjects / keys                                 used by
======================  ==============================================  ============================
CROSSWAY_TOPICS_EVENTS  ``crossway.topics.events.<gw>.<topic>``         the publisher's gateway:
(stream)                                                                Publish; fan-out consumers
                                                                        ``fan-<h>-<s>`` (one per
                                                                        subscription, named, durable)
CROSSWAY_TOPICS_INBOX   ``crossway.topics.inbox.<gw>.<s>.<seq>``        the subscriber's gateway:
(stream)                                                                accepted events, read back
                                                                        by subject (Receive, Replay)
crossway_topics_state   ``<gw>.sub.<s>`` (publisher: a subscription     that gateway only
(KV bucket)             and its progress), ``<gw>.mine.<s>``
                        (subscriber), ``<gw>.key.<t>.<k>`` (key heads),
                        ``<gw>.subs``/``<gw>.mines`` (id lists)
======================  ==============================================  ============================

``<s>`` is a subscription id, ``<t>``/``<k>`` short hashes of a topic and a key. A gateway uses
only names under its own ``<gw>`` tokens. The evidence of each event's delivery to each
subscriber is delivery's: its state bucket and FORWARD stream, and the audit stream.
"""

from __future__ import annotations

import hashlib

from crossway.core.ids import GatewayId
from gateway.delivery.subjects import tokens

__all__ = ["EVENTS_STREAM", "INBOX_STREAM", "STATE_BUCKET", "TopicNames", "short"]

EVENTS_STREAM = "CROSSWAY_TOPICS_EVENTS"
INBOX_STREAM = "CROSSWAY_TOPICS_INBOX"
STATE_BUCKET = "crossway_topics_state"
_PREFIX = "crossway.topics"


def short(text: str, n: int = 16) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


class TopicNames:
    def __init__(self, gateway: GatewayId) -> None:
        self.gateway = gateway
        self._gw = tokens(gateway)
        self._h = short(str(gateway))

    def events(self, topic: str) -> str:
        return f"{_PREFIX}.events.{self._gw}.{tokens(topic)}"

    def inbox(self, subscription: str, sequence: int) -> str:
        return f"{_PREFIX}.inbox.{self._gw}.{subscription}.{sequence}"

    def fan_consumer(self, subscription: str) -> str:
        return f"fan-{self._h}-{subscription}"

    def sub_key(self, subscription: str) -> str:
        return f"{self._gw}.sub.{subscription}"

    @property
    def sub_index(self) -> str:
        return f"{self._gw}.subs"

    @property
    def mine_index(self) -> str:
        return f"{self._gw}.mines"

    def mine_key(self, subscription: str) -> str:
        return f"{self._gw}.mine.{subscription}"

    def key_head(self, topic: str, key: str) -> str:
        return f"{self._gw}.key.{short(topic)}.{short(key, 24)}"
