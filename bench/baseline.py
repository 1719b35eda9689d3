"""Where the bare-JetStream baselines run: as a gateway's own NATS identity, on its member's stream.

On the secured backbone (issue 11) the admin credential manages streams but may publish nothing,
and running components create no stream. So a baseline publishes where the gateway it is compared
with may publish — a subject of its own on its member's topic stream — with named durable
consumers it deletes afterwards: the same TLS connection setup and the same least-privilege grant.
"""

from __future__ import annotations

import os

from crossway.backbone import NatsIdentity
from crossway.bus import Names
from crossway.demo.federation import Agency, Federation
from crossway.natsclient import NatsAccess

__all__ = ["gateway_backbone"]


def gateway_backbone(fed: Federation, agency: Agency) -> tuple[NatsAccess, str, str]:
    """``agency``'s gateway identity, its member's topic stream, and a fresh subject of its own there."""
    keys = agency.directory / "keys"
    access = NatsAccess(
        tuple(fed.nats.urls),
        fed.workdir / "registry" / "nats-ca.pem",
        keys / "nats.crt",
        keys / "nats.key",
        NatsIdentity.gateway(agency.gateway),
    )
    names = Names(agency.gateway)
    return access, names.topic_stream, names.topic_events(f"bench-baseline-{os.urandom(4).hex()}")
