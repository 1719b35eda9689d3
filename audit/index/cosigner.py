"""The cosigner: the registry (or a peer) countersigns each gateway's checkpoints, append-only.

Before cosigning a checkpoint it checks, in order, failing closed (the checkpoint is then left
without this cosignature and the refusal is logged with the gateway and sizes):
1. the gateway's signature and certificate (``verify_checkpoint`` without cosignatures);
2. the signing key is registered for the gateway's member (``registered(member, key_id)``);
3. the log only grew: the consistency proof the gateway sent links the last checkpoint this
   cosigner signed for that gateway to the new one (RFC 9162 §2.1.4.2);
then it signs with its Ed25519 key, optionally has the checkpoint timestamped by an RFC 3161
authority (``audit.index.timestamp``: best effort — when the TSA fails the checkpoint is published
without a token and stamping pauses briefly, so an outage only costs tokens, never checkpoints),
and publishes to ``crossway.checkpoint.cosigned.<gateway>``.
What it last cosigned per gateway is kept in a small JSON file, so a restart cannot be tricked
into cosigning a fork.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import nats.errors
from cryptography.hazmat.primitives.asymmetric import ed25519
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from audit.index.timestamp import TimestampAuthority, Timestamper, load_timestamp_authority
from audit.trail import (
    CHECKPOINT_STREAM,
    Checkpoint,
    CheckpointInvalid,
    TimestampUnavailable,
    checkpoint_subject,
    cosign,
    verify_checkpoint,
    verify_consistency,
)
from crossway.core.ids import GatewayId
from crossway.natsclient import NatsAccess, close_owner, connect

__all__ = ["Cosigner", "RegistryCosigner"]

log = logging.getLogger(__name__)


class Cosigner:
    def __init__(
        self,
        nats: NatsAccess,
        *,
        key: ed25519.Ed25519PrivateKey,
        key_id: str,
        name: str,
        state_path: Path,
        registered: Callable[[str, str], bool],
        timestamp: TimestampAuthority | None = None,
    ) -> None:
        self._nats = nats
        self._key = key
        self._key_id = key_id
        self._name = name
        self._state_path = state_path
        self._registered = registered
        self._last: dict[str, tuple[int, str]] = {}
        if state_path.exists():
            self._last = {g: (int(s), str(r)) for g, (s, r) in json.loads(state_path.read_text()).items()}
        self._nc: NATS | None = None
        self._task: asyncio.Task[None] | None = None
        self._timestamper = Timestamper(timestamp) if timestamp is not None else None
        self._tsa_paused_until = 0.0
        self.cosigned = 0
        self.stamped = 0

    async def start(self) -> None:
        self._nc = await connect(
            self._nats, name="crossway-cosigner", connect_timeout=2, max_reconnect_attempts=-1, reconnect_time_wait=0.5
        )
        self._task = asyncio.create_task(self._run(), name="audit-cosigner")

    async def aclose(self) -> None:
        await close_owner(self._task, self._nc)
        if self._timestamper is not None:
            await self._timestamper.aclose()

    async def _run(self) -> None:
        # The one durable consumer this identity's permissions name (crossway.natsauth); its acks
        # survive restarts, so each checkpoint is considered once.
        durable = self._nats.identity.consumer("cs")
        subject = "crossway.checkpoint.signed.>"
        while True:
            try:
                assert self._nc is not None
                js = self._nc.jetstream(timeout=5.0)
                config = ConsumerConfig(
                    name=durable,
                    durable_name=durable,
                    ack_policy=AckPolicy.EXPLICIT,
                    deliver_policy=DeliverPolicy.ALL,
                    filter_subject=subject,
                )
                await js.add_consumer(CHECKPOINT_STREAM, config)
                sub = await js.pull_subscribe_bind(consumer=durable, stream=CHECKPOINT_STREAM)
                while True:
                    try:
                        msgs = await sub.fetch(batch=50, timeout=1.0)
                    except (nats.errors.TimeoutError, TimeoutError):
                        continue
                    for msg in msgs:
                        signed = self._consider(msg.data)
                        if signed is not None:
                            signed = await self._stamp(signed)
                            await js.publish(
                                checkpoint_subject(signed.gateway, "cosigned"),
                                signed.to_json(),
                                stream=CHECKPOINT_STREAM,
                                headers={"Nats-Msg-Id": f"cosigned:{self._key_id}:{signed.gateway}:{signed.size}"},
                            )
                            self._commit(signed)
                        await msg.ack()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("audit cosigner: %s; retrying", type(exc).__name__)
                await asyncio.sleep(0.5)

    def _consider(self, data: bytes) -> Checkpoint | None:
        try:
            doc = json.loads(data)
            checkpoint = Checkpoint.from_dict(doc["checkpoint"])
            previous = int(doc["previous_size"])
            proof = [bytes.fromhex(h) for h in doc["consistency"]]
            # 1. The gateway's own signature.
            verify_checkpoint(checkpoint, {}, require_cosignature=False)
            # 2. A key the registry knows for that gateway's member.
            member = str(GatewayId.parse(checkpoint.gateway).member)
            if not self._registered(member, checkpoint.key_id):
                raise CheckpointInvalid(f"key {checkpoint.key_id} is not a registered signing key of {member}")
            # 3. Append-only since what we last cosigned.
            last_size, last_root = self._last.get(checkpoint.gateway, (0, ""))
            if checkpoint.size <= last_size:
                return None  # already covered (a redelivery, or a replayed old checkpoint)
            if previous != last_size:
                raise CheckpointInvalid(f"proof starts at size {previous}, but {last_size} was cosigned last")
            old_root = bytes.fromhex(last_root) if last_root else b""
            if not verify_consistency(last_size, checkpoint.size, old_root, checkpoint.root, proof):
                raise CheckpointInvalid(f"size {checkpoint.size} is not an extension of size {last_size}: a fork")
        except (CheckpointInvalid, KeyError, TypeError, ValueError) as exc:
            log.error("audit cosigner refuses a checkpoint: %s", exc)
            return None
        return cosign(checkpoint, self._key, self._name, self._key_id, int(time.time() * 1000))

    async def _stamp(self, checkpoint: Checkpoint) -> Checkpoint:
        """The checkpoint with a TSA token over its signed bytes, or unchanged when none is to be had."""
        if self._timestamper is None or time.monotonic() < self._tsa_paused_until:
            return checkpoint
        try:
            token = await self._timestamper.stamp(checkpoint.body())
        except TimestampUnavailable as exc:
            # Unstamped is still a valid checkpoint; pausing keeps a hanging TSA from delaying
            # every gateway's cosignature by a timeout each.
            self._tsa_paused_until = time.monotonic() + self._timestamper.authority.pause_s
            log.warning(
                "audit cosigner: checkpoint of %s at size %s goes unstamped: %s",
                checkpoint.gateway,
                checkpoint.size,
                exc.message,
            )
            return checkpoint
        self.stamped += 1
        return replace(checkpoint, timestamp=token)

    def _commit(self, checkpoint: Checkpoint) -> None:
        self._last[checkpoint.gateway] = (checkpoint.size, checkpoint.root.hex())
        tmp = self._state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({g: [s, r] for g, (s, r) in self._last.items()}))
        os.replace(tmp, self._state_path)
        self.cosigned += 1


class RegistryCosigner:
    """The registry's cosigner: its configuration key, and members' keys from the published configuration.

    Timestamping is off unless a ``TimestampAuthority`` is passed or the registry directory holds
    ``timestamp.toml`` (``[timestamp] url``, ``ca_file``, ``timeout_s``); the demo has neither.
    """

    def __init__(self, nats: NatsAccess, registry_dir: Path, timestamp: TimestampAuthority | None = None) -> None:
        from crossway.core.clock import SystemClock
        from crossway.security.keys import load_private_key
        from registry import NatsConfigurationSource, load_anchor
        from registry.anchor import registry_key_id

        if timestamp is None and (registry_dir / "timestamp.toml").exists():
            timestamp = load_timestamp_authority(registry_dir / "timestamp.toml")
        key = load_private_key(registry_dir / "config.key")
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise CheckpointInvalid(f"{registry_dir / 'config.key'} is not an Ed25519 key")
        anchor = load_anchor(registry_dir / "anchor.json")
        self._source = NatsConfigurationSource(nats, anchor, SystemClock())

        def registered(member: str, key_id: str) -> bool:
            from crossway.core.ids import MemberId

            return self._source.current().signing_key(MemberId.parse(member), key_id) is not None

        self.cosigner = Cosigner(
            nats,
            key=key,
            key_id=registry_key_id(key.public_key()),
            name=f"registry {anchor.instance}",
            state_path=registry_dir / "cosigner-state.json",
            registered=registered,
            timestamp=timestamp,
        )

    async def start(self) -> None:
        await self._source.start()
        await self.cosigner.start()

    async def aclose(self) -> None:
        await self.cosigner.aclose()
        await self._source.aclose()
