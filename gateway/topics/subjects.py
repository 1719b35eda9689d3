"""The keys the topics room keeps, beside the NATS names it shares with delivery (``crossway.bus``).

Streams, subjects and consumers are the message bus's own (``crossway.bus.Names``: the member's
``CROSSWAY_TOPICS_EVENTS_<m>`` and ``CROSSWAY_TOPICS_INBOX_<m>`` streams, provisioned with the
delivery streams and granted to the member's gateways by the same generator, and the named
durable ``fan-<h>-<s>`` consumers). Records live in the member's delivery state bucket, under this
gateway's own ``<gw>`` key prefix, which its gateways alone may write:

    <gw>.sub.<s>          a subscription, at the publisher's gateway (with its progress)
    <gw>.mine.<s>         a subscription, at the subscriber's gateway
    <gw>.key.<t>.<k>      the last key sequence of a topic's key (publisher)
    <gw>.subs, <gw>.mines the id lists (listing keys would need an unnamed consumer: not granted)
"""

from __future__ import annotations

import hashlib

from crossway.bus import Names, tokens
from crossway.core.ids import GatewayId

__all__ = ["TopicNames", "short"]


def short(text: str, n: int = 16) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


class TopicNames:
    def __init__(self, gateway: GatewayId) -> None:
        self.gateway = gateway
        self.bus = bus = Names(gateway)
        self.events_stream = bus.topic_stream
        self.inbox_stream = bus.topicbox_stream
        self._gw = tokens(gateway)

    def events(self, topic: str) -> str:
        return self.bus.topic_events(topic)

    def inbox(self, subscription: str, sequence: int) -> str:
        return self.bus.topicbox(subscription, sequence)

    def fan_consumer(self, subscription: str) -> str:
        return self.bus.fan_consumer(subscription)

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
