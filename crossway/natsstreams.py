"""Provisioning the backbone's streams and buckets — with the admin credential, and checked after.

Running components create nothing: their NATS users hold no ``$JS.API.STREAM.*`` but what
``crossway.natsauth`` names (the registry may re-create the buckets it owns). The operator — or the
embedded starter at provisioning time — runs :func:`provision_backbone` as the ``admin`` identity.

Evidence streams (audit records, checkpoints, archived payloads, policy versions) refuse
deletion, purging and roll-ups (``deny_delete``, ``deny_purge``; notes/nats-security.md §4) and keep
their messages for ever: no age, count or size limit. The server can silently weaken a stream at
create time (``deny_purge`` dropped when ``allow_msg_schedules`` is set), so every stream is read
back after creating it and compared field by field: :func:`weaknesses` names what is missing and
provisioning fails loudly rather than run on a weakened stream. An existing weaker stream (made by
an older release) is updated once to the protected form — deny flags can be turned on, never off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

import nats.errors
import nats.js.errors
from nats.js.api import DiscardPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext

from crossway.backbone import (
    EVIDENCE_STREAMS,
    REGISTRY_BUCKET,
    StreamSpec,
    kv_stream,
    kv_subject,
    replay_bucket,
)
from crossway.bus import DEFAULT_RETENTION_S, delivery_state_bucket, delivery_streams
from crossway.core.errors import ConfigError
from crossway.natsclient import NatsAccess, connect

__all__ = [
    "bucket_config",
    "member_streams",
    "ensure_stream",
    "evidence_config",
    "provision_backbone",
    "weaknesses",
]

log = logging.getLogger(__name__)

REGISTRY_HISTORY = 5


def evidence_config(spec: StreamSpec, replicas: int) -> StreamConfig:
    return StreamConfig(
        name=spec.name,
        subjects=list(spec.subjects),
        description=spec.description or None,
        storage=StorageType.FILE,
        num_replicas=replicas,
        duplicate_window=spec.duplicate_window_s,
        max_age=spec.max_age_s or None,
        deny_delete=spec.evidence,
        deny_purge=spec.evidence,
        allow_rollup_hdrs=False,
        allow_direct=spec.allow_direct or None,
        discard=DiscardPolicy.OLD,
    )


def bucket_config(bucket: str, replicas: int, *, history: int = 1, ttl_s: float = 0.0) -> StreamConfig:
    """A KV bucket's stream the way nats-py makes one, plus direct get (readers need no consumer)."""
    return StreamConfig(
        name=kv_stream(bucket),
        subjects=[kv_subject(bucket)],
        storage=StorageType.FILE,
        num_replicas=replicas,
        max_msgs_per_subject=history,
        max_age=ttl_s or None,
        duplicate_window=min(ttl_s, 120.0) if ttl_s else 120.0,
        discard=DiscardPolicy.NEW,
        deny_delete=True,
        allow_rollup_hdrs=True,
        allow_direct=True,
    )


def member_streams(member: str, replicas: int, *, replay_window_s: float = 0.0) -> list[StreamConfig]:
    """What each member owns on the backbone: its delivery streams and state bucket, and its
    shared replay window when the federation keeps one in NATS."""
    wanted = [evidence_config(spec, replicas) for spec in delivery_streams(member)]
    wanted.append(bucket_config(delivery_state_bucket(member), replicas, ttl_s=DEFAULT_RETENTION_S))
    if replay_window_s > 0:
        wanted.append(bucket_config(replay_bucket(member), replicas, ttl_s=replay_window_s))
    return wanted


