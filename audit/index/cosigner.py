"""The cosigner: the registry (or a peer) countersigns each gateway's checkpoints, append-only.

Before cosigning a checkpoint it checks, in order, failing closed (the checkpoint is then left
without this cosignature and the refusal is logged with the gateway and sizes):
1. the gateway's signature and certificate (``verify_checkpoint`` without cosignatures);
2. the signing key is registered for the gateway's member (``registered(member, key_id)``);
3. the log only grew: among the consistency proofs the gateway sent (one per old size it may
   need, see ``audit.trail.checkpointer``), the one from the last checkpoint *this* cosigner
   signed for that gateway links it to the new one (RFC 9162 §2.1.4.2); a checkpoint of the
   same size with another root is a fork, refused and logged as such;
then it records what it is about to sign (a small JSON file, written before the cosignature
leaves, so neither a restart nor an ambiguous publish can make it sign a fork), signs with its
Ed25519 key, optionally has the checkpoint timestamped by an RFC 3161 authority
(``audit.index.timestamp``: best effort — when the TSA fails the checkpoint is published without
a token and stamping pauses briefly, so an outage only costs tokens, never checkpoints), and
publishes to its own subject ``crossway.checkpoint.cosigned.<gateway>.<cosigner>`` (the
gateway reads each cosigner's latest there). A checkpoint equal to the last one it cosigned is
cosigned again (same de-duplication id): its earlier publish may not have been stored.
Cosigning needs no help after an outage: the consumer is durable, its connection reconnects,
and a checkpoint is acknowledged only after its cosignature was stored or refused.
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
from typing import Any

import nats.errors
from cryptography.hazmat.primitives.asymmetric import ed25519
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from audit.index.timestamp import TimestampAuthority, Timestamper, load_timestamp_authority
from audit.trail import (
    CHECKPOINT_STREAM,
    COSIGNATURE_TYPE,
    Checkpoint,
    CheckpointInvalid,
    TimestampUnavailable,
    cosign,
    cosignature_subject,
    note_key_id,
    registry_witness_name,
    verify_checkpoint,
    verify_consistency,
)
from crossway.core.ids import GatewayId
from crossway.natsclient import NatsAccess, close_owner, connect
from registry import Anchor

__all__ = ["Cosigner", "RegistryCosigner", "WitnessService"]

log = logging.getLogger(__name__)


class Cosigner:
    def __init__(
        self,
        nats: NatsAccess,
        *,
        key: ed25519.Ed25519PrivateKey,
        name: str,
        state_path: Path,
        registered: Callable[[str, str], bool],
        timestamp: TimestampAuthority | None = None,
        skip_gateways: frozenset[str] = frozenset(),
    ) -> None:
        # Logs this witness does not cosign: its own gateway's (a log does not witness itself).
        self._skip = skip_gateways
        self._nats = nats
        self._key = key
        # The witness's C2SP key ID (hex): names its consumer, its subject and its de-duplication ids.
        self._key_id = note_key_id(name, key.public_key(), COSIGNATURE_TYPE).hex()
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
                            self._commit(signed)  # before it leaves: never two roots for one size
                            signed = await self._stamp(signed)
                            await js.publish(
                                cosignature_subject(signed.gateway, self._key_id),
                                signed.to_json(),
                                stream=CHECKPOINT_STREAM,
                                headers={"Nats-Msg-Id": f"cosigned:{self._key_id}:{signed.gateway}:{signed.size}"},
                            )
                            self.cosigned += 1
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
            if checkpoint.gateway in self._skip:
                return None
            proofs = _proofs(doc)
            # 1. The gateway's own signature.
            verify_checkpoint(checkpoint, {}, require_cosignature=False)
            # 2. A key the registry knows for that gateway's member.
            member = str(GatewayId.parse(checkpoint.gateway).member)
            if not self._registered(member, checkpoint.key_id):
                raise CheckpointInvalid(f"key {checkpoint.key_id} is not a registered signing key of {member}")
            # 3. Append-only since what we last cosigned.
            last_size, last_root = self._last.get(checkpoint.gateway, (0, ""))
            if checkpoint.size < last_size:
                return None  # an older checkpoint (a redelivery, or replayed): nothing to add
            if checkpoint.size == last_size:
                if checkpoint.root.hex() != last_root:
                    raise CheckpointInvalid(
                        f"a fork: size {last_size} was cosigned with root {last_root}, now shown with root "
                        f"{checkpoint.root.hex()}"
                    )
                # The same checkpoint again: its cosignature may never have been stored; sign again.
            elif last_size:
                proof = proofs.get(last_size)
                if proof is None:
                    sizes = ", ".join(str(m) for m in sorted(proofs)) or "none"
                    raise CheckpointInvalid(
                        f"size {checkpoint.size} carries no proof from size {last_size}, the last cosigned here "
                        f"(proofs from: {sizes}); waiting for a checkpoint that does"
                    )
                if not verify_consistency(last_size, checkpoint.size, bytes.fromhex(last_root), checkpoint.root, proof):
                    raise CheckpointInvalid(f"size {checkpoint.size} is not an extension of size {last_size}: a fork")
        except (CheckpointInvalid, KeyError, TypeError, ValueError) as exc:
            log.error("audit cosigner refuses a checkpoint: %s", exc)
            return None
        return cosign(checkpoint, self._key, self._name, int(time.time() * 1000))

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
        with tmp.open("w") as f:
            f.write(json.dumps({g: [s, r] for g, (s, r) in self._last.items()}))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._state_path)


def _proofs(doc: dict[str, Any]) -> dict[int, list[bytes]]:
    """The consistency proofs of a checkpoint message, by old size: ``proofs`` and the older
    single ``previous_size``/``consistency`` pair."""
    proofs: dict[int, list[bytes]] = {}
    raw = doc.get("proofs") or {}
    if not isinstance(raw, dict):
        raise ValueError("proofs is not an object")
    for old, hashes in raw.items():
        proofs[int(old)] = [bytes.fromhex(h) for h in hashes]
    if "previous_size" in doc:
        proofs.setdefault(int(doc["previous_size"]), [bytes.fromhex(h) for h in doc.get("consistency") or []])
    return proofs


class WitnessService:
    """A witness of the gateways' audit logs: a :class:`Cosigner` whose "registered key" check reads
    the verified registry configuration from NATS. The registry runs one (``registry serve``);
    a member runs its own with ``crossway audit witness`` beside its gateway, skipping its own
    gateway's log (a log does not witness itself), once the registry names it
    (``crossway registry witness add``)."""

    def __init__(
        self,
        nats: NatsAccess,
        anchor: Anchor,
        *,
        key: ed25519.Ed25519PrivateKey,
        name: str,
        state_path: Path,
        timestamp: TimestampAuthority | None = None,
        skip_gateways: frozenset[str] = frozenset(),
        registry_dir: Path | None = None,
    ) -> None:
        """``registry_dir``: the registry's own cosigner also accepts the registry's change log,
        signed with the log key kept there (issue 17); other witnesses do not witness that log."""
        from crossway.core.clock import SystemClock
        from registry import NatsConfigurationSource, registry_log_id, registry_log_key_id

        self._source = NatsConfigurationSource(nats, anchor, SystemClock())
        self.name = name

        def registered(member: str, key_id: str) -> bool:
            from crossway.core.ids import MemberId

            # The registry's own change log (issue 17) is signed with its log key, nobody else's.
            if member == str(registry_log_id(anchor.instance).member):
                return registry_dir is not None and key_id == registry_log_key_id(registry_dir)
            return self._source.current().signing_key(MemberId.parse(member), key_id) is not None

        self.cosigner = Cosigner(
            nats,
            key=key,
            name=name,
            state_path=state_path,
            registered=registered,
            timestamp=timestamp,
            skip_gateways=skip_gateways,
        )

    @property
    def description(self) -> str:
        return "cosigning audit checkpoints"

    async def start(self) -> None:
        await self._source.start()
        await self.cosigner.start()

    async def aclose(self) -> None:
        await self.cosigner.aclose()
        await self._source.aclose()


class RegistryCosigner(WitnessService):
    """The registry's witness: its configuration key, and members' keys from the published configuration.

    Timestamping is off unless a ``TimestampAuthority`` is passed or the registry directory holds
    ``timestamp.toml`` (``[timestamp] url``, ``ca_file``, ``timeout_s``); the demo has neither.
    """

    def __init__(self, nats: NatsAccess, registry_dir: Path, timestamp: TimestampAuthority | None = None) -> None:
        from crossway.security.keys import load_private_key
        from registry import load_anchor
        from registry.authority import passphrase_from_env

        if timestamp is None and (registry_dir / "timestamp.toml").exists():
            timestamp = load_timestamp_authority(registry_dir / "timestamp.toml")
        # Encrypted like the CA key when the registry was created with CROSSWAY_REGISTRY_PASSPHRASE.
        key = load_private_key(registry_dir / "config.key", passphrase_from_env())
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise CheckpointInvalid(f"{registry_dir / 'config.key'} is not an Ed25519 key")
        anchor = load_anchor(registry_dir / "anchor.json")
        super().__init__(
            nats,
            anchor,
            key=key,
            name=registry_witness_name(anchor.instance),
            state_path=registry_dir / "cosigner-state.json",
            timestamp=timestamp,
            registry_dir=registry_dir,
        )
