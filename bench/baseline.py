"""Where the fan-out row's bare-JetStream baseline runs: as a gateway's own NATS identity, on its
member's topic stream.

On the secured backbone (issue 11) the admin credential manages streams but may publish nothing,
and running components create no stream. So the baseline publishes where the gateway it is
compared with may publish — a subject of its own on its member's topic stream — with named
durable consumers it deletes afterwards: the same TLS connection setup and the same
least-privilege grant (the delivery row does the same on the delivery streams).
"""

from __future__ import annotations

import os

from crossway.bus import Names
from crossway.demo.federation import Agency, Federation
from crossway.natsclient import NatsAccess

__all__ = ["gateway_backbone"]


def gateway_backbone(fed: Federation, agency: Agency) -> tuple[NatsAccess, str, str]:
    """``agency``'s gateway identity, its member's topic stream, and a fresh subject of its own there."""
    names = Names(agency.gateway)
    return fed.gateway_nats(agency), names.topic_stream, names.topic_events(f"bench-baseline-{os.urandom(4).hex()}")