def weaknesses(actual: StreamConfig, wanted: StreamConfig) -> list[str]:
    """What ``actual`` lacks of ``wanted``'s protections (empty: as strong as asked)."""
    found: list[str] = []

    def limit(value: float | None) -> float:
        return -1 if value in (None, 0, -1) else float(value)

    if sorted(actual.subjects or []) != sorted(wanted.subjects or []):
        found.append(f"subjects {actual.subjects} instead of {wanted.subjects}")
    for name in ("deny_delete", "deny_purge"):
        if getattr(wanted, name) and not getattr(actual, name):
            found.append(f"{name} is off")
    if actual.allow_rollup_hdrs and not wanted.allow_rollup_hdrs:
        found.append("roll-ups are allowed (they purge)")
    if actual.sealed:
        found.append("sealed")
    if bool(actual.allow_msg_ttl) and not bool(wanted.allow_msg_ttl):
        found.append("per-message TTLs are allowed")
    for name in ("max_msgs", "max_bytes", "max_msgs_per_subject"):
        if limit(getattr(actual, name)) != limit(getattr(wanted, name)):
            found.append(f"{name} is {getattr(actual, name)}")
    if limit(actual.max_age) != limit(wanted.max_age):
        found.append(f"max_age is {actual.max_age}")
    if wanted.allow_direct and not actual.allow_direct:
        found.append("direct get is off (readers get one subject's message without a consumer)")
    if (actual.num_replicas or 1) < (wanted.num_replicas or 1):
        found.append(f"{actual.num_replicas} replica(s), {wanted.num_replicas} wanted")
    return found


async def ensure_stream(js: JetStreamContext, wanted: StreamConfig, *, create: bool = True) -> bool:
    """Make ``wanted`` exist at full strength; True when it had to be created. Raises ConfigError."""
    name = str(wanted.name)
    created = False
    try:
        info = await js.stream_info(name)
    except nats.js.errors.NotFoundError:
        if not create:
            raise
        try:
            info = await js.add_stream(wanted)
            created = True
        except nats.js.errors.BadRequestError:
            info = await js.stream_info(name)  # made concurrently by someone else
    problems = weaknesses(info.config, wanted)
    if problems and not created:
        log.warning("stream %s is weaker than it must be (%s); updating it", name, "; ".join(problems))
        with contextlib.suppress(nats.js.errors.APIError):
            await js.update_stream(wanted)
        problems = weaknesses((await js.stream_info(name)).config, wanted)
    if problems:
        raise ConfigError(
            f"stream {name} is not protected as asked: {'; '.join(problems)}",
            hint="remove the conflicting options (or the stream, with the admin credential) and provision again",
        )
    return created


async def provision_backbone(
    admin: NatsAccess,
    *,
    replicas: int = 1,
    members: Sequence[str] = (),
    replay_window_s: float = 0.0,
    timeout_s: float = 30.0,
) -> list[str]:
    """Create (or check) every stream and bucket as ``admin``; returns the names created.

    A fresh cluster elects its JetStream leader some seconds after start (R3 streams could be
    created ~5.6 s after start; notes §7), so each creation is retried until ``timeout_s``.
    """
    wanted = [evidence_config(spec, replicas) for spec in EVIDENCE_STREAMS]
    wanted.append(bucket_config(REGISTRY_BUCKET, replicas, history=REGISTRY_HISTORY))
    for member in members:
        wanted += member_streams(member, replicas, replay_window_s=replay_window_s)
    nc = await connect(admin, name="crossway-provision", connect_timeout=5, allow_reconnect=True)
    created: list[str] = []
    deadline = time.monotonic() + timeout_s
    try:
        js = nc.jetstream(timeout=5.0)
        for config in wanted:
            while True:
                try:
                    if await ensure_stream(js, config):
                        created.append(str(config.name))
                    break
                except (
                    nats.js.errors.ServiceUnavailableError,
                    nats.errors.TimeoutError,
                    nats.errors.NoRespondersError,
                ):
                    if time.monotonic() > deadline:
                        raise ConfigError(
                            f"JetStream did not accept stream {config.name} within {timeout_s:.0f} s"
                        ) from None
                    await asyncio.sleep(0.25)
                except nats.js.errors.APIError as exc:
                    # "insufficient resources" / "no suitable peers" while a cluster is forming
                    if time.monotonic() > deadline or exc.code not in (500, 503):
                        raise ConfigError(f"cannot create stream {config.name}: {exc.description}") from exc
                    await asyncio.sleep(0.25)
    finally:
        await nc.close()
    if created:
        log.info("backbone provisioned: created %s", ", ".join(created))
    return created
