"""The gateway's audit log: its records, in stream order, as a Merkle tree; signed checkpoints.

The JetStream stream is the sequencer: the gateway's leaves are its own records in the order the
stream stored them (after de-duplication), so anyone reading the stream — the audit index, an
auditor — rebuilds exactly the same tree. The checkpointer follows its gateway's subject through
one consumer of its own (a name the NATS server lets only this gateway use, filtered to its own
subject), appends each record's bytes as a leaf (RFC 9162 hashing) and, every ``interval_s``
when the log grew, signs a checkpoint and publishes it, with a consistency proof from the
previous checkpoint, to ``crossway.checkpoint.signed.<gateway>`` in its own stream. Cosigners
(the registry) check that proof before they cosign.

What it reads is checked before it is signed, failing closed — an **alarm**: the checkpointer
stops signing, ``alarm`` says why (health ``crossway.audit`` turns NOT_SERVING) and it stays so
until an operator looks; nothing is ever skipped silently (issue 11):

1. each (re)start of the consumer begins *at* the last signed leaf's stream sequence, and that
   message must still be there with the same bytes — a stream deleted and recreated, or rewound,
   has lost it (its sequences start again from 1);
2. deliveries are contiguous in the consumer's own sequence (a gap re-reads from the last leaf);
3. stream sequences only grow;
4. a record names this gateway — one it did not produce is never signed into its log.

State survives restarts: leaf hashes in ``leaves.bin`` (32 bytes each, fsync'd before the state
file names them), ``state.json`` (size, last stream sequence, last published size, the sizes
recently offered) written atomically. After a crash the leaves beyond the saved size are
dropped and fetched again.

Every cosigner must be shown that the new checkpoint extends the last one *it* cosigned, and
the gateway cannot always know which one that is: a publish that timed out may still have been
stored and cosigned (issue 12: one NATS crash forked what the gateway and the registry believed,
and every later checkpoint was refused), and a witness that was down is behind the others. So
each checkpoint carries consistency proofs (``proofs``: old size → proof) from every size it
may need: the last confirmed publish, every size offered recently (confirmed or not), and each
cosigner's latest, read back from its own cosignature subject before publishing (by direct get
of this gateway's cosignature subjects: all its NATS user may read there). The whole tree is
kept, so any of them can be proven.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from audit.trail.checkpoint import sign_checkpoint
from audit.trail.jetstream import DEFAULT_STREAM
from audit.trail.merkle import MerkleTree, leaf_hash
from audit.trail.subjects import audit_subject, checkpoint_subject
from crossway.backbone import CHECKPOINT_STREAM
from crossway.natsclient import NatsAccess, connect
from crossway.security.natspki import NatsIdentity
from crossway.security.signing import Signer

__all__ = ["CHECKPOINT_STREAM", "AuditCheckpointer"]

log = logging.getLogger(__name__)

# Sizes offered recently whose publish may or may not have been stored: proofs go out from each.
_OFFERED_KEPT = 32
_FETCH_BATCH = 1000
# Idle fetch rounds between checks that our consumer (and so the stream) still exists.
_PROBE_EVERY = 3


class _Alarm(Exception):
    """What the checkpointer read cannot be signed (see the module docstring's steps)."""


class _Resync(Exception):
    """Start again from the last leaf (a delivery gap, a vanished consumer)."""


class AuditCheckpointer:
    def __init__(
        self,
        nats: NatsAccess,
        *,
        gateway_id: str,
        signer: Signer,
        certificate_pem: str,
        state_dir: Path,
        stream: str = DEFAULT_STREAM,
        interval_s: float = 1.0,
    ) -> None:
        self._nats = nats
        self._gateway = gateway_id
        self._subject = audit_subject(gateway_id)
        self._signed_subject = checkpoint_subject(gateway_id, "signed")
        self._consumer = NatsIdentity.gateway(gateway_id).consumer("ck")
        self._signer = signer
        self._certificate_pem = certificate_pem
        self._dir = state_dir
        self._stream = stream
        self._interval = interval_s
        self._tree = MerkleTree()
        self._persisted = 0  # leaves on disk
        self._last_seq = 0  # stream sequence of the last leaf in the tree
        self._persisted_seq = 0
        self._published = 0  # size of the last published checkpoint
        self._offered: list[int] = []  # sizes of recent checkpoints published or attempted, oldest first
        self._published_at_ms = 0  # when this process signed it (0: not since start)
        self._nc: NATS | None = None
        self._task: asyncio.Task[None] | None = None
        self._alarm: str | None = None
        self._last_checkpoint_at = 0.0

    @property
    def size(self) -> int:
        return self._tree.size

    @property
    def published_size(self) -> int:
        return self._published

    @property
    def published_at_ms(self) -> int:
        return self._published_at_ms

    @property
    def alarm(self) -> str | None:
        """Why this log stopped being signed (None while all is well)."""
        return self._alarm

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._load()
        self._nc = await connect(
            self._nats,
            name=f"crossway-checkpointer {self._gateway}",
            connect_timeout=2,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            allow_reconnect=True,
        )
        self._task = asyncio.create_task(self._run(), name=f"audit-checkpointer {self._gateway}")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # A last checkpoint so that everything this gateway stored is covered (every leaf in the
        # tree passed the checks, so this holds after an alarm too).
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._checkpoint(), 5.0)
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()

    # -- the loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except _Alarm as exc:
                self._alarm = str(exc)
                log.critical("audit ALARM for %s: %s; checkpoints stop until an operator acts", self._gateway, exc)
                return
            except _Resync as exc:
                log.warning(
                    "audit checkpointer %s: %s; re-reading from sequence %d", self._gateway, exc, self._last_seq
                )
            except Exception as exc:
                log.warning("audit checkpointer %s: %s: %s; retrying", self._gateway, type(exc).__name__, exc)
                await asyncio.sleep(self._interval)

    async def _open(self, js: JetStreamContext) -> Any:
        """(Re)create our consumer at the last leaf's sequence (or the start) and bind to it."""
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_consumer(self._stream, self._consumer)
        config = ConsumerConfig(
            name=self._consumer,
            filter_subject=self._subject,
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=max(1, self._last_seq),
            inactive_threshold=max(30.0, 10 * self._interval),
            mem_storage=True,
        )
        await js.add_consumer(self._stream, config)
        return await js.pull_subscribe_bind(consumer=self._consumer, stream=self._stream)

    async def _fetch(self, sub: Any, batch: int, timeout: float) -> list[Msg]:
        try:
            msgs: list[Msg] = await sub.fetch(batch=batch, timeout=timeout)
        except (nats.errors.TimeoutError, TimeoutError):
            return []
        return msgs

    async def _check_anchor(self, sub: Any) -> None:
        """1. The message our last leaf was made from is still at its sequence, byte for byte."""
        size, seq = self._tree.size, self._last_seq
        msgs = await self._fetch(sub, 1, max(2.0, self._interval))
        if not msgs:
            raise _Alarm(
                f"stream {self._stream} no longer holds sequence {seq}, the record of leaf {size - 1}: "
                "the stream was deleted and recreated, or rewound"
            )
        got = msgs[0].metadata.sequence.stream
        if got != seq or leaf_hash(msgs[0].data) != self._tree.leaf(size - 1):
            what = "another record" if got == seq else f"nothing of ours (our next record is at {got})"
            raise _Alarm(
                f"stream {self._stream} went back: sequence {seq} (leaf {size - 1}) now holds {what}; "
                "the stream was deleted and recreated, or rewound"
            )

    def _accept(self, msg: Msg, expected_delivery: int) -> None:
        """Steps 2-4 for one delivered record, then append it."""
        meta = msg.metadata
        if meta.sequence.consumer != expected_delivery:
            raise _Resync(f"delivery {meta.sequence.consumer} where {expected_delivery} was due")
        if meta.sequence.stream <= self._last_seq:
            raise _Alarm(f"stream {self._stream} delivered sequence {meta.sequence.stream} after {self._last_seq}")
        try:
            producer = json.loads(msg.data).get("gateway")
        except (ValueError, AttributeError):
            producer = None
        if producer != self._gateway:
            raise _Alarm(
                f"sequence {meta.sequence.stream} on {self._subject} is not a record of {self._gateway} "
                f"(it names {producer!r}); it is not signed into the log"
            )
        self._tree.append_hash(leaf_hash(msg.data))
        self._last_seq = meta.sequence.stream

    async def _follow(self) -> None:
        assert self._nc is not None
        js = self._nc.jetstream(timeout=5.0)
        sub = await self._open(js)
        try:
            delivery = 1
            if self._tree.size:
                await self._check_anchor(sub)
                delivery = 2
            idle = 0
            while True:
                msgs = await self._fetch(sub, _FETCH_BATCH, self._interval)
                for msg in msgs:
                    self._accept(msg, delivery)
                    delivery += 1
                idle = 0 if msgs else idle + 1
                if time.monotonic() - self._last_checkpoint_at >= self._interval:
                    await self._checkpoint()
                    self._last_checkpoint_at = time.monotonic()
                if idle >= _PROBE_EVERY:
                    idle = 0
                    try:
                        await js.consumer_info(self._stream, self._consumer)
                    except nats.js.errors.NotFoundError:
                        raise _Resync("our consumer is gone (the stream may have been deleted)") from None
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _checkpoint(self) -> None:
        size = self._tree.size
        if size == self._published:
            return
        self._persist()
        checkpoint = sign_checkpoint(
            self._signer, self._certificate_pem, self._gateway, size, self._tree.root(size), int(time.time() * 1000)
        )
        assert self._nc is not None
        js = self._nc.jetstream(timeout=5.0)
        olds = {self._published, *self._offered, *await self._cosigned_sizes(js)}
        proofs = {m: self._tree.consistency_proof(m, size) for m in sorted(olds) if 0 < m < size}
        message: dict[str, Any] = {
            "checkpoint": checkpoint.to_dict(),
            # The proof from the last confirmed publish, for cosigners that read only this pair.
            "previous_size": self._published,
            "consistency": [h.hex() for h in self._tree.consistency_proof(self._published, size)],
            "proofs": {str(m): [h.hex() for h in proof] for m, proof in proofs.items()},
        }
        # Offered before it is sent: if the publish times out, it may still be stored and cosigned.
        self._offered = [*[m for m in self._offered if m != size][-(_OFFERED_KEPT - 1) :], size]
        self._save_state()
        await js.publish(
            self._signed_subject,
            json.dumps(message, sort_keys=True).encode(),
            stream=CHECKPOINT_STREAM,
            headers={"Nats-Msg-Id": f"checkpoint:{self._gateway}:{size}"},
        )
        self._published = size
        self._published_at_ms = checkpoint.time_ms
        self._save_state()
        log.info("audit checkpoint %s size %d", self._gateway, size)

    async def _cosigned_sizes(self, js: Any) -> list[int]:
        """Each cosigner's latest cosigned size of this log (the last message of its subject);
        best effort: without them the recent offers still cover a cosigner that kept up."""
        subjects = checkpoint_subject(self._gateway, "cosigned") + ".>"
        sizes: list[int] = []
        try:
            info = await js.stream_info(CHECKPOINT_STREAM, subjects_filter=subjects)
            for subject in info.state.subjects or {}:
                # Direct get of that one subject: the only read of this stream our user may make.
                msg = await js.get_last_msg(CHECKPOINT_STREAM, subject, direct=True)
                sizes.append(int(json.loads(msg.data or b"{}").get("size", 0)))
        except (nats.errors.Error, TimeoutError, ValueError) as exc:
            log.debug("audit checkpointer %s: cosigned sizes not read: %r", self._gateway, exc)
        return [s for s in sizes if 0 < s <= self._tree.size]

    # -- state on disk ---------------------------------------------------------------------

    def _load(self) -> None:
        state_path = self._dir / "state.json"
        if not state_path.exists():
            return
        state = json.loads(state_path.read_text())
        size = int(state["size"])
        leaves_path = self._dir / "leaves.bin"
        leaves_path.touch()
        with leaves_path.open("r+b") as f:
            f.truncate(size * 32)  # drop leaves written after the last saved state
            data = f.read()
        self._tree = MerkleTree(data[i : i + 32] for i in range(0, len(data), 32))
        self._persisted = self._tree.size
        self._last_seq = self._persisted_seq = int(state["last_seq"])
        self._published = min(int(state["published"]), size)
        self._offered = [int(m) for m in state.get("offered", []) if 0 < int(m) <= size]

    def _persist(self) -> None:
        size, seq = self._tree.size, self._last_seq
        if size > self._persisted:
            with (self._dir / "leaves.bin").open("ab") as f:
                f.write(b"".join(self._tree.leaf(i) for i in range(self._persisted, size)))
                f.flush()
                os.fsync(f.fileno())
            self._persisted, self._persisted_seq = size, seq
        self._save_state()

    def _save_state(self) -> None:
        tmp = self._dir / "state.json.tmp"
        state = {
            "size": self._persisted,
            "last_seq": self._persisted_seq,
            "published": self._published,
            "offered": self._offered,
        }
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self._dir / "state.json")
