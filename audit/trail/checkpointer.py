"""The gateway's audit log: its records, in stream order, as a Merkle tree; signed checkpoints.

The JetStream stream is the sequencer: the gateway's leaves are its own records in the order the
stream stored them (after de-duplication), so anyone reading the stream — the audit index, an
auditor — rebuilds exactly the same tree. The checkpointer follows its gateway's subject with an
ordered consumer, appends each record's bytes as a leaf (RFC 9162 hashing) and, every
``interval_s`` when the log grew, signs a checkpoint and publishes it, with a consistency proof
from the previous checkpoint, to ``crossway.checkpoint.signed.<gateway>`` in its own stream.
Cosigners (the registry) check that proof before they cosign.

State survives restarts: leaf hashes in ``leaves.bin`` (32 bytes each, fsync'd before the state
file names them), ``state.json`` (size, last stream sequence, last published size) written
atomically. After a crash the leaves beyond the saved size are dropped and fetched again.
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

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from audit.trail.checkpoint import sign_checkpoint
from audit.trail.jetstream import DEFAULT_STREAM
from audit.trail.merkle import MerkleTree, leaf_hash
from audit.trail.subjects import CHECKPOINT_SUBJECTS, audit_subject, checkpoint_subject
from crossway.security.signing import Signer

__all__ = ["CHECKPOINT_STREAM", "AuditCheckpointer", "ensure_checkpoint_stream"]

log = logging.getLogger(__name__)

CHECKPOINT_STREAM = "CROSSWAY_AUDIT_CHECKPOINTS"


async def ensure_checkpoint_stream(nc: NATS, replicas: int = 1, timeout: float = 5.0) -> None:
    """Create the checkpoint stream when it is missing (file storage, de-duplicated)."""
    js = nc.jetstream(timeout=timeout)
    try:
        await js.stream_info(CHECKPOINT_STREAM)
    except nats.js.errors.NotFoundError:
        config = StreamConfig(
            name=CHECKPOINT_STREAM,
            subjects=[CHECKPOINT_SUBJECTS],
            storage=StorageType.FILE,
            num_replicas=replicas,
            duplicate_window=3600.0,
        )
        with contextlib.suppress(nats.js.errors.BadRequestError):  # created concurrently by another process
            await js.add_stream(config)


class AuditCheckpointer:
    def __init__(
        self,
        nats_url: str,
        *,
        gateway_id: str,
        signer: Signer,
        certificate_pem: str,
        state_dir: Path,
        stream: str = DEFAULT_STREAM,
        replicas: int = 1,
        interval_s: float = 1.0,
    ) -> None:
        self._url = nats_url
        self._gateway = gateway_id
        self._subject = audit_subject(gateway_id)
        self._signed_subject = checkpoint_subject(gateway_id, "signed")
        self._signer = signer
        self._certificate_pem = certificate_pem
        self._dir = state_dir
        self._stream = stream
        self._replicas = replicas
        self._interval = interval_s
        self._tree = MerkleTree()
        self._persisted = 0  # leaves on disk
        self._last_seq = 0  # stream sequence of the last leaf in the tree
        self._persisted_seq = 0
        self._published = 0  # size of the last published checkpoint
        self._published_at_ms = 0  # when this process signed it (0: not since start)
        self._nc: NATS | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def size(self) -> int:
        return self._tree.size

    @property
    def published_size(self) -> int:
        return self._published

    @property
    def published_at_ms(self) -> int:
        return self._published_at_ms

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._load()
        self._nc = await nats.connect(
            self._url, connect_timeout=2, max_reconnect_attempts=-1, reconnect_time_wait=0.5, allow_reconnect=True
        )
        self._task = asyncio.create_task(self._run(), name=f"audit-checkpointer {self._gateway}")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # A last checkpoint so that everything this gateway stored is covered.
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
            except Exception as exc:
                log.warning("audit checkpointer %s: %s; retrying", self._gateway, type(exc).__name__)
                await asyncio.sleep(self._interval)

    async def _follow(self) -> None:
        assert self._nc is not None
        await ensure_checkpoint_stream(self._nc, self._replicas)
        js = self._nc.jetstream(timeout=5.0)
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self._last_seq + 1)
        sub = await js.subscribe(
            self._subject, stream=self._stream, ordered_consumer=True, config=config, cb=self._on_record
        )
        try:
            while True:
                await asyncio.sleep(self._interval)
                await self._checkpoint()
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _on_record(self, msg: Msg) -> None:
        seq = msg.metadata.sequence.stream
        if seq <= self._last_seq:
            return  # a redelivery after the ordered consumer reset
        self._tree.append_hash(leaf_hash(msg.data))
        self._last_seq = seq

    async def _checkpoint(self) -> None:
        size = self._tree.size
        if size == self._published:
            return
        self._persist()
        checkpoint = sign_checkpoint(
            self._signer, self._certificate_pem, self._gateway, size, self._tree.root(size), int(time.time() * 1000)
        )
        message: dict[str, Any] = {
            "checkpoint": checkpoint.to_dict(),
            "previous_size": self._published,
            "consistency": [h.hex() for h in self._tree.consistency_proof(self._published, size)],
        }
        assert self._nc is not None
        js = self._nc.jetstream(timeout=5.0)
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
        state = {"size": self._persisted, "last_seq": self._persisted_seq, "published": self._published}
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self._dir / "state.json")
