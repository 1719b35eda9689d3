"""What a gateway process keeps outside itself: its NATS identity, the replay window, quotas.

Chosen from the configuration at start (:class:`gateway.runtime.Gateway`), each with the reason
it lives where it does.
"""

from __future__ import annotations

from crossway.backbone import replay_bucket
from crossway.core.errors import ConfigError
from crossway.natsclient import NatsAccess
from crossway.natslocal import LocalBackbone
from crossway.natsreplay import NatsReplayGuard
from crossway.security.natspki import NatsIdentity
from crossway.security.replay import ReplayGuard
from crossway.security.shared_replay import SharedReplayGuard
from gateway.provider import QuotaLimiter, Quotas, SharedQuotaLimiter
from gateway.shared.config import GatewayConfig

__all__ = ["nats_access", "quotas", "replay_guard"]


async def nats_access(cfg: GatewayConfig) -> tuple[NatsAccess, LocalBackbone | None]:
    """Who this gateway is on NATS: its configured identity, or an embedded server's (returned too,
    for the gateway to stop).

    Embedded (no URL): a private backbone in the data dir — its own CA, server and users, the
    streams of its member provisioned once; worker processes are handed the primary's URL and use
    the identity the primary was issued there.
    """
    identity = NatsIdentity.gateway(cfg.gateway_id)
    embedded = cfg.data_dir / "nats"
    if not cfg.nats_url:
        backbone = LocalBackbone(embedded, members=(str(cfg.gateway_id.member),))
        await backbone.start()
        return await backbone.grant(identity), backbone
    if cfg.nats_ca is not None and cfg.nats_certificate is not None and cfg.nats_key is not None:
        access = NatsAccess.load(
            cfg.nats_url,
            ca_file=cfg.nats_ca,
            cert_file=cfg.nats_certificate,
            key_file=cfg.nats_key,
            key_passphrase=cfg.key_passphrase,
        )
        return access, None
    if (embedded / "pki").is_dir():  # a worker of a primary that runs the embedded server
        return LocalBackbone.existing_access(embedded, identity, cfg.nats_url), None
    raise ConfigError(
        f"{cfg.source}: [nats] url is set but the gateway has no NATS identity (ca, certificate, key)",
        hint="nobody connects to NATS anonymously: request a certificate from the registry",
    )


async def replay_guard(cfg: GatewayConfig, nats: NatsAccess) -> tuple[ReplayGuard, NatsReplayGuard | None]:
    """The provider's replay window; the NATS one is returned too, for the gateway to stop."""
    if cfg.shared_replay:
        # A member's gateways on separate hosts share one window in NATS KV (issue 11).
        guard = NatsReplayGuard(nats, replay_bucket(cfg.gateway_id.member))
        await guard.start()
        return guard, guard
    # On disk, always: the window must survive a restart (a captured envelope replayed just
    # after one was accepted when it lived in memory), and worker processes share the peer
    # port, so a replayed message may reach any of them — they share the one file.
    return SharedReplayGuard(cfg.data_dir / "replay-window.sqlite"), None


def quotas(cfg: GatewayConfig) -> Quotas:
    # The same reason: a client's calls spread over the workers, so a "2/min" quota would
    # become N x 2/min unless they share one set of buckets (a SQLite file in the data dir).
    if cfg.workers > 1:
        return SharedQuotaLimiter(cfg.data_dir / "quotas.sqlite")
    return QuotaLimiter()
